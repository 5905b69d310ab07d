"""One-minute candles: kept up to date from each stored tick batch, and read back re-bucketed.

The upsert runs in the tick insert's transaction and is fed only the ticks that insert really
stored, so a redelivered batch (all duplicates) adds no volume twice. On Postgres the batch is
folded in SQL (`candles_from`, fed by the tick INSERT's RETURNING: no tick row comes back to
Python); on SQLite in Python (`upsert_candles`). Both merge into an existing candle the same way
(`_on_conflict`): by (ts, seq), the tick's order, never by arrival (XTS times are whole seconds,
and a same-second tick with a lower seq may come in a later batch: a requeue, a second consumer).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from tradingapp.domain.candles import INTERVALS, aggregate, bucket_start, utc_offset
from tradingapp.extensions import db, upsert_insert
from tradingapp.models import Candle1m
from tradingapp.models.types import UTCDateTime
from tradingapp.services.market.candle_aggregates import from_aggregates

PAGE = 1000  # SQLite: candles per statement (its bind parameter limit)


# Postgres types of the candle columns, for the column-array (unnest) upsert.
CANDLE_COLUMNS = {
    "instrument_id": "integer",
    "bucket": "timestamptz",
    "open": "numeric",
    "high": "numeric",
    "low": "numeric",
    "close": "numeric",
    "volume": "bigint",
    "first_ts": "timestamptz",
    "last_ts": "timestamptz",
    "first_seq": "bigint",
    "last_seq": "bigint",
}


def upsert_candles(ticks: list[dict]) -> int:
    """Fold newly stored ticks into candles_1m in one statement (no commit: the caller's
    transaction). Returns the number of candles touched."""
    candles = aggregate(ticks)
    if not candles:
        return 0
    if db.session.get_bind().dialect.name == "postgresql":
        # Column arrays through unnest: one statement whose SQL never changes (compiled once),
        # where a VALUES list is compiled anew for every batch size.
        arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in CANDLE_COLUMNS.items())
        rows = sa.select(sa.text("*")).select_from(sa.text(f"unnest({arrays}) AS batch"))
        table = Candle1m.__table__  # the Core table: the ORM would read the arrays as one row
        stmt = _on_conflict(upsert_insert(table).from_select([table.c[name] for name in CANDLE_COLUMNS], rows))
        db.session.execute(stmt, {name: [c[name] for c in candles] for name in CANDLE_COLUMNS})
        return len(candles)
    for i in range(0, len(candles), PAGE):  # SQLite: a VALUES list (bounded bind parameters)
        db.session.execute(_on_conflict(upsert_insert(Candle1m).values(candles[i : i + PAGE])))
    return len(candles)


def candles_from(ticks) -> sa.Insert:
    """Postgres: the upsert of the one-minute candles of `ticks` (a selectable with instrument_id,
    ts, seq, ltp and ltq: the ticks just stored), aggregated in SQL like domain.candles.aggregate:
    open/close are the prices of the earliest/latest tick by (ts, seq), whose seqs are kept too.
    Prices and seqs are gathered in (ts, seq) order, the first and last of each array taken: two
    sorts a candle, as with a second array in reverse order for the close (an aggregate written
    twice is computed once)."""
    t = ticks.c
    bucket = sa.func.date_bin(sa.text("interval '1 minute'"), t.ts, sa.literal_column("timestamptz 'epoch'"))
    prices = postgresql.array_agg(postgresql.aggregate_order_by(t.ltp, t.ts, t.seq))
    seqs = postgresql.array_agg(postgresql.aggregate_order_by(t.seq, t.ts, t.seq))
    last = sa.func.count()  # the arrays' length
    rows = (
        sa.select(
            t.instrument_id,
            bucket.label("bucket"),
            prices[1],  # open
            sa.func.max(t.ltp),
            sa.func.min(t.ltp),
            prices[last],  # close
            sa.func.sum(t.ltq),
            sa.func.min(t.ts),
            sa.func.max(t.ts),
            seqs[1],
            seqs[last],
        )
        .group_by(t.instrument_id, sa.literal_column("bucket"))
        # Rows locked in one order, so two consumers' upserts never deadlock.
        .order_by(t.instrument_id, sa.literal_column("bucket"))
    )
    table = Candle1m.__table__
    return _on_conflict(postgresql.insert(table).from_select([table.c[name] for name in CANDLE_COLUMNS], rows))


def _on_conflict(stmt):
    old, new = Candle1m.__table__.c, stmt.excluded
    greatest, least = _greatest_least()
    # A late tick earlier than the candle's first by (ts, seq) moves the open; one later than its
    # last moves the close. Equal keys never meet: a tick already stored is not fed again, and a
    # bar's (minute start, 0) .. (last microsecond, max bigint) holds every tick of its minute.
    earlier = sa.tuple_(new.first_ts, new.first_seq) < sa.tuple_(old.first_ts, old.first_seq)
    later = sa.tuple_(new.last_ts, new.last_seq) > sa.tuple_(old.last_ts, old.last_seq)
    return stmt.on_conflict_do_update(
        index_elements=["instrument_id", "bucket"],
        set_={
            "high": greatest(old.high, new.high),
            "low": least(old.low, new.low),
            "open": sa.case((earlier, new.open), else_=old.open),
            "first_ts": sa.case((earlier, new.first_ts), else_=old.first_ts),
            "first_seq": sa.case((earlier, new.first_seq), else_=old.first_seq),
            "close": sa.case((later, new.close), else_=old.close),
            "last_ts": sa.case((later, new.last_ts), else_=old.last_ts),
            "last_seq": sa.case((later, new.last_seq), else_=old.last_seq),
            "volume": old.volume + new.volume,
        },
    )


def _greatest_least():
    if db.session.get_bind().dialect.name == "sqlite":
        return sa.func.max, sa.func.min  # SQLite's two-argument max()/min() are scalar
    return sa.func.greatest, sa.func.least


def query_candles(instrument_id: int, interval: str, start: datetime, end: datetime, zone: str) -> list[dict]:
    """Candles of [start, end) oldest first, as dicts (ts = the bucket's start, UTC): from a
    TimescaleDB continuous aggregate where one gives exactly these candles (candle_aggregates.py),
    else re-bucketed from candles_1m."""
    if interval != "1m":
        candles = from_aggregates(
            instrument_id,
            interval,
            start,
            end,
            zone,
            lambda lo, hi: rebucket(instrument_id, interval, lo, hi, zone, start, hypertable=True),
        )
        if candles is not None:
            return candles
    return rebucket(instrument_id, interval, start, end, zone)


def rebucket(
    instrument_id: int,
    interval: str,
    start: datetime,
    end: datetime,
    zone: str,
    origin_at: datetime | None = None,
    hypertable: bool = False,
) -> list[dict]:
    """Candles of [start, end) re-bucketed from candles_1m. Intraday buckets start where the zone's
    clock puts them at `origin_at` (default: start). On the TimescaleDB hypertable (`hypertable`)
    open and close are TimescaleDB's first()/last() in the one pass: the key lookups below would
    each scan every chunk's index (a lookup's time is a parameter: no chunk exclusion)."""
    c = Candle1m.__table__.c  # Core columns: no ORM entity loading for rows read only
    in_range = sa.and_(c.instrument_id == instrument_id, c.bucket >= start, c.bucket < end)
    if interval == "1m":
        rows = db.session.execute(
            sa.select(c.bucket, c.open, c.high, c.low, c.close, c.volume).where(in_range).order_by(c.bucket)
        )
        return [_candle(r.bucket, r) for r in rows]
    key, is_start = _group_key(interval, zone, origin_at or start)
    if hypertable:
        db.session.execute(sa.text("SET LOCAL jit = off"))  # as below: the planner's group guess is far off
        rows = db.session.execute(
            sa.select(
                key.label("start_b"),
                sa.func.first(c.open, c.bucket, type_=c.open.type).label("open"),
                sa.func.max(c.high).label("high"),
                sa.func.min(c.low).label("low"),
                sa.func.last(c.close, c.bucket, type_=c.close.type).label("close"),
                sa.func.sum(c.volume).label("volume"),
            )
            .where(in_range)
            .group_by(sa.literal_column("start_b"))
            .order_by(sa.literal_column("start_b"))
        )
        return [_candle(r.start_b, r) for r in rows]
    grouped = (
        sa.select(
            key.label("start_b"),
            sa.func.min(c.bucket).label("first_b"),
            sa.func.max(c.bucket).label("last_b"),
            sa.func.max(c.high).label("high"),
            sa.func.min(c.low).label("low"),
            sa.func.sum(c.volume).label("volume"),
        )
        .where(in_range)
        .group_by(sa.literal_column("start_b"))
        .subquery()
    )
    # Open and close: a key lookup per candle (scalar subqueries): measured faster than joining the
    # range back (hashed twice), and bounded (the old unbounded join hashed the instrument's whole
    # history). The planner guesses far more groups than there are, prices the lookups past
    # jit_above_cost and would JIT-compile for longer (~6 ms) than the query runs: no JIT here.
    first, last = Candle1m.__table__.alias("first_m"), Candle1m.__table__.alias("last_m")
    g = grouped.c
    open_ = sa.select(first.c.open).where(first.c.instrument_id == instrument_id, first.c.bucket == g.first_b)
    close = sa.select(last.c.close).where(last.c.instrument_id == instrument_id, last.c.bucket == g.last_b)
    prices = (open_.scalar_subquery().label("open"), close.scalar_subquery().label("close"))
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL jit = off"))  # this transaction only
    rows = db.session.execute(sa.select(grouped, *prices).order_by(g.first_b))
    if is_start:
        return [_candle(r.start_b, r) for r in rows]
    return [_candle(bucket_start(r.first_b, interval, zone), r) for r in rows]


def _group_key(interval: str, zone: str, at: datetime):
    """(SQL naming the interval's bucket of a 1m candle, whether that is the bucket's start). On
    Postgres it is the start (UTC); SQLite's is a bucket number and the start is worked out from
    the group's first minute in Python."""
    bucket = Candle1m.__table__.c.bucket
    step = INTERVALS[interval]
    if db.session.get_bind().dialect.name == "sqlite":
        # No time zones in SQLite: the zone's offset at the range start (exact outside DST changes).
        epoch = sa.cast(sa.func.strftime("%s", bucket), sa.Integer)
        return (epoch + utc_offset(zone, at)) // step, False
    if interval == "1d":
        return sa.func.date_trunc("day", bucket, zone, type_=UTCDateTime), True  # local midnight
    origin = sa.func.to_timestamp(-utc_offset(zone, at))
    return sa.func.date_bin(sa.text(f"interval '{step} seconds'"), bucket, origin, type_=UTCDateTime), True


def _candle(ts: datetime, row) -> dict:
    return {
        "ts": ts,
        "open": row.open,
        "high": row.high,
        "low": row.low,
        "close": row.close,
        "volume": int(row.volume),
    }
