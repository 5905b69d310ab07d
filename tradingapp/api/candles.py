"""GET /api/v1/instruments/{id}/candles: OHLCV from the one-minute candle table."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.domain.candles import DEFAULT_SPANS, INTERVALS, MAX_CANDLES, bucket_count, bucket_start
from tradingapp.errors import validation_error
from tradingapp.models.types import dec, iso
from tradingapp.replicas import read_only
from tradingapp.security.auth import login_required
from tradingapp.services.market.candles import query_candles
from tradingapp.services.market.instruments import get_instrument

EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)

bp = Blueprint("candles", __name__, url_prefix="/api/v1/instruments")


@bp.get("/<int:instrument_id>/candles")
@doc(
    f"OHLCV candles of [start, end), oldest first (interval {'|'.join(INTERVALS)}, default 1m; end defaults"
    f" to now, start to a span per interval; at most {MAX_CANDLES} candles, 400 past it; 1d is the session day)",
    response=s.CandleList,
    params=("interval", "start", "end"),
    errors=("400", "401", "404"),
)
@login_required()
@read_only
def get_candles(instrument_id: int):
    """?interval=1m|5m|15m|30m|1h|1d&start=&end= -> {"items": [...]}, oldest first. The range is
    [start, end); start is moved back to its bucket's start so the first candle is whole."""
    interval = request.args.get("interval", "1m")
    if interval not in INTERVALS:
        raise validation_error(f"interval must be one of {', '.join(INTERVALS)}", field="interval")
    zone = current_app.config["SESSION_TIMEZONE"]
    start, end = _range(interval, zone)
    get_instrument(instrument_id)  # 404 for an unknown one
    candles = query_candles(instrument_id, interval, start, end, zone)
    return jsonify(s.CandleList.dump({"items": [_serialize(c) for c in candles]}))


def _range(interval: str, zone: str) -> tuple[datetime, datetime]:
    end = _time("end") or datetime.now(UTC)
    start = _time("start") or end - DEFAULT_SPANS[interval]
    if start >= end:
        raise validation_error("start must be before end", field="start")
    start = bucket_start(start, interval, zone)
    count = bucket_count(start, end, interval)
    if count > MAX_CANDLES:
        raise validation_error(
            f"the range holds up to {count} {interval} candles; at most {MAX_CANDLES} per request: "
            f"narrow start/end to at most {MAX_CANDLES} x {interval}, or use a coarser interval",
            field="start",
            max_candles=MAX_CANDLES,
            requested=count,
        )
    return start, end


def _time(name: str) -> datetime | None:
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise validation_error(f"{name} must be an ISO-8601 time", field=name) from None
    if value.tzinfo is None:
        raise validation_error(f"{name} must carry a time zone (Z or +05:30)", field=name)
    if not EARLIEST <= value <= LATEST:
        raise validation_error(f"{name} must be between 1971 and 9000", field=name)
    return value.astimezone(UTC)


def _serialize(candle: dict) -> dict:
    return {
        "ts": iso(candle["ts"]),
        **{name: dec(candle[name]) for name in ("open", "high", "low", "close")},
        "volume": candle["volume"],
    }
