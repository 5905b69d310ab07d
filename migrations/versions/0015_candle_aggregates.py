"""candles_1m a hypertable, and continuous aggregates of the 5m, 15m, 30m, 1h and 1d candles the
candles route reads where they line up with the request (TimescaleDB only)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08

Never imports tradingapp. Where `ticks` went on TimescaleDB (0014: the extension is in this
database) and TIMESCALEDB is not off:

- candles_1m becomes a hypertable of 7-day chunks on `bucket` (migrate_data: existing candles are
  copied while a lock is held). Its primary key (instrument_id, bucket) INCLUDE (prices) holds the
  time column, so the ingest's upsert (ON CONFLICT (instrument_id, bucket)) is unchanged.
  Each aggregate has one covering index (instrument_id, bucket) INCLUDE (prices) for the route's
  read, in place of TimescaleDB's default group index.
- One continuous aggregate per interval, built from candles_1m (not from ticks: bars imported by
  `flask backfill --kind bars` exist only in candles_1m, and ticks are dropped after
  TICK_RETENTION_DAYS while candles are kept): open = first(open, bucket), close = last(close,
  bucket), max(high), min(low), sum(volume), exactly the route's re-bucketing. Intraday buckets
  start on the SESSION_TIMEZONE's clock (1h in Asia/Kolkata: at :30 UTC), 1d is the zone's local
  day (its own aggregate: TimescaleDB refuses a 1d on the 1h one whose origin differs).
- Real-time aggregation (materialized_only = false): buckets past the watermark are computed from
  candles_1m at read time, so a tick just stored is in its 1h/1d candle at once.
- One refresh policy each: every 5 minutes, the whole invalidated history (start_offset NULL) up
  to an hour ago. The hour keeps TimescaleDB's invalidation threshold behind the live minutes, so
  the feed's slightly late ticks log no invalidation; a backfill or a tick more than an hour late
  does, and until the next refresh the route re-buckets the ranges it touches (below).
- `candle_aggregates` lists them (interval, view, bucket origin or zone) for the route, and
  `candle_aggregate_stale(view, lo, hi)` says whether materialized buckets in [lo, hi) are out of
  date: a pending invalidation of candles_1m (TimescaleDB's invalidation logs, before the next
  refresh) overlaps the materialized part of the range (before the aggregate's watermark). The
  route serves an aggregate only when it is not stale. On plain PostgreSQL the table is empty and
  the function always says stale: the route re-buckets as before.

Downgrade drops the aggregates, the table and the function; candles_1m stays a hypertable (as
0014 leaves ticks): every query the app sends works on either.
"""

import logging
import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

CHUNK_INTERVAL = "7 days"
INTRADAY = {"5m": 300, "15m": 900, "30m": 1800, "1h": 3600}
REFRESH_EVERY = "5 minutes"
REFRESH_LAG = "1 hour"  # end_offset: the invalidation threshold stays this far behind now
AGGREGATE = """
CREATE MATERIALIZED VIEW {view}
WITH (timescaledb.continuous, timescaledb.materialized_only = false, timescaledb.create_group_indexes = false) AS
SELECT instrument_id, {bucket} AS bucket,
       first(open, candles_1m.bucket) AS open, max(high) AS high, min(low) AS low,
       last(close, candles_1m.bucket) AS close, sum(volume) AS volume
FROM candles_1m GROUP BY instrument_id, 2
WITH NO DATA
"""
# The route's read (one instrument's range) as an index-only scan: 10x faster than the default
# (instrument_id, bucket DESC) index, whose heap rows of one instrument are spread over pages.
READ_INDEX = "CREATE INDEX {view}_read ON {view} (instrument_id, bucket) INCLUDE (open, high, low, close, volume)"
STALE_TIMESCALEDB = """
CREATE OR REPLACE FUNCTION candle_aggregate_stale(view_name text, lo timestamptz, hi timestamptz)
RETURNS boolean LANGUAGE sql STABLE AS $$
    WITH agg AS (
        SELECT ca.mat_hypertable_id, ca.raw_hypertable_id,
               _timescaledb_functions.to_unix_microseconds(lo) AS lo_us,
               least(_timescaledb_functions.to_unix_microseconds(hi),
                     _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)) AS hi_us
        FROM _timescaledb_catalog.continuous_agg ca
        WHERE ca.user_view_schema = current_schema() AND ca.user_view_name = view_name
    )
    SELECT NOT EXISTS (SELECT 1 FROM agg)
        OR EXISTS (
            SELECT 1 FROM agg JOIN _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log l
                ON l.hypertable_id = agg.raw_hypertable_id
            WHERE l.lowest_modified_value < agg.hi_us AND l.greatest_modified_value >= agg.lo_us)
        OR EXISTS (
            SELECT 1 FROM agg JOIN _timescaledb_catalog.continuous_aggs_materialization_invalidation_log l
                ON l.materialization_id = agg.mat_hypertable_id
            WHERE l.lowest_modified_value < agg.hi_us AND l.greatest_modified_value >= agg.lo_us)
$$
"""
STALE_PLAIN = """
CREATE OR REPLACE FUNCTION candle_aggregate_stale(view_name text, lo timestamptz, hi timestamptz)
RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT true $$
"""


def setting(name: str, default: str) -> str:
    value = None
    try:
        from flask import current_app

        value = current_app.config.get(name)
    except (ImportError, RuntimeError):  # no Flask app running the migration
        pass
    return str(value or os.environ.get(name) or default).strip()


def view_name(interval: str) -> str:
    return f"candles_{interval}"


def aggregates(zone: str) -> list[dict]:
    """Each aggregate: its interval, view, bucket expression and where its buckets start."""
    offset = int(datetime.now(UTC).astimezone(ZoneInfo(zone)).utcoffset().total_seconds())
    rows = []
    for interval, step in INTRADAY.items():
        origin = -offset % step  # bucket starts, in seconds past a multiple of step (UTC)
        shift = f", \"offset\" => interval '{origin} seconds'" if origin else ""
        bucket = f"time_bucket(interval '{step} seconds', candles_1m.bucket{shift})"
        rows.append({"candle_interval": interval, "view_name": view_name(interval), "step_seconds": step,
                     "origin_seconds": origin, "zone": None, "bucket": bucket})  # fmt: skip
    bucket = f"time_bucket(interval '1 day', candles_1m.bucket, '{zone}')"
    rows.append({"candle_interval": "1d", "view_name": view_name("1d"), "step_seconds": 86400,
                 "origin_seconds": None, "zone": zone, "bucket": bucket})  # fmt: skip
    return rows


def timescaledb_here(bind) -> bool:
    return bool(
        bind.execute(sa.text("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")).scalar()
    )


def upgrade():
    table = op.create_table(
        "candle_aggregates",
        sa.Column("candle_interval", sa.String(8), primary_key=True),
        sa.Column("view_name", sa.String(63), nullable=False),
        sa.Column("step_seconds", sa.Integer(), nullable=False),
        sa.Column("origin_seconds", sa.Integer(), nullable=True),
        sa.Column("zone", sa.String(64), nullable=True),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    use = setting("TIMESCALEDB", "auto").lower() != "off" and timescaledb_here(bind)
    if not use:
        op.execute(STALE_PLAIN)
        return
    op.execute(
        f"SELECT create_hypertable('candles_1m', 'bucket', chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}',"
        " create_default_indexes => false, migrate_data => true, if_not_exists => true)"
    )
    zone = setting("SESSION_TIMEZONE", "Asia/Kolkata")
    rows = aggregates(zone)
    for row in rows:
        op.execute(AGGREGATE.format(view=row["view_name"], bucket=row["bucket"]))
        op.execute(READ_INDEX.format(view=row["view_name"]))
        op.execute(
            f"SELECT add_continuous_aggregate_policy('{row['view_name']}', start_offset => NULL,"
            f" end_offset => INTERVAL '{REFRESH_LAG}', schedule_interval => INTERVAL '{REFRESH_EVERY}')"
        )
    op.bulk_insert(table, [{k: v for k, v in row.items() if k != "bucket"} for row in rows])
    op.execute(STALE_TIMESCALEDB)
    log.info("candles_1m is a hypertable; continuous aggregates %s (zone %s)", ", ".join(INTRADAY) + ", 1d", zone)


def downgrade():
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for interval in (*INTRADAY, "1d"):
            op.execute(f"DROP MATERIALIZED VIEW IF EXISTS {view_name(interval)}")  # its policy goes with it
        op.execute("DROP FUNCTION IF EXISTS candle_aggregate_stale(text, timestamptz, timestamptz)")
    op.drop_table("candle_aggregates")
