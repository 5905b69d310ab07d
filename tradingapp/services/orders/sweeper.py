"""The order sweeper: no order is lost to a crash. One round re-queues the submissions a crash
left behind and queues broker lookups of working orders; the worker runs a round every
SWEEP_INTERVAL (jobs/worker.py, Maintenance). README: Crash safety."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import NamedTuple

from flask import Flask, current_app

from tradingapp import metrics
from tradingapp.extensions import db, get_redis
from tradingapp.process import claim_round
from tradingapp.services.orders.jobqueue import enqueue_reconcile, enqueue_submit
from tradingapp.services.orders.submission import (
    WorkingOrder,
    find_stale_orders,
    find_waiting_requests,
    find_working_orders,
    unsent_orders,
)

log = logging.getLogger(__name__)

RESUBMIT_BACKOFF_MAX = 300  # seconds between re-queues of one stranded submission, at most
# SWEEPER_FOUND's actions: a stranded submission queued again, a working order queued for a lookup.
RESUBMIT, RECONCILE = "resubmit", "reconcile"


class SweepResult(NamedTuple):
    submits: int  # stranded PENDING / unacknowledged SUBMITTED orders whose submission was queued again
    reconciles: int  # working orders queued for a broker lookup


def sweep_once(app: Flask) -> SweepResult:
    """One round of the sweeper; one worker sweeps per interval (a Redis lock), and the unique job
    ids make a second sweep harmless anyway.

    1. PENDING and unacknowledged SUBMITTED orders untouched for SWEEP_PENDING_AFTER: the submit job
       again (it looks the order up at the broker before any resend).
    2. Working orders (OPEN, PARTIALLY_FILLED, CANCEL_PENDING, MODIFY_PENDING) untouched as long:
       a `reconcile-<id>` job on the `default` queue, which looks the order up at the broker (its
       events come again, repairing a lost fill or cancel) and re-sends a waiting cancel or
       modification. Orders with a waiting request go first; the rest are walked with a cursor kept
       in Redis, SWEEP_BATCH orders per round at most, each order at most once per SWEEP_RECONCILE_EVERY.
       Not with BROKER=xts: the book reconcile (brokers/xts/upkeep.py) does it for every order at once.
    The round itself only reads Postgres and writes Redis: the broker calls run as RQ jobs (with
    their timeout and retries), so a slow broker never holds up the RQ scheduler that calls it."""
    interval = app.config["SWEEP_INTERVAL"]
    with app.app_context():
        try:
            # Every worker's round looks, whoever sweeps: each worker's gauges stay fresh.
            _measure_unsent()
            if not claim_round("sweeper", max(interval - 1, 1)):
                return SweepResult(0, 0)
            metrics.SWEEPER_ROUNDS.inc()
            stale = [o for o in find_stale_orders(app.config["SWEEP_PENDING_AFTER"]) if _may_resubmit(o, interval)]
            for order_id in stale:
                log.warning("event=sweep_requeue order_id=%s", order_id)
                enqueue_submit(order_id)
            # XTS: the book reconcile covers working orders (one book read per account, not one per order).
            reconciles = 0 if app.config["BROKER"] == "xts" else _reconcile_working(app)
            metrics.SWEEPER_FOUND.labels(RESUBMIT).inc(len(stale))
            metrics.SWEEPER_FOUND.labels(RECONCILE).inc(reconciles)
            return SweepResult(len(stale), reconciles)
        finally:
            db.session.remove()


def _measure_unsent() -> None:
    """UNSENT_ORDERS and UNSENT_OLDEST: orders accepted but not at the broker, and the age of the
    oldest (the "orders stuck" alert). A healthy stack has none older than a few milliseconds."""
    count, oldest = unsent_orders()
    metrics.UNSENT_ORDERS.set(count)
    metrics.UNSENT_OLDEST.set(metrics.since(oldest) if oldest is not None else 0)


def _may_resubmit(order_id, interval: int) -> bool:
    """Back off per order: each re-queue of the same stranded submission waits twice as long as
    the one before (up to RESUBMIT_BACKOFF_MAX), so a broker outage with many stranded orders does
    not turn into a storm of lookups and resends the moment it recovers."""
    redis = get_redis()
    gate = _key(f"resubmit:gate:{order_id}")
    if redis.exists(gate):
        return False
    count_key = _key(f"resubmit:count:{order_id}")
    attempt = redis.incr(count_key)
    redis.expire(count_key, 86400)
    redis.set(gate, "1", ex=min(interval * 2 ** (attempt - 1), RESUBMIT_BACKOFF_MAX))
    return True


def _key(suffix: str) -> str:
    namespace = current_app.config.get("NAMESPACE", "")
    return f"{namespace}:orders:{suffix}" if namespace else f"orders:{suffix}"


def _reconcile_working(app: Flask) -> int:
    after, batch = app.config["SWEEP_PENDING_AFTER"], app.config["SWEEP_BATCH"]
    queued, _ = _queue_reconciles(find_waiting_requests(after, batch), batch)
    if queued >= batch:
        return queued
    cursor = _load_cursor()
    rows = find_working_orders(after, cursor, batch)
    more, examined = _queue_reconciles(rows, batch - queued)
    if examined == len(rows) and len(rows) < batch:
        get_redis().delete(_key("sweeper:cursor"))  # walked to the end: start again next round
    elif examined:
        last = rows[examined - 1]
        get_redis().set(_key("sweeper:cursor"), f"{last.updated_at.isoformat()}|{last.id}", ex=86400)
    return queued + more


def _queue_reconciles(orders: list[WorkingOrder], budget: int) -> tuple[int, int]:
    """(queued, examined): reconcile jobs for the orders not reconciled within SWEEP_RECONCILE_EVERY."""
    redis, every = get_redis(), current_app.config["SWEEP_RECONCILE_EVERY"]
    queued = examined = 0
    for order in orders:
        if queued >= budget:
            break
        examined += 1
        if not redis.set(_key(f"reconciled:{order.id}"), "1", nx=True, ex=every):
            continue
        log.info("event=sweep_reconcile order_id=%s status=%s", order.id, order.status)
        enqueue_reconcile(order.id)
        queued += 1
    return queued, examined


def _load_cursor() -> tuple[datetime, uuid.UUID] | None:
    raw = get_redis().get(_key("sweeper:cursor"))
    if not raw:
        return None
    try:
        stamp, order_id = raw.decode().split("|")
        return datetime.fromisoformat(stamp), uuid.UUID(order_id)
    except ValueError:
        return None
