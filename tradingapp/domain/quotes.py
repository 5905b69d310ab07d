"""The quote: the latest state of one instrument's market. One shape from the tick ingest through the
Redis cache to GET /quotes, the socket and the OpenAPI document (README, "Market data")."""

from __future__ import annotations

from typing import TypedDict, get_type_hints

from tradingapp.domain.feed import format_ts


class Quote(TypedDict):
    """Prices as exact decimal strings, quantities as integers, `ts` ISO-8601 UTC; None where the
    source had no value (the feed always gives the quantities). `close` is the previous session's
    close, the reference of the day's change."""

    instrument_id: int
    ltp: str
    ltq: int | None
    bid: str | None
    ask: str | None
    bid_qty: int | None
    ask_qty: int | None
    open: str | None
    high: str | None
    low: str | None
    close: str | None
    volume: int | None
    ts: str


_TYPES = get_type_hints(Quote)
QUOTE_FIELDS = tuple(_TYPES)
INTEGER_FIELDS = frozenset(name for name, kind in _TYPES.items() if kind in (int, int | None))
QUANTITY_FIELDS = INTEGER_FIELDS - {"instrument_id"}
PRICE_FIELDS = tuple(name for name, kind in _TYPES.items() if kind == str | None)
OHLC_FIELDS = ("open", "high", "low", "close")


def quote_of_tick(tick: dict) -> Quote:
    """The quote of a parsed tick (services/market/ticks.parse_tick: prices as strings, ts a datetime)."""
    quote = {name: tick[name] for name in QUOTE_FIELDS}
    quote["ltp"] = str(quote["ltp"])
    for name in PRICE_FIELDS:
        if quote[name] is not None:
            quote[name] = str(quote[name])
    quote["ts"] = format_ts(tick["ts"])
    return quote


def quote_from_cache(cached: dict) -> Quote:
    """A quote as the cache holds it (every value a string, a field the tick lacked absent) or as a
    broker's REST quote comes: quantities back to integers, absent fields None."""
    quote = {}
    for name in QUOTE_FIELDS:
        value = cached.get(name)
        quote[name] = (
            int(value) if value is not None and (name in QUANTITY_FIELDS or name == "instrument_id") else value
        )
    return quote
