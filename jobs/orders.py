"""RQ jobs that talk to the broker. They run inside the app context the worker's job class
provides (jobs/worker.py); importing this module never builds an app.

A job that raises is retried by RQ (see services/jobqueue.py). Both jobs are idempotent: the claim
happens under a row lock, and a resend asks the broker first.
"""

from __future__ import annotations

import logging
import time
import uuid

from tradingapp.brokers import get_broker
from tradingapp.services.order_worker import claim_for_submission, modify_request, order_for_cancel

log = logging.getLogger(__name__)


def submit_order(order_id: str) -> str | None:
    """Send a PENDING order to the broker; returns the broker order id (None: nothing to send)."""
    started = time.monotonic()
    oid = uuid.UUID(order_id)
    claimed = claim_for_submission(oid)
    if claimed is None:
        log.info("event=submit_skipped order_id=%s reason=not_pending", oid)
        return None
    request, resend = claimed
    broker = get_broker()
    if resend:
        # An earlier attempt claimed the order and may have reached the broker before it died:
        # ask first, so the order never reaches the broker twice.
        known = broker.lookup(oid)
        if known is not None:
            log.info("event=submit_already_at_broker order_id=%s user_id=%s broker_order_id=%s broker_status=%s",
                     oid, request.user_id, known.broker_order_id, known.status)  # fmt: skip
            return known.broker_order_id
        log.info("event=submit_resend order_id=%s user_id=%s", oid, request.user_id)
    broker_order_id = broker.place(request)
    log.info("event=submitted order_id=%s user_id=%s broker=%s broker_order_id=%s elapsed_ms=%.1f", oid,
             request.user_id, broker.name, broker_order_id, (time.monotonic() - started) * 1000)  # fmt: skip
    return broker_order_id


def cancel_order(order_id: str) -> bool:
    """Ask the broker to cancel an order that is CANCEL_PENDING; the outcome arrives as an event."""
    oid = uuid.UUID(order_id)
    if order_for_cancel(oid) is None:
        log.info("event=cancel_skipped order_id=%s reason=not_cancel_pending", oid)
        return False
    get_broker().cancel(oid)
    log.info("event=cancel_sent order_id=%s", oid)
    return True


def modify_order(order_id: str, seq: int) -> bool:
    """Send modification `seq` of a MODIFY_PENDING order; `order.modified` or `order.modify_rejected`
    answers as an event. A superseded or answered modification sends nothing."""
    oid = uuid.UUID(order_id)
    request = modify_request(oid, seq)
    if request is None:
        log.info("event=modify_skipped order_id=%s seq=%s reason=not_modify_pending", oid, seq)
        return False
    get_broker().modify(request)
    log.info("event=modify_sent order_id=%s seq=%s quantity=%s limit_price=%s stop_price=%s", oid, seq,
             request.quantity, request.limit_price, request.stop_price)  # fmt: skip
    return True
