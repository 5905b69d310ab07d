"""Positions in the database: how a fill changes the (user, instrument, product) row, and the
net and day views of a user's positions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from flask import current_app

from tradingapp.domain.positions import DayActivity, PositionState, apply_fill, record_day_fill, session_day
from tradingapp.extensions import db, get_redis, upsert_insert
from tradingapp.models import Order, Position
from tradingapp.models.types import dec, utcnow
from tradingapp.realtime import last_price, read_quotes

VIEWS = ("net", "day")
PRICE_PLACES = Decimal("0.0001")


def apply_fill_to_position(order: Order, quantity: int, price: Decimal, traded_at: datetime) -> Position:
    """Lock (creating if missing) the order's position row and apply one fill, to the position
    and to the activity of the fill's session day; the caller commits."""
    key = {"user_id": order.user_id, "instrument_id": order.instrument_id, "product": order.product}
    # Create-if-missing without a race between consumers, then lock the row.
    db.session.execute(
        upsert_insert(Position)
        .values(**key, quantity=0, average_price=0, cost_basis=0, realized_pnl=0, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    position = db.session.scalar(
        sa.select(Position).filter_by(**key).with_for_update(of=Position).execution_options(populate_existing=True)
    )
    price = price.quantize(PRICE_PLACES, rounding=ROUND_HALF_UP)  # as the trade's NUMERIC(18, 4) keeps it
    before = PositionState(position.quantity, position.cost_basis, position.realized_pnl)
    state = apply_fill(before, order.side, quantity, price)
    fill_day = session_day(traded_at, current_app.config["SESSION_TIMEZONE"])
    activity = record_day_fill(
        _activity(position), fill_day, order.side, quantity, price, state.realized_pnl - before.realized_pnl
    )
    position.quantity = state.quantity
    position.cost_basis = state.cost_basis
    position.average_price = state.average_price
    position.realized_pnl = state.realized_pnl
    _store_activity(position, activity)
    position.updated_at = utcnow()
    return position


def _activity(position: Position) -> DayActivity:
    return DayActivity(
        position.day,
        position.day_buy_quantity or 0,
        position.day_buy_value or Decimal(0),
        position.day_sell_quantity or 0,
        position.day_sell_value or Decimal(0),
        position.day_realized_pnl or Decimal(0),
    )


def _store_activity(position: Position, activity: DayActivity) -> None:
    position.day = activity.day
    position.day_buy_quantity = activity.buy_quantity
    position.day_buy_value = activity.buy_value
    position.day_sell_quantity = activity.sell_quantity
    position.day_sell_value = activity.sell_value
    position.day_realized_pnl = activity.realized_pnl


def list_positions(user_id: uuid.UUID, view: str, day: date) -> list[dict]:
    """`net`: every position held or with P&L, marked to the last price. `day`: what was traded
    on session day `day`, by position."""
    query = sa.select(Position).where(Position.user_id == user_id)
    if view == "day":
        query = query.where(Position.day == day, (Position.day_buy_quantity + Position.day_sell_quantity) > 0)
    else:
        query = query.where(sa.or_(Position.quantity != 0, Position.realized_pnl != 0))
    positions = db.session.scalars(query.order_by(Position.instrument_id, Position.product)).all()
    quotes = read_quotes(get_redis(), sorted({p.instrument_id for p in positions})) if positions else {}
    if view == "day":
        return [day_dict(p, last_price(quotes.get(p.instrument_id))) for p in positions]
    return [p.to_dict(last_price(quotes.get(p.instrument_id))) for p in positions]


def day_dict(position: Position, mark: Decimal | None) -> dict:
    """One position's day: quantities and values bought and sold, their averages, the day's net
    quantity and realized P&L, and the position's P&L marked to the last price."""
    activity = _activity(position)
    return {
        "instrument_id": position.instrument_id,
        "symbol": position.instrument.symbol,
        "product": position.product,
        "day": activity.day.isoformat(),
        "buy_quantity": activity.buy_quantity,
        "buy_value": dec(activity.buy_value),
        "buy_average_price": dec(_average(activity.buy_value, activity.buy_quantity)),
        "sell_quantity": activity.sell_quantity,
        "sell_value": dec(activity.sell_value),
        "sell_average_price": dec(_average(activity.sell_value, activity.sell_quantity)),
        "quantity": activity.buy_quantity - activity.sell_quantity,
        "realized_pnl": dec(activity.realized_pnl),
        "last_price": dec(mark),
    }


def _average(value: Decimal, quantity: int) -> Decimal | None:
    return (value / quantity).quantize(Decimal("0.0001")) if quantity else None
