"""What can go wrong talking to XTS, as exception types the order flow can act on.

Every one is a BrokerError (the interface's "outcome unknown, try again later"), except where the
broker gave a definite answer: XtsRejected carries the broker's refusal, which the caller turns
into a rejected / cancel_rejected / modify_rejected event instead of a retry.
"""

from __future__ import annotations

from tradingapp.brokers.base import BrokerError


class XtsError(BrokerError):
    """Base of the XTS client's errors."""


class XtsUnavailable(XtsError):
    """Not reached or no usable answer: connection error, timeout, 5xx. For a place, ambiguous."""


class XtsUnreached(XtsUnavailable):
    """No connection to the broker could be made (refused, connect timeout, no such host): the
    request never left, so nothing was executed."""


class XtsRateLimited(XtsUnavailable):
    """HTTP 429 still after the bounded backoff. The request was refused, not executed."""


class XtsPlaceInFlight(XtsError):
    """An earlier place of the order, whose outcome is unknown, may still land at the broker: it is
    neither sent again nor cancelled by tombstone until the resend horizon has passed. Try later."""


class XtsResponseError(XtsError):
    """An answer of an unexpected shape (not JSON, no envelope, a result we cannot read, a row
    missing a field). Never guessed around: for a place it is ambiguous like a timeout."""


class XtsAuthError(XtsError):
    """Login refused (wrong app key or secret), or the session stayed invalid after one re-login."""


class XtsRejected(XtsError):
    """The broker refused the request outright (HTTP 4xx, type "error"): nothing was executed.
    `reason` is the broker's description, with the fields a validation failure names."""

    def __init__(self, reason: str, code: str = "", status: int = 400):
        super().__init__(reason)
        self.reason, self.code, self.status = reason, code, status
