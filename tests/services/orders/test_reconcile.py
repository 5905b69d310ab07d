"""The book reconcile (services/orders/reconcile.py over brokers/xts/books.py) and the worker's rounds
(BROKER=xts): our working orders against the XTS simulator process's order and trade books, events
applied by the real consumer run in-process (RabbitMQ, Postgres), the worker reconciling at its start."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from decimal import Decimal

import pytest
import sqlalchemy as sa

from jobs.consumer import EVENTS
from tests.support import ROOT, wait_until
from tests.support.consumer import consumer_thread
from tests.support.jobs import queued, run_worker
from tests.support.xts import at_simulator, claimed, wait_sim_status
from tradingapp import events as ev
from tradingapp.brokers.xts.instrument_sync import scheduled_sync, sync_due
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Instrument, Order, OrderEvent, Trade
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders.broker_events import apply_broker_event
from tradingapp.services.orders.reconcile import MISSING_EVENT, reconcile_books
from tradingapp.services.orders.sweeper import SweepResult, sweep_once

pytestmark = pytest.mark.usefixtures("close_publisher")

DEALER = {"broker": "xts", "app_key": "sim-dealer-key", "secret_key": "sim-dealer-secret", "client_id": "CLIENT1"}


@pytest.fixture
def consumer(app, db):
    """The real consumer of broker events in a thread of this process."""
    with consumer_thread(app, {EVENTS}) as running:
        yield running


def fresh(order_id) -> Order:
    _db.session.rollback()
    found = _db.session.get(Order, order_id, populate_existing=True)
    _db.session.rollback()
    return found


def audit(order_id) -> list[OrderEvent]:
    rows = _db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
    found = list(rows)
    _db.session.rollback()
    return found


def trades(order_id) -> list[Trade]:
    found = list(_db.session.scalars(sa.select(Trade).where(Trade.order_id == order_id)))
    _db.session.rollback()
    return found


def books_requests(xts) -> tuple[int, int]:
    counts = xts.state()["requests"]
    return counts.get("orders", 0), counts.get("trades", 0)


def resting(broker, xts, user, limit="2800.00"):
    """An order of ours resting at the simulator, OPEN on our side (its acceptance applied)."""
    request = claimed(user, order_type="LIMIT", limit_price=limit)
    app_order_id = int(broker.place(request))
    wait_sim_status(xts, app_order_id, "New")
    wait_until(lambda: fresh(request.order_id).status == "OPEN")
    return request.order_id, app_order_id


def fill_at_broker(xts, app_order_id) -> None:
    """The market trades through the limit: the simulator fills the order; no socket tells us."""
    xts.price("NSECM", 2885, "2790.00")
    wait_sim_status(xts, app_order_id, "Filled")


# -- settling differences -----------------------------------------------------------------------------
def test_a_fill_during_an_outage_is_applied_once(broker, xts, trader, consumer, caplog):
    caplog.set_level(logging.INFO, logger="tradingapp.services.orders.reconcile")
    order_id, app_order_id = resting(broker, xts, trader)
    fill_at_broker(xts, app_order_id)
    assert fresh(order_id).status == "OPEN"
    report = reconcile_books(broker)
    assert (report.accounts, report.orders, report.found, report.differences, report.missing) == (1, 1, 1, 1, 0)
    assert report.events_published == 2  # accepted (already applied: dropped) and the fill
    wait_until(lambda: fresh(order_id).status == "FILLED")
    order = fresh(order_id)
    assert (order.filled_quantity, len(trades(order_id))) == (10, 1)
    fills = [e for e in audit(order_id) if e.actor == "broker" and (e.source_event_id or "").startswith("xts:fill:")]
    assert len(fills) == 1 and fills[0].to_status == "FILLED"
    again = reconcile_books(broker)  # nothing differs now: nothing is published
    assert (again.differences, again.events_published) == (0, 0)
    time.sleep(0.3)
    assert len(trades(order_id)) == 1
    assert "event=reconcile_done accounts=1 failed_accounts=0 orders=1 found=1 differences=1 events_published=2" in (
        caplog.text
    )


def test_a_fill_after_our_cancel_is_booked(broker, xts, trader, consumer):
    order_id, app_order_id = resting(broker, xts, trader)
    fill_at_broker(xts, app_order_id)
    apply_broker_event(ev.make_event(ev.CANCELLED, order_id, "xts", str(app_order_id), "test:cancelled"))
    assert (fresh(order_id).status, fresh(order_id).filled_quantity) == ("CANCELLED", 0)
    report = reconcile_books(broker)
    assert (report.orders, report.late_fills, report.differences) == (0, 1, 1)
    wait_until(lambda: fresh(order_id).filled_quantity == 10)
    assert fresh(order_id).status == "CANCELLED" and len(trades(order_id)) == 1  # the fill is a fact
    assert reconcile_books(broker).late_fills == 0


def test_a_modification_done_at_the_broker_is_applied(xts_app, broker, xts, trader, consumer, client, auth_headers):
    order_id, app_order_id = resting(broker, xts, trader)
    response = client.patch(f"/api/v1/orders/{order_id}", json={"quantity": 20, "limit_price": "2810.00"},
                            headers=auth_headers(trader))  # fmt: skip
    assert response.status_code == 202, response.get_json()
    run_worker(xts_app)  # the modify reaches the broker; its Replaced row reaches no socket
    wait_sim_status(xts, app_order_id, "Replaced")
    assert fresh(order_id).status == "MODIFY_PENDING"
    assert reconcile_books(broker).differences == 1
    wait_until(lambda: fresh(order_id).status == "OPEN")
    assert (fresh(order_id).quantity, fresh(order_id).limit_price) == (20, Decimal("2810.00"))


def test_a_lost_cancel_is_sent_again(xts_app, broker, xts, trader, consumer, client, auth_headers):
    order_id, app_order_id = resting(broker, xts, trader)
    assert client.delete(f"/api/v1/orders/{order_id}", headers=auth_headers(trader)).status_code == 202
    jobqueue.get_queue().empty()  # the cancel job is lost
    report = reconcile_books(broker)
    assert (report.differences, report.requests_resent) == (0, 0)  # the cancel is young: it may be on its way
    _db.session.execute(sa.update(Order).where(Order.id == order_id).values(
        updated_at=datetime.now(UTC) - timedelta(minutes=1)))  # fmt: skip
    _db.session.commit()
    assert reconcile_books(broker).requests_resent == 1
    assert queued() == [jobqueue.cancel_job_id(order_id)]
    assert reconcile_books(broker).requests_resent == 0  # once per SWEEP_RECONCILE_EVERY
    run_worker(xts_app)
    wait_sim_status(xts, app_order_id, "Cancelled")
    reconcile_books(broker)
    wait_until(lambda: fresh(order_id).status == "CANCELLED")


# -- orders the broker does not know -------------------------------------------------------------------
def test_a_working_order_missing_at_the_broker_is_audited_and_left_alone(broker, xts, trader, consumer, caplog):
    order_id = claimed(trader).order_id
    apply_broker_event(ev.make_event(ev.ACCEPTED, order_id, "xts", "424242", "test:accepted"))  # not at the broker
    assert fresh(order_id).status == "OPEN"
    with caplog.at_level(logging.ERROR, logger="tradingapp.services.orders.reconcile"):
        report = reconcile_books(broker)
    assert (report.missing, report.differences, report.events_published) == (1, 0, 0)
    assert "event=reconcile_missing_at_broker order_id=" in caplog.text
    [row] = [e for e in audit(order_id) if e.event == MISSING_EVENT]
    assert (row.actor, row.from_status, row.to_status, row.reason) == (
        "system", "OPEN", "OPEN", "not in the broker's order book")  # fmt: skip
    assert row.details["broker_order_id"] == "424242"
    assert reconcile_books(broker).missing == 1  # still missing, still OPEN: no second audit row
    assert len([e for e in audit(order_id) if e.event == MISSING_EVENT]) == 1
    assert fresh(order_id).status == "OPEN"


def test_a_submitted_order_never_placed_is_left_to_the_resend(broker, xts, trader):
    order_id = claimed(trader).order_id
    report = reconcile_books(broker)
    assert (report.unsent, report.missing, report.events_published) == (1, 0, 0)
    assert fresh(order_id).status == "SUBMITTED" and not [e for e in audit(order_id) if e.event == MISSING_EVENT]


def test_a_submitted_order_the_broker_holds_is_acknowledged(broker, xts, trader, consumer, tap):
    request = claimed(trader, order_type="LIMIT", limit_price="2800.00")
    app_order_id = int(broker.place(request))
    wait_sim_status(xts, app_order_id, "New")
    consumer.should_stop = True  # the place's acceptance never reaches us
    time.sleep(0.5)
    tap.drain()
    _db.session.execute(sa.update(Order).where(Order.id == request.order_id).values(status="SUBMITTED"))
    _db.session.commit()
    assert reconcile_books(broker).differences == 1
    [event] = tap.drain()
    assert (event["type"], event["event_id"]) == (ev.ACCEPTED, f"xts:accepted:{app_order_id}")


def test_an_unreadable_book_concludes_nothing(broker, xts, trader, consumer):
    order_id = claimed(trader).order_id
    apply_broker_event(ev.make_event(ev.ACCEPTED, order_id, "xts", "424242", "test:accepted"))
    xts.faults(fail_next={"orders": {"count": 1, "status": 502}})
    report = reconcile_books(broker)
    assert (report.failed_accounts, report.orders, report.missing) == (1, 0, 0)
    assert not [e for e in audit(order_id) if e.event == MISSING_EVENT]


# -- the broker's limits ------------------------------------------------------------------------------------
def test_one_book_and_one_trade_book_request_per_account(xts_app, broker, xts, make_user, consumer, client,
                                                         auth_headers):  # fmt: skip
    xts.faults(rate_limit=True)  # order book, trade book: one request a second each, per user
    dealer_user = make_user()
    assert client.post("/api/v1/broker-accounts", json=DEALER, headers=auth_headers(dealer_user)).status_code == 201
    users = [make_user(), make_user(), dealer_user]
    placed = [resting(broker, xts, user) for user in users]
    time.sleep(1.1)  # the places' own book reads are a second old
    before = books_requests(xts)
    report = reconcile_books(broker)
    after = books_requests(xts)
    assert (report.accounts, report.orders, report.found) == (2, 3, 3)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 2)  # one of each per account, no 429 retried
    assert {len(at_simulator(xts, order_id)) for order_id, _ in placed} == {1}


# -- the sweeper and the worker ----------------------------------------------------------------------------
def test_the_sweeper_leaves_working_xts_orders_to_the_book_reconcile(xts_app, broker, xts, trader, consumer):
    order_id, _ = resting(broker, xts, trader)
    _db.session.execute(sa.update(Order).where(Order.id == order_id).values(
        updated_at=datetime.now(UTC) - timedelta(minutes=5)))  # fmt: skip
    _db.session.commit()
    assert sweep_once(xts_app) == SweepResult(0, 0)
    assert jobqueue.get_queue(jobqueue.DEFAULT).get_job_ids() == []


def worker_env(env, xts, **extra) -> dict:
    from tests.support.xts_client import xts_config

    config = {key: str(value) for key, value in xts_config(xts.url).items()}
    return {**os.environ, **env, **config, "LOG_LEVEL": "INFO", "RECONCILE_INTERVAL": "0", **extra}


def test_the_worker_reconciles_and_syncs_instruments_at_its_start(env, broker, xts, trader, consumer, tmp_path):
    order_id, app_order_id = resting(broker, xts, trader)
    fill_at_broker(xts, app_order_id)  # while no worker runs
    log_path = tmp_path / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env=worker_env(env, xts),
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            wait_until(lambda: fresh(order_id).status == "FILLED", 30, log_path.read_text)
            wait_until(lambda: "event=instruments_synced" in log_path.read_text(), 30, log_path.read_text)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
    text = log_path.read_text()
    assert "event=reconcile_done accounts=1 failed_accounts=0 orders=1 found=1 differences=1" in text
    _db.session.rollback()
    assert _db.session.scalar(sa.select(Instrument.id).where(Instrument.exchange_instrument_id == 35002))
    assert proc.returncode == 0


# -- the daily instrument sync's schedule ------------------------------------------------------------------
IST = "Asia/Kolkata"


def test_the_sync_is_due_once_a_day_after_its_time():
    eight = clock(8, 0)
    before = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 07:30 IST
    after = datetime(2026, 3, 10, 2, 31, tzinfo=UTC)  # 08:01 IST
    assert sync_due(before, IST, eight, None).isoformat() == "2026-03-09"  # never synced: at once
    assert sync_due(before, IST, eight, "2026-03-09") is None
    assert sync_due(after, IST, eight, "2026-03-09").isoformat() == "2026-03-10"
    assert sync_due(after, IST, eight, "2026-03-10") is None


def test_the_scheduled_sync_runs_once_and_retries_a_failure_later(xts_app, xts):
    xts.faults(fail_next={"master": {"count": 1, "status": 500}})
    assert scheduled_sync() is None
    assert scheduled_sync() is None  # waits RETRY_AFTER before trying again
    get_redis().delete(*get_redis().keys("*sync-retry*"))
    report = scheduled_sync()
    assert (report.inserted, report.updated) == (1, 6)
    assert scheduled_sync() is None  # done for today
    assert xts.state()["requests"]["master"] == 2
