"""A user's book (positions, working orders, last prices) and the margin model. Plain values.
The model (what a position and a working order block, cash and available funds) is documented in
README.md, "Risk, positions and funds".
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property

from tradingapp.domain.risk_limits import Limits

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Holding:
    """One position row: signed quantity; day_realized_pnl is today's (0 if the row is older);
    cost_basis the exact cost of the open quantity, signed like it (quantity x average_price when
    not given)."""

    instrument_id: int
    product: str
    quantity: int
    average_price: Decimal
    realized_pnl: Decimal = ZERO
    day_realized_pnl: Decimal = ZERO
    cost_basis: Decimal | None = None
    # Today's trades (0 when the row's day is older): what was bought and sold, and the cash they
    # moved (sell value - buy value).
    day_bought: int = 0
    day_sold: int = 0
    day_cash_flow: Decimal = ZERO

    @property
    def start_of_day_quantity(self) -> int:
        return self.quantity - self.day_bought + self.day_sold

    @property
    def basis(self) -> Decimal:
        return self.quantity * self.average_price if self.cost_basis is None else self.cost_basis


@dataclass(frozen=True)
class Working:
    """Open orders of one (instrument, product, side): their count, remaining quantity and value."""

    instrument_id: int
    product: str
    side: str
    count: int
    quantity: int
    value: Decimal


@dataclass(frozen=True)
class Book:
    cash: Decimal
    holdings: tuple[Holding, ...] = ()
    working: tuple[Working, ...] = ()
    marks: dict[int, Decimal] | None = None  # last price by instrument
    orders_today: int = 0
    closes: dict[int, Decimal] | None = None  # previous session's close by instrument

    def position(self, instrument_id: int, product: str) -> int:
        return sum(h.quantity for h in self.holdings if (h.instrument_id, h.product) == (instrument_id, product))

    def net_position(self, instrument_id: int) -> int:
        return sum(h.quantity for h in self.holdings if h.instrument_id == instrument_id)

    def working_quantity(self, instrument_id: int, side: str, product: str | None = None) -> int:
        return sum(
            w.quantity
            for w in self.working
            if w.instrument_id == instrument_id and w.side == side and product in (None, w.product)
        )

    def open_orders(self) -> int:
        return sum(w.count for w in self.working)

    def mark(self, instrument_id: int) -> Decimal | None:
        return (self.marks or {}).get(instrument_id)

    def close(self, instrument_id: int) -> Decimal | None:
        return (self.closes or {}).get(instrument_id)

    @cached_property
    def day_profit(self) -> Decimal:
        """day_pnl, worked out once per book: the order path asks for it more than once."""
        return _day_pnl(self)

    def with_working(self, instrument_id: int, product: str, side: str, count: int, quantity: int, value: Decimal):
        """This book with a working order added (or changed, with negative deltas)."""
        key = (instrument_id, product, side)
        rows = [w for w in self.working if (w.instrument_id, w.product, w.side) != key]
        old = next((w for w in self.working if (w.instrument_id, w.product, w.side) == key), None)
        if old is not None:
            count, quantity, value = old.count + count, old.quantity + quantity, old.value + value
        if quantity > 0:
            rows.append(Working(instrument_id, product, side, count, quantity, value))
        return replace(self, working=tuple(rows))


def margin_rate(limits: Limits, product: str) -> Decimal:
    percent = getattr(limits, f"margin_{product.lower()}_percent", HUNDRED)
    return percent / HUNDRED


def closing_capacity(book: Book, instrument_id: int, product: str, side: str) -> int:
    """How much an order on `side` can close of the opposite position (before other orders)."""
    held = book.position(instrument_id, product)
    if held == 0 or (held > 0) == (side == "BUY"):
        return 0
    return abs(held)


def working_margin(book: Book, limits: Limits, w: Working) -> Decimal:
    if w.quantity <= 0:
        return ZERO
    opening = max(0, w.quantity - closing_capacity(book, w.instrument_id, w.product, w.side))
    return w.value * opening / w.quantity * margin_rate(limits, w.product)


def used_margin(book: Book, limits: Limits) -> Decimal:
    positions = sum((abs(h.basis) * margin_rate(limits, h.product) for h in book.holdings), ZERO)
    return positions + sum((working_margin(book, limits, w) for w in book.working), ZERO)


def unrealized_pnl(book: Book) -> Decimal:
    """Open positions marked to the last price; one without a price counts as flat."""
    total = ZERO
    for h in book.holdings:
        mark = book.mark(h.instrument_id)
        if h.quantity and mark is not None:
            total += mark * h.quantity - h.basis
    return total


def realized_pnl(book: Book) -> Decimal:
    return sum((h.realized_pnl for h in book.holdings), ZERO)


def day_pnl(book: Book) -> Decimal:
    return book.day_profit


def _day_pnl(book: Book) -> Decimal:
    """Today's P&L for the daily loss limit, marked to market the way brokers show "day M2M":
    per position, the cash today's trades moved + quantity now x last price - the quantity held at
    the start of the day x the previous close. A loss carried from earlier days is not today's, and
    closing an old winner today books only what it moved since yesterday's close.

    Without a previous close (no quote carries one) a position falls back on the since-open view:
    realized today + unrealized against its average cost."""
    total = ZERO
    for h in book.holdings:
        mark, close = book.mark(h.instrument_id), book.close(h.instrument_id)
        if close is None:
            unrealized = mark * h.quantity - h.basis if mark is not None and h.quantity else ZERO
            total += h.day_realized_pnl + unrealized
            continue
        total += h.day_cash_flow + h.quantity * (close if mark is None else mark) - h.start_of_day_quantity * close
    return total


@dataclass(frozen=True)
class Funds:
    cash: Decimal
    used_margin: Decimal
    available: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal


def funds(book: Book, limits: Limits) -> Funds:
    realized = realized_pnl(book)
    unrealized = unrealized_pnl(book)
    cash = book.cash + realized
    used = used_margin(book, limits)
    return Funds(cash, used, cash + min(unrealized, ZERO) - used, realized, unrealized)
