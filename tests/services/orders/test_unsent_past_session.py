"""An order that missed its session (the worker or Redis was down at the close) expires instead of
trading in a later session at a later price."""

from datetime import timedelta

import sqlalchemy as sa

from jobs.order_jobs import submit_order
from tests.support.factories import make_order
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent
from tradingapp.services.orders.submission import UNSENT_PAST_SESSION, claim_for_submission


def aged(order: Order, days: int = 2) -> Order:
    order.created_at = order.created_at - timedelta(days=days)
    order.updated_at = order.created_at
    db.session.commit()
    return order


def reload(order_id) -> Order:
    db.session.rollback()
    return db.session.get(Order, order_id)


def test_a_pending_order_from_an_earlier_session_expires_unsent(db, trader):
    order = aged(make_order(trader, status="PENDING"))
    assert claim_for_submission(order.id) is None
    order = reload(order.id)
    assert (order.status, order.reject_reason) == ("EXPIRED", UNSENT_PAST_SESSION)
    last = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all()[-1]
    assert (last.event, last.actor, last.from_status) == ("expired", "system", "PENDING")


def test_a_resend_the_broker_never_saw_expires_when_its_session_is_over(app, db, trader):
    order = aged(make_order(trader, status="SUBMITTED"))
    assert submit_order(str(order.id)) is None
    assert reload(order.id).status == "EXPIRED"
    assert db.session.get(PaperOrder, order.id) is None  # never reached the exchange


def test_an_order_of_the_current_session_is_claimed(db, trader):
    order = make_order(trader, status="PENDING")
    request, resend = claim_for_submission(order.id)
    assert (request.order_id, resend) == (order.id, False)
    assert reload(order.id).status == "SUBMITTED"
