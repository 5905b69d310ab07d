"""Small factories for tests that need orders in a given state."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tradingapp import events as ev
from tradingapp.extensions import db
from tradingapp.models import Order
from tradingapp.models.types import utcnow


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
