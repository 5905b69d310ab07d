"""Latest quotes, straight from the Redis quote cache the consumer keeps."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request

from tradingapp.brokers import BrokerError, get_broker
from tradingapp.errors import APIError, validation_error
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument
from tradingapp.realtime import QUOTE_FIELDS, is_stale, read_quotes
from tradingapp.security.auth import login_required

log = logging.getLogger(__name__)

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
    Each item carries `stale`: its feed has been silent longer than QUOTE_STALE_AFTER. A stale or
    missing quote is replaced by the broker's REST quote when the broker offers one (paper: no).
    """
    ids = parse_instrument_ids(request.args.get("instrument_ids"))
    try:
        quotes = read_quotes(get_redis(), ids)
    except redis.RedisError:
        raise APIError(503, "unavailable", "quote cache unavailable") from None
    now, stale_after = datetime.now(UTC), current_app.config["QUOTE_STALE_AFTER"]
    stale = {iid for iid in ids if iid not in quotes or is_stale(quotes[iid], now, stale_after)}
    fresh = broker_quotes(sorted(stale)) if stale else {}
    quotes.update(fresh)
    return jsonify(
        items=[{**serialize(quotes[iid]), "stale": iid in stale and iid not in fresh} for iid in ids if iid in quotes],
        missing=[iid for iid in ids if iid not in quotes],
    )


def broker_quotes(instrument_ids: list[int]) -> dict[int, dict]:
    """The broker's REST quotes for stale or missing instruments, when the broker has the hook
    (QuoteSource in brokers/base.py); an unreachable broker leaves the cached quotes as they are."""
    source = getattr(get_broker(), "quote", None)
    if source is None:
        return {}
    found = {}
    for instrument in db.session.scalars(sa.select(Instrument).where(Instrument.id.in_(instrument_ids))):
        try:
            quote = source(instrument)
        except BrokerError as exc:
            log.warning("event=broker_quote_failed instrument_id=%s error=%s", instrument.id, exc)
            continue
        if quote is not None:
            found[instrument.id] = {**quote, "instrument_id": instrument.id}
    return found


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
