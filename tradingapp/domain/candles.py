"""Candle arithmetic without a database: a batch of ticks folded into one-minute candles, and the
buckets of the coarser intervals the candles endpoint re-buckets them into.

Intraday buckets (5m..1h) are aligned on the session timezone's clock (a 1h candle starts at
10:00 local, also where the zone is UTC+05:30); a 1d candle is one local date.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE = 60
INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400}
# Default span of a request without `start`, per interval (within MAX_CANDLES).
DEFAULT_SPANS = {
    "1m": timedelta(days=1),
    "5m": timedelta(days=7),
    "15m": timedelta(days=30),
    "30m": timedelta(days=60),
    "1h": timedelta(days=90),
    "1d": timedelta(days=365),
}
MAX_CANDLES = 5000


def minute_of(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def aggregate(ticks: list[dict]) -> list[dict]:
    """One candle per (instrument_id, minute) of the ticks (dicts with instrument_id, ts, seq, ltp,
    ltq): open/close are the prices of the earliest/latest tick by (ts, seq), whose (ts, seq) the
    candle keeps (first_ts/first_seq, last_ts/last_seq), volume the sum of ltq. Sorted by
    (instrument_id, bucket), so concurrent upserts lock rows in one order."""
    candles: dict[tuple[int, datetime], dict] = {}
    for tick in sorted(ticks, key=lambda t: (t["ts"], t["seq"])):
        key = (tick["instrument_id"], minute_of(tick["ts"]))
        price = tick["ltp"]
        candle = candles.get(key)
        if candle is None:
            candles[key] = {
                "instrument_id": key[0],
                "bucket": key[1],
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": tick["ltq"],
                "first_ts": tick["ts"],
                "last_ts": tick["ts"],
                "first_seq": tick["seq"],
                "last_seq": tick["seq"],
            }
            continue
        candle["high"] = max(candle["high"], price)
        candle["low"] = min(candle["low"], price)
        candle["close"] = price
        candle["volume"] += tick["ltq"]
        candle["last_ts"] = tick["ts"]
        candle["last_seq"] = tick["seq"]
    return [candles[key] for key in sorted(candles)]


def utc_offset(zone: str, at: datetime) -> int:
    """Seconds the zone is ahead of UTC at a moment."""
    return int(at.astimezone(ZoneInfo(zone)).utcoffset().total_seconds())


def bucket_start(ts: datetime, interval: str, zone: str) -> datetime:
    """The start (UTC) of the interval's bucket holding ts: local midnight for 1d, else the
    multiple of the interval on the zone's clock."""
    if interval == "1d":
        local = ts.astimezone(ZoneInfo(zone))
        return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    step = INTERVALS[interval]
    offset = utc_offset(zone, ts)
    epoch = int(ts.timestamp())
    return datetime.fromtimestamp((epoch + offset) // step * step - offset, UTC)


def bucket_count(start: datetime, end: datetime, interval: str) -> int:
    """The most candles [start, end) can hold (start on a bucket boundary)."""
    step = INTERVALS[interval]
    return -(-int((end - start).total_seconds()) // step)
