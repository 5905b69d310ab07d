"""Small factories for tests that need orders in a given state."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from decimal import Decimal as D

from tradingapp import events as ev
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db, get_redis
from tradingapp.extensions import db as _db
from tradingapp.models import Order, Position
from tradingapp.models.types import utcnow
from tradingapp.realtime import store_quote
from tradingapp.services.accounts.positions import apply_fill_to_position
from tradingapp.services.orders.placement import place_order


def make_order(
    user,
    instrument_id=1,
    status="PENDING",
    side="BUY",
    quantity=10,
    order_type="LIMIT",
    limit_price="100.00",
    broker_order_id=None,
    filled_quantity=0,
    **kw,
) -> Order:
    now = utcnow()
    order = Order(
        id=uuid.uuid4(),
        user_id=user.id,
        request_hash="x" * 64,
        broker="paper",
        broker_order_id=broker_order_id,
        instrument_id=instrument_id,
        side=side,
        quantity=quantity,
        filled_quantity=filled_quantity,
        order_type=order_type,
        limit_price=Decimal(limit_price) if limit_price else None,
        product="MIS",
        time_in_force="DAY",
        status=status,
        created_at=now,
        updated_at=now,
        **kw,
    )
    db.session.add(order)
    db.session.commit()
    return order


def event(type_, order, n="1", **extra) -> dict:
    return ev.make_event(
        type_, order.id, "paper", extra.pop("broker_order_id", "P1"), f"test:{order.id}:{type_}:{n}", **extra
    )


def set_quote(instrument_id: int, ltp: str, age_seconds: float = 0, **book) -> None:
    """Cache a quote; `book` may add bid, ask, bid_qty, ask_qty, ltq."""
    ts = datetime.now(UTC) - timedelta(seconds=age_seconds)
    pipe = get_redis().pipeline()
    store_quote(pipe, {"instrument_id": instrument_id, "ltp": ltp, "ts": ts.isoformat(), **book}, ttl=3600)
    pipe.execute()


def fill(user, side: str, qty: int, price: str, product="MIS", instrument_id=1, traded_at=None) -> Position:
    order = make_order(user, instrument_id=instrument_id, side=side, quantity=qty, status="FILLED", limit_price=price)
    order.product = product
    position = apply_fill_to_position(order, qty, D(price), traded_at or datetime.now(UTC))
    _db.session.commit()
    return position


def add_position(user, instrument_id, quantity, product="MIS"):
    set_quote(instrument_id, "100.00")  # the exit is a market order, valued at the last price
    db.session.add(Position(user_id=user.id, instrument_id=instrument_id, product=product, quantity=quantity,
                            average_price=Decimal("100"), realized_pnl=Decimal(0)))  # fmt: skip
    db.session.commit()


def new_order(user, **body) -> Order:
    order, created = place_order(user, {"instrument_id": 1, "side": "BUY", "quantity": 5, "order_type": "MARKET",
                                        **body}, None)  # fmt: skip
    assert created
    return order


def reload(order_id) -> Order:
    _db.session.rollback()
    return _db.session.get(Order, order_id, populate_existing=True)


def book_row(order_id) -> PaperOrder | None:
    _db.session.rollback()
    return _db.session.get(PaperOrder, order_id, populate_existing=True)
