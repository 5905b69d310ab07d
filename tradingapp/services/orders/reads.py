"""Reading the caller's orders, their audit trails and trades (newest first, keyset pages). The API
parses the filters and cursors and serialises what comes back."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from tradingapp.domain.errors import NotFound
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent, Trade

Key = tuple[datetime, uuid.UUID]  # a page's last row: (created_at or traded_at, id)


def list_orders(
    user_id: uuid.UUID,
    limit: int,
    statuses: list[str] | None = None,
    instrument_id: int | None = None,
    after: Key | None = None,
) -> tuple[list[Order], bool]:
    """Up to `limit` orders older than `after`, and whether more follow."""
    query = sa.select(Order).where(Order.user_id == user_id)
    if statuses:
        query = query.where(Order.status.in_(statuses))
    if instrument_id is not None:
        query = query.where(Order.instrument_id == instrument_id)
    return _newest_first(query, Order.created_at, Order.id, limit, after)


def own_order(user_id: uuid.UUID, order_id: str) -> Order:
    """The user's order; another user's order is not found, not forbidden."""
    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        raise NotFound("order not found") from None
    order = db.session.get(Order, oid)
    if order is None or order.user_id != user_id:
        raise NotFound("order not found")
    return order


def order_events(order: Order) -> list[OrderEvent]:
    query = sa.select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    return db.session.scalars(query).all()


def list_trades(
    user_id: uuid.UUID, limit: int, order_id: uuid.UUID | None = None, after: Key | None = None
) -> tuple[list[Trade], bool]:
    """Up to `limit` fills older than `after`, and whether more follow."""
    query = sa.select(Trade).where(Trade.user_id == user_id)
    if order_id is not None:
        query = query.where(Trade.order_id == order_id)
    return _newest_first(query, Trade.traded_at, Trade.id, limit, after)


def _newest_first(query: sa.Select, moment, row_id, limit: int, after: Key | None) -> tuple[list, bool]:
    """A page of `query` by (moment, row_id) descending, after `after`, and whether more follow."""
    if after is not None:
        query = query.where(sa.tuple_(moment, row_id) < sa.tuple_(*after))
    rows = db.session.scalars(query.order_by(moment.desc(), row_id.desc()).limit(limit + 1)).all()
    return rows[:limit], len(rows) > limit
