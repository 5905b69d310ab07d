"""RQ jobs that talk to the broker. They run inside the app context the worker's job class
provides (jobs/worker.py); importing this module never builds an app.

A job that raises is retried by RQ (see services/orders/jobqueue.py). Every job is idempotent: the claim
happens under a row lock and a resend asks the broker first. Brokers differ on a repeated place:
paper dedupes on our order id; XTS does not, so its place refuses (XtsPlaceInFlight, retried later)
to send an order again until an earlier attempt can no longer land (brokers/xts/broker.py).

`crash_point` marks where the crash-safety tests kill the worker (tests/jobs/test_crash_safety.py).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid

from flask import current_app

from tradingapp.brokers import get_broker
from tradingapp.domain.order_lifecycle import Status
from tradingapp.extensions import get_redis
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders.submission import (
    claim_for_submission,
    end_if_unsendable,
    modify_request,
    order_for_cancel,
    working_order,
)

BROKER_FINAL = {"filled", "cancelled", "rejected", "expired"}  # BrokerOrder.status of a finished order

log = logging.getLogger(__name__)


def submit_order(order_id: str) -> str | None:
    """Send a PENDING order to the broker; returns the broker order id (None: nothing to send)."""
    started = time.monotonic()
    oid = uuid.UUID(order_id)
    claimed = claim_for_submission(oid)
    if claimed is None:
        log.info("event=submit_skipped order_id=%s reason=not_pending", oid)
        return None
    crash_point("after_claim")
    request, resend = claimed
    broker = get_broker()
    if resend:
        # An earlier attempt claimed the order and may have reached the broker before it died:
        # ask first, so the order never reaches the broker twice.
        known = broker.lookup(oid)
        if known is not None:
            log.info(
                "event=submit_already_at_broker order_id=%s user_id=%s broker_order_id=%s broker_status=%s",
                oid,
                request.user_id,
                known.broker_order_id,
                known.status,
            )
            return known.broker_order_id
        if end_if_unsendable(oid):
            log.info("event=submit_skipped order_id=%s reason=session_over_or_halted", oid)
            return None
        log.info("event=submit_resend order_id=%s user_id=%s", oid, request.user_id)
    broker_order_id = broker.place(request)
    crash_point("after_place")
    log.info(
        "event=submitted order_id=%s user_id=%s broker=%s broker_order_id=%s elapsed_ms=%.1f",
        oid,
        request.user_id,
        broker.name,
        broker_order_id,
        (time.monotonic() - started) * 1000,
    )
    return broker_order_id


def cancel_order(order_id: str) -> bool:
    """Ask the broker to cancel an order that is CANCEL_PENDING; the outcome arrives as an event."""
    oid = uuid.UUID(order_id)
    if order_for_cancel(oid) is None:
        log.info("event=cancel_skipped order_id=%s reason=not_cancel_pending", oid)
        return False
    crash_point("before_cancel")
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
    log.info(
        "event=modify_sent order_id=%s seq=%s quantity=%s limit_price=%s stop_price=%s",
        oid,
        seq,
        request.quantity,
        request.limit_price,
        request.stop_price,
    )
    return True


def reconcile_order(order_id: str) -> str | None:
    """The sweeper's check of a working order untouched for a while. The lookup makes the broker
    re-send the order's events under their original ids (a fill lost between the broker's commit
    and its publish comes back; the consumer drops what it already has). A cancel or modification
    still waiting is sent again, unless the broker says the order is finished. Returns the
    broker's status of the order (None: nothing to do, or the broker does not know it)."""
    oid = uuid.UUID(order_id)
    order = working_order(oid)
    if order is None:
        log.info("event=reconcile_skipped order_id=%s reason=not_working", oid)
        return None
    known = get_broker().lookup(oid)
    broker_status = None if known is None else known.status
    log.info("event=reconciled order_id=%s status=%s broker_status=%s", oid, order.status, broker_status)
    if broker_status in BROKER_FINAL:
        return broker_status  # the re-sent events settle the order; nothing left to ask for
    if order.status == Status.CANCEL_PENDING:
        jobqueue.enqueue_cancel(oid)  # an unknown order too: the broker's tombstone answers it
    elif order.status == Status.MODIFY_PENDING and known is not None:
        jobqueue.enqueue_modify(oid, order.modify_seq)
    elif known is None:
        log.error("event=reconcile_unknown_at_broker order_id=%s status=%s", oid, order.status)
    return broker_status


def crash_point(name: str) -> None:
    """Test only: with TEST_CRASH_POINT=name (read by config.TestConfig alone, so never outside
    APP_ENV=test) the worker SIGKILLs itself here, once per Redis db; `name:raise` raises instead,
    as a broker timeout would, to exercise RQ's retry."""
    point = current_app.config.get("TEST_CRASH_POINT")
    if not point or point.split(":")[0] != name:
        return
    namespace = current_app.config.get("NAMESPACE", "")
    if not get_redis().set(f"{namespace}:test:crashed:{name}", 1, nx=True):
        return
    log.warning("event=test_crash point=%s", point)
    if point.endswith(":raise"):
        raise RuntimeError(f"test crash at {name}")
    os.kill(os.getpid(), signal.SIGKILL)
