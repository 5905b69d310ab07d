"""Applying broker events to orders, trades and positions, on the real database."""

from decimal import Decimal

import orjson
import pytest
import sqlalchemy as sa

from tests.support.factories import event, make_order
from tradingapp import events as ev
from tradingapp.extensions import db, get_redis
from tradingapp.models import Order, OrderEvent, Position, ProcessedEvent, Trade
from tradingapp.realtime import user_events_channel
from tradingapp.services.orders.broker_events import apply_broker_event


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def reload(order) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order.id)


def test_accept_opens_the_order_and_records_the_broker_id(db, trader):
    order = make_order(trader, status="SUBMITTED")
    assert apply_broker_event(event(ev.ACCEPTED, order, broker_order_id="P42"))
    order = reload(order)
    assert (order.status, order.broker_order_id) == ("OPEN", "P42")


def test_fill_records_trade_position_and_status(db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=10, price=Decimal("101.25")))
    order = reload(order)
    assert (order.status, order.filled_quantity, order.average_price) == ("FILLED", 10, Decimal("101.25"))
    trade = db.session.scalar(sa.select(Trade))
    assert (trade.quantity, trade.price, trade.side) == (10, Decimal("101.25"), "BUY")
    position = db.session.scalar(sa.select(Position))
    assert (position.quantity, position.average_price) == (10, Decimal("101.25"))


def test_redelivered_event_changes_nothing(db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    body = event(ev.FILL, order, execution_id="X1", quantity=4, price=Decimal("100"))
    assert apply_broker_event(body) is True
    assert apply_broker_event(body) is False
    assert reload(order).filled_quantity == 4
    assert (count(Trade), db.session.scalar(sa.select(Position.quantity))) == (1, 4)


def test_same_execution_under_a_new_event_id_is_one_trade(db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    apply_broker_event(event(ev.FILL, order, n="a", execution_id="X1", quantity=4, price=Decimal("100")))
    apply_broker_event(event(ev.FILL, order, n="b", execution_id="X1", quantity=4, price=Decimal("100")))
    assert (reload(order).filled_quantity, count(Trade)) == (4, 1)


def test_fill_before_ack_then_late_ack(db, trader):
    order = make_order(trader, status="SUBMITTED", quantity=10)
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=10, price=Decimal("50")))
    apply_broker_event(event(ev.ACCEPTED, order))
    order = reload(order)
    assert order.status == "FILLED" and order.broker_order_id == "P1"


def test_cancel_that_loses_to_a_fill_stays_filled_and_says_why(db, trader):
    order = make_order(trader, status="CANCEL_PENDING", broker_order_id="P1", quantity=10)
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=10, price=Decimal("50")))
    apply_broker_event(event(ev.CANCEL_REJECTED, order, reason="order already filled"))
    assert reload(order).status == "FILLED"
    last = db.session.scalar(sa.select(OrderEvent).order_by(OrderEvent.id.desc()))
    assert last.event == "cancel_rejected_ignored" and "already filled" in last.reason


def test_reject_keeps_the_brokers_reason(db, trader):
    order = make_order(trader, status="SUBMITTED")
    apply_broker_event(event(ev.REJECTED, order, reason="no recent market price"))
    order = reload(order)
    assert (order.status, order.reject_reason) == ("REJECTED", "no recent market price")


def test_sell_fill_reduces_the_position_and_realises_pnl(db, trader):
    buy = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    sell = make_order(trader, status="OPEN", broker_order_id="P2", quantity=4, side="SELL")
    apply_broker_event(event(ev.FILL, buy, execution_id="X1", quantity=10, price=Decimal("100")))
    apply_broker_event(event(ev.FILL, sell, execution_id="X2", quantity=4, price=Decimal("110")))
    position = db.session.scalar(sa.select(Position))
    assert (position.quantity, position.realized_pnl) == (6, Decimal("40"))


def test_event_for_unknown_order_is_malformed_and_writes_nothing(db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1")
    body = event(ev.ACCEPTED, order)
    body["order_id"] = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ev.MalformedEvent):
        apply_broker_event(body)
    assert count(ProcessedEvent) == 0


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"type": "order.fill"},
        {"type": "nope", "event_id": "e", "order_id": "x"},
        {
            "type": "order.fill",
            "event_id": "e",
            "order_id": "00000000-0000-0000-0000-000000000001",
            "quantity": -1,
            "price": "1",
            "execution_id": "x",
        },
    ],
)
def test_malformed_bodies_are_refused(db, body):
    with pytest.raises(ev.MalformedEvent):
        apply_broker_event(body)
    assert count(ProcessedEvent) == 0


def test_fill_notifies_order_trade_and_position_after_commit(app, db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    pubsub = get_redis().pubsub()
    pubsub.subscribe(user_events_channel())
    pubsub.get_message(timeout=1)  # subscribe confirmation
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=10, price=Decimal("101.25")))
    kinds = []
    for _ in range(3):
        message = pubsub.get_message(timeout=2)
        payload = orjson.loads(message["data"])
        assert payload["user_id"] == str(trader.id)
        kinds.append(payload["type"])
    pubsub.close()
    assert kinds == ["order", "trade", "position"]


def _modify_pending(trader, **kw):
    order = make_order(trader, status="MODIFY_PENDING", broker_order_id="P1", quantity=10, modify_seq=1,
                       pending_quantity=20, pending_limit_price=Decimal("99.50"), **kw)  # fmt: skip
    return order


def test_modified_event_applies_the_new_terms_and_reopens_the_order(db, trader):
    order = _modify_pending(trader)
    apply_broker_event(event(ev.MODIFIED, order, quantity=20, limit_price=Decimal("99.50"), stop_price=None))
    order = reload(order)
    assert (order.status, order.quantity, order.limit_price) == ("OPEN", 20, Decimal("99.50"))
    assert order.pending_quantity is None and order.pending_limit_price is None
    trail = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
    assert trail[-1].event == "modified" and trail[-1].details["quantity"] == 20


def test_modify_rejected_event_keeps_the_old_terms_and_says_why(db, trader):
    order = _modify_pending(trader)
    apply_broker_event(event(ev.MODIFY_REJECTED, order, reason="order already filled"))
    order = reload(order)
    assert (order.status, order.quantity, order.limit_price) == ("OPEN", 10, Decimal("100.00"))
    assert order.pending_quantity is None
    trail = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
    assert (trail[-1].event, trail[-1].reason) == ("modify_rejected", "order already filled")


def test_modified_event_after_the_order_filled_changes_nothing(db, trader):
    order = make_order(trader, status="FILLED", broker_order_id="P1", quantity=10, filled_quantity=10,
                       average_price=Decimal("100"))  # fmt: skip
    apply_broker_event(event(ev.MODIFIED, order, quantity=20, limit_price=Decimal("99.50"), stop_price=None))
    order = reload(order)
    assert (order.status, order.quantity) == ("FILLED", 10)


def test_cancel_rejected_after_a_fill_tells_the_user_why(db, trader):
    order = make_order(trader, status="CANCEL_PENDING", broker_order_id="P1", quantity=10)
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=10, price=Decimal("100")))
    apply_broker_event(event(ev.CANCEL_REJECTED, order, reason="order already filled"))
    order = reload(order)
    assert order.status == "FILLED"
    assert order.reject_reason == "cancel rejected: order already filled"


def test_answer_to_an_older_modification_is_audited_and_changes_nothing(db, trader):
    order = _modify_pending(trader)
    order.modify_seq = 2  # modification 1 was overtaken; 2 is the one in flight
    db.session.commit()
    apply_broker_event(event(ev.MODIFY_REJECTED, order, seq=1, reason="late answer"))
    order = reload(order)
    assert (order.status, order.pending_quantity) == ("MODIFY_PENDING", 20)
    trail = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
    assert (trail[-1].event, trail[-1].details["seq"], trail[-1].details["latest_seq"]) == ("modify_answer_stale", 1, 2)


def test_answer_to_the_latest_modification_applies(db, trader):
    order = _modify_pending(trader)
    apply_broker_event(event(ev.MODIFIED, order, seq=1, quantity=20, limit_price=Decimal("99.50"), stop_price=None))
    assert reload(order).status == "OPEN" and reload(order).quantity == 20


def test_a_fill_after_a_cancel_is_booked_with_its_trade_and_position(db, trader):
    order = make_order(trader, status="CANCELLED", broker_order_id="P1", quantity=10)
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=4, price=Decimal("100")))
    order = reload(order)
    assert (order.status, order.filled_quantity) == ("CANCELLED", 4)
    assert count(Trade) == 1
    assert db.session.scalar(sa.select(Position.quantity)) == 4


def test_a_fill_refused_for_now_is_applied_when_the_broker_sends_it_again(db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    fill = event(ev.FILL, order, execution_id="X1", quantity=15, price=Decimal("100"))
    apply_broker_event(fill)  # ahead of the order.modified that raised the quantity to 20
    assert reload(order).filled_quantity == 0 and count(ProcessedEvent) == 0
    apply_broker_event(event(ev.MODIFIED, order, quantity=20, limit_price=Decimal("100"), stop_price=None))
    apply_broker_event(fill)  # the reconcile's re-send
    order = reload(order)
    assert (order.status, order.quantity, order.filled_quantity) == ("PARTIALLY_FILLED", 20, 15)
    assert count(Trade) == 1


def test_a_fill_price_beyond_four_decimals_is_booked_rounded_everywhere(db, trader):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10)
    apply_broker_event(event(ev.FILL, order, execution_id="X1", quantity=10, price=Decimal("100.123456")))
    order = reload(order)
    trade = db.session.scalar(sa.select(Trade))
    assert trade.price == order.average_price == Decimal("100.1235")
    assert order.filled_value == Decimal("1001.235")
