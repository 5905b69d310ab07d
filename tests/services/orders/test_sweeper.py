"""The sweeper (services/orders/sweeper.py sweep_once) and the reconcile job on the real services:
Postgres, RQ in Redis, the paper broker and RabbitMQ. Each sweep here is one round, run in this process."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler

from jobs.order_jobs import reconcile_order
from jobs.worker import Maintenance
from tests.support.factories import book_row, make_order, reload, set_quote
from tests.support.jobs import queued, run_worker
from tradingapp import events as ev
from tradingapp.brokers import get_broker
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Order, Trade
from tradingapp.models.types import utcnow
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders import state as order_state
from tradingapp.services.orders.broker_events import apply_broker_event
from tradingapp.services.orders.jobqueue import ORDERS, get_queue, queue_name
from tradingapp.services.orders.sweeper import sweep_once

pytestmark = pytest.mark.usefixtures("close_publisher")


def sweep(app):
    """One sweeper round, as if the previous round's lock had expired."""
    namespace = app.config["NAMESPACE"]
    get_redis().delete(f"{namespace}:orders:sweeper")
    return sweep_once(app)


def age(order, seconds: float = 300) -> Order:
    """Pretend nothing touched the order for `seconds`."""
    _db.session.execute(
        sa.update(Order).where(Order.id == order.id).values(updated_at=utcnow() - timedelta(seconds=seconds))
    )
    _db.session.commit()
    return reload(order.id)


def reconcile_jobs() -> list[str]:
    return jobqueue.get_queue(jobqueue.DEFAULT).get_job_ids()


def resting(user, limit_price="2800.00", status="OPEN", **kw) -> Order:
    """A LIMIT order resting at the paper exchange (its book row open), acknowledged, aged."""
    order = make_order(user, status="SUBMITTED", limit_price=limit_price, **kw)
    broker_order_id = get_broker().place(order_state.order_request(order))
    row = reload(order.id)
    row.status, row.broker_order_id = status, broker_order_id
    _db.session.commit()
    return age(row)


@pytest.fixture
def market(db):
    set_quote(1, "2900.05")


# -- stranded submissions ------------------------------------------------------------------------
def test_sweeper_requeues_stale_pending_order(app, db, trader):
    order = age(make_order(trader, status="PENDING"))
    assert sweep(app).submits == 1
    assert queued() == [f"submit-{order.id}"]


def test_sweeper_requeues_unacknowledged_submitted_order(app, db, trader):
    order = age(make_order(trader, status="SUBMITTED"))
    assert sweep(app).submits == 1
    assert queued() == [f"submit-{order.id}"]


def test_sweeper_leaves_recent_pending_order_alone(app, db, trader):
    make_order(trader, status="PENDING")
    assert sweep(app) == (0, 0)
    assert queued() == []


def test_second_sweeper_in_the_same_interval_does_nothing(app, db, trader):
    age(make_order(trader, status="PENDING"))
    assert sweep(app).submits == 1
    jobqueue.get_queue().empty()
    assert sweep_once(app) == (0, 0)  # the first round's lock still holds


# -- abandoned jobs ----------------------------------------------------------------------------------
def _mark_started(job: Job, seconds_ago: float) -> None:
    job.set_status(JobStatus.STARTED)
    job.started_at = utcnow() - timedelta(seconds=seconds_ago)
    job.save()


def test_job_left_started_past_its_timeout_gives_way_to_a_new_one(app, db):
    order_id = uuid.uuid4()
    job = jobqueue.enqueue_submit(order_id)
    jobqueue.get_queue().remove(job)  # a worker took it, then was killed
    _mark_started(job, app.config["ORDER_JOB_TIMEOUT"] + jobqueue.ABANDONED_AFTER_TIMEOUT + 1)
    assert jobqueue.enqueue_submit(order_id) is not None
    assert queued() == [f"submit-{order_id}"]


def test_job_started_within_its_timeout_is_left_running(app, db):
    order_id = uuid.uuid4()
    job = jobqueue.enqueue_submit(order_id)
    jobqueue.get_queue().remove(job)
    _mark_started(job, 1)
    assert jobqueue.enqueue_submit(order_id) is None
    assert queued() == []


# -- reconciling working orders ------------------------------------------------------------------
def test_sweeper_queues_a_reconcile_job_for_an_untouched_open_order(app, db, trader, market):
    order = resting(trader)
    assert sweep(app) == (0, 1)
    assert reconcile_jobs() == [f"reconcile-{order.id}"]
    assert queued() == []  # the orders queue stays free for new orders


def test_sweeper_leaves_a_recently_touched_open_order_alone(app, db, trader, market):
    order = resting(trader)
    age(order, 0)
    assert sweep(app) == (0, 0)


def test_sweeper_ignores_final_orders(app, db, trader):
    for status in ("FILLED", "CANCELLED", "REJECTED", "EXPIRED"):
        age(make_order(trader, status=status))
    assert sweep(app) == (0, 0)


def test_an_order_is_reconciled_at_most_once_per_interval(app, db, trader, market):
    resting(trader)
    assert sweep(app).reconciles == 1
    run_worker(app)
    assert sweep(app).reconciles == 0


def test_an_order_is_reconciled_again_after_the_interval(app, db, trader, market, monkeypatch):
    monkeypatch.setitem(app.config, "SWEEP_RECONCILE_EVERY", 1)
    order = resting(trader)
    assert sweep(app).reconciles == 1
    run_worker(app)
    get_redis().delete(f"{app.config['NAMESPACE']}:orders:reconciled:{order.id}")  # the mark's 1 s ran out
    assert sweep(app).reconciles == 1


def test_reconciling_is_bounded_per_round_and_walks_every_order(app, db, trader, market, monkeypatch):
    monkeypatch.setitem(app.config, "SWEEP_BATCH", 2)
    orders = {resting(trader, quantity=q).id for q in (1, 2, 3, 4, 5)}
    seen = []
    for _round in range(3):
        assert sweep(app).reconciles == (2 if _round < 2 else 1)
        seen += reconcile_jobs()
        jobqueue.get_queue(jobqueue.DEFAULT).empty()
    assert sorted(seen) == sorted(f"reconcile-{i}" for i in orders)
    assert sweep(app).reconciles == 0  # back at the start, every order was just reconciled


def test_a_waiting_cancel_goes_before_resting_orders(app, db, trader, market, monkeypatch):
    monkeypatch.setitem(app.config, "SWEEP_BATCH", 1)
    resting(trader, quantity=1)
    waiting = resting(trader, quantity=2, status="CANCEL_PENDING")
    age(waiting, 100)  # touched after the resting one
    assert sweep(app).reconciles == 1
    assert reconcile_jobs() == [f"reconcile-{waiting.id}"]


def test_reconcile_repairs_a_fill_lost_after_its_ack(app, db, trader, market, tap):
    order = make_order(trader, status="SUBMITTED", order_type="MARKET", limit_price=None)
    get_broker().place(order_state.order_request(order))  # the exchange fills it at once
    accepted, _fill = tap.drain()
    apply_broker_event(accepted)  # ... and its fill never arrives (lost between commit and publish)
    assert age(order).status == "OPEN"
    sweep(app)
    run_worker(app)
    events = tap.drain()
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.FILL]
    for event in events + events:  # a redelivery changes nothing
        apply_broker_event(event)
    assert reload(order.id).status == "FILLED"
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(Trade).where(Trade.order_id == order.id)) == 1


def test_reconcile_repairs_a_lost_cancel_confirmation(app, db, trader, market, tap):
    order = resting(trader, status="CANCEL_PENDING")
    get_broker().cancel(order.id)
    tap.drain()  # the exchange cancelled it; the confirmation was lost
    sweep(app)
    run_worker(app)
    events = tap.drain()
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.CANCELLED]  # and no second cancel was asked
    for event in events:
        apply_broker_event(event)
    assert reload(order.id).status == "CANCELLED"


def test_reconcile_resends_a_lost_cancel(app, db, trader, market, tap):
    order = resting(trader, status="CANCEL_PENDING")  # the cancel job was lost
    tap.drain()
    sweep(app)
    run_worker(app)  # reconcile, then the cancel job it queued
    assert book_row(order.id).status == "cancelled"
    assert [e["type"] for e in tap.drain()] == [ev.ACCEPTED, ev.CANCELLED]


def test_reconcile_does_not_cancel_an_order_the_broker_already_filled(app, db, trader, market):
    order = resting(trader, status="CANCEL_PENDING")
    _db.session.execute(sa.update(PaperOrder).where(PaperOrder.order_id == order.id).values(status="filled"))
    _db.session.commit()
    assert reconcile_order(str(order.id)) == "filled"
    assert queued() == []


def test_reconcile_resends_a_waiting_modification(app, db, trader, market):
    order = resting(trader, status="MODIFY_PENDING", modify_seq=3, pending_quantity=20)
    assert reconcile_order(str(order.id)) == "open"
    assert queued() == [f"modify-{order.id}-3"]


def test_reconcile_cancels_an_order_the_broker_never_saw(app, db, trader, tap):
    # Claimed, then cancelled by its user while the submit job died before the broker.
    order = age(make_order(trader, status="CANCEL_PENDING"))
    assert reconcile_order(str(order.id)) is None
    run_worker(app)
    assert [e["type"] for e in tap.drain()] == [ev.CANCELLED]  # the exchange's tombstone answers


def test_reconcile_skips_an_order_that_finished_meanwhile(app, db, trader):
    order = make_order(trader, status="FILLED")
    assert reconcile_order(str(order.id)) is None
    assert queued() == []


# -- a repeated DELETE --------------------------------------------------------------------------------
def test_deleting_a_cancel_pending_order_again_queues_its_cancel_again(app, client, trader, trader_headers, market):
    order = resting(trader)
    assert client.delete(f"/api/v1/orders/{order.id}", headers=trader_headers).status_code < 300
    jobqueue.get_queue().empty()  # the cancel job was lost (Redis restarted, worker crashed)
    client.delete(f"/api/v1/orders/{order.id}", headers=trader_headers)
    assert reload(order.id).status == "CANCEL_PENDING"
    assert queued() == [f"cancel-{order.id}"]


def test_a_restarted_worker_takes_over_due_retries_once_the_dead_schedulers_lock_expires(app, db):
    """RQ retries a lock it could not take only every 120 s; after a SIGKILL the dead worker's lock
    lapses within a minute, and a due retry (a submit that raised) must not wait longer."""
    name = queue_name(ORDERS)
    get_redis().set(RQScheduler.get_locking_key(name), "dead-worker", ex=1)
    queue = get_queue()
    job = queue.enqueue_at(utcnow() - timedelta(seconds=1), "jobs.order_jobs.submit_order", "x", job_id="submit-x")
    maintenance = Maintenance(app, [name])
    maintenance.schedule_once()  # the dead worker still holds the lock: nothing moves
    assert job.id not in queue.job_ids
    time.sleep(1.2)
    maintenance.schedule_once()
    assert job.id in queue.job_ids


def test_a_stranded_submission_is_requeued_with_backoff(app, db, trader):
    order = age(make_order(trader, status="PENDING"))
    assert sweep(app).submits == 1
    get_redis().delete(f"{app.config['NAMESPACE']}:orders:sweeper")
    assert sweep(app).submits == 0  # the next round comes too soon: the order waits its turn
    get_redis().delete(f"{app.config['NAMESPACE']}:orders:resubmit:gate:{order.id}")
    assert sweep(app).submits == 1  # its wait over, it goes again, and the next wait doubles
    ttl = get_redis().ttl(f"{app.config['NAMESPACE']}:orders:resubmit:gate:{order.id}")
    assert app.config["SWEEP_INTERVAL"] < ttl <= 2 * app.config["SWEEP_INTERVAL"]
