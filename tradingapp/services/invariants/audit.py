"""The audit trail: every order's status changes and fills recorded in order."""

from __future__ import annotations

import sqlalchemy as sa

from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent, Trade
from tradingapp.services.invariants.base import Result, Scope


def audit_complete(scope: Scope, result: Result) -> None:
    """Each order's audit trail starts with `created`, every row starts from the status the one
    before left, the last one ends at the order's status, one `fill` row per trade."""
    previous = sa.func.lag(OrderEvent.to_status).over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id)
    number = sa.func.row_number().over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id)
    last = sa.func.row_number().over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id.desc())
    trail = scope.orders(
        sa.select(
            OrderEvent.order_id,
            OrderEvent.id,
            OrderEvent.event,
            OrderEvent.from_status,
            OrderEvent.to_status,
            previous.label("previous"),
            number.label("n"),
            last.label("from_end"),
        ).join(Order, Order.id == OrderEvent.order_id)
    ).subquery()
    broken = sa.or_(
        sa.and_(trail.c.n == 1, trail.c.event != "created"),
        sa.and_(trail.c.n > 1, trail.c.from_status.is_distinct_from(trail.c.previous)),
        sa.and_(trail.c.from_end == 1, trail.c.to_status.is_distinct_from(Order.status)),
    )
    query = (
        sa.select(
            trail.c.order_id,
            trail.c.id,
            trail.c.event,
            trail.c.from_status,
            trail.c.previous,
            trail.c.n,
            trail.c.to_status,
            Order.status,
        )  # fmt: skip
        .join(Order, Order.id == trail.c.order_id)
        .where(broken)
        .order_by(trail.c.order_id, trail.c.id)
    )
    for row in db.session.execute(query):
        if row.n == 1 and row.event != "created":
            message = f"trail starts with {row.event}, not created"
        elif row.n > 1 and row.from_status != row.previous:
            message = f"{row.event} from {row.from_status}, but the row before left {row.previous}"
        else:
            message = f"trail ends at {row.to_status}, the order is {row.status}"
        result.add(scope.limit, order_id=str(row.order_id), event_id=row.id, message=message)
    untraced = scope.orders(
        sa.select(Order.id, Order.status).where(~sa.exists().where(OrderEvent.order_id == Order.id))
    )
    for row in db.session.execute(untraced):
        result.add(scope.limit, order_id=str(row.id), message=f"{row.status} with no audit row")
    fills = (
        sa.select(sa.func.count()).where(OrderEvent.order_id == Order.id, OrderEvent.event == "fill").scalar_subquery()
    )
    trades = sa.select(sa.func.count()).where(Trade.order_id == Order.id).scalar_subquery()
    counts = scope.orders(sa.select(Order.id, fills.label("fills"), trades.label("trades")))
    for row in db.session.execute(counts):
        result.checked += 1
        if row.fills != row.trades:
            result.add(scope.limit, order_id=str(row.id), message=f"{row.fills} fill rows for {row.trades} trades")
