"""Latest quotes for GET /quotes: the Redis quote cache the consumer keeps, with a stale or missing
quote replaced by the broker's REST quote when the broker offers one (QuoteSource in
brokers/base.py; paper: none)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import redis
import sqlalchemy as sa
from flask import current_app

from tradingapp.brokers import BrokerError, get_broker
from tradingapp.domain.errors import Unavailable
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument
from tradingapp.realtime import is_stale, read_quotes

log = logging.getLogger(__name__)


def latest_quotes(instrument_ids: list[int]) -> tuple[dict[int, dict], set[int]]:
    """(the quotes found by instrument id, the ids whose quote is stale): a quote is stale when its
    feed has been silent past QUOTE_STALE_AFTER and the broker had no fresher one."""
    try:
        quotes = read_quotes(get_redis(), instrument_ids)
    except redis.RedisError:
        raise Unavailable("quote cache unavailable") from None
    now, stale_after = datetime.now(UTC), current_app.config["QUOTE_STALE_AFTER"]
    stale = {iid for iid in instrument_ids if iid not in quotes or is_stale(quotes[iid], now, stale_after)}
    fresh = broker_quotes(sorted(stale)) if stale else {}
    quotes.update(fresh)
    return quotes, stale - fresh.keys()


def broker_quotes(instrument_ids: list[int]) -> dict[int, dict]:
    """The broker's REST quotes for stale or missing instruments, when the broker has the hook;
    an unreachable broker leaves the cached quotes as they are."""
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
