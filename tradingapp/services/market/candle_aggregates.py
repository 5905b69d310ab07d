"""Coarse candles read from TimescaleDB's continuous aggregates (migration 0015) where they give
exactly what re-bucketing candles_1m gives, and only then.

An aggregate serves a request when its buckets are the request's (an intraday one starts its
buckets where the zone's clock does at the range start, e.g. 1h at :30 UTC for Asia/Kolkata; 1d
is one zone's local days) and none of its materialized buckets in the range is out of date
(`candle_aggregate_stale`: a write into candles_1m below TimescaleDB's invalidation threshold that
no refresh has folded in yet: a backfill, a tick more than an hour late, a TRUNCATE). Buckets past
the aggregate's watermark are computed from candles_1m at read time (real-time aggregation), so
the newest candles are always current. The aggregate gives the whole buckets of [start, end); the
last, partial bucket (end inside it) is re-bucketed from candles_1m, as the route always did.

Another zone or a stale range is re-bucketed from the candles_1m hypertable (with TimescaleDB's
first()/last(): one pass, where the plain store's per-candle open/close lookups would each cross
every chunk). Plain PostgreSQL and SQLite return None: the caller re-buckets as it always did.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tradingapp.domain.candles import INTERVALS, bucket_start, utc_offset
from tradingapp.extensions import db
from tradingapp.models.market import CandleAggregate
from tradingapp.models.types import Price, UTCDateTime

# The aggregate for this request, if any, and whether its materialized part is current: one statement.
PICK = sa.text(
    "SELECT view_name, origin_seconds, zone, candle_aggregate_stale(view_name, :lo, :hi) AS stale"
    f" FROM {CandleAggregate.__tablename__} WHERE candle_interval = :interval"
).bindparams(sa.bindparam("lo", type_=UTCDateTime), sa.bindparam("hi", type_=UTCDateTime))
COLUMNS = {
    "bucket": UTCDateTime(),
    "open": Price(18, 4),
    "high": Price(18, 4),
    "low": Price(18, 4),
    "close": Price(18, 4),
    "volume": sa.BigInteger(),
}


def whole_buckets_end(interval: str, zone: str, start: datetime, end: datetime) -> datetime:
    """The start of the bucket holding `end` on the request's grid (its origin: the zone's offset at
    `start`, as the re-bucketing's): [start, this) is whole buckets."""
    if interval == "1d":
        return bucket_start(end, interval, zone)
    step, offset = INTERVALS[interval], utc_offset(zone, start)
    epoch = int(end.timestamp())
    aligned = (epoch + offset) // step * step - offset
    return datetime.fromtimestamp(aligned, UTC)


def _pick(interval: str, zone: str, start: datetime, stop: datetime):
    """(view or None, whether this store has aggregates at all): the view whose buckets are the
    request's and whose materialized part of [start, stop) is current."""
    row = db.session.execute(PICK, {"interval": interval, "lo": start, "hi": max(stop, start)}).one_or_none()
    if row is None:
        return None, False
    if row.stale or stop <= start:
        return None, True
    if interval == "1d":
        lined_up = row.zone == zone
    else:
        lined_up = -utc_offset(zone, start) % INTERVALS[interval] == row.origin_seconds
    return (row.view_name if lined_up else None), True


def pick_aggregate(interval: str, zone: str, start: datetime, stop: datetime) -> str | None:
    """The view whose buckets are the request's and whose materialized part of [start, stop) is
    current, or None."""
    return _pick(interval, zone, start, stop)[0]


def aggregate_rows(view: str, instrument_id: int, start: datetime, stop: datetime) -> list[dict]:
    """The view's candles of one instrument in [start, stop), oldest first."""
    table = sa.table(view, sa.column("instrument_id", sa.Integer()), *(sa.column(n, t) for n, t in COLUMNS.items()))
    c = table.c
    rows = db.session.execute(
        sa.select(*(c[name] for name in COLUMNS))
        .where(c.instrument_id == instrument_id, c.bucket >= start, c.bucket < stop)
        .order_by(c.bucket)
    )
    return [
        {"ts": r.bucket, "open": r.open, "high": r.high, "low": r.low, "close": r.close, "volume": int(r.volume)}
        for r in rows
    ]


def from_aggregates(instrument_id: int, interval: str, start: datetime, end: datetime, zone: str, rebucket):
    """Candles of [start, end) (start on a bucket boundary) on a TimescaleDB store: the whole buckets
    from an aggregate where one may serve them, the rest re-bucketed by `rebucket(lo, hi)` (the
    hypertable's re-bucketing, on the request's grid). None on any other store: the caller
    re-buckets as it always did."""
    if interval not in INTERVALS or interval == "1m" or db.session.get_bind().dialect.name != "postgresql":
        return None
    stop = whole_buckets_end(interval, zone, start, end)
    view, timescaledb = _pick(interval, zone, start, stop)
    if not timescaledb:
        return None
    if view is None:
        return rebucket(start, end)
    candles = aggregate_rows(view, instrument_id, start, stop)
    if stop < end:
        candles.extend(rebucket(stop, end))
    return candles
