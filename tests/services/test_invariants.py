"""The invariants checker on a book the real order path made (it holds), and on that book with one
thing broken at a time (the invariant that guards it, and only that one, is reported)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from kombu import Connection, Queue
from rq.job import Job
from rq.registry import FailedJobRegistry

from tests.support.book import trade_a_book
from tests.support.factories import new_order, reload
from tradingapp import events as ev
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.domain import order_lifecycle as sm
from tradingapp.extensions import db
from tradingapp.messaging import Topology
from tradingapp.models import Order, OrderEvent, Position, Trade
from tradingapp.models.types import utcnow
from tradingapp.services.invariants import check_all, parse_since
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders import state as order_state
from tradingapp.services.orders.broker_events import apply_broker_event

pytestmark = pytest.mark.usefixtures("close_publisher")


@pytest.fixture
def book(app, trader, start_consumer):
    return trade_a_book(app, trader, start_consumer)


def broken(**options) -> set[str]:
    report = check_all(grace=options.pop("grace", timedelta(0)), **options)
    assert not [r.error for r in report.results if r.error], report.to_dict()
    return {r.name for r in report.results if not r.ok}


def update(model, row_id, **values) -> None:
    key = model.order_id if model is PaperOrder else model.id
    db.session.execute(sa.update(model).where(key == row_id).values(**values))
    db.session.commit()


def test_a_book_the_order_path_made_holds_every_invariant(book):
    report = check_all(grace=timedelta(0))
    assert report.ok, report.to_dict()
    checked = {r.name: r.checked for r in report.results}
    assert checked["orders_settled"] == checked["fills_match_trades"] == 4
    assert checked["positions_match_fills"] == 1 and checked["funds_consistent"] == 1
    assert checked["broker_agrees"] == 4 and checked["sent_once"] == 4


# -- orders_settled ------------------------------------------------------------------------------------
def submitted_at(order: Order, moment) -> None:
    order = reload(order.id)
    order_state.transition(order, sm.Submit(), "system", actor_id="worker")
    order.updated_at = moment
    db.session.commit()


def test_an_order_stuck_submitted_past_the_grace_period_is_reported(book, trader):
    stuck = new_order(trader, order_type="LIMIT", limit_price="2810.00", quantity=1)
    submitted_at(stuck, utcnow() - timedelta(minutes=10))
    report = check_all(grace=timedelta(minutes=5))
    assert {r.name for r in report.results if not r.ok} == {"orders_settled"}
    [violation] = report.result("orders_settled").violations
    assert violation["order_id"] == str(stuck.id) and violation["status"] == "SUBMITTED"
    assert violation["message"].startswith("SUBMITTED for 10 min")


def test_an_order_in_flight_within_the_grace_period_is_not(book, trader):
    submitted_at(new_order(trader, order_type="LIMIT", limit_price="2810.00", quantity=1), utcnow())
    assert broken(grace=timedelta(minutes=5)) == set()


# -- sent_once ---------------------------------------------------------------------------------------
def test_two_orders_on_one_broker_order_are_reported(book):
    update(Order, book.resting.id, broker_order_id=book.bought.broker_order_id)
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"sent_once"}
    assert "2 of our orders on paper order" in report.result("sent_once").violations[0]["message"]


def test_an_order_submitted_twice_is_reported(book):
    db.session.add(
        OrderEvent(
            order_id=book.bought.id,
            actor="system",
            actor_id="worker",
            event="submitted",
            from_status="FILLED",
            to_status="FILLED",
        )
    )
    db.session.commit()
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"sent_once"}
    assert report.result("sent_once").violations == [{"order_id": str(book.bought.id), "message": "submitted 2 times"}]


# -- broker_agrees -----------------------------------------------------------------------------------------
def test_an_order_the_exchange_filled_more_of_is_reported(book):
    update(PaperOrder, book.resting.id, filled_quantity=1)
    assert broken() == {"broker_agrees"}


def test_an_order_working_here_and_cancelled_at_the_exchange_is_reported(book):
    update(PaperOrder, book.resting.id, status="cancelled")
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"broker_agrees"}
    assert report.result("broker_agrees").violations[0]["message"] == "OPEN here, cancelled at the exchange"


def test_an_order_the_exchange_never_saw_is_reported(book):
    db.session.execute(sa.delete(PaperOrder).where(PaperOrder.order_id == book.resting.id))
    db.session.commit()
    assert broken() == {"broker_agrees"}


@pytest.mark.parametrize("touched", [Order, PaperOrder])
def test_a_difference_still_in_flight_waits_for_the_grace_period(book, touched):
    update(PaperOrder, book.resting.id, filled_quantity=1)
    update(touched, book.resting.id, updated_at=utcnow())  # a fill on its way, one side has it
    assert broken(grace=timedelta(minutes=1)) == set()
    assert broken(grace=timedelta(0)) == {"broker_agrees"}


# -- fills_match_trades ----------------------------------------------------------------------------------
def test_an_order_whose_fills_are_not_its_trades_is_reported(book):
    update(Order, book.bought.id, filled_value=book.bought.filled_value + 1)
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"fills_match_trades"}
    assert report.result("fills_match_trades").violations[0]["order_id"] == str(book.bought.id)


def test_a_trade_booked_on_the_wrong_side_of_its_order_is_reported(book):
    db.session.execute(sa.update(Trade).where(Trade.order_id == book.sold.id).values(side="BUY"))
    db.session.commit()
    report = check_all(grace=timedelta(0))
    assert "fills_match_trades" in {r.name for r in report.results if not r.ok}
    assert report.result("fills_match_trades").violations[0]["message"] == "1 trades of another user/instrument/side"


# -- positions_match_fills ------------------------------------------------------------------------------
def test_a_position_that_is_not_the_sum_of_its_trades_is_reported(book):
    db.session.execute(sa.update(Position).values(quantity=Position.quantity + 1))
    db.session.commit()
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"positions_match_fills"}
    assert report.result("positions_match_fills").violations[0]["message"] == "quantity 4, trades 3"


def test_realized_pnl_the_trades_did_not_make_is_reported(book):
    db.session.execute(sa.update(Position).values(realized_pnl=Position.realized_pnl + Decimal("0.05")))
    db.session.commit()
    assert broken() == {"positions_match_fills", "funds_consistent"}  # GET /funds shows that P&L in cash


def test_trades_without_a_position_row_are_reported(book):
    db.session.execute(sa.delete(Position))
    db.session.commit()
    assert "positions_match_fills" in broken()


# -- funds_consistent -----------------------------------------------------------------------------------
def test_a_final_order_still_holding_a_modification_is_reported(book):
    update(Order, book.cancelled.id, pending_quantity=5, pending_limit_price=Decimal("2795.00"))
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"funds_consistent"}
    assert "modification's terms kept" in report.result("funds_consistent").violations[0]["message"]


def test_a_working_order_with_nothing_left_to_fill_is_reported(book):
    update(Order, book.resting.id, filled_quantity=3)  # OPEN, blocking no margin
    report = check_all(grace=timedelta(0))
    assert "funds_consistent" in {r.name for r in report.results if not r.ok}
    assert report.result("funds_consistent").violations[0]["message"] == "OPEN with nothing left to fill (3 of 3)"


# -- audit_complete -----------------------------------------------------------------------------------------
def test_a_fill_without_its_audit_row_is_reported(book):
    fill_row = db.session.scalar(
        sa.select(OrderEvent.id).where(OrderEvent.order_id == book.bought.id, OrderEvent.event == "fill")
    )
    db.session.execute(sa.delete(OrderEvent).where(OrderEvent.id == fill_row))
    db.session.commit()
    report = check_all(grace=timedelta(0))
    assert {r.name for r in report.results if not r.ok} == {"audit_complete"}
    assert {v["message"] for v in report.result("audit_complete").violations} == {
        "trail ends at OPEN, the order is FILLED",
        "0 fill rows for 1 trades",
    }


def test_a_status_changed_without_an_audit_row_is_reported(book):
    update(Order, book.cancelled.id, status="EXPIRED")
    report = check_all(grace=timedelta(0))
    assert "audit_complete" in {r.name for r in report.results if not r.ok}
    assert {v["message"] for v in report.result("audit_complete").violations} == {
        "trail ends at CANCELLED, the order is EXPIRED"
    }


# -- dead_letters_explained ----------------------------------------------------------------------------------
def dead_letter(app, body: dict) -> None:
    """Route `body` to the broker-events queue and reject it there: RabbitMQ dead-letters it (with
    its x-death header) exactly as the consumer does a poison message."""
    topology = Topology(app.config["NAMESPACE"])
    with Connection(app.config["AMQP_URL"]) as conn:
        conn.Producer(serializer="json").publish(
            body, exchange=topology.broker_events, routing_key=body["type"], declare=[topology.q_broker_events]
        )
        queue: Queue = topology.q_broker_events(conn.default_channel)
        message = queue.get(no_ack=False)
        assert message is not None
        message.reject(requeue=False)


def dead_count(app) -> int:
    topology = Topology(app.config["NAMESPACE"])
    with Connection(app.config["AMQP_URL"]) as conn:
        return topology.q_dead(conn.default_channel).queue_declare(passive=True).message_count


def test_a_valid_event_left_in_the_dead_letter_queue_is_reported_and_left_there(app, db, trader, topology):
    order = new_order(trader, order_type="LIMIT", limit_price="2800.00")
    update(Order, order.id, status="SUBMITTED")  # no audit wanted here: dead letters only
    dead_letter(app, ev.make_event(ev.ACCEPTED, order.id, "paper", "P9", f"paper:{order.id}:accepted"))
    report = check_all(grace=timedelta(0), now=utcnow())
    result = report.result("dead_letters_explained")
    assert (result.checked, result.total) == (1, 1)
    assert result.violations[0]["queue"].endswith("tradingapp.broker-events")
    assert dead_count(app) == 1  # read, not taken


def test_poison_and_already_applied_events_in_the_dead_letter_queue_are_explained(app, db, trader, topology):
    order = new_order(trader, order_type="LIMIT", limit_price="2800.00")
    order_state.transition(reload(order.id), sm.Submit(), "system", actor_id="worker")
    db.session.commit()
    accepted = ev.make_event(ev.ACCEPTED, order.id, "paper", "P1", f"paper:{order.id}:accepted")
    assert apply_broker_event(accepted)
    dead_letter(app, accepted)  # a copy of an event applied from another delivery
    dead_letter(app, {"type": "order.fill", "event_id": "x", "order_id": "not-a-uuid"})
    dead_letter(app, ev.make_event(ev.ACCEPTED, uuid.uuid4(), "paper", "P1", "paper:unknown:accepted"))
    result = check_all(grace=timedelta(0)).result("dead_letters_explained")
    assert (result.checked, result.total) == (3, 0)
    assert dead_count(app) == 3


def fail_job(job: Job) -> None:
    FailedJobRegistry(queue=jobqueue.get_queue()).add(job, ttl=60, exc_string="ConnectionError")


def test_a_failed_submission_of_an_order_still_pending_is_reported(app, db, trader, topology):
    order = new_order(trader, order_type="LIMIT", limit_price="2800.00")
    fail_job(Job.fetch(jobqueue.submit_job_id(order.id), connection=jobqueue.get_queue().connection))
    result = check_all(grace=timedelta(minutes=5)).result("dead_letters_explained")
    assert result.violations == [
        {
            "job_id": f"submit-{order.id}",
            "queue": jobqueue.queue_name("orders"),
            "failed_at": None,
            "message": "submission failed and the order is still PENDING",
        }
    ]


def test_a_failed_job_whose_order_moved_on_is_explained(book, app):
    job = jobqueue.get_queue().enqueue(
        "jobs.order_jobs.submit_order", str(book.bought.id), job_id=jobqueue.submit_job_id(book.bought.id)
    )
    fail_job(job)
    result = check_all(grace=timedelta(0)).result("dead_letters_explained")
    assert (result.checked, result.total) == (1, 0)


# -- the window --------------------------------------------------------------------------------------------
def test_since_leaves_older_orders_out(book, trader):
    stuck = new_order(trader, order_type="LIMIT", limit_price="2810.00", quantity=1)
    update(Order, stuck.id, created_at=utcnow() - timedelta(hours=2), updated_at=utcnow() - timedelta(hours=2))
    assert broken() == {"orders_settled"}
    assert broken(since=utcnow() - timedelta(hours=1)) == set()


def test_since_takes_a_duration_or_a_time():
    now = utcnow()
    assert parse_since("30m", now) == now - timedelta(minutes=30)
    assert parse_since("2026-01-02T03:04:05+05:30").utcoffset() == timedelta(hours=5, minutes=30)
    assert parse_since("2026-01-02T03:04:05").tzinfo is not None
    with pytest.raises(ValueError, match="duration such as 30m"):
        parse_since("yesterday")
