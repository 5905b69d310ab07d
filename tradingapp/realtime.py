"""Redis side of market data and user events: the quote cache and the pub/sub channels.

Writers (the consumer) and readers (REST quotes, the websocket hub, the paper broker) share
these names, so they live in one place.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
import redis
from flask import current_app

QUOTE_FIELDS = (
    "instrument_id", "ltp", "ltq", "bid", "ask", "bid_qty", "ask_qty",
    "open", "high", "low", "close", "volume", "ts",
)  # fmt: skip


def _ns() -> str:
    ns = current_app.config.get("NAMESPACE", "")
    return f"{ns}:" if ns else ""


def quotes_channel() -> str:
    """Every quote update of every instrument; the websocket hub routes them."""
    return f"{_ns()}md.quotes"


def user_events_channel() -> str:
    """Order, trade and position updates for all users; the hub routes by user_id."""
    return f"{_ns()}user.events"


def quote_key(instrument_id: int) -> str:
    return f"{_ns()}quote:{instrument_id}"


def store_quote(pipe: redis.client.Pipeline, quote: dict, ttl: int) -> None:
    """Queue the write of one quote (strings only) into the cache on a pipeline."""
    key = quote_key(int(quote["instrument_id"]))
    pipe.hset(key, mapping={k: str(v) for k, v in quote.items() if v is not None})
    pipe.expire(key, ttl)


def publish_quote(pipe: redis.client.Pipeline, quote: dict) -> None:
    pipe.publish(quotes_channel(), orjson.dumps(quote))


def publish_user_event(client: redis.Redis, user_id: str, kind: str, payload: dict) -> None:
    """kind is 'order', 'trade' or 'position'; the hub delivers {"type": kind, kind: payload}."""
    client.publish(user_events_channel(), orjson.dumps({"user_id": user_id, "type": kind, kind: payload}))


def read_quotes(client: redis.Redis, instrument_ids: list[int]) -> dict[int, dict]:
    """Cached quotes by instrument id (missing ones left out), values as strings."""
    pipe = client.pipeline(transaction=False)
    for iid in instrument_ids:
        pipe.hgetall(quote_key(iid))
    quotes = {}
    for iid, raw in zip(instrument_ids, pipe.execute(), strict=True):
        if raw:
            quote = {k.decode(): v.decode() for k, v in raw.items()}
            quote["instrument_id"] = iid
            quotes[iid] = quote
    return quotes


def last_price(quote: dict | None) -> Decimal | None:
    if not quote or not quote.get("ltp"):
        return None
    return Decimal(quote["ltp"])
