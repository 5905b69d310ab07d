"""ticks on TimescaleDB: a hypertable of one-day chunks, compressed after 7 days, where the
extension is installed and preloaded (TIMESCALEDB=auto), required (on) or never (off)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26

Never imports tradingapp: the setting is read from the Flask app running the migration (its
config's TIMESCALEDB), else the environment, else auto. The extension is used only when it is in
pg_available_extensions AND in shared_preload_libraries (CREATE EXTENSION fails without the
preload); on auto anything else leaves `ticks` a plain table, and on `on` it is an error naming
what is missing. The extension step runs in a savepoint: a failure on auto rolls back to it and
the migration goes on, plain.

The hypertable: no default ts index (the primary key (instrument_id, ts, seq) leads every chunk's
reads), compressed segment by instrument, ordered by (ts, seq) as every read asks for them, by a
policy for chunks older than 7 days (the live ones stay row stores: the feed writes there). No
retention policy: ticks are kept TICK_RETENTION_DAYS, and the app's prune (services/market/
retention.py) drops the chunks past it. A table already holding ticks is converted in place
(migrate_data: it copies them, holding a lock on ticks meanwhile; TIMESCALEDB=off keeps it plain).

Idempotent, and it corrects a hypertable an earlier 0001 made (its ts index, its 'ts DESC'
compression order and its fixed 365-day retention policy). Downgrade leaves the hypertable as it
is: every query the app sends works on either.
"""

import logging
import os

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "7 days"
SEGMENT_BY = "instrument_id"
ORDER_BY = "ts, seq"


def timescaledb_setting() -> str:
    value = None
    try:
        from flask import current_app

        value = current_app.config.get("TIMESCALEDB")
    except (ImportError, RuntimeError):  # no Flask app running the migration
        pass
    value = str(value or os.environ.get("TIMESCALEDB") or "auto").strip().lower()
    if value not in ("auto", "on", "off"):
        raise RuntimeError(f"TIMESCALEDB must be auto, on or off, got {value!r}")
    return value


def missing_piece(bind) -> str | None:
    """What keeps TimescaleDB from this server, or None when it can be used."""
    available, preloaded = bind.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),"
            " 'timescaledb' = ANY(string_to_array(replace(current_setting('shared_preload_libraries'),"
            " ' ', ''), ','))"
        )
    ).one()
    if not available:
        return "the timescaledb extension is not installed on this PostgreSQL server"
    if not preloaded:
        return "timescaledb is not in this server's shared_preload_libraries (add it and restart)"
    return None


def ticks_is_hypertable(bind) -> bool:
    if bind.execute(sa.text("SELECT to_regclass('timescaledb_information.hypertables')")).scalar() is None:
        return False
    return bool(
        bind.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = 'ticks' AND hypertable_schema = current_schema())"
            )
        ).scalar()
    )


def tune_hypertable() -> None:
    """The settings above on the `ticks` hypertable, whatever made it (idempotent)."""
    op.execute("DROP INDEX IF EXISTS ticks_ts_idx")  # create_hypertable's default: the primary key covers it
    op.execute(
        "ALTER TABLE ticks SET (timescaledb.compress, "
        f"timescaledb.compress_segmentby = '{SEGMENT_BY}', timescaledb.compress_orderby = '{ORDER_BY}')"
    )
    op.execute("SELECT remove_retention_policy('ticks', if_exists => true)")
    op.execute(f"SELECT add_compression_policy('ticks', INTERVAL '{COMPRESS_AFTER}', if_not_exists => true)")


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if ticks_is_hypertable(bind):
        tune_hypertable()
        return
    setting = timescaledb_setting()
    if setting == "off":
        return
    missing = missing_piece(bind)
    if missing:
        if setting == "on":
            raise RuntimeError(
                f"TIMESCALEDB=on but {missing}: install it (docs/timescaledb.md) or set TIMESCALEDB=auto"
            )
        log.warning("TimescaleDB not used (%s): ticks stays a plain table", missing)
        return
    savepoint = bind.begin_nested()
    try:
        op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        op.execute(
            f"SELECT create_hypertable('ticks', 'ts', chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}',"
            " create_default_indexes => false, migrate_data => true)"
        )
        tune_hypertable()
        savepoint.commit()
    except sa.exc.DBAPIError as exc:
        savepoint.rollback()
        if setting == "on":
            raise
        log.warning("TimescaleDB not used (%s): ticks stays a plain table", str(exc.orig).strip())


def downgrade():
    pass
