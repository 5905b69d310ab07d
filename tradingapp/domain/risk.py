"""Pre-trade risk rules for a new order or a modification. Plain values, no I/O.

Each refusal is a RiskViolation naming the rule and its numbers (limit, requested, current).
Rules run cheapest first; the first one broken decides. Trading states, strictest wins between
the global and the user's: ACTIVE; REDUCING (only orders that shrink a position pass); HALTED
(nothing that adds exposure; cancels are never checked here).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from tradingapp.domain.margin import Book, closing_capacity, day_pnl, funds, used_margin
from tradingapp.domain.risk_limits import Limits


class TradingState(StrEnum):
    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}
DAILY_LOSS_REASON = "daily loss limit breached"


def stricter(a: str, b: str) -> TradingState:
    a, b = TradingState(a), TradingState(b)
    return a if _STRICTNESS[a] >= _STRICTNESS[b] else b


class RiskViolation(Exception):
    def __init__(self, rule: str, message: str, halted: bool = False, **details):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.halted = halted
        self.details = {"rule": rule, **{k: _plain(v) for k, v in details.items()}}


def _plain(value):
    if isinstance(value, Decimal):
        value = value.quantize(Decimal("0.0001")) if value.as_tuple().exponent < -4 else value
        return format(value.normalize(), "f") if value else "0"
    return value


@dataclass(frozen=True)
class OrderIntent:
    """A new order as the rules see it; `price` values it (None: no price known)."""

    instrument_id: int
    segment: str
    product: str
    side: str
    quantity: int
    price: Decimal | None
    close_only: bool = False  # an exit (close-all): refused if larger than what is left to close


@dataclass(frozen=True)
class Amendment:
    """A modification: quantities are remaining (unfilled) quantities before and after."""

    instrument_id: int
    product: str
    side: str
    old_remaining: int
    old_price: Decimal | None
    new_quantity: int  # the new total, what max_order_quantity limits
    new_remaining: int
    new_price: Decimal | None
    prices_changed: bool


def valuation_price(
    order_type: str, limit_price: Decimal | None, stop_price: Decimal | None, last_price: Decimal | None
) -> Decimal | None:
    """LIMIT/STOP_LIMIT are worth their limit price, a STOP its stop price (the price it trades
    from once triggered: for a BUY stop, above the market), a MARKET order the last price. The
    book of working orders (services/accounts/funds.py) values them the same way, so what the check lets
    through is what the margin then blocks."""
    if order_type in ("LIMIT", "STOP_LIMIT") and limit_price is not None:
        return limit_price
    if order_type == "STOP" and stop_price is not None:
        return stop_price
    return last_price


def daily_loss(book: Book) -> Decimal:
    """Today's loss as a positive amount (negative when the day is a gain)."""
    return -day_pnl(book)


def loss_breached(book: Book, limits: Limits) -> bool:
    return daily_loss(book) >= limits.max_daily_loss


def check_new(book: Book, limits: Limits, state: str, intent: OrderIntent) -> None:
    """Raise RiskViolation for the first rule the order breaks."""
    _check_halted(state)
    _check_allowed(limits, intent)
    price = _require_price(intent.price)
    _check_size(limits, intent.quantity, intent.quantity * price)
    room = reducing_room(book, intent.instrument_id, intent.product, intent.side)
    closing = room >= intent.quantity
    if intent.close_only and not closing:
        raise RiskViolation(
            "close_only",
            f"an exit of {intent.quantity} is more than the {room} left to close: it would open a new position",
            requested=intent.quantity,
            current=room,
        )
    _check_reducing(book, limits, state, closing)
    if book.open_orders() >= limits.max_open_orders:
        raise RiskViolation(
            "max_open_orders",
            f"at most {limits.max_open_orders} open orders",
            limit=limits.max_open_orders,
            requested=1,
            current=book.open_orders(),
        )
    if book.orders_today >= limits.max_orders_per_day:
        raise RiskViolation(
            "max_orders_per_day",
            f"at most {limits.max_orders_per_day} orders a day",
            limit=limits.max_orders_per_day,
            requested=1,
            current=book.orders_today,
        )
    _check_position(book, limits, intent.instrument_id, intent.side, intent.quantity)
    value = intent.quantity * price
    after = book.with_working(intent.instrument_id, intent.product, intent.side, 1, intent.quantity, value)
    _check_funds(book, after, limits)


def check_amendment(book: Book, limits: Limits, state: str, change: Amendment) -> None:
    """A modification may not add exposure under REDUCING/HALTED and must fit every size limit."""
    new_price = _require_price(change.new_price)
    old_price = change.old_price if change.old_price is not None else new_price
    # Room to close, not counting this order's own remaining quantity.
    others = book.working_quantity(change.instrument_id, change.side, change.product) - change.old_remaining
    room = max(0, closing_capacity(book, change.instrument_id, change.product, change.side) - others)
    shrinking_only = change.new_remaining <= change.old_remaining and not change.prices_changed
    if not (shrinking_only or room >= change.new_remaining):
        _check_halted(state, "modifications that add exposure are refused")
        _check_reducing(book, limits, state, closing=False)
    _check_size(limits, change.new_quantity, change.new_quantity * new_price)
    delta = change.new_remaining - change.old_remaining
    if delta > 0:
        _check_position(book, limits, change.instrument_id, change.side, delta)
    value = change.new_remaining * new_price - change.old_remaining * old_price
    after = book.with_working(change.instrument_id, change.product, change.side, 0, delta, value)
    _check_funds(book, after, limits)


def reducing_room(book: Book, instrument_id: int, product: str, side: str) -> int:
    """Quantity an order on `side` may still close: the opposite position less the open orders
    on `side` already closing it."""
    capacity = closing_capacity(book, instrument_id, product, side)
    return max(0, capacity - book.working_quantity(instrument_id, side, product))


def _check_halted(state: str, message: str = "trading is halted: no new orders; cancels still pass") -> None:
    if state == TradingState.HALTED:
        raise RiskViolation("trading_halted", message, halted=True, trading_state="HALTED")


def _check_allowed(limits: Limits, intent: OrderIntent) -> None:
    if intent.product not in limits.allowed_products:
        raise RiskViolation(
            "allowed_products",
            f"product {intent.product} is not allowed for you",
            limit=list(limits.allowed_products),
            requested=intent.product,
        )
    if intent.segment not in limits.allowed_segments:
        raise RiskViolation(
            "allowed_segments",
            f"exchange segment {intent.segment} is not allowed for you",
            limit=list(limits.allowed_segments),
            requested=intent.segment,
        )


def _require_price(price: Decimal | None) -> Decimal:
    if price is None:
        raise RiskViolation("price_unavailable", "no last price to value this order; try again when quotes arrive")
    return price


def _check_size(limits: Limits, quantity: int, notional: Decimal) -> None:
    if quantity > limits.max_order_quantity:
        raise RiskViolation(
            "max_order_quantity",
            f"order quantity {quantity} exceeds the limit {limits.max_order_quantity}",
            limit=limits.max_order_quantity,
            requested=quantity,
        )
    if notional > limits.max_order_notional:
        raise RiskViolation(
            "max_order_notional",
            f"order value {_plain(notional)} exceeds the limit {_plain(limits.max_order_notional)}",
            limit=limits.max_order_notional,
            requested=notional,
        )


def _check_reducing(book: Book, limits: Limits, state: str, closing: bool) -> None:
    if closing:
        return
    if loss_breached(book, limits):
        raise RiskViolation(
            "max_daily_loss",
            "daily loss limit breached: your trading state is now REDUCING; only orders that reduce a position pass",
            limit=limits.max_daily_loss,
            current=daily_loss(book),
            trading_state="REDUCING",
        )
    if state == TradingState.REDUCING:
        raise RiskViolation(
            "reducing_only",
            "trading state is REDUCING: only orders that reduce a position (opposite side, within its size "
            "counting your other open closing orders) pass",
            trading_state="REDUCING",
        )


def _check_position(book: Book, limits: Limits, instrument_id: int, side: str, quantity: int) -> None:
    sign = 1 if side == "BUY" else -1
    before = book.net_position(instrument_id) + sign * book.working_quantity(instrument_id, side)
    after = before + sign * quantity
    if abs(after) > limits.max_position_quantity and abs(after) > abs(before):
        raise RiskViolation(
            "max_position_quantity",
            f"the position would reach {abs(after)} (open orders included), over the limit "
            f"{limits.max_position_quantity}",
            limit=limits.max_position_quantity,
            requested=quantity,
            current=abs(before),
            resulting=abs(after),
        )


def _check_funds(book: Book, after: Book, limits: Limits) -> None:
    before = funds(book, limits)
    required = used_margin(after, limits) - before.used_margin
    if required > 0 and required > before.available:
        raise RiskViolation(
            "available_funds",
            f"the order needs margin {_plain(required)}, only {_plain(before.available)} is available",
            limit=before.available,
            requested=required,
            current=before.used_margin,
        )
