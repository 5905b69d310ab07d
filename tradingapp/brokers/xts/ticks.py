"""XTS market data (1501 touchline, JSON full or partial broadcast) -> our ticks on `market.ticks`
(the shape parse_tick validates: docs/messages.md). A tick's ltq is the growth of the day volume
since the instrument's last touchline: docs/xts.md, "Touchlines to ticks".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from tradingapp.brokers.xts import untrusted
from tradingapp.brokers.xts.errors import XtsResponseError
from tradingapp.brokers.xts.untrusted import LAST_SECOND, MAX_EVENT_CHARS, MAX_ID, MAX_QUANTITY
from tradingapp.domain.feed import format_ts

# XTS exchange times of segments 1-3 count seconds from 1980-01-01 00:00 IST: Unix time = XTS time
# + this. Other segments' (BSE, MCX) are taken as Unix seconds; MAX_CLOCK_SKEW catches a wrong guess.
XTS_EPOCH_OFFSET = 315513000
SEGMENT_NAMES = {1: "NSECM", 2: "NSEFO", 3: "NSECD", 11: "BSECM", 12: "BSEFO", 51: "MCXFO"}
SEGMENT_CODES = {name: code for code, name in SEGMENT_NAMES.items()}
XTS_EPOCH_SEGMENTS = frozenset({"NSECM", "NSEFO", "NSECD"})
TOUCHLINE = 1501
PRICE_QUANTUM = Decimal("0.0001")
MAX_PRICE = Decimal(10) ** 14  # the consumer's bound too (services/market/ticks.py)
# An exchange time further than this from our clock is not believed (a deployment counting from
# another epoch, a zero): the tick takes the time it was received.
MAX_CLOCK_SKEW = timedelta(hours=12)


class BadQuote(ValueError):
    """A market-data payload that is not a touchline we can read."""


@dataclass(frozen=True)
class Touchline:
    """One instrument's level-1 state as XTS reported it, before it is ours."""

    segment: str
    exchange_instrument_id: int
    ltp: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    bid_qty: int
    ask_qty: int
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: int
    exchange_time: int | None  # XTS seconds (last update, else last trade)


def segment_name(value: object) -> str:
    """'NSECM' from 1, '1' or 'NSECM'."""
    if isinstance(value, str) and not value.isdigit():
        return value.upper()
    try:
        return SEGMENT_NAMES[int(value)]
    except (KeyError, TypeError, ValueError):
        raise BadQuote(f"unknown exchange segment {value!r}") from None


def from_xts_time(seconds: int, segment: str) -> datetime:
    """An exchange time of a segment (its name) as UTC."""
    return datetime.fromtimestamp(seconds + (XTS_EPOCH_OFFSET if segment in XTS_EPOCH_SEGMENTS else 0), UTC)


# Where each touchline value stands in a full (JSON) and a partial ('ltp:...,v:...') broadcast.
FULL_FIELDS = {
    "ltp": "LastTradedPrice",
    "open": "Open",
    "high": "High",
    "low": "Low",
    "close": "Close",
    "volume": "TotalTradedQuantity",
    "updated": "LastUpdateTime",
    "traded": "LastTradedTime",
}
PARTIAL_FIELDS = {
    "ltp": "ltp",
    "open": "o",
    "high": "h",
    "low": "l",
    "close": "c",
    "volume": "v",
    "updated": "lut",
    "traded": "ltt",
}


def parse_full(payload: str | bytes | dict) -> Touchline:
    """A `1501-json-full` payload (a JSON string, as the socket sends it, or the parsed object)."""
    return _read("touchline", lambda: _full(payload))


def _full(payload: str | bytes | dict) -> Touchline:
    data = untrusted.loads(payload, "touchline", MAX_EVENT_CHARS) if isinstance(payload, str | bytes) else payload
    touch = data["Touchline"]
    bid, ask = touch.get("BidInfo") or {}, touch.get("AskInfo") or {}
    levels = (_size(bid.get("Size")), _price(bid.get("Price"))), (_size(ask.get("Size")), _price(ask.get("Price")))
    key = (data["ExchangeSegment"], data["ExchangeInstrumentID"])
    return _touchline(key, touch, FULL_FIELDS, *levels)


def parse_partial(payload: str) -> Touchline:
    """A `1501-json-partial` payload: 't:1_2885,ltp:2900.05,ltq:10,v:5000,...,ai:0|size|price|n,bi:...'."""
    return _read("partial touchline", lambda: _partial(payload))


def _partial(payload: str) -> Touchline:
    if len(payload) > MAX_EVENT_CHARS:
        raise BadQuote(f"partial touchline of {len(payload)} characters")
    fields = dict(part.split(":", 1) for part in payload.strip().split(",") if ":" in part)
    segment, _, instrument = fields["t"].partition("_")
    return _touchline((segment, instrument), fields, PARTIAL_FIELDS, _level(fields.get("bi")), _level(fields.get("ai")))


def _read(what: str, parse) -> Touchline:
    """`parse()`, with whatever it could not read as a BadQuote (values are checked before any
    arithmetic: untrusted.py)."""
    try:
        return parse()
    except BadQuote:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, InvalidOperation, XtsResponseError) as exc:
        raise BadQuote(f"unreadable {what}: {type(exc).__name__}: {str(exc)[:200]}") from None


def _touchline(key: tuple, values: dict, names: dict[str, str], bid: tuple, ask: tuple) -> Touchline:
    """A touchline of instrument `key` (segment, exchange instrument id), its values read from
    `values` under `names` (FULL_FIELDS or PARTIAL_FIELDS), its best levels as (size, price)."""

    def value(name: str) -> object:
        return values.get(names[name])

    return Touchline(
        segment=segment_name(key[0]),
        exchange_instrument_id=untrusted.whole(key[1], "ExchangeInstrumentID", 1, MAX_ID),
        ltp=_price(value("ltp")),
        bid=bid[1],
        ask=ask[1],
        bid_qty=bid[0],
        ask_qty=ask[0],
        open=_price(value("open")),
        high=_price(value("high")),
        low=_price(value("low")),
        close=_price(value("close")),
        volume=_size(value("volume"), MAX_ID),
        exchange_time=_time(value("updated")) or _time(value("traded")),
    )


def _level(value: str | None) -> tuple[int, Decimal | None]:
    """An `ai`/`bi` group 'index|size|price|orders' -> (size, price)."""
    if not value:
        return 0, None
    parts = value.split("|")
    if len(parts) < 3:
        raise BadQuote(f"unreadable price level {untrusted.shown(value)}")
    return _size(parts[1]), _price(parts[2])


def _price(value: object) -> Decimal | None:
    """A positive price with at most 4 places, or None (XTS sends 0 for 'none'); a negative one, or
    one past MAX_PRICE, is no price at all (BadQuote)."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    price = untrusted.number(value, "price")
    if price < 0 or price >= MAX_PRICE:
        raise BadQuote(f"price {untrusted.shown(value)} is out of range")
    if price == 0:
        return None
    return price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP).normalize() if _places(price) > 4 else price


def _places(price: Decimal) -> int:
    exponent = price.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _size(value: object, maximum: int = MAX_QUANTITY) -> int:
    """A quantity (a level's size, the day volume): a fraction is cut, a negative one refused."""
    if value is None or value == "":
        return 0
    size = int(untrusted.number(value, "quantity"))
    if not 0 <= size <= maximum:
        raise BadQuote(f"quantity {untrusted.shown(value)} is out of range")
    return size


def _time(value: object) -> int | None:
    """XTS seconds; None when absent, zero, negative or past LAST_SECOND (no time at all)."""
    if value is None or value == "":
        return None
    seconds = int(untrusted.number(value, "time"))
    return seconds if 0 < seconds < LAST_SECOND else None


def _text(price: Decimal | None) -> str | None:
    return None if price is None else format(price, "f")


class TickMaker:
    """Touchlines -> ticks, with the per-instrument state a tick needs (seq, last day volume)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.last: dict[int, tuple[int, int]] = {}  # instrument_id -> (seq, day volume)

    def tick(self, touch: Touchline, instrument_id: int) -> dict | None:
        """Our tick for a touchline, or None while the instrument has not traded (no ltp)."""
        if touch.ltp is None:
            return None
        now = self.clock()
        seq, volume = self.last.get(instrument_id, (0, None))
        seq = max(seq + 1, int(now * 1_000_000))
        if volume is None:
            ltq = 0
        elif touch.volume >= volume:
            ltq = touch.volume - volume
        else:  # a new session's volume starts again from zero
            ltq = touch.volume
        self.last[instrument_id] = (seq, touch.volume)
        received = datetime.fromtimestamp(now, UTC)
        ts = received
        if touch.exchange_time is not None:
            exchange = from_xts_time(touch.exchange_time, touch.segment)
            if abs(exchange - received) <= MAX_CLOCK_SKEW:
                ts = exchange
        return {
            "instrument_id": instrument_id,
            "exchange_segment": touch.segment,
            "exchange_instrument_id": touch.exchange_instrument_id,
            "seq": seq,
            "ts": format_ts(ts),
            "ltp": _text(touch.ltp),
            "bid": _text(touch.bid),
            "ask": _text(touch.ask),
            "open": _text(touch.open),
            "high": _text(touch.high),
            "low": _text(touch.low),
            "close": _text(touch.close),
            "ltq": ltq,
            "bid_qty": touch.bid_qty,
            "ask_qty": touch.ask_qty,
            "volume": touch.volume,
        }
