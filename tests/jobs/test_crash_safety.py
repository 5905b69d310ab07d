"""Crash safety of the order path: the real worker process is SIGKILLed at an exact point of an order
job (TEST_CRASH_POINT, honoured only with APP_ENV=test, fires once per Redis db), restarted, and every
order must end where it should, sent to the broker once.

"Sent once" is read from the paper exchange itself: its place() logs one `event=paper_place` line
per call, with `repeat=True` when it already held the order; with the lookup-before-resend every
order has exactly one such line, and it is not a repeat. The book (`paper_orders`) holds one row
per order, the order one `submitted` audit row, and the consumer books one trade per filled order.

The retry paths (a job that raises after it may have reached the broker) run in this process with
a real SimpleWorker and RQ's scheduler."""

from __future__ import annotations

import logging
import signal
import sys
import time
import uuid

import pytest
import sqlalchemy as sa
from rq import Worker

from tests.support.factories import book_row, reload, set_quote
from tests.support.jobs import retry_due_jobs, run_worker
from tests.support.stack import Process, Stack
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.messaging import amqp_connection, topology
from tradingapp.models import OrderEvent, Trade
from tradingapp.services.orders import jobqueue

pytestmark = pytest.mark.usefixtures("close_publisher")

# Fast sweeps and a short job timeout: a job of a killed worker is given up 2 + 3 s after it started.
FAST = {"SWEEP_INTERVAL": "1", "SWEEP_PENDING_AFTER": "1", "SWEEP_RECONCILE_EVERY": "2", "ORDER_JOB_TIMEOUT": "2",
        "LOG_LEVEL": "INFO"}  # fmt: skip
MARKET = "2900.05"


@pytest.fixture
def stack(app, db, env, monkeypatch):
    monkeypatch.setitem(app.config, "ORDER_JOB_TIMEOUT", int(FAST["ORDER_JOB_TIMEOUT"]))  # jobs this process queues
    with app.app_context(), amqp_connection() as connection:
        topology().declare(connection)  # broker events wait in their queue while no consumer runs
    running = Stack({**env, **FAST})
    set_quote(1, MARKET)
    yield running
    running.stop()


def start_worker(stack: Stack, crash_point: str | None = None) -> Process:
    process = stack.start_one("worker", [sys.executable, "-m", "jobs.worker"],
                              {"TEST_CRASH_POINT": crash_point} if crash_point else {})  # fmt: skip
    deadline = time.monotonic() + 20
    while not [w for w in Worker.all(connection=get_redis()) if w.pid == process.popen.pid and w.get_state() == "idle"]:
        assert process.popen.poll() is None, process.tail()
        assert time.monotonic() < deadline, "worker did not register in 20 s"
        time.sleep(0.05)
    return process


def start_consumer(stack: Stack) -> None:
    stack.start_one("consumer", [sys.executable, "-m", "jobs.consumer"])


def wait_killed(process: Process) -> None:
    assert process.popen.wait(timeout=20) == -signal.SIGKILL, process.tail()


def place(client, headers, **body) -> uuid.UUID:
    body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET", **body}
    response = client.post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return uuid.UUID(response.get_json()["id"])


def wait_status(stack: Stack, order_ids, status: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while {reload(i).status for i in order_ids} != {status}:
        stack.assert_alive()
        assert time.monotonic() < deadline, ({str(i): reload(i).status for i in order_ids}, stack.logs())
        time.sleep(0.1)


def wait_log(stack: Stack, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in stack.processes["worker"].log_path.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in:\n{stack.logs()}"
        time.sleep(0.1)


def count(model, *where) -> int:
    _db.session.rollback()
    return _db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def assert_sent_once(log: str, order_ids) -> None:
    for order_id in order_ids:
        places = [line for line in log.splitlines() if f"event=paper_place order_id={order_id} " in line]
        assert len(places) == 1 and "repeat=True" not in places[0], places
        assert count(PaperOrder, PaperOrder.order_id == order_id) == 1
        assert count(OrderEvent, OrderEvent.order_id == order_id, OrderEvent.event == "submitted") == 1


# -- SIGKILL -------------------------------------------------------------------------------------------
def test_worker_killed_after_claim_before_the_broker_sends_each_order_once(stack, client, trader_headers):
    start_consumer(stack)
    worker = start_worker(stack, "after_claim")
    ids = [place(client, trader_headers, quantity=q) for q in (1, 2, 3, 4)]
    wait_killed(worker)
    assert reload(ids[0]).status == "SUBMITTED" and book_row(ids[0]) is None  # claimed, never sent
    start_worker(stack)  # runs the queued orders; its sweeper finds the claimed one
    wait_status(stack, ids, "FILLED")
    assert_sent_once(stack.processes["worker"].log_path.read_text(), ids)
    assert all(count(Trade, Trade.order_id == i) == 1 for i in ids)


def test_worker_killed_after_the_broker_call_never_sends_again(stack, client, trader_headers):
    worker = start_worker(stack, "after_place")  # no consumer yet: the ack waits in RabbitMQ
    ids = [place(client, trader_headers, quantity=q) for q in (1, 2, 3)]
    wait_killed(worker)
    assert reload(ids[0]).status == "SUBMITTED" and book_row(ids[0]).status == "filled"
    start_worker(stack)
    wait_log(stack, f"event=submit_already_at_broker order_id={ids[0]}")  # the sweeper's resend asked first
    start_consumer(stack)  # gets the first publish and the lookup's re-publish: books one fill
    wait_status(stack, ids, "FILLED")
    assert_sent_once(stack.processes["worker"].log_path.read_text(), ids)
    assert all(count(Trade, Trade.order_id == i) == 1 for i in ids)


def test_worker_killed_during_a_cancel_still_cancels(stack, client, trader_headers):
    start_consumer(stack)
    worker = start_worker(stack, "before_cancel")
    order_id = place(client, trader_headers, order_type="LIMIT", limit_price="2800.00")
    wait_status(stack, [order_id], "OPEN")
    assert client.delete(f"/api/v1/orders/{order_id}", headers=trader_headers).status_code < 300
    wait_killed(worker)
    assert reload(order_id).status == "CANCEL_PENDING" and book_row(order_id).status == "open"
    start_worker(stack)  # the sweeper reconciles the waiting cancel and sends it again
    wait_status(stack, [order_id], "CANCELLED")
    assert book_row(order_id).status == "cancelled"
    assert_sent_once(stack.processes["worker"].log_path.read_text(), [order_id])


# -- retries (in this process) ----------------------------------------------------------------------
@pytest.fixture
def crash(app, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="tradingapp.brokers.paper")
    caplog.set_level(logging.INFO, logger="jobs.order_jobs")

    def at(point: str) -> None:
        monkeypatch.setitem(app.config, "TEST_CRASH_POINT", f"{point}:raise")

    return at


def test_retry_of_a_submit_that_failed_after_the_broker_call_asks_the_broker_first(app, db, client, trader_headers,
                                                                                   crash, caplog):  # fmt: skip
    set_quote(1, MARKET)
    crash("after_place")  # e.g. a timeout after the broker booked the order
    order_id = place(client, trader_headers)
    run_worker(app)
    assert jobqueue.get_queue().scheduled_job_registry.get_job_ids() == [f"submit-{order_id}"]
    retry_due_jobs(app)
    assert f"event=submit_already_at_broker order_id={order_id}" in caplog.text
    assert_sent_once(caplog.text, [order_id])


def test_retry_of_a_submit_that_failed_before_the_broker_call_sends_it(app, db, client, trader_headers, crash, caplog):
    set_quote(1, MARKET)
    crash("after_claim")
    order_id = place(client, trader_headers)
    run_worker(app)
    assert book_row(order_id) is None
    retry_due_jobs(app)
    assert f"event=submit_resend order_id={order_id}" in caplog.text
    assert_sent_once(caplog.text, [order_id])
