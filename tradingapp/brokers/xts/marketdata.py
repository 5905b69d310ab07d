"""XTS Market Data REST API: instrument master, quotes (the QuoteSource's REST quote) and OHLC.

Its own login (a separate app key) under a configurable prefix (/apimarketdata on most
deployments). Quotes answer `listQuotes` as JSON strings (parsed twice), at most 50 instruments per
request. OHLC bars are one string under the misspelt key `dataReponse`, IST wall clock as epoch
seconds. Master lines: cash 22 fields, futures 21, options 23; older servers lack the tail. A line
that cannot be read (or of an instrument type we do not trade) is skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from tradingapp.brokers.xts import untrusted
from tradingapp.brokers.xts.errors import XtsResponseError
from tradingapp.brokers.xts.mapping import IST, to_decimal, to_int
from tradingapp.brokers.xts.session import XtsSession
from tradingapp.brokers.xts.untrusted import LAST_SECOND, MAX_ID
from tradingapp.domain.feed import format_ts

SEGMENT_CODES = {"NSECM": 1, "NSEFO": 2, "NSECD": 3, "BSECM": 11, "BSEFO": 12, "MCXFO": 51}
SEGMENT_NAMES = {code: name for name, code in SEGMENT_CODES.items()}
TOUCHLINE = 1501
MAX_QUOTES = 50
XTS_EPOCH_OFFSET = 315513000  # Unix time = XTS exchange time + this (1980-01-01 00:00 IST), segments 1-3
XTS_EPOCH_SEGMENTS = frozenset({1, 2, 3})  # other segments' (BSE, MCX) exchange times: taken as Unix seconds
MAX_CLOCK_SKEW = timedelta(hours=12)  # an exchange time further than this from our clock is not believed
IST_SECONDS = 19800  # OHLC bar times are IST wall clock read as epoch seconds
EQUITY, FUTURE, OPTION = 8, 1, 2
OPTION_TYPES = {"3": "CE", "4": "PE", "CE": "CE", "PE": "PE"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class MasterInstrument:
    exchange_segment: str
    exchange_instrument_id: int
    instrument_type: int  # 8 equity, 1 future, 2 option
    name: str
    symbol: str  # XTS Description: the trading symbol (RELIANCE-EQ, NIFTY26JANFUT)
    series: str
    lot_size: int
    tick_size: Decimal
    freeze_quantity: int | None
    display_name: str
    isin: str = ""
    expiry: date | None = None
    strike: Decimal | None = None
    option_type: str | None = None  # CE | PE
    underlying_instrument_id: int | None = None
    underlying_index_name: str = ""


@dataclass(frozen=True)
class MasterResult:
    instruments: list[MasterInstrument]
    skipped: int  # lines that did not parse (or of an instrument type we do not trade)


@dataclass(frozen=True)
class Bar:
    ts: datetime  # UTC start of the bar
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int
    oi: int


# -- instrument master ---------------------------------------------------------------------------
def segment_name(value: object) -> str:
    text = untrusted.text(value, "ExchangeSegment", limit=16).upper()
    if text.isdigit() and int(text) in SEGMENT_NAMES:
        return SEGMENT_NAMES[int(text)]
    if text not in SEGMENT_CODES:
        raise XtsResponseError(f"unknown exchange segment {text[:16]!r}")
    return text


def _expiry(text: str) -> date:
    """The contract's date as printed ('2026-01-29T14:30:00' or '29-01-2026 14:30:00'): no zone shift."""
    text = text.strip()
    try:
        if len(text) >= 10 and text[4] == "-":
            return date.fromisoformat(text[:10])
        day, month, year = text[:10].split("-")
        return date(int(year), int(month), int(day))
    except ValueError:
        raise XtsResponseError(f"unreadable expiry {text[:30]!r}") from None


def parse_master_line(line: str) -> MasterInstrument | None:
    """One master line; None for an instrument type we do not trade; XtsResponseError when unreadable."""
    f = [part.strip() for part in line.split("|")]
    if len(f) < 14:
        raise XtsResponseError(f"master line has {len(f)} fields, at least 14 expected")
    kind = to_int(f[2], "InstrumentType")
    tick = to_decimal(f[11], "TickSize")
    if tick <= 0:
        raise XtsResponseError("TickSize must be positive")
    head = {
        "exchange_segment": segment_name(f[0]),
        "exchange_instrument_id": to_int(f[1], "ExchangeInstrumentID", 1, MAX_ID),
        "instrument_type": kind,
        "name": f[3],
        "symbol": f[4] or f[6],
        "series": f[5],
        "freeze_quantity": to_int(f[10], "FreezeQty") if f[10] else None,
        "tick_size": tick,
        "lot_size": to_int(f[12], "LotSize", 1),
    }
    tail = f[14:]
    if kind == EQUITY:
        return MasterInstrument(**head, display_name=_at(tail, 0) or f[3], isin=_at(tail, 1))
    if kind == FUTURE and len(tail) >= 3:
        return MasterInstrument(**head, display_name=_at(tail, 3) or f[4], **_derivative(tail))
    if kind == OPTION and len(tail) >= 5:
        option_type = OPTION_TYPES.get(tail[4].upper())
        strike = to_decimal(tail[3], "StrikePrice")
        if option_type is None or strike <= 0:
            raise XtsResponseError(f"option line with OptionType {tail[4][:8]!r} and StrikePrice {tail[3][:16]!r}")
        return MasterInstrument(
            **head, display_name=_at(tail, 5) or f[4], strike=strike, option_type=option_type, **_derivative(tail)
        )
    if kind in (FUTURE, OPTION):
        raise XtsResponseError(f"derivative line with {len(f)} fields")
    return None


def _at(values: list[str], index: int) -> str:
    return values[index] if len(values) > index else ""


def _derivative(tail: list[str]) -> dict:
    underlying = tail[0]
    return {
        "underlying_instrument_id": to_int(underlying, "UnderlyingInstrumentId", -1, MAX_ID) if underlying else None,
        "underlying_index_name": tail[1],
        "expiry": _expiry(tail[2]),
    }


def parse_master(text: object) -> MasterResult:
    if not isinstance(text, str):
        raise XtsResponseError(f"instrument master answered {type(text).__name__}, not text")
    instruments, skipped = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            instrument = parse_master_line(line)
        except XtsResponseError:
            instrument = None
        if instrument is None:
            skipped += 1
        else:
            instruments.append(instrument)
    return MasterResult(instruments, skipped)


# -- quotes ------------------------------------------------------------------------------------
def _xts_time(value: object, segment: int | None) -> datetime | None:
    """An exchange time as UTC; None when absent, zero or implausible (another epoch than assumed)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str) or str(value).strip() == "":
        return None
    seconds = int(untrusted.number(value, "exchange time"))
    if not 0 < seconds < LAST_SECOND:
        return None
    moment = datetime.fromtimestamp(seconds + (XTS_EPOCH_OFFSET if segment in XTS_EPOCH_SEGMENTS else 0), UTC)
    return moment if abs(moment - datetime.now(UTC)) <= MAX_CLOCK_SKEW else None


def _segment_code(value: object) -> int | None:
    try:
        return SEGMENT_CODES[segment_name(value)]
    except XtsResponseError:
        return None


def _quote_price(value: object, name: str) -> str | None:
    number = to_decimal(value, name, blank_ok=True)
    return None if number is None or number <= 0 else str(number)


def cache_quote(raw: dict) -> dict | None:
    """A 1501 quote in the quote cache's shape (prices as decimal strings), None without a price."""
    touch = raw.get("Touchline")
    if not isinstance(touch, dict):
        raise XtsResponseError("quote has no Touchline")
    bid, ask = touch.get("BidInfo") or {}, touch.get("AskInfo") or {}
    if not isinstance(bid, dict) or not isinstance(ask, dict):
        raise XtsResponseError("quote's BidInfo/AskInfo are not objects")
    ltp = _quote_price(touch.get("LastTradedPrice"), "LastTradedPrice")
    if ltp is None:
        return None
    segment = _segment_code(raw.get("ExchangeSegment"))
    ts = (
        _xts_time(touch.get("LastUpdateTime"), segment)
        or _xts_time(touch.get("LastTradedTime"), segment)
        or _xts_time(raw.get("ExchangeTimeStamp"), segment)
        or datetime.now(UTC)
    )
    return {
        "ltp": ltp,
        "ltq": to_int(touch.get("LastTradedQunatity", touch.get("LastTradedQuantity", 0)), "LastTradedQuantity"),
        "bid": _quote_price(bid.get("Price"), "BidInfo.Price"),
        "ask": _quote_price(ask.get("Price"), "AskInfo.Price"),
        "bid_qty": to_int(bid.get("Size", 0), "BidInfo.Size"),
        "ask_qty": to_int(ask.get("Size", 0), "AskInfo.Size"),
        "open": _quote_price(touch.get("Open"), "Open"),
        "high": _quote_price(touch.get("High"), "High"),
        "low": _quote_price(touch.get("Low"), "Low"),
        "close": _quote_price(touch.get("Close"), "Close"),
        "volume": to_int(touch.get("TotalTradedQuantity", 0), "TotalTradedQuantity", 0, MAX_ID),
        "ts": format_ts(ts),
    }


def parse_quotes(result: object) -> list[dict]:
    """`listQuotes`: JSON strings (or objects), each parsed to a dict."""
    items = result.get("listQuotes") if isinstance(result, dict) else None
    if not isinstance(items, list):
        raise XtsResponseError("quotes answer has no listQuotes list")
    quotes = []
    for item in items:
        if isinstance(item, str):
            item = untrusted.loads(item, "a listQuotes entry", limit=untrusted.MAX_EVENT_CHARS)
        if not isinstance(item, dict):
            raise XtsResponseError("a listQuotes entry is not an object")
        quotes.append(item)
    return quotes


# -- OHLC --------------------------------------------------------------------------------------
def ohlc_time(moment: datetime) -> str:
    """'Dec 02 2019 091500': IST wall clock, month names without the locale's help."""
    ist = moment.astimezone(IST)
    return f"{MONTHS[ist.month - 1]} {ist:%d %Y %H%M%S}"


def parse_bars(result: object) -> list[Bar]:
    text = result.get("dataReponse", result.get("dataResponse")) if isinstance(result, dict) else None
    if not isinstance(text, str):
        raise XtsResponseError("OHLC answer has no dataReponse text")
    bars = []
    for chunk in text.split(","):
        if not chunk.strip():
            continue
        f = chunk.strip().split("|")
        if len(f) < 6:
            raise XtsResponseError(f"OHLC bar with {len(f)} fields")
        prices = [to_decimal(v, name) for v, name in zip(f[1:5], ("open", "high", "low", "close"), strict=True)]
        start = datetime.fromtimestamp(to_int(f[0], "bar time", 1, LAST_SECOND) - IST_SECONDS, UTC)
        oi = to_int(f[6], "oi", 0, MAX_ID) if len(f) > 6 and f[6] else 0
        bars.append(Bar(start, *prices, volume=to_int(f[5], "volume", 0, MAX_ID), oi=oi))
    return bars


class MarketData:
    def __init__(self, session: XtsSession):
        self.session = session

    def instrument_master(self, segments: list[str]) -> MasterResult:
        return parse_master(self.session.call("POST", "/instruments/master", {"exchangeSegmentList": segments}))

    def quotes(self, instruments: list[tuple[str, int]], code: int = TOUCHLINE) -> list[dict]:
        """Quotes of (segment, exchange instrument id) pairs, MAX_QUOTES per request."""
        found = []
        for start in range(0, len(instruments), MAX_QUOTES):
            chunk = [
                {"exchangeSegment": SEGMENT_CODES[segment_name(seg)], "exchangeInstrumentID": int(ex_id)}
                for seg, ex_id in instruments[start : start + MAX_QUOTES]
            ]
            body = {"instruments": chunk, "xtsMessageCode": code, "publishFormat": "JSON"}
            found += parse_quotes(self.session.call("POST", "/instruments/quotes", body))
        return found

    def quote(self, segment: str, exchange_instrument_id: int) -> dict | None:
        """One instrument's touchline in the quote cache's shape; None when XTS has none."""
        code = SEGMENT_CODES[segment_name(segment)]
        for raw in self.quotes([(segment, exchange_instrument_id)]):
            same = untrusted.same(raw.get("ExchangeSegment"), str(code), segment_name(segment))
            if same and untrusted.same(raw.get("ExchangeInstrumentID"), str(exchange_instrument_id)):
                return cache_quote(raw)
        return None

    def ohlc(
        self, segment: str, exchange_instrument_id: int, start: datetime, end: datetime, compression: int | str = 60
    ) -> list[Bar]:
        params = {
            "exchangeSegment": segment_name(segment),
            "exchangeInstrumentID": exchange_instrument_id,
            "startTime": ohlc_time(start),
            "endTime": ohlc_time(end),
            "compressionValue": compression,
        }
        return parse_bars(self.session.call("GET", "/instruments/ohlc", params))
