"""Order jobs on the real services: RQ queues in Redis, an RQ SimpleWorker (in this process, in
burst mode, and as the real `python -m jobs.worker` process), the paper broker and RabbitMQ."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from rq import Worker

from jobs.worker import Maintenance
from tests.support import ROOT
from tests.support.factories import book_row, new_order, reload, set_quote
from tests.support.jobs import queued, run_worker
from tradingapp import events as ev
from tradingapp.brokers import get_broker
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders.actions import cancel_order
from tradingapp.services.orders.submission import claim_for_submission

pytestmark = pytest.mark.usefixtures("close_publisher")


# -- enqueueing -------------------------------------------------------------------------------
def test_enqueue_submit_twice_queues_one_job(db):
    order_id = uuid.uuid4()
    assert jobqueue.enqueue_submit(order_id) is not None
    assert jobqueue.enqueue_submit(order_id) is None
    assert queued() == [f"submit-{order_id}"]


def test_enqueue_cancel_twice_queues_one_job(db):
    order_id = uuid.uuid4()
    jobqueue.enqueue_cancel(order_id)
    jobqueue.enqueue_cancel(order_id)
    assert queued() == [f"cancel-{order_id}"]


def test_submit_job_states_timeout_ttls_and_retry(app, db):
    job = jobqueue.enqueue_submit(uuid.uuid4())
    assert (job.timeout, job.result_ttl, job.failure_ttl) == (app.config["ORDER_JOB_TIMEOUT"], 0, 7 * 86400)
    assert (job.retries_left, job.retry_intervals) == (4, [1, 2, 5, 30])


def test_finished_submit_job_frees_its_id_for_a_new_one(app, db):
    order_id = uuid.uuid4()  # unknown order: the job runs and has nothing to send
    jobqueue.enqueue_submit(order_id)
    run_worker(app)
    assert jobqueue.enqueue_submit(order_id) is not None
    assert queued() == [f"submit-{order_id}"]


# -- submit ----------------------------------------------------------------------------------
def test_worker_submits_pending_order_to_paper_broker(app, db, trader, tap):
    set_quote(1, "2900.05")
    order = new_order(trader)
    run_worker(app)
    assert reload(order.id).status == "SUBMITTED"
    assert book_row(order.id).status == "filled"
    events = tap.drain()
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.FILL]
    assert {e["order_id"] for e in events} == {str(order.id)}


def test_worker_skips_order_cancelled_before_submission(app, db, trader):
    set_quote(1, "2900.05")  # the risk engine values a market order at the last price
    order = new_order(trader)
    cancel_order(trader, order.id)
    run_worker(app)
    assert reload(order.id).status == "CANCELLED"
    assert book_row(order.id) is None


def test_claim_leaves_no_transaction_open_for_the_broker_call(app, db, trader):
    set_quote(1, "2900.05")
    order = new_order(trader)
    assert claim_for_submission(order.id) is not None
    assert not _db.session().in_transaction()


def test_resend_asks_broker_first_and_does_not_place_again(app, db, trader, tap, caplog):
    set_quote(1, "2900.05")
    order = new_order(trader)
    request, _ = claim_for_submission(order.id)  # an earlier attempt reached the broker, then died
    broker_order_id = get_broker().place(request)
    first = [e["event_id"] for e in tap.drain()]
    caplog.set_level(logging.INFO, logger="jobs.order_jobs")
    run_worker(app)
    assert f"event=submit_already_at_broker order_id={order.id}" in caplog.text
    assert [e["event_id"] for e in tap.drain()] == first
    assert book_row(order.id).broker_order_id == broker_order_id


def test_resend_places_order_the_broker_never_saw(app, db, trader, caplog):
    set_quote(1, "2900.05")
    order = new_order(trader)
    claim_for_submission(order.id)  # an earlier attempt claimed it and died before the broker
    caplog.set_level(logging.INFO, logger="jobs.order_jobs")
    run_worker(app)
    assert f"event=submit_resend order_id={order.id}" in caplog.text
    assert book_row(order.id).status == "filled"


# -- cancel ----------------------------------------------------------------------------------
def test_worker_cancels_resting_order_at_the_broker(app, db, trader, tap):
    set_quote(1, "2900.05")
    order = new_order(trader, order_type="LIMIT", limit_price="2800.00")
    run_worker(app)
    tap.drain()
    assert cancel_order(trader, order.id).status == "CANCEL_PENDING"
    run_worker(app)
    assert book_row(order.id).status == "cancelled"
    assert [e["type"] for e in tap.drain()] == [ev.CANCELLED]


# -- scheduler (the sweeper's tests: tests/services/orders/test_sweeper.py) ---------------------------------------
def test_maintenance_moves_due_retry_back_to_its_queue(app, db):
    queue = jobqueue.get_queue()
    job = queue.enqueue_at(datetime.now(UTC) - timedelta(seconds=1), jobqueue.SUBMIT_JOB, str(uuid.uuid4()))
    maintenance = Maintenance(app, [queue.name])
    assert queued() == []
    maintenance.schedule_once()
    maintenance.scheduler.stop()
    assert queued() == [job.id]


# -- the worker process ------------------------------------------------------------------------
@pytest.fixture
def worker_process(app, db, env):
    proc = subprocess.Popen([sys.executable, "-m", "jobs.worker"], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    deadline = time.monotonic() + 20
    # Idle means registered, signal handlers installed and waiting on the queues.
    while not [w for w in Worker.all(connection=get_redis()) if w.get_state() == "idle"]:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "worker did not register in 20 s"
        time.sleep(0.1)
    yield proc
    if proc.poll() is None:
        proc.terminate()  # warm shutdown, which also stops the worker's RQ scheduler process
    try:
        proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()


def test_worker_process_runs_queued_submit(db, trader, worker_process):
    set_quote(1, "2900.05")
    order = new_order(trader)
    deadline = time.monotonic() + 10
    while reload(order.id).status == "PENDING" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reload(order.id).status == "SUBMITTED"


def test_worker_process_exits_cleanly_on_sigterm(worker_process):
    worker_process.send_signal(signal.SIGTERM)
    output, _ = worker_process.communicate(timeout=15)
    assert worker_process.returncode == 0, output
