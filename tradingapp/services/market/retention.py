"""Tick retention without TimescaleDB: ticks older than TICK_RETENTION_DAYS are deleted in small
batches, each its own short transaction (never one DELETE holding locks and bloating WAL for
minutes). One-minute candles are kept: they are small and are the history charts read. Since a
pruned tick's volume stays in its candle, the ingest path skips ticks older than the same cutoff
(services/market/ticks.check_ticks) and `flask backfill` refuses them: none is counted twice.
The worker prunes hourly (TickRetention); `flask prune-ticks` prunes once.

With TimescaleDB (`ticks` a hypertable of one-day chunks, migration 0014) the chunks wholly older
than the cutoff are dropped (drop_chunks: no row is read, no WAL per row, the space is back at
once) after their ticks are counted, and the few left before the cutoff in the chunk that straddles
it are deleted (one instrument at a time), so both stores keep exactly the same ticks. There is no
TimescaleDB retention policy: TICK_RETENTION_DAYS is the one setting, whatever the store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

import sqlalchemy as sa
from flask import Flask

from tradingapp.extensions import db
from tradingapp.models.types import UTCDateTime, utcnow
from tradingapp.process import claim_round

log = logging.getLogger(__name__)

BATCH = 10_000  # ticks per DELETE (and per transaction)
PRUNE_INTERVAL = 3600  # seconds between the worker's rounds (one worker prunes per round)
PRUNE_FIRST_DELAY = 60  # seconds after start: a restarting worker does not prune at once

# Instruments that have ticks, from the primary key (instrument_id, ts, seq) one probe each (a
# loose index scan): Postgres' SELECT DISTINCT would read every tick. SQLite (a development
# store) takes the plain DISTINCT.
INSTRUMENTS_WITH_TICKS = {
    "postgresql": """
    WITH RECURSIVE ids(instrument_id) AS (
        (SELECT instrument_id FROM ticks ORDER BY instrument_id LIMIT 1)
        UNION ALL
        SELECT (SELECT t.instrument_id FROM ticks t WHERE t.instrument_id > ids.instrument_id
                ORDER BY t.instrument_id LIMIT 1)
        FROM ids WHERE ids.instrument_id IS NOT NULL
    )
    SELECT instrument_id FROM ids WHERE instrument_id IS NOT NULL
""",
    "sqlite": "SELECT DISTINCT instrument_id FROM ticks ORDER BY instrument_id",
}

# One batch of one instrument's old ticks, found through the primary key (instrument_id, ts)
# and deleted by physical row id (a TID scan on Postgres, rowid on SQLite).
DELETE_BATCH = {
    "postgresql": "DELETE FROM ticks WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM ticks WHERE instrument_id = :instrument_id AND ts < :cutoff LIMIT :batch))",
    "sqlite": "DELETE FROM ticks WHERE rowid IN ("
    "SELECT rowid FROM ticks WHERE instrument_id = :instrument_id AND ts < :cutoff LIMIT :batch)",
}


# Hypertable: the chunks of `ticks` wholly before the cutoff (dropped whole), and their ticks.
OLD_CHUNKS = """
SELECT count(*), max(range_end) FROM timescaledb_information.chunks
WHERE hypertable_schema = current_schema() AND hypertable_name = 'ticks' AND range_end <= :cutoff
"""
# The straddling chunk's ticks before the cutoff: at most one chunk (a day) of one instrument.
DELETE_REST = "DELETE FROM ticks WHERE instrument_id = :instrument_id AND ts < :cutoff"


class PruneResult(NamedTuple):
    deleted: int
    cutoff: datetime | None  # None: nothing was attempted (retention off)
    reason: str
    chunks_dropped: int = 0  # TimescaleDB: whole chunks dropped (their ticks are in `deleted`)


def ticks_is_hypertable() -> bool:
    """True when `ticks` is a TimescaleDB hypertable (pruned by dropping chunks)."""
    if db.session.get_bind().dialect.name != "postgresql":
        return False
    catalog = db.session.scalar(sa.text("SELECT to_regclass('timescaledb_information.hypertables')"))
    if catalog is None:
        return False
    found = db.session.scalar(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 'ticks' AND hypertable_schema = current_schema())"
        )
    )
    return bool(found)


def prune_ticks(
    retention_days: int,
    batch: int = BATCH,
    now: datetime | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> PruneResult:
    """Delete ticks older than `retention_days` (0: keep all), `batch` at a time, committing each
    batch. `keep_going` is asked between batches, so a stopping worker does not wait for a long
    first prune. Candles are never deleted."""
    if retention_days <= 0:
        return PruneResult(0, None, "retention is off (TICK_RETENTION_DAYS=0)")
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    dialect = db.session.get_bind().dialect.name
    chunks, deleted, hypertable = 0, 0, ticks_is_hypertable()
    if hypertable:
        chunks, deleted = _drop_old_chunks(cutoff)
        # What is left before the cutoff sits in one chunk: plain DELETEs, no ctid (a compressed
        # chunk's rows have none that lasts).
        delete = sa.text(DELETE_REST).bindparams(sa.bindparam("cutoff", type_=UTCDateTime))
    else:
        delete = sa.text(DELETE_BATCH[dialect]).bindparams(sa.bindparam("cutoff", type_=UTCDateTime))
    instruments = list(db.session.scalars(sa.text(INSTRUMENTS_WITH_TICKS[dialect])))
    db.session.commit()  # no snapshot held open across the batches
    for instrument_id in instruments:
        while keep_going():
            count = db.session.execute(delete, {"instrument_id": instrument_id, "cutoff": cutoff, "batch": batch})
            db.session.commit()
            deleted += count.rowcount
            if hypertable or count.rowcount < batch:
                break
    if deleted:
        log.info("event=ticks_pruned deleted=%d chunks_dropped=%d cutoff=%s", deleted, chunks, cutoff.isoformat())
    return PruneResult(deleted, cutoff, "done" if keep_going() else "stopped", chunks)


def _drop_old_chunks(cutoff: datetime) -> tuple[int, int]:
    """Drop the chunks of `ticks` wholly before `cutoff`: (chunks dropped, ticks they held)."""
    chunks, boundary = db.session.execute(
        sa.text(OLD_CHUNKS)
        .bindparams(sa.bindparam("cutoff", type_=UTCDateTime))
        .columns(sa.column("count", sa.Integer), sa.column("max", UTCDateTime)),
        {"cutoff": cutoff},
    ).one()
    if not chunks:
        return 0, 0
    # Counted before they go (a compressed chunk counts from its batches' metadata, not its rows).
    ticks = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(sa.table("ticks", sa.column("ts", UTCDateTime)))
        .where(sa.column("ts", UTCDateTime) < boundary)
    )
    db.session.execute(
        sa.text("SELECT drop_chunks('ticks', older_than => :boundary)").bindparams(
            sa.bindparam("boundary", type_=UTCDateTime)
        ),
        {"boundary": boundary},
    )
    db.session.commit()
    return int(chunks), int(ticks)


# -- the worker's rounds ------------------------------------------------------------------------
def prune_round(app: Flask, keep_going=lambda: True) -> int | None:
    """One retention round: ticks past TICK_RETENTION_DAYS deleted in batches (prune_ticks),
    by one worker per PRUNE_INTERVAL (a Redis lock). None when another worker holds the round."""
    with app.app_context():
        try:
            if not claim_round("prune-ticks", PRUNE_INTERVAL - 60):
                return None
            result = prune_ticks(app.config["TICK_RETENTION_DAYS"], keep_going=keep_going)
            log.info("event=prune_ticks deleted=%d reason=%s", result.deleted, result.reason.replace(" ", "_"))
            return result.deleted
        finally:
            db.session.remove()


class TickRetention(threading.Thread):
    """Tick retention in a worker thread of its own: a first prune after a long outage may take
    minutes, and the worker's Maintenance thread must keep moving retries and sweeping meanwhile."""

    def __init__(self, app: Flask, interval: float = PRUNE_INTERVAL, first_delay: float = PRUNE_FIRST_DELAY):
        super().__init__(name="tick-retention", daemon=True)
        self.app, self.interval, self.first_delay = app, interval, first_delay
        self._stop_event = threading.Event()

    def run(self) -> None:
        wait = self.first_delay
        while not self._stop_event.wait(wait):
            wait = self.interval
            try:
                prune_round(self.app, keep_going=lambda: not self._stop_event.is_set())
            except Exception:  # Postgres away for a moment: try again next round
                log.exception("event=prune_ticks_failed")

    def stop(self) -> None:
        self._stop_event.set()
