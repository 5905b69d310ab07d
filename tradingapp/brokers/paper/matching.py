"""The paper exchange's matching rules: plain values in, plain values out (no Flask, no database).
An arriving order trades at the touch, a resting one at its limit when a tick crosses it, a stop
rests until the last price reaches it. The rules in full: docs/paper-exchange.md.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

BUY, SELL = "BUY", "SELL"
MARKET, LIMIT, STOP, STOP_LIMIT = "MARKET", "LIMIT", "STOP", "STOP_LIMIT"
ORDER_TYPES = (MARKET, LIMIT, STOP, STOP_LIMIT)
DAY, IOC = "DAY", "IOC"
# The exchange's own words for an order's state (what lookup() reports).
OPEN, FILLED, CANCELLED, REJECTED, EXPIRED = "open", "filled", "cancelled", "rejected", "expired"

NO_PRICE = "no recent market price"
IOC_NO_FILL = "IOC: no immediate fill"
IOC_REMAINDER = "IOC: unfilled remainder cancelled"
SESSION_ENDED = "DAY order expired at the session end"
MAX_DECIMALS = 4  # the book's NUMERIC(18, 4)


# -- the market ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Market:
    """One moment of an instrument's market: a cached quote or a tick."""

    ts: datetime
    ltp: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    bid_qty: int | None = None  # None: size not shown
    ask_qty: int | None = None
    ltq: int | None = None
    seq: int = 0


@dataclass(frozen=True)
class Touch:
    """The best price an order can trade at and the size shown there (None: not shown)."""

    price: Decimal
    size: int | None


def parse_market(raw: object) -> Market | None:
    """A quote (all strings, from Redis) or a tick (ints and strings) as a Market; None when it has
    no usable last price or time. A malformed optional field counts as absent."""
    if not isinstance(raw, dict):
        return None
    ltp, ts = _price(raw.get("ltp")), _ts(raw.get("ts"))
    if ltp is None or ts is None:
        return None
    seq = raw.get("seq")
    return Market(
        ts=ts,
        ltp=ltp,
        bid=_price(raw.get("bid")),
        ask=_price(raw.get("ask")),
        bid_qty=_size(raw.get("bid_qty")),
        ask_qty=_size(raw.get("ask_qty")),
        ltq=_size(raw.get("ltq")),
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
    )


def _price(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool | float):
        return None  # a float is not an exact price
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not price.is_finite() or price <= 0 or price.as_tuple().exponent < -MAX_DECIMALS:
        return None
    return price


def _size(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else None


def _ts(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def touch(market: Market, side: str) -> Touch:
    """BUY takes the ask, SELL the bid; with no such side, the last price and last traded size."""
    price, size = (market.ask, market.ask_qty) if side == BUY else (market.bid, market.bid_qty)
    return Touch(market.ltp, market.ltq) if price is None else Touch(price, size)


def stop_reached(side: str, stop: Decimal, ltp: Decimal) -> bool:
    return ltp >= stop if side == BUY else ltp <= stop


def crosses(side: str, limit: Decimal, price: Decimal) -> bool:
    """A BUY limit trades at `price` or lower, a SELL limit at `price` or higher."""
    return price <= limit if side == BUY else price >= limit


def fresh(market: Market | None, max_age_seconds: float, now: datetime) -> Market | None:
    """The market when it is recent enough to trade on, else None."""
    if market is None or (now - market.ts).total_seconds() > max_age_seconds:
        return None
    return market


# -- orders ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Working:
    """An order as the matcher sees it."""

    key: Hashable
    side: str
    order_type: str
    quantity: int
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str = DAY
    filled: int = 0
    triggered: bool = False
    since: datetime | None = None  # its terms' time: no older tick fills it
    after: datetime | None = None  # ticks up to this time were already applied to it
    expires_at: datetime | None = None  # its session's end: no tick from then on fills it

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    @property
    def armed(self) -> bool:
        """MARKET and LIMIT orders always; STOP and STOP_LIMIT once triggered."""
        return self.order_type in (MARKET, LIMIT) or self.triggered

    @property
    def takes_market(self) -> bool:
        """It trades at any price once armed (MARKET, or a triggered stop-market)."""
        return self.order_type in (MARKET, STOP)

    def live_at(self, ts: datetime) -> bool:
        """Whether a tick at `ts` may trade it."""
        return (
            (self.since is None or ts >= self.since)
            and (self.after is None or ts > self.after)
            and (self.expires_at is None or ts < self.expires_at)
        )


@dataclass(frozen=True)
class Fill:
    quantity: int
    price: Decimal
    ts: datetime


@dataclass(frozen=True)
class Outcome:
    """What happened to one order: its fills (in order), whether its stop triggered, and whether
    it ended (CANCELLED or REJECTED, with the reason and the time)."""

    key: Hashable
    fills: tuple[Fill, ...] = ()
    triggered_at: datetime | None = None
    end: str | None = None
    reason: str | None = None
    ended_at: datetime | None = None

    @property
    def filled(self) -> int:
        return sum(f.quantity for f in self.fills)

    @property
    def changed(self) -> bool:
        return bool(self.fills) or self.triggered_at is not None or self.end is not None


def uses_limit(order_type: str) -> bool:
    return order_type in (LIMIT, STOP_LIMIT)


def uses_stop(order_type: str) -> bool:
    return order_type in (STOP, STOP_LIMIT)


def terms_refusal(
    order_type: str, time_in_force: str, quantity: int, limit_price: Decimal | None, stop_price: Decimal | None
) -> str | None:
    """Why the exchange refuses these terms, or None when it takes them."""
    if order_type not in ORDER_TYPES:
        return f"order type {order_type} not supported by the paper exchange"
    if time_in_force not in (DAY, IOC):
        return f"time in force {time_in_force} not supported by the paper exchange"
    if quantity <= 0:
        return "quantity must be positive"
    if uses_limit(order_type) and (limit_price is None or limit_price <= 0):
        return f"a {order_type} order needs a positive limit price"
    if uses_stop(order_type) and (stop_price is None or stop_price <= 0):
        return f"a {order_type} order needs a positive stop price"
    return None


def relevant_prices(
    order_type: str, limit_price: Decimal | None, stop_price: Decimal | None
) -> tuple[Decimal | None, Decimal | None]:
    """The (limit, stop) prices an order type uses; the others are dropped."""
    return (limit_price if uses_limit(order_type) else None, stop_price if uses_stop(order_type) else None)


def modify_refusal(status: str, filled: int, last_seq: int, seq: int, quantity: int) -> str | None:
    """Why a modification of a book order is refused (None: it applies). `quantity` is the new
    total; `last_seq` the highest modification already answered."""
    final = {
        FILLED: "order already filled",
        CANCELLED: "order is cancelled",
        EXPIRED: "order expired",
        REJECTED: "order was rejected",
    }
    if status in final:
        return final[status]
    if seq <= last_seq:
        return f"modification {seq} superseded by modification {last_seq}"
    if quantity <= filled:
        return f"quantity {quantity} is not above the filled quantity {filled}"
    return None


# -- arrival ---------------------------------------------------------------------------------
def arrive(order: Working, market: Market | None, now: datetime, first: bool = True) -> Outcome:
    """An order reaching the market at `now`: placed (first) or re-priced by a modification.
    `market` is the latest quote when it is fresh, else None. An untriggered stop rests unless the
    last price is through it; a MARKET order with no fresh quote is rejected when it first arrives."""
    triggered_at = None
    if not order.armed:
        if market is None or not stop_reached(order.side, order.stop_price, market.ltp):
            return Outcome(order.key)
        triggered_at = now
    if market is None and order.takes_market and first:
        return Outcome(order.key, end=REJECTED, reason=NO_PRICE, ended_at=now)
    fill = None if market is None else _take(order, touch(market, order.side), now)
    fills = (fill,) if fill else ()
    if order.time_in_force == IOC and (fill.quantity if fill else 0) < order.remaining:
        return Outcome(order.key, fills, triggered_at, CANCELLED, IOC_REMAINDER if fill else IOC_NO_FILL, now)
    return Outcome(order.key, fills, triggered_at)


def _take(order: Working, at: Touch, ts: datetime) -> Fill | None:
    """An aggressive order trades at the touch, never worse than its limit, at most the size shown."""
    if not order.takes_market and not crosses(order.side, order.limit_price, at.price):
        return None
    quantity = _fit(order.remaining, at.size)
    return Fill(quantity, at.price, ts) if quantity > 0 else None


def _fit(remaining: int, size: int | None) -> int:
    return remaining if size is None else max(min(remaining, size), 0)


# -- the tape --------------------------------------------------------------------------------
@dataclass
class _Progress:
    order: Working
    fills: list[Fill] = field(default_factory=list)
    triggered_at: datetime | None = None
    end: str | None = None
    reason: str | None = None
    ended_at: datetime | None = None

    @property
    def working(self) -> bool:
        return self.end is None and self.order.remaining > 0

    def outcome(self) -> Outcome:
        return Outcome(self.order.key, tuple(self.fills), self.triggered_at, self.end, self.reason, self.ended_at)


def match_tape(orders: Iterable[Working], ticks: Iterable[Market]) -> list[Outcome]:
    """Run one instrument's resting orders through its ticks, oldest tick first. Returns the
    outcome of every order something happened to."""
    progress = [_Progress(order) for order in orders]
    for tick in sorted(ticks, key=lambda m: (m.ts, m.seq)):
        live = [p for p in progress if p.working and p.order.live_at(tick.ts)]
        arriving = set()
        for p in live:
            if not p.order.armed and stop_reached(p.order.side, p.order.stop_price, tick.ltp):
                p.order, p.triggered_at = replace(p.order, triggered=True), tick.ts
                arriving.add(id(p))
        shown = {BUY: touch(tick, BUY).size, SELL: touch(tick, SELL).size}
        armed = [p for p in live if p.order.armed]
        for p in sorted(armed, key=lambda p: _priority(p.order, id(p) in arriving)):
            shown[p.order.side] = _fill_on_tick(p, tick, shown[p.order.side], id(p) in arriving)
    return [p.outcome() for p in progress if p.outcome().changed]


def _fill_on_tick(p: _Progress, tick: Market, shown: int | None, arriving: bool) -> int | None:
    """Fill one order from a tick; returns the size still shown on its side."""
    order = p.order
    at = touch(tick, order.side)
    price = _tape_price(order, at.price, arriving)
    quantity = _fit(order.remaining, shown) if price is not None else 0
    if quantity > 0:
        p.fills.append(Fill(quantity, price, tick.ts))
        p.order = replace(order, filled=order.filled + quantity)
        shown = None if shown is None else shown - quantity
    if arriving and order.time_in_force == IOC and p.order.remaining > 0:
        p.end, p.reason, p.ended_at = CANCELLED, IOC_REMAINDER if p.fills else IOC_NO_FILL, tick.ts
    return shown


def _tape_price(order: Working, touch_price: Decimal, arriving: bool) -> Decimal | None:
    if order.takes_market:
        return touch_price
    if not crosses(order.side, order.limit_price, touch_price):
        return None
    # Just triggered, a stop-limit arrives and takes the touch; a resting limit fills at its limit.
    return touch_price if arriving else order.limit_price


def _priority(order: Working, arriving: bool) -> tuple:
    """Price-time priority on each side: market orders first, then the best limit, then the
    earliest terms (orders triggered by this very tick after those already resting)."""
    if order.takes_market:
        price = Decimal(0)
    else:
        price = -order.limit_price if order.side == BUY else order.limit_price
    since = order.since or datetime.min.replace(tzinfo=UTC)
    return (not order.takes_market, price, arriving, since, str(order.key))
