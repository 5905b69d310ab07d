"""The order path's figures (tradingapp/metrics.py) as this process's registry shows them, with the
real services: Postgres, Redis and RQ, the paper exchange, RabbitMQ and the real consumer class,
the XTS simulator for the broker's failures. The registry is the process's: each test reads what
its own work added (before/after). The same figures from the real processes, over their metrics
ports: tests/e2e/test_trace.py."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from jobs.worker import build_worker, queue_collector
from tests.support import wait_until
from tests.support.consumer import publish_event
from tests.support.factories import event, make_order, new_order, reload, set_quote
from tests.support.jobs import run_worker
from tests.support.xts import at_simulator, place_via_api
from tradingapp import events as ev
from tradingapp import logs, metrics
from tradingapp.brokers.xts import errors as xe
from tradingapp.extensions import db as _db
from tradingapp.models import Account, Instrument, Order
from tradingapp.models.types import utcnow
from tradingapp.services.accounts import funds
from tradingapp.services.orders import jobqueue, telemetry
from tradingapp.services.orders import state as order_state
from tradingapp.services.orders.actions import cancel_order
from tradingapp.services.orders.broker_events import apply_broker_event
from tradingapp.services.orders.submission import claim_for_submission
from tradingapp.services.orders.sweeper import sweep_once

pytestmark = pytest.mark.usefixtures("close_publisher", "metrics_on")

STAGE = "tradingapp_order_stage_seconds_count"
FINAL = "tradingapp_orders_final_total"
BROKER_CALLS = "tradingapp_broker_calls_total"


@pytest.fixture
def metrics_on():
    """Real metrics whatever an earlier test of this process configured (METRICS_ENABLED=false swaps
    them for no-ops process-wide)."""
    metrics.configure(True)


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counts:
    """The figures named, read now; `.added()` says by how much each grew since."""

    def __init__(self, **series: tuple[str, dict]):
        self.series = series
        self.before = self.read()

    def read(self) -> dict[str, float]:
        return {key: value(name, **labels) for key, (name, labels) in self.series.items()}

    def added(self) -> dict[str, float]:
        now = self.read()
        return {key: now[key] - self.before[key] for key in self.series}


def stages() -> Counts:
    return Counts(**{stage: (STAGE, {"stage": stage}) for stage in ("claimed", "placed", "acknowledged", "filled")})


# -- the stages --------------------------------------------------------------------------------
def test_a_filled_order_observes_each_stage_once_and_a_redelivered_event_nothing(app, db, trader, tap):
    set_quote(1, "2900.05")
    counts = stages()
    finals = Counts(filled=(FINAL, {"status": "FILLED", "reason": "none"}))
    order = new_order(trader)
    run_worker(app)
    assert counts.added() == {"claimed": 1, "placed": 1, "acknowledged": 0, "filled": 0}
    events = tap.drain()
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.FILL]
    for body in events + events:  # the second time: a redelivery, which the dedup turns away
        apply_broker_event(body)
    assert reload(order.id).status == "FILLED"
    assert counts.added() == {"claimed": 1, "placed": 1, "acknowledged": 1, "filled": 1}
    assert finals.added() == {"filled": 1}


def test_the_stages_are_seconds_since_the_accept(app, db, trader):
    set_quote(1, "2900.05")
    order = new_order(trader)
    _db.session.execute(sa.update(Order).where(Order.id == order.id).values(created_at=utcnow() - timedelta(seconds=7)))
    _db.session.commit()
    slow = Counts(claimed=("tradingapp_order_stage_seconds_bucket", {"stage": "claimed", "le": "5.0"}))
    total = Counts(claimed=(STAGE, {"stage": "claimed"}))
    run_worker(app)
    assert total.added() == {"claimed": 1} and slow.added() == {"claimed": 0}  # past the 5 s bucket


def test_a_claim_rolled_back_observes_nothing(app, db, trader):
    set_quote(1, "2900.05")
    order = new_order(trader)
    counts = stages()
    locked = order_state.lock_order(order.id)  # as the claim does: a transaction under way
    telemetry.stage_on_commit(telemetry.CLAIMED, locked.created_at)
    _db.session.rollback()  # a deadlock, say: the claim did not happen
    _db.session.commit()  # a later commit of the same session runs nothing left behind
    assert counts.added()["claimed"] == 0


# -- final statuses ----------------------------------------------------------------------------
def test_a_risk_refusal_counts_its_rule_and_the_rejected_order(client, trader, trader_headers):
    funds.create_account(trader.id)
    _db.session.get(Account, trader.id).limit_overrides = {"max_order_quantity": 5}
    _db.session.commit()
    set_quote(1, "2900.05")
    counts = Counts(
        refusals=("tradingapp_risk_refusals_total", {"rule": "max_order_quantity"}),
        final=(FINAL, {"status": "REJECTED", "reason": "max_order_quantity"}),
    )
    body = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "MARKET"}
    response = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert response.status_code == 422 and response.get_json()["error"]["details"]["rule"] == "max_order_quantity"
    assert counts.added() == {"refusals": 1, "final": 1}


def test_final_statuses_are_counted_by_a_bounded_reason(app, db, trader):
    set_quote(1, "2900.05")
    counts = Counts(
        user=(FINAL, {"status": "CANCELLED", "reason": "user_cancelled"}),
        broker=(FINAL, {"status": "REJECTED", "reason": "broker_rejected"}),
        unasked=(FINAL, {"status": "CANCELLED", "reason": "broker_cancelled"}),
        expired=(FINAL, {"status": "EXPIRED", "reason": "expired"}),
    )
    cancel_order(trader, new_order(trader).id)  # PENDING: cancelled at once
    rejected = make_order(trader, status="SUBMITTED")
    apply_broker_event(event(ev.REJECTED, rejected, reason="RMS: margin exceeds for client X123"))
    ioc = make_order(trader, status="OPEN", broker_order_id="P1")
    apply_broker_event(event(ev.CANCELLED, ioc, reason="IOC remainder"))
    day = make_order(trader, status="OPEN", broker_order_id="P2")
    apply_broker_event(event(ev.EXPIRED, day, reason="session end"))
    apply_broker_event(event(ev.EXPIRED, day, n="2", reason="again"))  # already final: not counted again
    assert counts.added() == {"user": 1, "broker": 1, "unasked": 1, "expired": 1}


def test_an_order_whose_session_ended_unsent_counts_as_expired_unsent(app, db, trader):
    order = make_order(trader, order_type="MARKET", limit_price=None)
    _db.session.execute(sa.update(Order).where(Order.id == order.id).values(created_at=utcnow() - timedelta(days=3)))
    _db.session.commit()
    counts = Counts(
        unsent=(FINAL, {"status": "EXPIRED", "reason": "expired_unsent"}), claimed=(STAGE, {"stage": "claimed"})
    )
    assert claim_for_submission(order.id) is None
    assert reload(order.id).status == "EXPIRED"
    assert counts.added() == {"unsent": 1, "claimed": 0}


# -- the worker: jobs, broker calls, its queues ------------------------------------------------
def test_jobs_and_broker_calls_are_counted_by_outcome(app, db, trader):
    set_quote(1, "2900.05")
    counts = Counts(
        submit=("tradingapp_order_jobs_total", {"task": "submit", "outcome": "ok"}),
        cancel=("tradingapp_order_jobs_total", {"task": "cancel", "outcome": "ok"}),
        place=(BROKER_CALLS, {"broker": "paper", "operation": "place", "outcome": "ok"}),
        cancels=(BROKER_CALLS, {"broker": "paper", "operation": "cancel", "outcome": "ok"}),
        latency=("tradingapp_broker_call_duration_seconds_count", {"broker": "paper", "operation": "place"}),
    )
    order = new_order(trader, order_type="LIMIT", limit_price="2800.00")
    run_worker(app)
    cancel_order(trader, order.id)
    run_worker(app)
    assert counts.added() == {"submit": 1, "cancel": 1, "place": 1, "cancels": 1, "latency": 1}


def test_an_xts_5xx_and_a_timeout_are_counted_and_the_job_retried(xts_app, xts, client, trader_headers):
    set_quote(1, "2900.05")
    counts = Counts(
        http_5xx=(BROKER_CALLS, {"broker": "xts", "operation": "place", "outcome": "5xx"}),
        timeout=(BROKER_CALLS, {"broker": "xts", "operation": "place", "outcome": "timeout"}),
        retried=("tradingapp_order_jobs_total", {"task": "submit", "outcome": "retried"}),
    )
    xts.faults(fail_next={"place": {"count": 1, "status": 503}})
    place_via_api(client, trader_headers)
    run_worker(xts_app)
    assert counts.added() == {"http_5xx": 1, "timeout": 0, "retried": 1}
    xts.faults(latency_ms={"place": 2500})  # past XTS_TIMEOUT (1 s): the answer never comes in time
    order_id = place_via_api(client, trader_headers, quantity=20)
    run_worker(xts_app)
    xts.faults(latency_ms={"place": 0})
    assert counts.added() == {"http_5xx": 1, "timeout": 1, "retried": 2}
    wait_until(lambda: at_simulator(xts, order_id), 10)  # the slow place landed after all: settle it


def test_an_xts_refusal_is_counted_as_refused(xts_app, xts, trader, tap):
    ghost = Instrument(exchange_segment="NSECM", exchange_instrument_id=999999, symbol="GHOST", name="Ghost",
                       series="EQ", lot_size=1, tick_size=Decimal("0.05"))  # fmt: skip
    _db.session.add(ghost)
    _db.session.commit()
    set_quote(ghost.id, "100.00")
    counts = Counts(refused=(BROKER_CALLS, {"broker": "xts", "operation": "place", "outcome": "refused"}))
    order = new_order(trader, instrument_id=ghost.id)  # an instrument XTS does not know: refused at once
    run_worker(xts_app)
    assert counts.added() == {"refused": 1}
    [rejected] = tap.drain()
    assert rejected["type"] == ev.REJECTED and rejected["order_id"] == str(order.id)


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (xe.XtsRateLimited("POST /orders: still rate limited after 4 retries"), "429"),
        (xe.XtsRejected("Bad Request", status=400), "refused"),
        (xe.XtsRejected("Too Many Requests", status=429), "429"),
        (xe.XtsUnavailable("POST /orders: HTTP 502"), "5xx"),
        (xe.XtsUnavailable("POST /orders: ReadTimeout"), "timeout"),
        (xe.XtsUnavailable("POST /orders: answer still arriving after 7 s"), "timeout"),
        (xe.XtsUnreached("POST /orders: ConnectionError"), "error"),
        (xe.XtsPlaceInFlight("an earlier place may still land"), "error"),
        (TimeoutError(), "timeout"),
        (RuntimeError("bug"), "error"),
    ],
)
def test_broker_failures_are_classified_into_a_fixed_set(exc, outcome):
    assert telemetry.outcome_of(exc) == outcome


def test_the_collector_reports_each_queues_depth_and_failed_jobs(app, db):
    worker = build_worker(app)
    for _ in range(3):
        jobqueue.enqueue_submit(uuid.uuid4())
    jobqueue.enqueue_reconcile(uuid.uuid4())
    queue_collector(worker)()
    assert value("tradingapp_rq_queue_depth", queue="orders") == 3
    assert value("tradingapp_rq_queue_depth", queue="default") == 1
    assert value("tradingapp_rq_failed_jobs", queue="orders") == 0


# -- the sweeper -------------------------------------------------------------------------------
def test_the_sweeper_measures_the_unsent_orders_and_counts_what_it_found(app, db, trader, tap):
    set_quote(1, "2900.05")
    with logs.bind(request_id="sweeper-test"):
        order = new_order(trader)
    assert reload(order.id).request_id == "sweeper-test"
    aged = utcnow() - timedelta(seconds=60)
    _db.session.execute(sa.update(Order).where(Order.id == order.id).values(created_at=aged, updated_at=aged))
    _db.session.commit()
    make_order(trader, status="OPEN", broker_order_id="P9")  # at the broker: not unsent
    counts = Counts(rounds=("tradingapp_sweeper_rounds_total", {}),
                    resubmit=("tradingapp_sweeper_orders_found_total", {"action": "resubmit"}))  # fmt: skip
    jobqueue.get_queue().empty()  # the job the accept queued is lost: the order is stranded
    sweep_once(app)
    assert value("tradingapp_orders_unsent") == 1
    assert 60 <= value("tradingapp_orders_unsent_oldest_age_seconds") < 120
    assert counts.added() == {"rounds": 1, "resubmit": 1}
    run_worker(app)  # the sweeper's job sends it
    assert reload(order.id).status == "SUBMITTED"  # sent, not yet acknowledged: still unsent to us
    sweep_once(app)
    assert value("tradingapp_orders_unsent") == 1
    for body in tap.drain():  # the consumer applies the broker's ack (and the fill)
        apply_broker_event(body)
    sweep_once(app)  # another worker's round: the lock is taken, the gauges are fresh all the same
    assert value("tradingapp_orders_unsent") == 0 and value("tradingapp_orders_unsent_oldest_age_seconds") == 0
    assert counts.added()["rounds"] == 1


# -- the consumer ------------------------------------------------------------------------------
def test_the_consumer_counts_a_duplicate_and_measures_its_lag(start_consumer, publisher, trader):
    order = make_order(trader, status="SUBMITTED")
    counts = Counts(
        applied=("tradingapp_consumer_events_total", {"queue": "events", "outcome": "applied"}),
        duplicate=("tradingapp_consumer_events_total", {"queue": "events", "outcome": "duplicate"}),
        dead=("tradingapp_consumer_events_total", {"queue": "events", "outcome": "dead_lettered"}),
        acknowledged=(STAGE, {"stage": "acknowledged"}),
    )
    start_consumer()
    accepted = event(ev.ACCEPTED, order, broker_order_id="P77")
    publish_event(publisher, accepted)
    publish_event(publisher, accepted)  # a re-send under the same event id
    publish_event(publisher, {**event(ev.FILL, order, n="x"), "quantity": "ten"})  # never applicable
    wait_until(lambda: counts.added()["dead"] == 1, details=lambda: str(counts.added()))
    assert counts.added() == {"applied": 1, "duplicate": 1, "dead": 1, "acknowledged": 1}
    assert 0 <= value("tradingapp_consumer_lag_seconds", queue="events") < 5
    assert time.time() - value("tradingapp_consumer_last_applied_timestamp_seconds", queue="events") < 5
