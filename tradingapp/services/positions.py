"""Positions in the database: how a fill changes the (user, instrument, product) row."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from tradingapp.domain.positions import PositionState, apply_fill
from tradingapp.extensions import db, upsert_insert
from tradingapp.models import Order, Position
from tradingapp.models.types import utcnow


def apply_fill_to_position(order: Order, quantity: int, price: Decimal, traded_at: datetime) -> Position:
    """Lock (creating if missing) the order's position row and apply one fill; the caller commits."""
    key = {"user_id": order.user_id, "instrument_id": order.instrument_id, "product": order.product}
    # Create-if-missing without a race between consumers, then lock the row.
    db.session.execute(
        upsert_insert(Position)
        .values(**key, quantity=0, average_price=0, realized_pnl=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    position = db.session.scalar(
        sa.select(Position).filter_by(**key).with_for_update(of=Position).execution_options(populate_existing=True)
    )
    state = apply_fill(
        PositionState(position.quantity, position.average_price, position.realized_pnl), order.side, quantity, price
    )
    position.quantity = state.quantity
    position.average_price = state.average_price
    position.realized_pnl = state.realized_pnl
    position.updated_at = utcnow()
    return position
