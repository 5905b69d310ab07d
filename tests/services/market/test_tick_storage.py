"""The tick store on both backends: migration 0014 (TimescaleDB where installed and preloaded, the
setting TIMESCALEDB=auto|on|off, the correction of a hypertable an earlier 0001 made) and ingest
into compressed chunks."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

import config
from tests.chaos.services import Postgres
from tests.services.market.conftest import STORES, on_each_store
from tests.support.env import admin_conn, timescaledb_preload
from tradingapp import create_app
from tradingapp.extensions import db as _db
from tradingapp.models import Candle1m
from tradingapp.services.market.retention import ticks_is_hypertable
from tradingapp.services.market.ticks import parse_tick, store_ticks

PG15 = "/usr/lib/postgresql/15/bin"


@pytest.fixture(scope="module", params=STORES)
def app(request, app, plain_app):
    """Every test of this module that uses the database runs on TimescaleDB and on plain PostgreSQL."""
    return on_each_store(request, app, plain_app)


def server_has_timescaledb(conn) -> bool:
    return bool(
        conn.execute(
            sa.text(
                "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
                " AND 'timescaledb' = ANY(string_to_array(current_setting('shared_preload_libraries'), ','))"
            )
        ).scalar()
    )


def hypertable_shape(conn) -> dict:
    """What 0014 sets on the ticks hypertable, as the catalog reports it."""
    q = lambda sql: conn.execute(sa.text(sql)).all()  # noqa: E731
    return {
        "indexes": sorted(r[0] for r in q("SELECT indexname FROM pg_indexes WHERE tablename = 'ticks'")),
        "compression": q(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc"
            " FROM timescaledb_information.compression_settings WHERE hypertable_name = 'ticks'"
            " ORDER BY attname"
        ),
        "jobs": q(
            "SELECT proc_name, config->>'compress_after' FROM timescaledb_information.jobs"
            " WHERE hypertable_name = 'ticks' ORDER BY proc_name"
        ),
        "chunk_interval": q(
            "SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_name = 'ticks'"
        ),
    }


TUNED = {
    "indexes": ["pk_ticks"],
    "compression": [("instrument_id", 1, None, None), ("seq", None, 2, True), ("ts", None, 1, True)],
    "jobs": [("policy_compression", "7 days")],
    "chunk_interval": [("1 day",)],
}


def test_upgrade_head_gives_a_tuned_hypertable_on_timescaledb_and_a_plain_table_on_plain(db, app, plain_app):
    conn = db.session.connection()
    extension = conn.execute(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'")).scalar()
    if app is plain_app:  # TIMESCALEDB=off: not even the extension in the database
        assert (ticks_is_hypertable(), extension) == (False, 0)
        return
    assert server_has_timescaledb(conn), "the suite runs on TimescaleDB: scripts/ensure_timescaledb.sh installs it"
    assert ticks_is_hypertable() and extension == 1
    assert hypertable_shape(conn) == TUNED  # no ts index beside the key, no retention policy


def test_ticks_stored_again_into_a_compressed_chunk_are_skipped_and_counted_once(db, app, plain_app):
    day = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0) - timedelta(days=10)
    raw = [{"instrument_id": 1, "seq": i, "ts": (day + timedelta(seconds=i)).isoformat(), "ltp": f"{100 + i}", "ltq": 2}
           for i in range(5)]  # fmt: skip
    assert store_ticks([parse_tick(t) for t in raw]) == 5
    compressed = 0
    if app is not plain_app:
        compressed = db.session.scalar(
            sa.text(
                "SELECT count(compress_chunk(c)) FROM show_chunks('ticks', older_than => now() - interval '8 days') c"
            )
        )
        db.session.commit()
        assert compressed == 1
    # A redelivered batch with one new tick: the unique check reaches into the compressed chunk.
    more = {"instrument_id": 1, "seq": 9, "ts": (day + timedelta(seconds=30)).isoformat(), "ltp": "90", "ltq": 3}
    assert store_ticks([parse_tick(t) for t in [*raw, more]]) == 1
    candle = db.session.get(Candle1m, (1, day))
    assert (candle.open, candle.low, candle.close, candle.volume) == (100, 90, 90, 13)
    rows = db.session.execute(sa.text("SELECT seq, ltp FROM ticks WHERE instrument_id = 1 ORDER BY ts, seq")).all()
    assert [(s, int(p)) for s, p in rows] == [(0, 100), (1, 101), (2, 102), (3, 103), (4, 104), (9, 90)]


# -- migrations on databases of their own --------------------------------------------------------


@pytest.fixture
def scratch_app(env, make_app):
    """make_scratch(**settings): an app on a new empty database of this run (dropped after)."""
    names = []

    def make_scratch(**settings):
        name = f"{env['DB_NAME']}_s{len(names)}"
        with admin_conn() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        names.append(name)
        return make_app(DB_NAME=name, **settings)

    yield make_scratch
    with admin_conn() as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def old_0001_hypertable() -> None:
    """`ticks` as the earlier 0001 made it on a server with the extension."""
    for sql in (
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        "SELECT create_hypertable('ticks', 'ts', chunk_time_interval => INTERVAL '1 day')",
        "ALTER TABLE ticks SET (timescaledb.compress, timescaledb.compress_segmentby = 'instrument_id',"
        " timescaledb.compress_orderby = 'ts DESC')",
        "SELECT add_compression_policy('ticks', INTERVAL '7 days')",
        "SELECT add_retention_policy('ticks', INTERVAL '365 days')",
    ):
        _db.session.execute(sa.text(sql))
    _db.session.commit()


def test_a_database_made_by_the_old_0001_is_corrected_and_keeps_its_ticks(scratch_app):
    app = scratch_app(TIMESCALEDB="auto")
    with app.app_context():
        if not server_has_timescaledb(_db.session.connection()):
            pytest.fail("the suite runs on TimescaleDB: scripts/ensure_timescaledb.sh installs it")
        _db.session.commit()
        upgrade(revision="0013")
        old_0001_hypertable()
        day = datetime.now(UTC).replace(hour=4, minute=0, second=0, microsecond=0) - timedelta(days=20)
        store_ticks([parse_tick({"instrument_id": 2, "seq": i, "ts": (day + timedelta(minutes=i)).isoformat(),
                                 "ltp": "10", "ltq": 1}) for i in range(3)])  # fmt: skip
        _db.session.execute(sa.text("SELECT compress_chunk(c) FROM show_chunks('ticks') c"))
        _db.session.commit()
        assert hypertable_shape(_db.session.connection())["indexes"] == ["pk_ticks", "ticks_ts_idx"]
        _db.session.commit()
        upgrade(revision="heads")
        assert hypertable_shape(_db.session.connection()) == TUNED
        _db.session.commit()
        downgrade(revision="0013")  # leaves the hypertable: upgrading again is a no-op
        upgrade(revision="heads")
        assert hypertable_shape(_db.session.connection()) == TUNED
        assert _db.session.scalar(sa.text("SELECT count(*) FROM ticks WHERE instrument_id = 2")) == 3
        _db.session.remove()


def test_a_plain_database_with_ticks_becomes_a_hypertable_on_upgrade_and_stays_plain_when_off(scratch_app):
    kept = scratch_app(TIMESCALEDB="off")
    converted = scratch_app(TIMESCALEDB="auto")
    for app in (kept, converted):
        with app.app_context():
            upgrade(revision="0013")
            store_ticks([parse_tick({"instrument_id": 3, "seq": i, "ts": f"2026-11-2{i}T05:00:00+00:00",
                                     "ltp": "10", "ltq": 1}) for i in range(3)])  # fmt: skip
            upgrade(revision="heads")
            assert ticks_is_hypertable() is (app is converted)
            assert _db.session.scalar(sa.text("SELECT count(*) FROM ticks")) == 3
            _db.session.remove()


# -- a server without the preload: a throwaway cluster ---------------------------------------------


@pytest.fixture(scope="module")
def unpreloaded_cluster():
    """A throwaway PostgreSQL cluster on a free port where timescaledb is installed (the server's
    files) but not in shared_preload_libraries: CREATE EXTENSION would fail there."""
    if not timescaledb_preload():
        pytest.fail("the suite runs on TimescaleDB: scripts/ensure_timescaledb.sh installs it")
    root = Path(tempfile.mkdtemp(prefix="pg-nopreload-"))
    root.chmod(0o755)  # the server runs as postgres when the tests run as root
    server = Postgres(root).start()
    try:
        yield server.port
    finally:
        server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_on_a_server_without_the_preload_auto_stays_plain_and_on_names_what_is_missing(
    env, unpreloaded_cluster, capsys
):
    for setting in ("auto", "on"):
        name = f"m_{setting}"
        with psycopg.connect(host="127.0.0.1", port=unpreloaded_cluster, user="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        app = create_app(config.TestConfig({**env, "DB_PORT": str(unpreloaded_cluster), "DB_NAME": name,
                                            "TIMESCALEDB": setting}))  # fmt: skip
        try:
            with app.app_context():
                if setting == "auto":
                    upgrade(revision="heads")
                    assert ticks_is_hypertable() is False
                    assert "TimescaleDB not used (timescaledb is not in this server's" in capsys.readouterr().err
                else:
                    with pytest.raises(SystemExit):  # flask_migrate logs the error, then exits 1
                        upgrade(revision="heads")
                    assert "TIMESCALEDB=on but timescaledb is not in this server's" in capsys.readouterr().err
                _db.session.remove()
                _db.engine.dispose()
        finally:
            app.extensions["redis"].close()


def test_timescaledb_preload_names_the_library_where_it_is_installed():
    started = time.monotonic()
    assert timescaledb_preload() == ("timescaledb" if os.path.exists(f"{PG15}/../lib/timescaledb.so") else "")
    assert time.monotonic() - started < 0.1
