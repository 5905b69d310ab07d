"""Position arithmetic: how one fill changes a position. Plain Decimal, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

PLACES = 4  # prices, cost and P&L are kept to 4 decimal places (the NUMERIC(x, 4) columns)
ZERO = Decimal(0)


@dataclass(frozen=True)
class PositionState:
    """Average-cost position. `cost_basis` is the exact cost of what is open: the sum of signed
    quantity x price of the fills that opened it, less what reductions released; it has the sign
    of `quantity` (a short's is negative) and is 0 when flat. The average price is derived."""

    quantity: int = 0  # signed: negative is short
    cost_basis: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    @property
    def average_price(self) -> Decimal:
        return average_price(self.cost_basis, self.quantity)


def average_price(cost_basis: Decimal, quantity: int) -> Decimal:
    """The average price shown for a basis: basis / quantity to 4 places (half to even); 0 when flat."""
    if quantity == 0:
        return ZERO
    per_unit = share(cost_basis, 1, abs(quantity))
    return per_unit if quantity > 0 else -per_unit


def apply_fill(position: PositionState, side: str, quantity: int, price: Decimal) -> PositionState:
    """Adding to a position adds quantity x price to the basis. A reduction releases the closed
    share of the basis (all of it when the position goes flat) and realises the proceeds of the
    closed quantity less what it released; a flip closes the old side fully and opens the rest
    at the fill price. `price` has at most 4 decimal places, so every amount stays exact."""
    _units(price)  # refuses a price with more places than the columns keep
    delta = quantity if side == "BUY" else -quantity
    held, basis = position.quantity, position.cost_basis
    if held == 0 or (held > 0) == (delta > 0):
        return PositionState(held + delta, basis + delta * price, position.realized_pnl)
    direction = 1 if held > 0 else -1
    closing = min(quantity, abs(held))
    released = basis if closing == abs(held) else share(basis, closing, abs(held))
    realized = position.realized_pnl + direction * closing * price - released
    opened = delta + direction * closing  # what is left of the fill past flat (0 unless it flips)
    return PositionState(held + delta, basis - released + opened * price, realized)


def share(amount: Decimal, part: int, whole: int) -> Decimal:
    """amount x part / whole to 4 places, half to even, in integer arithmetic (no context rounding)."""
    units = _units(amount)
    quotient, remainder = divmod(abs(units) * part, whole)
    if 2 * remainder > whole or (2 * remainder == whole and quotient % 2):
        quotient += 1
    return Decimal(quotient if units >= 0 else -quotient).scaleb(-PLACES)


def _units(amount: Decimal) -> int:
    scaled = amount.scaleb(PLACES)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {PLACES} decimal places")
    return int(scaled)


def unrealized_pnl(position: PositionState, last_price: Decimal | None) -> Decimal | None:
    """What closing at `last_price` would realise: its value less the basis (exact)."""
    if last_price is None:
        return None
    return last_price * position.quantity - position.cost_basis


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
