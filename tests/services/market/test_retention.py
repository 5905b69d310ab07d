"""Tick retention (services/market/retention.py, `flask prune-ticks`, the worker's hourly round) on
both stores of the real Postgres: TimescaleDB's hypertable (chunks past the cutoff dropped, the rest
deleted) and plain tables (batched DELETEs); and on SQLite for the zero-config run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from tests.services.market.conftest import STORES, on_each_store
from tests.support import env as test_run
from tradingapp import create_app
from tradingapp.extensions import db as _db
from tradingapp.models import Candle1m, Tick
from tradingapp.services.market.retention import TickRetention, prune_round, prune_ticks, ticks_is_hypertable
from tradingapp.services.market.ticks import check_ticks, ingest_ticks, parse_tick, store_ticks


@pytest.fixture(scope="module", params=STORES)
def app(request, app, plain_app):
    """Every test of this module that uses the database runs on TimescaleDB and on plain PostgreSQL."""
    return on_each_store(request, app, plain_app)


NOW = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def store(instrument_id: int, ages_days: list[float], now: datetime = NOW) -> None:
    """Ticks of these ages, stored as if each had come when it was new (the ingest path refuses
    ticks past the retention)."""
    store_ticks([parse_tick({"instrument_id": instrument_id, "seq": i, "ts": (now - timedelta(days=age)).isoformat(),
                             "ltp": "100", "ltq": 1}) for i, age in enumerate(ages_days)])  # fmt: skip


def tick_ages(now: datetime = NOW) -> list[tuple[int, float]]:
    _db.session.expire_all()
    rows = _db.session.execute(sa.select(Tick.instrument_id, Tick.ts).order_by(Tick.instrument_id, Tick.ts.desc()))
    return [(iid, round((now - ts).total_seconds() / 86400, 2)) for iid, ts in rows]


def candle_count() -> int:
    return _db.session.scalar(sa.select(sa.func.count()).select_from(Candle1m))


def test_ticks_past_the_retention_are_deleted_in_batches_and_candles_kept(db):
    store(1, [400, 366, 365.5, 364, 10, 0])
    store(2, [700, 500, 1])
    store(7, [2])  # an instrument only the ticks table knows
    candles = candle_count()
    result = prune_ticks(365, batch=2, now=NOW)
    assert result.deleted == 5 and result.cutoff == NOW - timedelta(days=365)
    assert tick_ages() == [(1, 0.0), (1, 10.0), (1, 364.0), (2, 1.0), (7, 2.0)]
    assert candle_count() == candles


def test_a_prune_with_nothing_old_deletes_nothing(db):
    store(1, [1, 2])
    assert prune_ticks(365, now=NOW).deleted == 0
    assert len(tick_ages()) == 2


def test_retention_zero_keeps_every_tick(db):
    store(1, [4000])
    result = prune_ticks(0, now=NOW)
    assert (result.deleted, result.cutoff) == (0, None)
    assert len(tick_ages()) == 1


def test_a_stop_request_ends_the_prune_between_batches(db):
    store(1, [400, 401, 402, 403])
    store(2, [365.1])  # in the chunk holding the cutoff: deleted, not dropped
    store(3, [365.1])
    store(4, [365.1])
    asked = []
    result = prune_ticks(365, batch=1, now=NOW, keep_going=lambda: len(asked) < 2 and not asked.append(1))
    if ticks_is_hypertable():  # instrument 1's old chunks dropped whole; 2's and 3's rest deleted; stop
        assert (result.deleted, result.reason, result.chunks_dropped) == (6, "stopped", 4)
        assert [iid for iid, _ in tick_ages()] == [4]
    else:  # two batches of one tick
        assert (result.deleted, result.reason, result.chunks_dropped) == (2, "stopped", 0)
        assert len(tick_ages()) == 5


def test_the_suite_database_is_a_hypertable_where_the_server_has_timescaledb(db, app, plain_app):
    preloaded = db.session.scalar(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
            " AND 'timescaledb' = ANY(string_to_array(current_setting('shared_preload_libraries'), ','))"
        )
    )
    assert ticks_is_hypertable() is (preloaded and app is not plain_app)


def test_on_timescaledb_whole_chunks_past_the_cutoff_are_dropped_and_the_boundary_chunk_trimmed(db):
    day = datetime(2025, 11, 23, tzinfo=UTC)  # NOW - 365 days is 06:00 of this day: chunk [day, day + 1)
    ticks = [
        day - timedelta(days=3, hours=1),
        day - timedelta(hours=1),
        day + timedelta(hours=5),
        day + timedelta(hours=7),
    ]
    store_ticks([parse_tick({"instrument_id": 1, "seq": i, "ts": ts.isoformat(), "ltp": "100", "ltq": 1})
                 for i, ts in enumerate(ticks)])  # fmt: skip
    chunks_before = chunk_count()
    result = prune_ticks(365, now=NOW)
    assert result.deleted == 3
    assert tick_ages() == [(1, 364.96)]
    if ticks_is_hypertable():
        assert (result.chunks_dropped, chunks_before - chunk_count()) == (2, 2)
    else:
        assert (result.chunks_dropped, chunks_before, chunk_count()) == (0, 0, 0)
    assert "chunks dropped" not in result.reason


def chunk_count() -> int:
    if not ticks_is_hypertable():
        return 0
    count = _db.session.scalar(sa.text("SELECT count(*) FROM show_chunks('ticks')"))
    _db.session.rollback()
    return count


def test_flask_prune_ticks_deletes_past_the_configured_days(app, db):
    now = datetime.now(UTC)
    store(1, [400, 40, 1], now=now)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["prune-ticks"])
    assert result.exit_code == 0, result.output
    assert "deleted 1 ticks older than" in result.output and "(candles kept)" in result.output
    result = runner.invoke(args=["prune-ticks", "--days", "30"])
    assert "deleted 1 ticks" in result.output
    assert [iid for iid, _ in tick_ages(now)] == [1]
    result = runner.invoke(args=["prune-ticks", "--days", "0"])
    assert "nothing deleted: retention is off (--days 0 keeps every tick)" in result.output


def test_flask_prune_ticks_names_the_setting_that_turned_retention_off(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "TICK_RETENTION_DAYS", 0)
    result = app.test_cli_runner().invoke(args=["prune-ticks"])
    assert "nothing deleted: retention is off (TICK_RETENTION_DAYS=0 keeps every tick)" in result.output


def test_a_tick_past_the_retention_is_skipped_by_the_ingest_path_so_a_pruned_one_never_counts_twice(db):
    now = datetime.now(UTC)
    old = {"instrument_id": 1, "seq": 1, "ts": (now - timedelta(days=366)).isoformat(), "ltp": "100", "ltq": 5}
    store_ticks([parse_tick(old)])
    assert prune_ticks(365, now=now).deleted == 1
    assert ingest_ticks([old]) == 0  # a redelivery, or a feed replaying history
    assert _db.session.scalar(sa.select(Candle1m.volume)) == 5
    assert check_ticks([old], retention_days=0).rows != []  # TICK_RETENTION_DAYS=0: ticks are kept forever


def test_one_worker_prunes_per_round(app, db):
    store(1, [400, 500], now=datetime.now(UTC))
    assert prune_round(app) == 2
    store(1, [600], now=datetime.now(UTC))
    assert prune_round(app) is None  # another worker's round (or this one's) holds the hour
    assert len(tick_ages()) == 1


def test_the_retention_thread_prunes_after_its_first_delay_and_stops(app, db):
    store(1, [400, 1], now=datetime.now(UTC))
    thread = TickRetention(app, interval=3600, first_delay=0.05)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(tick_ages()) == 2 and time.monotonic() < deadline:
            time.sleep(0.05)
            _db.session.rollback()
    finally:
        thread.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert len(tick_ages()) == 1


def test_a_negative_retention_is_refused_at_start():
    with pytest.raises(config.ConfigError, match="TICK_RETENTION_DAYS"):
        config.Config({"TICK_RETENTION_DAYS": "-1"})


def test_prune_on_sqlite(tmp_path):
    app = create_app(config.TestConfig(test_run.test_env(DB_HOST="", SQLITE_PATH=str(tmp_path / "ticks.db"))))
    with app.app_context():
        upgrade(revision="heads")
        store(1, [400, 380, 3])
        store(2, [370])
        assert prune_ticks(365, batch=1, now=NOW).deleted == 3
        assert tick_ages() == [(1, 3.0)]
        assert candle_count() == 4
        _db.session.remove()
        _db.engine.dispose()
