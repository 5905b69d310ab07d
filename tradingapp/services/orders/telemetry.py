"""What the order path tells an operator: its stages timed from the accept, final statuses by a
bounded reason, broker calls by outcome (tradingapp/metrics.py declares them; README "Operations").

Figures of a database change are counted once its transaction commits (`after_commit`): a
transaction retried after a deadlock, or rolled back, counts nothing, and a redelivered broker
event, which the consumer's dedup turns away before any change, counts nothing either. So each
order observes each stage once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from rq.timeouts import JobTimeoutException

from tradingapp import metrics
from tradingapp.brokers.xts import errors as xts_errors
from tradingapp.domain import order_lifecycle as sm
from tradingapp.extensions import db

log = logging.getLogger(__name__)

# -- stages --------------------------------------------------------------------------------------
CLAIMED, PLACED, ACKNOWLEDGED, FILLED = "claimed", "placed", "acknowledged", "filled"

# -- final reasons (ORDERS_FINAL's `reason`): a fixed set, never the broker's free text ---------
NONE = "none"  # FILLED
BROKER_REJECTED = "broker_rejected"  # the broker refused it (or the rest of a partly filled one)
HALTED = "halted"  # the kill switch went on before the worker sent it
USER_CANCELLED = "user_cancelled"  # cancelled on the user's request (at the broker, or before it)
BROKER_CANCELLED = "broker_cancelled"  # cancelled by the broker unasked (an IOC's rest, the exchange)
EXPIRED = "expired"  # the broker expired it at its session's end
EXPIRED_UNSENT = "expired_unsent"  # never sent: its session ended first (the worker was down)
# ...and a risk refusal at the accept: the risk rule itself (domain/risk.py's rule names).
REASONS = (NONE, BROKER_REJECTED, HALTED, USER_CANCELLED, BROKER_CANCELLED, EXPIRED, EXPIRED_UNSENT)

# -- broker call outcomes (BROKER_CALLS' `outcome`) ---------------------------------------------
OK, REFUSED, TIMEOUT, HTTP_5XX, RATE_LIMITED, ERROR = "ok", "refused", "timeout", "5xx", "429", "error"
_HTTP_5XX = re.compile(r"\bHTTP 5\d\d\b")
_TIMEOUT = re.compile(r"Timeout|timed out|still arriving", re.IGNORECASE)


# -- after the commit ----------------------------------------------------------------------------
_PENDING_KEY = "tradingapp.after_commit"


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once the current transaction of db.session commits; forgotten if it rolls back."""
    db.session.info.setdefault(_PENDING_KEY, []).append(callback)


@sa.event.listens_for(sa.orm.Session, "after_commit")
def _run_pending(session) -> None:
    if session.in_nested_transaction():  # a savepoint released: the outer transaction may still roll back
        return
    callbacks = session.info.pop(_PENDING_KEY, None)
    for callback in callbacks or ():
        try:
            callback()
        except Exception:  # a figure must never fail the work it measures
            log.warning("event=metrics_after_commit_failed", exc_info=True)


@sa.event.listens_for(sa.orm.Session, "after_transaction_end")
def _drop_pending(session, transaction) -> None:
    """The outermost transaction ended (after the commit ran them, or rolled back, or closed)."""
    if transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


# -- the figures ---------------------------------------------------------------------------------
def observe_stage(stage: str, accepted_at) -> None:
    """Seconds from the order's accept (its created_at) to `stage`, now."""
    metrics.ORDER_STAGE.labels(stage).observe(metrics.since(accepted_at))


def stage_on_commit(stage: str, accepted_at) -> None:
    after_commit(lambda: observe_stage(stage, accepted_at))


def final_on_commit(status: str, reason: str) -> None:
    after_commit(lambda: metrics.ORDERS_FINAL.labels(status, reason).inc())


def final_reason(event: sm.Event, before: str, actor: str) -> str:
    """The bounded reason of a final status `event` led to, from `before` (the status it left)."""
    if isinstance(event, sm.Fill):
        return NONE
    if isinstance(event, sm.Reject):
        return HALTED if actor == "system" else BROKER_REJECTED
    if isinstance(event, sm.RequestCancel):
        return USER_CANCELLED
    if isinstance(event, sm.Cancelled):
        return USER_CANCELLED if before == sm.Status.CANCEL_PENDING else BROKER_CANCELLED
    if isinstance(event, sm.Expire):
        return EXPIRED_UNSENT if actor == "system" else EXPIRED
    return NONE


# -- broker calls --------------------------------------------------------------------------------
@dataclass
class BrokerCall:
    outcome: str = OK


@contextmanager
def broker_call(broker: str, operation: str) -> Iterator[BrokerCall]:
    """Count and time one broker operation (place, cancel, modify, lookup) by its outcome. The
    block may set `call.outcome = REFUSED` for a refusal the broker answers without raising."""
    call = BrokerCall()
    started = time.perf_counter()
    try:
        yield call
    except BaseException as exc:
        call.outcome = outcome_of(exc)
        raise
    finally:
        metrics.BROKER_LATENCY.labels(broker, operation).observe(time.perf_counter() - started)
        metrics.BROKER_CALLS.labels(broker, operation, call.outcome).inc()


def outcome_of(exc: BaseException) -> str:
    """ok | refused | timeout | 5xx | 429 | error, from the exception a broker call raised."""
    if isinstance(exc, JobTimeoutException | TimeoutError):
        return TIMEOUT
    if isinstance(exc, xts_errors.XtsRateLimited):
        return RATE_LIMITED
    if isinstance(exc, xts_errors.XtsRejected):
        return RATE_LIMITED if exc.status == 429 else REFUSED
    if isinstance(exc, xts_errors.XtsUnavailable):
        # XTS says which in its message only: "HTTP 503", "ReadTimeout", "answer still arriving".
        text = str(exc)
        if _HTTP_5XX.search(text):
            return HTTP_5XX
        if _TIMEOUT.search(text):
            return TIMEOUT
    return ERROR
