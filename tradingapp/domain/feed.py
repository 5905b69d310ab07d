"""The simulated market: a random walk per instrument, in whole ticks, with a day's OHLC and volume.

Pure: plain values in, plain dicts out; the caller supplies the random generator and the clock,
so a seeded `random.Random` replays the same walk. `close` is the previous session's close (the
reference a day's change is measured from), as exchange feeds report it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

START_PRICES = {
    "RELIANCE": Decimal("2900"),
    "TCS": Decimal("4100"),
    "INFY": Decimal("1900"),
    "HDFCBANK": Decimal("1700"),
    "SBIN": Decimal("800"),
    "NIFTY-FUT": Decimal("24000"),
}
DEFAULT_START = Decimal("100")
# Standard deviation of one step as a fraction of the price: ~2 bp, a calm intraday market.
STEP_VOLATILITY = Decimal("0.0002")
MAX_SPREAD_TICKS = 3


@dataclass(frozen=True)
class FeedInstrument:
    instrument_id: int
    exchange_segment: str
    exchange_instrument_id: int
    symbol: str
    tick_size: Decimal

    def __post_init__(self):
        # '0.0500' from a NUMERIC(18,4) column -> '0.05', so prices print with the tick's own places.
        object.__setattr__(self, "tick_size", self.tick_size.quantize(_quantum(self.tick_size)))


@dataclass
class Walk:
    """The running state of one instrument's simulated session."""

    instrument: FeedInstrument
    ltp: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int = 0
    seq: int = 0
    day: date | None = None  # the UTC day of its last step: a step on a later day opens a new session


def _quantum(tick_size: Decimal) -> Decimal:
    """The decimal places of a tick size ('0.05' -> 0.01, '5' -> 1), never an exponent form."""
    return Decimal(1).scaleb(min(tick_size.normalize().as_tuple().exponent, 0))


def to_tick(price: Decimal, tick_size: Decimal) -> Decimal:
    """The nearest multiple of tick_size, at least one tick (a price is never zero or negative)."""
    ticks = max((price / tick_size).to_integral_value(), Decimal(1))
    return (ticks * tick_size).quantize(_quantum(tick_size))


def start_price(symbol: str, tick_size: Decimal) -> Decimal:
    return to_tick(START_PRICES.get(symbol.upper(), DEFAULT_START), tick_size)


def new_walk(instrument: FeedInstrument, price: Decimal | None = None) -> Walk:
    """A fresh session opening at `price` (or the symbol's seeded start price)."""
    p = (
        to_tick(price, instrument.tick_size)
        if price is not None
        else start_price(instrument.symbol, instrument.tick_size)
    )
    return Walk(instrument=instrument, ltp=p, open=p, high=p, low=p, close=p)


def walk_from_quote(instrument: FeedInstrument, quote: dict | None, today: datetime) -> Walk:
    """Resume from a cached quote: the same session if it is from `today` (UTC), else a new day
    opening at the last price. A missing or unreadable quote starts from the seeded price."""
    try:
        ltp = _positive(quote["ltp"], instrument.tick_size)
        last_ts = datetime.fromisoformat(quote["ts"])
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return new_walk(instrument)
    if last_ts.astimezone(UTC).date() != today.astimezone(UTC).date():
        return new_walk(instrument, ltp)
    try:
        walk = Walk(
            instrument=instrument,
            ltp=ltp,
            open=_positive(quote["open"], instrument.tick_size),
            high=max(_positive(quote["high"], instrument.tick_size), ltp),
            low=min(_positive(quote["low"], instrument.tick_size), ltp),
            close=_positive(quote["close"], instrument.tick_size),
            volume=max(int(quote.get("volume") or 0), 0),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return new_walk(instrument, ltp)
    walk.high, walk.low = max(walk.high, walk.open), min(walk.low, walk.open)
    return walk


def _positive(value, tick_size: Decimal) -> Decimal:
    price = Decimal(str(value))
    if not price.is_finite() or price <= 0:
        raise ValueError("price must be positive")
    return to_tick(price, tick_size)


def step(walk: Walk, rng: random.Random, now: datetime) -> dict:
    """Move the walk one step and return the tick (the market.ticks schema; prices as strings)."""
    inst = walk.instrument
    tick = inst.tick_size
    today = now.astimezone(UTC).date()
    if walk.day is not None and walk.day != today:
        # A feed running through midnight opens a new day as a restart would: yesterday's last
        # price becomes the close the day's change is measured from; OHLC and volume start again.
        walk.close = walk.open = walk.high = walk.low = walk.ltp
        walk.volume = 0
    walk.day = today
    sigma_ticks = max(float(walk.ltp * STEP_VOLATILITY / tick), 1.0)
    moved = round(rng.gauss(0.0, sigma_ticks))
    walk.ltp = max(walk.ltp + moved * tick, tick)
    walk.high = max(walk.high, walk.ltp)
    walk.low = min(walk.low, walk.ltp)
    ltq = rng.randint(1, 500)
    walk.volume += ltq
    # Strictly increasing per instrument, and still increasing across restarts (clock-based).
    walk.seq = max(walk.seq + 1, int(now.timestamp() * 1_000_000))
    bid = max(walk.ltp - rng.randint(0, MAX_SPREAD_TICKS - 1) * tick, tick)
    ask = max(walk.ltp, bid) + rng.randint(1, MAX_SPREAD_TICKS) * tick
    return {
        "instrument_id": inst.instrument_id,
        "exchange_segment": inst.exchange_segment,
        "exchange_instrument_id": inst.exchange_instrument_id,
        "seq": walk.seq,
        "ts": format_ts(now),
        "ltp": str(walk.ltp),
        "bid": str(bid),
        "ask": str(ask),
        "open": str(walk.open),
        "high": str(walk.high),
        "low": str(walk.low),
        "close": str(walk.close),
        "ltq": ltq,
        "bid_qty": rng.randint(1, 5000),
        "ask_qty": rng.randint(1, 5000),
        "volume": walk.volume,
    }


def format_ts(now: datetime) -> str:
    return now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
