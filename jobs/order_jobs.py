"""RQ jobs that talk to the broker. They run inside the app context the worker's job class
provides (jobs/worker.py); importing this module never builds an app.

A job that raises is retried by RQ (see services/orders/jobqueue.py). Every job is idempotent: the claim
happens under a row lock and a resend asks the broker first. Brokers differ on a repeated place:
paper dedupes on our order id; XTS does not, so its place refuses (XtsPlaceInFlight, retried later)
to send an order again until an earlier attempt can no longer land (brokers/xts/broker.py).

Each job's lines carry the order's ids (bound by jobs/worker.py's AppJob and, once read with the
order, here: client_order_id, broker_order_id); every broker call is counted and timed by its
outcome (services/orders/telemetry.py).

`crash_point` marks where the crash-safety tests kill the worker (tests/jobs/test_crash_safety.py).
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid

from flask import current_app

from tradingapp import logs
from tradingapp.brokers import get_broker
from tradingapp.domain.order_lifecycle import Status
from tradingapp.extensions import get_redis
from tradingapp.services.orders import jobqueue, telemetry
from tradingapp.services.orders.submission import (
    OrderFacts,
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
    claim = claim_for_submission(oid)
    if claim is None:
        log.info("event=submit_skipped order_id=%s reason=not_pending", oid)
        return None
    with _bound(claim.facts):
        return _submit(oid, claim, started)


def _submit(oid: uuid.UUID, claim, started: float) -> str | None:
    crash_point("after_claim")
    request, resend = claim.request, claim.resend
    broker = get_broker()
    if resend:
        # An earlier attempt claimed the order and may have reached the broker before it died:
        # ask first, so the order never reaches the broker twice.
        with telemetry.broker_call(broker.name, "lookup"):
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
    log.info("event=broker_call operation=place order_id=%s broker=%s resend=%s", oid, broker.name, resend)
    with telemetry.broker_call(broker.name, "place") as call:
        try:
            broker_order_id = broker.place(request)
        except Exception as exc:
            log.warning(
                "event=broker_returned operation=place order_id=%s broker=%s outcome=%s error=%s",
                oid,
                broker.name,
                telemetry.outcome_of(exc),
                type(exc).__name__,
            )
            raise
        if not broker_order_id:  # XTS refused it at once (its rejection is on its way as an event)
            call.outcome = telemetry.REFUSED
    if call.outcome == telemetry.OK:
        telemetry.observe_stage(telemetry.PLACED, claim.facts.created_at)
    crash_point("after_place")
    with logs.bind(broker_order_id=broker_order_id or None):
        log.info(
            "event=submitted order_id=%s user_id=%s broker=%s broker_order_id=%s outcome=%s elapsed_ms=%.1f",
            oid,
            request.user_id,
            broker.name,
            broker_order_id,
            call.outcome,
            (time.monotonic() - started) * 1000,
        )
    return broker_order_id


def cancel_order(order_id: str) -> bool:
    """Ask the broker to cancel an order that is CANCEL_PENDING; the outcome arrives as an event."""
    oid = uuid.UUID(order_id)
    facts = order_for_cancel(oid)
    if facts is None:
        log.info("event=cancel_skipped order_id=%s reason=not_cancel_pending", oid)
        return False
    with _bound(facts):
        crash_point("before_cancel")
        broker = get_broker()
        with telemetry.broker_call(broker.name, "cancel"):
            broker.cancel(oid)
        log.info("event=cancel_sent order_id=%s broker=%s", oid, broker.name)
    return True


def modify_order(order_id: str, seq: int) -> bool:
    """Send modification `seq` of a MODIFY_PENDING order; `order.modified` or `order.modify_rejected`
    answers as an event. A superseded or answered modification sends nothing."""
    oid = uuid.UUID(order_id)
    found = modify_request(oid, seq)
    if found is None:
        log.info("event=modify_skipped order_id=%s seq=%s reason=not_modify_pending", oid, seq)
        return False
    request, facts = found
    with _bound(facts):
        broker = get_broker()
        with telemetry.broker_call(broker.name, "modify"):
            broker.modify(request)
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
    found = working_order(oid)
    if found is None:
        log.info("event=reconcile_skipped order_id=%s reason=not_working", oid)
        return None
    order, facts = found
    with _bound(facts):
        broker = get_broker()
        with telemetry.broker_call(broker.name, "lookup"):
            known = broker.lookup(oid)
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


def _bound(facts: OrderFacts):
    """The order's ids on every line of the rest of the job. The request id the job carries (bound
    by the worker) wins: a cancel's lines carry the cancel's request; a job without one (the
    sweeper's, an older release's) takes the order's."""
    return logs.bind(
        request_id=logs.current().get("request_id") or facts.request_id,
        client_order_id=facts.client_order_id,
        broker_order_id=facts.broker_order_id,
    )


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
