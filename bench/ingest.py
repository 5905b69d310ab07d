"""Tick ingest: market.ticks -> the real consumer process -> Postgres (ticks + one-minute candles)
and Redis (quote cache + publish), beside a raw psycopg COPY of the same rows in the same run.

1. `--ticks` ticks (default 300k) of `--instruments` instruments (500), ts and seq rising (an
   exchange-scale 100k ticks/s of market time), prices on a 0.05 tick walking at random, are
   published to `market.ticks`, `--per-message` ticks per message (100), through the app's
   Publisher (kombu, JSON, publisher confirms): the publish rate is printed.
2. Backlog: with the messages queued, `python -m jobs.consumer` is started; timed from its
   tick loop's `consumer_ready` to the commit of the last tick (its row polled by key), then the
   count checked. This is the consumer's own throughput.
3. Live: the consumer running and idle, a second set of ticks (an hour later) is published; timed
   from the first publish to the last commit (the slower of publisher and consumer).
4. Checked after both: every tick stored once, every candle equal to the ticks folded in Python
   (domain.candles.aggregate), every instrument's cached quote the last tick's.
5. Baseline: the same rows (typed tuples, ready before the clock starts) COPYed by psycopg in
   binary into a fresh table like `ticks` (same key), in batches of the consumer's batch size,
   one commit each.

CPU seconds per 100k ticks of the consumer, the Postgres backends, Redis and RabbitMQ are
printed for phase 2. The consumer runs with BROKER=xts (dummy credentials, never called): the
paper exchange's matching of every tick is another workload, not this one.

Run once per store, each in a database of its own: `timescaledb` (TIMESCALEDB=on: ticks a
hypertable) and `plain` (TIMESCALEDB=off), the raw COPY baseline beside each.

    python -m bench.ingest [--ticks 300000] [--per-message 100] [--instruments 500]
                           [--stores timescaledb,plain]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import sqlalchemy as sa

from bench.common import PG, ROOT, CpuMeter, _cpu_seconds, _processes, bench_environment
from tradingapp.domain.candles import aggregate
from tradingapp.domain.feed import format_ts
from tradingapp.extensions import db, get_redis
from tradingapp.messaging import Publisher
from tradingapp.models import Candle1m
from tradingapp.realtime import read_quotes
from tradingapp.services.market.tick_batches import MAX_TICKS

EXCHANGE_RATE = 100_000  # ticks per second of market time
CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "first_ts", "last_ts", "first_seq", "last_seq")


def make_ticks(count: int, instruments: int, start: datetime, seed: int) -> list[dict]:
    """Ticks as the feed publishes them (prices as strings), ts and seq rising."""
    rng = random.Random(seed)
    prices = [rng.randint(2_000, 60_000) for _ in range(instruments)]  # in 0.05 steps
    volume = [0] * instruments
    step = timedelta(seconds=1 / EXCHANGE_RATE)
    base_seq = int(start.timestamp() * 1_000_000)
    ticks = []
    for i in range(count):
        k = rng.randrange(instruments)
        prices[k] = max(prices[k] + rng.randint(-3, 3), 1)
        ltq = rng.randint(1, 500)
        volume[k] += ltq
        ltp = Decimal(prices[k]) / 20
        ticks.append(
            {
                "instrument_id": k + 1,
                "exchange_segment": "NSECM",
                "exchange_instrument_id": 1000 + k,
                "seq": base_seq + i,
                "ts": format_ts(start + i * step),
                "ltp": f"{ltp:.2f}",
                "bid": f"{ltp - Decimal('0.05'):.2f}",
                "ask": f"{ltp + Decimal('0.05'):.2f}",
                "open": "1000.00",
                "high": "3000.00",
                "low": "100.00",
                "close": "1000.00",
                "ltq": ltq,
                "bid_qty": rng.randint(1, 5000),
                "ask_qty": rng.randint(1, 5000),
                "volume": volume[k],
            }
        )
    return ticks


def publish(app, ticks: list[dict], per_message: int) -> float:
    """Publish the ticks in messages of `per_message`; returns the seconds it took."""
    publisher = Publisher(app.config["AMQP_URL"], app.config["NAMESPACE"])
    try:
        publisher.publish("market_ticks", "ticks.NSECM", {"ticks": ticks[:1]}, message_id="warm-up")
        started = time.perf_counter()
        for i in range(0, len(ticks), per_message):
            body = {"ticks": ticks[i : i + per_message]}
            publisher.publish("market_ticks", "ticks.NSECM", body, message_id=uuid.uuid4().hex)
        return time.perf_counter() - started
    finally:
        publisher.close()


class ConsumerProcess:
    """`python -m jobs.consumer` with the bench's environment; its log is kept (last lines)."""

    def __init__(self, env: dict[str, str]):
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "jobs.consumer"],
            cwd=ROOT,
            env={**env, "LOG_LEVEL": "INFO"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: deque[str] = deque(maxlen=50)
        self.ticks_ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.popen.stderr:
            self.lines.append(line)
            if "event=consumer_ready" in line and "tradingapp.ticks" in line:
                self.ticks_ready.set()

    def wait_ready(self, timeout: float = 30) -> float:
        if not self.ticks_ready.wait(timeout):
            raise SystemExit(f"consumer not ready:\n{''.join(self.lines)}")
        return time.perf_counter()

    def stop(self) -> None:
        self.popen.terminate()
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def wait_stored(app, last: dict, expected_total: int, consumer: ConsumerProcess, timeout: float = 300) -> float:
    """Poll (by key, cheap) until the last tick is committed; returns when it was seen. Then wait
    for the whole count (a requeued batch would land after it)."""
    key = sa.text("SELECT 1 FROM ticks WHERE instrument_id = :i AND ts = :ts AND seq = :seq")
    params = {"i": last["instrument_id"], "ts": datetime.fromisoformat(last["ts"]), "seq": last["seq"]}
    deadline = time.monotonic() + timeout
    with app.app_context():
        while db.session.execute(key, params).first() is None:
            db.session.rollback()
            if time.monotonic() > deadline or consumer.popen.poll() is not None:
                raise SystemExit(f"last tick never stored:\n{''.join(consumer.lines)}")
            time.sleep(0.005)
        seen = time.perf_counter()
        while (stored := db.session.scalar(sa.text("SELECT count(*) FROM ticks"))) != expected_total:
            db.session.rollback()
            if time.monotonic() > deadline:
                raise SystemExit(f"{stored} ticks stored, {expected_total} expected")
            time.sleep(0.05)
        db.session.rollback()
    return seen


def check(app, ticks: list[dict]) -> None:
    """Every candle equals the ticks folded in Python; every cached quote is the last tick's."""
    rows = [{**t, "ts": datetime.fromisoformat(t["ts"]), "ltp": Decimal(t["ltp"])} for t in ticks]
    expected = {(c["instrument_id"], c["bucket"]): c for c in aggregate(rows)}
    with app.app_context():
        got = {(c.instrument_id, c.bucket): c for c in db.session.scalars(sa.select(Candle1m))}
        db.session.rollback()
        if set(got) != set(expected):
            raise SystemExit(f"candles: {len(got)} stored, {len(expected)} expected")
        for key, want in expected.items():
            row = got[key]
            have = tuple(getattr(row, name) for name in CANDLE_FIELDS)
            if have != tuple(want[name] for name in CANDLE_FIELDS):
                raise SystemExit(f"candle {key}: {have} != {want}")
        last: dict[int, dict] = {}
        for tick in ticks:  # ts and seq rise: the last one wins
            last[tick["instrument_id"]] = tick
        quotes = read_quotes(get_redis(), list(last))
        wrong = [i for i, t in last.items() if quotes.get(i, {}).get("ltp") != t["ltp"]]
        if wrong:
            raise SystemExit(f"cached quotes wrong for instruments {wrong[:10]}")
    print(f"  checked: {len(expected)} candles equal to the ticks folded in Python, {len(last)} quotes the last tick's")


def raw_copy(env: dict[str, str], ticks: list[dict], batch: int) -> float:
    """psycopg binary COPY of the same rows into a fresh table like ticks; returns seconds."""
    rows = [
        (
            t["instrument_id"],
            datetime.fromisoformat(t["ts"]),
            t["seq"],
            Decimal(t["ltp"]),
            t["ltq"],
            Decimal(t["bid"]),
            Decimal(t["ask"]),
            t["bid_qty"],
            t["ask_qty"],
            t["volume"],
        )
        for t in ticks
    ]
    types = ["int4", "timestamptz", "int8", "numeric", "int4", "numeric", "numeric", "int4", "int4", "int8"]
    with psycopg.connect(dbname=env["DB_NAME"], **PG) as conn:
        conn.execute("CREATE TABLE ticks_raw (LIKE ticks INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, len(rows), batch):
                with cur.copy("COPY ticks_raw FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    for row in rows[i : i + batch]:
                        copy.write_row(row)
                conn.commit()
        elapsed = time.perf_counter() - started
        stored = conn.execute("SELECT count(*) FROM ticks_raw").fetchone()[0]
        conn.execute("DROP TABLE ticks_raw")
        conn.commit()
    if stored != len(rows):
        raise SystemExit(f"raw COPY stored {stored} of {len(rows)}")
    return elapsed


def rabbitmq_cpu() -> float:
    return sum(_cpu_seconds(pid) for pid, _, cmd in _processes() if "beam.smp" in cmd)


STORES = {"timescaledb": "on", "plain": "off"}  # the store -> TIMESCALEDB of its database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=300_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--stores", default="timescaledb,plain", help="timescaledb (a hypertable), plain, or both")
    args = parser.parse_args()
    n = args.ticks
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    backlog = make_ticks(n, args.instruments, start, seed=1)
    live = make_ticks(n, args.instruments, start + timedelta(hours=1), seed=2)
    results = {}
    for store in args.stores.split(","):
        results[store] = run_store(store, args, backlog, live)
    if len(results) > 1:
        print("\n" + "  ".join(f"{store}: {rate:,.0f} ticks/s" for store, rate in results.items()) + "  (backlog)")


def run_store(store: str, args, backlog: list[dict], live: list[dict]) -> float:
    n, per = args.ticks, args.per_message
    xts = {"BROKER": "xts", "XTS_API_URL": "http://127.0.0.1:9", "XTS_API_KEY": "bench", "XTS_API_SECRET": "bench"}
    with bench_environment(**xts, TIMESCALEDB=STORES[store]) as (env, app):
        with psycopg.connect(dbname=env["DB_NAME"], **PG) as conn:
            hypertable = (
                conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')").fetchone()[0]
                and conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'ticks')"
                ).fetchone()[0]
            )
        print(
            f"\n== {store}: ticks {'a TimescaleDB hypertable' if hypertable else 'a plain table'} ==\n"
            f"tick ingest: {n} ticks x 2 phases, {args.instruments} instruments, {per} ticks/message, "
            f"{os.cpu_count()} cores"
        )
        # -- 2. backlog -------------------------------------------------------------------------
        seconds = publish(app, backlog, per)
        print(f"publish (Publisher, confirms): {n / seconds:10,.0f} ticks/s  ({n / per / seconds:,.0f} messages/s)")
        consumer = ConsumerProcess(env)
        try:
            began = consumer.wait_ready()
            meter = CpuMeter({"consumer": consumer.popen.pid}, env["DB_NAME"])
            meter.start()
            beam = rabbitmq_cpu()
            done = wait_stored(app, backlog[-1], n, consumer)
            cpu = {**meter.stop(), "rabbitmq": rabbitmq_cpu() - beam}
            backlog_rate = n / (done - began)
            print(f"consumer, backlog:             {backlog_rate:10,.0f} ticks/s  (ready -> last commit)")
            print("  CPU s per 100k ticks: " + "  ".join(f"{k}={v * 100_000 / n:.2f}" for k, v in cpu.items()))
            # -- 3. live ----------------------------------------------------------------------------
            began = time.perf_counter()
            publisher = threading.Thread(target=publish, args=(app, live, per))
            publisher.start()
            done = wait_stored(app, live[-1], 2 * n, consumer)
            publisher.join()
            print(f"publish -> commit, live:       {n / (done - began):10,.0f} ticks/s  (first publish -> last commit)")
        finally:
            consumer.stop()
        check(app, backlog + live)
        # -- 5. baseline --------------------------------------------------------------------------
        raw = n / raw_copy(env, backlog, MAX_TICKS)
        print(f"raw psycopg binary COPY:       {raw:10,.0f} ticks/s  (same rows, typed tuples, {MAX_TICKS}/commit)")
        print(f"ratio consumer(backlog)/raw:   {backlog_rate / raw:10.0%}")
        return backlog_rate


if __name__ == "__main__":
    main()
