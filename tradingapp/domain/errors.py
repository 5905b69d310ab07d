"""The errors services raise, named for what went wrong, not for HTTP. The API maps each kind to its
status and the error JSON in one place (tradingapp/errors.py); a CLI or a job reads them as they are.

Each carries `code` (the machine-readable code a client sees), `message` (one line for a person) and
`details` (the fields or numbers at fault).
"""

from __future__ import annotations


class DomainError(Exception):
    code = "error"

    def __init__(self, message: str, details: dict | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code is not None:
            self.code = code


class Invalid(DomainError):
    """The input breaks a rule of its shape or values; nothing was changed."""

    code = "validation_error"


class NotFound(DomainError):
    """The thing named does not exist, or is not the caller's."""

    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state (an order's status, a name taken, a reused id)."""

    code = "conflict"


class Refused(DomainError):
    """A valid request a rule refuses: risk_rejected (the default), trading_halted, rate_limited (with
    `retry_after` seconds), forbidden, or a limit reached (validation_error)."""

    code = "risk_rejected"

    def __init__(
        self, message: str, details: dict | None = None, *, code: str | None = None, retry_after: int | None = None
    ):
        super().__init__(message, details, code=code)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A service the request needs (Redis, the secrets key) is down or not configured; try again."""

    code = "unavailable"
