"""One-minute candles kept from tick batches, and the candles endpoint re-bucketing them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from tests.services.market.conftest import STORES, on_each_store
from tests.support import env as test_run
from tradingapp import create_app
from tradingapp.domain.candles import aggregate
from tradingapp.extensions import db as _db
from tradingapp.models import Candle1m
from tradingapp.models.types import Price, UTCDateTime, dec, iso
from tradingapp.services.market.candles import query_candles
from tradingapp.services.market.ticks import ingest_ticks


@pytest.fixture(scope="module", params=STORES)
def app(request, app, plain_app):
    """Every test of this module that uses the database runs on TimescaleDB and on plain PostgreSQL."""
    return on_each_store(request, app, plain_app)


MINUTE = datetime(2026, 11, 23, 4, 5, tzinfo=UTC)  # 09:35 in Asia/Kolkata


def tick(seq: int, seconds: float, ltp: str, ltq: int = 10, instrument_id: int = 1) -> dict:
    ts = MINUTE + timedelta(seconds=seconds)
    return {"instrument_id": instrument_id, "seq": seq, "ts": ts.isoformat(), "ltp": ltp, "ltq": ltq}


def candle(instrument_id: int = 1, bucket: datetime = MINUTE) -> Candle1m:
    _db.session.expire_all()
    return _db.session.get(Candle1m, (instrument_id, bucket))


def url(instrument_id: int = 1, **args) -> str:
    query = "&".join(f"{k}={v}" for k, v in args.items())
    return f"/api/v1/instruments/{instrument_id}/candles?{query}"


# -- aggregation ---------------------------------------------------------------------------


def test_a_batch_folds_into_one_candle_per_instrument_and_minute_in_tick_time_order():
    ticks = [
        {"instrument_id": 1, "seq": 3, "ts": MINUTE + timedelta(seconds=30), "ltp": Decimal("103"), "ltq": 1},
        {"instrument_id": 1, "seq": 1, "ts": MINUTE + timedelta(seconds=10), "ltp": Decimal("101"), "ltq": 2},
        {"instrument_id": 1, "seq": 2, "ts": MINUTE + timedelta(seconds=20), "ltp": Decimal("99"), "ltq": 3},
        {"instrument_id": 2, "seq": 1, "ts": MINUTE + timedelta(seconds=70), "ltp": Decimal("50"), "ltq": 4},
    ]
    one, two = aggregate(ticks)
    assert (one["open"], one["high"], one["low"], one["close"], one["volume"]) == (101, 103, 99, 103, 6)
    assert (two["instrument_id"], two["bucket"], two["open"]) == (2, MINUTE + timedelta(minutes=1), 50)


def test_late_ticks_in_a_later_batch_move_open_and_close_only_when_earlier_or_later(db):
    ingest_ticks([tick(2, 20, "100.00"), tick(3, 40, "102.00")])
    ingest_ticks([tick(1, 5, "99.50"), tick(5, 55, "101.25"), tick(4, 50, "104.00", ltq=7)])
    ingest_ticks([tick(6, 30, "98.00")])  # inside the candle: neither open nor close
    row = candle()
    assert (row.open, row.high, row.low, row.close) == (Decimal("99.5"), 104, 98, Decimal("101.25"))
    assert row.volume == 57
    assert (row.first_ts, row.last_ts) == (MINUTE + timedelta(seconds=5), MINUTE + timedelta(seconds=55))


def test_a_redelivered_batch_does_not_add_its_volume_twice(db):
    batch = [tick(1, 1, "100.00", ltq=5), tick(2, 2, "101.00", ltq=6)]
    ingest_ticks(batch)
    ingest_ticks(batch)
    assert candle().volume == 11


def test_a_partly_redelivered_batch_counts_only_its_new_ticks(db):
    ingest_ticks([tick(1, 1, "100.00", ltq=5)])
    ingest_ticks([tick(1, 1, "100.00", ltq=5), tick(2, 2, "90.00", ltq=6), tick(2, 2, "90.00", ltq=6)])
    row = candle()
    assert (row.volume, row.low, row.close) == (11, 90, 90)


def test_a_tick_key_twice_in_one_batch_counts_once_as_the_stored_first(db):
    ingest_ticks([tick(1, 1, "100.00", ltq=5), tick(1, 1, "120.00", ltq=9)])
    row = candle()
    assert (row.volume, row.high, row.close) == (5, 100, 100)


def test_same_time_ticks_arriving_out_of_seq_order_in_later_batches_keep_open_and_close_by_seq(db):
    # XTS times are whole seconds, seq grows: a lower seq of the same second may come later
    # (a requeued batch, a second consumer).
    ingest_ticks([tick(5, 10, "101.00", ltq=1)])
    ingest_ticks([tick(3, 10, "100.00", ltq=1)])  # before seq 5: the open, not the close
    ingest_ticks([tick(4, 10, "100.50", ltq=1)])  # between: neither
    ingest_ticks([tick(6, 10, "102.00", ltq=1)])  # after: the close
    row = candle()
    assert (row.open, row.close, row.volume) == (100, 102, 4)
    assert (row.first_ts, row.first_seq, row.last_ts, row.last_seq) == (
        MINUTE + timedelta(seconds=10), 3, MINUTE + timedelta(seconds=10), 6)  # fmt: skip


def test_a_batch_keeps_the_seq_of_its_first_and_last_tick(db):
    ingest_ticks([tick(9, 30, "103.00"), tick(7, 10, "101.00"), tick(8, 10, "102.00"), tick(2, 50, "99.00")])
    row = candle()
    assert (row.open, row.close, row.first_seq, row.last_seq) == (101, 99, 7, 2)


# -- re-bucketing against a reference computed from the ticks --------------------------------


def local_floor(ts: datetime, interval: str, zone: str) -> datetime:
    local = ts.astimezone(ZoneInfo(zone))
    if interval == "1d":
        local = local.replace(hour=0, minute=0)
    elif interval == "1h":
        local = local.replace(minute=0)
    else:
        step = int(interval[:-1])
        local = local.replace(minute=local.minute // step * step)
    return local.replace(second=0, microsecond=0).astimezone(UTC)


def reference(ticks: list[dict], interval: str, zone: str) -> list[dict]:
    buckets: dict[datetime, list[dict]] = {}
    for t in sorted(ticks, key=lambda t: datetime.fromisoformat(t["ts"])):
        buckets.setdefault(local_floor(datetime.fromisoformat(t["ts"]), interval, zone), []).append(t)
    return [
        {
            "ts": iso(ts),
            "open": group[0]["ltp"],
            "high": str(max(Decimal(t["ltp"]) for t in group)),
            "low": str(min(Decimal(t["ltp"]) for t in group)),
            "close": group[-1]["ltp"],
            "volume": sum(t["ltq"] for t in group),
        }
        for ts, group in sorted(buckets.items())
    ]


def random_ticks(seed: int, count: int, hours: int) -> list[dict]:
    rng = random.Random(seed)
    seconds = sorted(rng.sample(range(hours * 3600), count))
    return [tick(i, s, f"{rng.randint(9000, 11000) / 100:.2f}".rstrip("0").rstrip("."), rng.randint(1, 50))
            for i, s in enumerate(seconds, 1)]  # fmt: skip


@pytest.fixture
def history(db):
    ticks = random_ticks(seed=4, count=3000, hours=40)
    shuffled = random.Random(5).sample(ticks, len(ticks))  # batches arrive out of order
    for i in range(0, len(shuffled), 250):
        ingest_ticks(shuffled[i : i + 250])
    ingest_ticks(shuffled[:250])  # one redelivery
    return ticks


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "1d"])
def test_candles_of_each_interval_match_the_ticks(client, trader_headers, history, app, interval):
    zone = app.config["SESSION_TIMEZONE"]
    start, end = MINUTE - timedelta(days=1), MINUTE + timedelta(days=2)
    response = client.get(url(interval=interval, start=iso(start), end=iso(end)), headers=trader_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["items"] == reference(history, interval, zone)


def test_the_range_is_start_inclusive_end_exclusive_with_start_moved_to_its_bucket(client, trader_headers, db):
    ingest_ticks([tick(1, 0, "100"), tick(2, 240, "101"), tick(3, 300, "102"), tick(4, 600, "103")])
    start, end = MINUTE + timedelta(minutes=2), MINUTE + timedelta(minutes=10)
    items = client.get(url(interval="5m", start=iso(start), end=iso(end)), headers=trader_headers).get_json()["items"]
    assert [(i["ts"], i["open"], i["close"]) for i in items] == [
        (iso(MINUTE), "100", "101"),
        (iso(MINUTE + timedelta(minutes=5)), "102", "102"),
    ]


def test_without_bounds_the_last_day_of_1m_candles_is_returned(client, trader_headers, db):
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=2), now - timedelta(minutes=3)
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": old.isoformat(), "ltp": "10", "ltq": 1},
                  {"instrument_id": 1, "seq": 2, "ts": recent.isoformat(), "ltp": "11", "ltq": 1}])  # fmt: skip
    items = client.get(url(), headers=trader_headers).get_json()["items"]
    assert [i["close"] for i in items] == ["11"]


# -- bad input -------------------------------------------------------------------------------


def error(response) -> dict:
    return response.get_json()["error"]


def test_a_range_past_the_cap_is_refused_naming_the_cap(client, trader_headers, db):
    response = client.get(url(interval="1m", start="2026-01-01T00:00:00Z", end="2026-01-05T00:00:00Z"),
                          headers=trader_headers)  # fmt: skip
    assert response.status_code == 422
    assert "at most 5000" in error(response)["message"] and "narrow start/end" in error(response)["message"]
    assert error(response)["details"]["max_candles"] == 5000


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"interval": "2m"}, "interval"),
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00"}, "start"),
    ],
)
def test_an_interval_or_time_not_matching_the_document_is_400_naming_it(client, trader_headers, db, args, field):
    response = client.get(url(**args), headers=trader_headers)
    assert response.status_code == 400
    assert error(response)["code"] == "validation_error" and field in error(response)["details"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"start": "0001-01-01T00:00:00Z"}, "start"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
    ],
)
def test_times_out_of_range_or_order_are_422_naming_the_field(client, trader_headers, db, args, field):
    response = client.get(url(**args), headers=trader_headers)
    assert response.status_code == 422
    assert (error(response)["code"], error(response)["details"]["field"]) == ("validation_error", field)


def test_an_unknown_instrument_is_404(client, trader_headers, db):
    assert client.get(url(instrument_id=999), headers=trader_headers).status_code == 404


def test_candles_need_a_login(client, db):
    assert client.get(url()).status_code == 401


# -- SQLite (the zero-config run path) -------------------------------------------------------


def test_candle_upsert_and_5m_query_on_sqlite(tmp_path):
    app = create_app(config.TestConfig(test_run.test_env(DB_HOST="", SQLITE_PATH=str(tmp_path / "candles.db"))))
    with app.app_context():
        upgrade(revision="heads")
        ticks = random_ticks(seed=7, count=300, hours=2)
        ingest_ticks(ticks[150:])
        ingest_ticks(ticks[:150])
        ingest_ticks(ticks[:150])
        zone = app.config["SESSION_TIMEZONE"]
        got = query_candles(1, "5m", MINUTE - timedelta(hours=1), MINUTE + timedelta(hours=3), zone)
        items = [{**c, "ts": iso(c["ts"]), **{k: dec(c[k]) for k in ("open", "high", "low", "close")}}
                 for c in got]  # fmt: skip
        assert items == reference(ticks, "5m", zone)
        assert _db.session.scalar(sa.select(sa.func.count()).select_from(Candle1m)) > 100
        _db.session.remove()
        _db.engine.dispose()


def test_same_time_ticks_out_of_seq_order_across_batches_on_sqlite(tmp_path):
    app = create_app(config.TestConfig(test_run.test_env(DB_HOST="", SQLITE_PATH=str(tmp_path / "ties.db"))))
    with app.app_context():
        upgrade(revision="heads")
        ingest_ticks([tick(5, 10, "101.00", ltq=1)])
        ingest_ticks([tick(3, 10, "100.00", ltq=1), tick(4, 10, "100.50", ltq=1)])
        ingest_ticks([tick(6, 10, "102.00", ltq=1)])
        row = candle()
        assert (row.open, row.close, row.volume, row.first_seq, row.last_seq) == (100, 102, 4, 3, 6)
        _db.session.remove()
        _db.engine.dispose()


# -- migration 0010: first_seq/last_seq for the candles already stored ----------------------------


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_migration_0010_gives_bars_the_largest_last_seq_and_tick_candles_zero(env, tmp_path, backend):
    settings = {"DB_HOST": "", "SQLITE_PATH": str(tmp_path / "m.db")}
    if backend == "postgres":
        settings = {"DB_NAME": f"{env['DB_NAME']}_m10"}
        with psycopg.connect(dbname="postgres", autocommit=True, **test_run.PG) as conn:
            conn.execute(f'CREATE DATABASE "{settings["DB_NAME"]}"')
    app = create_app(config.TestConfig({**env, **settings}))
    try:
        with app.app_context():
            upgrade(revision="0009")
            old = sa.table("candles_1m", *(sa.column(name, type_) for name, type_ in (
                ("instrument_id", sa.Integer()), ("bucket", UTCDateTime()), ("open", Price(18, 4)),
                ("high", Price(18, 4)), ("low", Price(18, 4)), ("close", Price(18, 4)),
                ("volume", sa.BigInteger()), ("first_ts", UTCDateTime()), ("last_ts", UTCDateTime()))))  # fmt: skip
            prices = {"open": Decimal(100), "high": Decimal(100), "low": Decimal(100), "close": Decimal(100)}
            _db.session.execute(sa.insert(old), [
                {"instrument_id": 1, "bucket": MINUTE, **prices, "volume": 5, "first_ts": MINUTE,
                 "last_ts": MINUTE + timedelta(seconds=59, microseconds=999_999)},  # a bar
                {"instrument_id": 2, "bucket": MINUTE, **prices, "volume": 5,
                 "first_ts": MINUTE + timedelta(seconds=1), "last_ts": MINUTE + timedelta(seconds=30)},
            ])  # fmt: skip
            _db.session.commit()
            upgrade(revision="0010")
            got = _db.session.execute(sa.text("SELECT instrument_id, first_seq, last_seq FROM candles_1m"))
            assert sorted(got) == [(1, 0, 2**63 - 1), (2, 0, 0)]
            _db.session.remove()
            _db.engine.dispose()
    finally:
        if backend == "postgres":
            with psycopg.connect(dbname="postgres", autocommit=True, **test_run.PG) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{settings["DB_NAME"]}" WITH (FORCE)')
