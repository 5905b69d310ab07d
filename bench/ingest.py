"""Tick ingest: market.ticks -> the real consumer process -> Postgres (ticks + one-minute candles)
and Redis (quote cache + publish), beside a raw psycopg COPY of the same rows in the same run.

Each store is a database of its own, all set up first: `timescaledb` (TIMESCALEDB=on: ticks a
hypertable) and `plain` (TIMESCALEDB=off), each with its own RabbitMQ and Redis namespace. Every
round runs the phases below on each store in turn, the order alternating between rounds (the
machine's load moves: stores are compared within a round, then over the rounds' medians).

1. `--ticks` ticks (default 300k) of `--instruments` instruments (500), ts and seq rising (an
   exchange-scale 100k ticks/s of market time; each phase's ticks ten minutes after the last's),
   prices on a 0.05 tick walking at random, are published to `market.ticks`, `--per-message` ticks
   per message (100), through the app's Publisher (kombu, JSON, publisher confirms).
2. Backlog: with the messages queued, `python -m jobs.consumer` is started; timed from its
   tick loop's `consumer_ready` to the commit of the last tick (its row polled by key), then the
   count checked. This is the consumer's own throughput.
3. Live: the consumer running and idle, a second set of ticks is published; timed from the first
   publish to the last commit (the slower of publisher and consumer).
4. Checked after both: every tick stored once, every candle of the round equal to its ticks folded
   in Python (domain.candles.aggregate), every instrument's cached quote the last tick's.
5. Baseline: the same rows (typed tuples, ready before the clock starts) COPYed by psycopg in
   binary into a fresh plain table like `ticks` (same key), in batches of the consumer's batch
   size, one commit each.
6. The write path alone: a third set of ticks through the consumer's `store_ticks` called in the
   bench's process, in batches of the consumer's size: its rate and its backend's CPU per 100k
   ticks, the steadiest figure of what the store itself costs (no consumer, broker or Redis).

CPU seconds per 100k ticks of the consumer, the consumer's Postgres backends, Redis and RabbitMQ
are printed for phase 2. The bench's own connection polling for the last tick is not counted (it
was: a point query planned on the hypertable cost the server 0.26 ms against 0.13 ms on the plain
table, chunk expansion, and polled every 5 ms for as long as the phase lasted it made a slow run
look dearer per tick, the hypertable's most). It polls with a prepared statement. The
consumer runs with BROKER=xts (dummy credentials, never called): the paper exchange's matching of
every tick is another workload, not this one.

    python -m bench.ingest [--ticks 300000] [--per-message 100] [--instruments 500]
                           [--stores timescaledb,plain] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
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
from tests.support.env import RUN_ID
from tradingapp.domain.candles import aggregate
from tradingapp.domain.feed import format_ts
from tradingapp.extensions import db, get_redis
from tradingapp.messaging import Publisher
from tradingapp.models import Candle1m
from tradingapp.realtime import read_quotes
from tradingapp.services.market.tick_batches import MAX_TICKS
from tradingapp.services.market.ticks import check_ticks, store_ticks

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


class Poller:
    """The bench's own connection, polling for the last tick of a phase by key (a prepared
    statement: no planning per poll). Its backend is left out of the CPU figures."""

    KEY = "SELECT 1 FROM ticks WHERE instrument_id = %s AND ts = %s AND seq = %s"

    def __init__(self, db_name: str):
        self.conn = psycopg.connect(dbname=db_name, autocommit=True, **PG)
        self.pid = self.conn.info.backend_pid

    def close(self) -> None:
        self.conn.close()

    def wait_last(self, last: dict, consumer: ConsumerProcess, timeout: float = 300) -> float:
        """When the last tick was seen committed (perf_counter)."""
        params = (last["instrument_id"], datetime.fromisoformat(last["ts"]), last["seq"])
        deadline = time.monotonic() + timeout
        while self.conn.execute(self.KEY, params, prepare=True).fetchone() is None:
            if time.monotonic() > deadline or consumer.popen.poll() is not None:
                raise SystemExit(f"last tick never stored:\n{''.join(consumer.lines)}")
            time.sleep(0.005)
        return time.perf_counter()

    def wait_count(self, expected_total: int, timeout: float = 300) -> None:
        """Then the whole count (a requeued batch would land after the last tick)."""
        deadline = time.monotonic() + timeout
        while (stored := self.conn.execute("SELECT count(*) FROM ticks").fetchone()[0]) != expected_total:
            if time.monotonic() > deadline:
                raise SystemExit(f"{stored} ticks stored, {expected_total} expected")
            time.sleep(0.05)


def check(app, ticks: list[dict]) -> tuple[int, int]:
    """Every candle of these ticks' minutes equals the ticks folded in Python; every cached quote
    is the last tick's (ticks of later rounds are later: the last of a round is the newest)."""
    rows = [{**t, "ts": datetime.fromisoformat(t["ts"]), "ltp": Decimal(t["ltp"])} for t in ticks]
    expected = {(c["instrument_id"], c["bucket"]): c for c in aggregate(rows)}
    first, last_bucket = min(b for _, b in expected), max(b for _, b in expected)
    with app.app_context():
        candles = sa.select(Candle1m).where(Candle1m.bucket.between(first, last_bucket))
        got = {(c.instrument_id, c.bucket): c for c in db.session.scalars(candles)}
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
    return len(expected), len(last)


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


def store_direct(store: Store, ticks: list[dict]) -> tuple[float, float]:
    """The write path alone: the consumer's store_ticks called in this process on the parsed
    ticks, in batches of the consumer's size (no RabbitMQ, no consumer, no quote cache). Returns
    ticks/s and the Postgres CPU seconds of its backend per 100k ticks: the store's own cost."""
    with store.app.app_context():
        rows = check_ticks(ticks).rows
        backend = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
        db.session.commit()
        cpu, started = _cpu_seconds(backend), time.perf_counter()
        stored = sum(store_ticks(rows[i : i + MAX_TICKS]) for i in range(0, len(rows), MAX_TICKS))
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds(backend) - cpu
        db.session.remove()
    if stored != len(ticks):
        raise SystemExit(f"store_ticks stored {stored} of {len(ticks)}")
    store.stored += stored
    return len(ticks) / elapsed, cpu * 100_000 / len(ticks)


def rabbitmq_cpu() -> dict[int, float]:
    """CPU seconds of each RabbitMQ (beam.smp) process."""
    return {pid: _cpu_seconds(pid) for pid, _, cmd in _processes() if "beam.smp" in cmd}


def cpu_since(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings by the processes alive at both: a throwaway broker that a
    test on this machine started or stopped meanwhile is not counted (nor made negative)."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


STORES = {"timescaledb": "on", "plain": "off"}  # the store -> TIMESCALEDB of its database
PHASE_GAP = timedelta(minutes=10)  # market time between one phase's ticks and the next's
XTS = {"BROKER": "xts", "XTS_API_URL": "http://127.0.0.1:9", "XTS_API_KEY": "bench", "XTS_API_SECRET": "bench"}
CPU_PARTS = ("consumer", "postgres", "redis", "rabbitmq")


class Store:
    """One store's database (migrated with its TIMESCALEDB), namespace, poller and figures."""

    def __init__(self, name: str, env: dict[str, str], app):
        self.name, self.env, self.app = name, env, app
        self.poller = Poller(env["DB_NAME"])
        self.stored = 0  # ticks in its table
        self.rounds: list[dict[str, float]] = []
        conn = self.poller.conn
        self.hypertable = (
            conn.execute("SELECT to_regclass('timescaledb_information.hypertables') IS NOT NULL").fetchone()[0]
            and conn.execute(
                "SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'ticks')"
            ).fetchone()[0]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=300_000)
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--stores", default="timescaledb,plain", help="timescaledb (a hypertable), plain, or both")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over the stores, the order alternating")
    args = parser.parse_args()
    names = args.stores.split(",")
    unknown = set(names) - set(STORES)
    if unknown:
        parser.error(f"unknown store(s) {', '.join(sorted(unknown))}: choose from {', '.join(STORES)}")
    # Every phase's ticks ten minutes of market time after the last, the last phase's ending
    # before now (the consumer refuses ticks more than 5 minutes ahead of the clock).
    start = datetime.now(UTC).replace(microsecond=0) - (3 * args.rounds + 1) * PHASE_GAP
    print(
        f"tick ingest: {args.ticks} ticks x 2 phases x {args.rounds} rounds per store, {args.instruments} "
        f"instruments, {args.per_message} ticks/message, {os.cpu_count()} cores"
    )
    with contextlib.ExitStack() as stack:
        stores = []
        for name in names:
            env, app = stack.enter_context(
                bench_environment(
                    **XTS,
                    TIMESCALEDB=STORES[name],
                    DB_NAME=f"tradingapp_test_{RUN_ID}_{name}",
                    NAMESPACE=f"t{RUN_ID}{name}",
                )
            )
            store = Store(name, env, app)
            stack.callback(store.poller.close)
            print(f"{name}: ticks {'a TimescaleDB hypertable' if store.hypertable else 'a plain table'}")
            stores.append(store)
        for r in range(args.rounds):
            backlog, live, direct = (
                make_ticks(args.ticks, args.instruments, start + (3 * r + k) * PHASE_GAP, seed=3 * r + k + 1)
                for k in range(3)
            )
            order = stores if r % 2 == 0 else stores[::-1]
            print(f"\n== round {r + 1}/{args.rounds}: {', '.join(s.name for s in order)} ==")
            for store in order:
                store.rounds.append(run_round(store, args, backlog, live, direct))
        summary(stores, args.rounds)


def run_round(store: Store, args, backlog: list[dict], live: list[dict], direct: list[dict]) -> dict[str, float]:
    """The phases on one store; returns its figures (rates in ticks/s, CPU s per 100k ticks)."""
    n, per, env, app, poller = args.ticks, args.per_message, store.env, store.app, store.poller
    seconds = publish(app, backlog, per)
    figures = {"publish": n / seconds}
    consumer = ConsumerProcess(env)
    try:
        began = consumer.wait_ready()
        meter = CpuMeter({"consumer": consumer.popen.pid}, env["DB_NAME"])
        meter.start()
        beam, polling = rabbitmq_cpu(), _cpu_seconds(poller.pid)
        done = poller.wait_last(backlog[-1], consumer)
        cpu = meter.stop()
        cpu["postgres"] -= _cpu_seconds(poller.pid) - polling
        cpu["rabbitmq"] = cpu_since(beam, rabbitmq_cpu())
        store.stored += n
        poller.wait_count(store.stored)
        figures["backlog"] = n / (done - began)
        figures.update({part: cpu[part] * 100_000 / n for part in CPU_PARTS})
        began = time.perf_counter()
        publisher = threading.Thread(target=publish, args=(app, live, per))
        publisher.start()
        done = poller.wait_last(live[-1], consumer)
        publisher.join()
        store.stored += n
        poller.wait_count(store.stored)
        figures["live"] = n / (done - began)
    finally:
        consumer.stop()
    candles, quotes = check(app, backlog + live)
    figures["raw"] = n / raw_copy(env, backlog, MAX_TICKS)
    figures["store"], figures["store_pg"] = store_direct(store, direct)
    print(
        f"{store.name:>12}: backlog {figures['backlog']:8,.0f} ticks/s  live {figures['live']:8,.0f}  "
        f"raw COPY {figures['raw']:8,.0f}  publish {figures['publish']:7,.0f}  |  CPU s/100k ticks: "
        + "  ".join(f"{part} {figures[part]:.2f}" for part in CPU_PARTS)
        + f"  |  checked {candles} candles, {quotes} quotes\n{'':>12}  store_ticks in process {figures['store']:8,.0f}"
        f" ticks/s, postgres CPU {figures['store_pg']:.2f} s/100k ticks"
    )
    return figures


def summary(stores: list[Store], rounds: int) -> None:
    """Medians per store; with both stores, the per-round ratio hypertable/plain (paired: the same
    round's load), its median."""
    columns = ("backlog", "live", "raw", *CPU_PARTS, "store", "store_pg")
    print(f"\n== medians of {rounds} rounds ==")
    header = f"{'store':>12}  {'backlog/s':>9}  {'live/s':>8}  {'raw COPY/s':>10}  "
    print(header + "  ".join(f"{c:>8}" for c in CPU_PARTS) + "  (CPU s per 100k ticks, backlog)")
    for store in stores:
        med = {c: statistics.median(r[c] for r in store.rounds) for c in columns}
        print(
            f"{store.name:>12}  {med['backlog']:9,.0f}  {med['live']:8,.0f}  {med['raw']:10,.0f}  "
            + "  ".join(f"{med[c]:8.2f}" for c in CPU_PARTS)
            + f"  (consumer/raw {med['backlog'] / med['raw']:.0%}); store_ticks in process {med['store']:,.0f}"
            f" ticks/s, postgres {med['store_pg']:.2f} s/100k"
        )
    by_name = {s.name: s for s in stores}
    if {"timescaledb", "plain"} <= set(by_name):
        hyper, plain = by_name["timescaledb"].rounds, by_name["plain"].rounds

        def ratio(column: str) -> str:
            values = [h[column] / p[column] for h, p in zip(hyper, plain, strict=True) if p[column]]
            return f"{statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)})"

        print(
            "timescaledb/plain, per round (median (rounds)): "
            f"backlog {ratio('backlog')}; postgres CPU per tick {ratio('postgres')}; "
            f"consumer CPU per tick {ratio('consumer')}; store_ticks in process: rate {ratio('store')},"
            f" postgres CPU per tick {ratio('store_pg')}"
        )


if __name__ == "__main__":
    main()
