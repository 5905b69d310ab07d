"""Position arithmetic: how one fill changes a position. Plain Decimal, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from tradingapp.domain.orders import weighted_average


@dataclass(frozen=True)
class PositionState:
    quantity: int = 0  # signed: negative is short
    average_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)


def apply_fill(position: PositionState, side: str, quantity: int, price: Decimal) -> PositionState:
    """Adding to a position moves the average; reducing realises P&L at the average; a flip
    realises the closed part and opens the rest at the fill price."""
    delta = quantity if side == "BUY" else -quantity
    held = position.quantity
    if held == 0 or (held > 0) == (delta > 0):
        average = weighted_average(position.average_price, abs(held), price, quantity)
        return PositionState(held + delta, average, position.realized_pnl)
    closing = min(quantity, abs(held))
    direction = 1 if held > 0 else -1
    realized = position.realized_pnl + (price - position.average_price) * closing * direction
    new_quantity = held + delta
    if new_quantity == 0:
        return PositionState(0, Decimal(0), realized)
    if (new_quantity > 0) != (held > 0):
        return PositionState(new_quantity, price, realized)  # flipped: the rest opened at this price
    return PositionState(new_quantity, position.average_price, realized)


def unrealized_pnl(position: PositionState, last_price: Decimal | None) -> Decimal | None:
    if last_price is None:
        return None
    return (last_price - position.average_price) * position.quantity


@dataclass(frozen=True)
class DayActivity:
    """One position's trading on one session day: what was bought and sold, and realized."""

    day: date | None = None
    buy_quantity: int = 0
    buy_value: Decimal = Decimal(0)
    sell_quantity: int = 0
    sell_value: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)

    def on(self, day: date) -> DayActivity:
        """The activity as of `day`: empty when the stored one is from an earlier day."""
        return self if self.day == day else DayActivity(day)


def record_day_fill(
    activity: DayActivity, fill_day: date, side: str, quantity: int, price: Decimal, realized: Decimal
) -> DayActivity:
    """Add one fill (and the P&L it realized) to the day's activity. The first fill of a new day
    starts the day afresh; a late fill of an earlier day leaves today's activity alone."""
    if activity.day is not None and fill_day < activity.day:
        return activity
    current = activity.on(fill_day)
    value = price * quantity
    if side == "BUY":
        current = replace(current, buy_quantity=current.buy_quantity + quantity, buy_value=current.buy_value + value)
    else:
        current = replace(
            current, sell_quantity=current.sell_quantity + quantity, sell_value=current.sell_value + value
        )
    return replace(current, realized_pnl=current.realized_pnl + realized)


def session_day(moment: datetime, timezone: str) -> date:
    """The trading day a moment belongs to, in the exchange's timezone."""
    return moment.astimezone(ZoneInfo(timezone)).date()
