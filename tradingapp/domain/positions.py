"""Position arithmetic: how one fill changes a position. Plain Decimal, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

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
