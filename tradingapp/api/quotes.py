"""Latest quotes, straight from the Redis quote cache the consumer keeps."""

from __future__ import annotations

import redis
from flask import Blueprint, jsonify, request

from tradingapp.auth import login_required
from tradingapp.errors import APIError, validation_error
from tradingapp.extensions import get_redis
from tradingapp.realtime import QUOTE_FIELDS, read_quotes

bp = Blueprint("quotes", __name__, url_prefix="/api/v1/quotes")

MAX_IDS = 100
INT_FIELDS = ("instrument_id", "ltq", "bid_qty", "ask_qty", "volume")


@bp.get("")
@login_required()
def get_quotes():
    """GET /api/v1/quotes?instrument_ids=1,2,3 -> {"items": [...], "missing": [...]}.

    `items` holds one quote per requested instrument that has a cached quote, in request order
    (duplicates collapsed): prices as decimal strings, quantities as integers. `missing` lists
    the requested ids with no cached quote (unknown instrument, or no tick within QUOTE_TTL).
    """
    ids = parse_instrument_ids(request.args.get("instrument_ids"))
    try:
        quotes = read_quotes(get_redis(), ids)
    except redis.RedisError:
        raise APIError(503, "unavailable", "quote cache unavailable") from None
    return jsonify(
        items=[serialize(quotes[iid]) for iid in ids if iid in quotes],
        missing=[iid for iid in ids if iid not in quotes],
    )


def parse_instrument_ids(raw: str | None) -> list[int]:
    if raw is None or not raw.strip():
        raise validation_error("instrument_ids is required", field="instrument_ids")
    ids: list[int] = []
    for part in raw.split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or len(part) > 10 or int(part) <= 0:
            raise validation_error(
                "instrument_ids must be positive integers separated by commas", field="instrument_ids", value=part[:20]
            )
        if int(part) not in ids:
            ids.append(int(part))
    if len(ids) > MAX_IDS:
        raise validation_error(f"at most {MAX_IDS} instrument_ids per request", field="instrument_ids")
    return ids


def serialize(cached: dict) -> dict:
    """Cached hash values are strings; quantities go back to integers, absent fields to null."""
    quote = {}
    for name in QUOTE_FIELDS:
        value = cached.get(name)
        quote[name] = int(value) if name in INT_FIELDS and value is not None else value
    return quote
