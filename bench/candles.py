"""Candle reads out of a large tick store: GET /api/v1/instruments/{id}/candles on real Postgres.

1. `--ticks` ticks (default 2M; the issue's figure is 50M) are generated in Python and streamed
   into `ticks` with COPY: `--instruments` instruments with a Zipf share of the ticks each (the
   first, like an index future, has the most), over `--sessions` weekday sessions (09:15-15:30
   Asia/Kolkata), ts rising within each instrument, prices on a 0.05 tick walking at random.
2. candles_1m is built from the ticks by one SQL aggregate per instrument, written in time order
   (as a live store's heap holds them: each minute's candles of every instrument together), and
   checked on a sample against the real write path: one instrument-session's ticks deleted and
   stored again, shuffled, through services/ticks.store_ticks must give the same candles.
3. Timed, `--runs` times each after a warm-up, p50/p99: the 1-day 1m series of the busiest
   instrument (the target: <= 10 ms), then 5m/15m/30m/1h/1d over their default spans (7, 30,
   60, 90, 365 days): through the service function and through the HTTP route (Flask test
   client: JWT check, instrument lookup, query, JSON), beside the raw baseline of the same run:
   the very SQL statement the service sends, replayed with bare psycopg. And a bare
   authenticated Flask route: what any route costs before it does any work.
4. On TimescaleDB (migration 0015) the coarse intervals are read from continuous aggregates,
   refreshed first as their policy does (the time taken printed); each is timed twice in the
   same run: from the aggregate, and re-bucketing the candles_1m hypertable (the aggregates made
   to line up with no request: what another zone or a range with a pending invalidation gets),
   each beside its own raw SQL; the plain store's run gives today's re-bucketing. `--stores
   timescaledb,plain` runs the whole bench on both stores, one after the other, on the same
   generated data (the machine's load moves: compare within one store's run).

    python -m bench.candles [--ticks 2000000] [--instruments 100] [--sessions 65] [--runs 200]
                            [--stores timescaledb,plain]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import sqlalchemy as sa
from flask import jsonify

from bench.common import bench_environment, fmt, percentiles
from tests.support.env import FAST_HASHER, PG
from tradingapp.domain.candles import DEFAULT_SPANS
from tradingapp.extensions import db
from tradingapp.models import Candle1m, Tick, User
from tradingapp.models.types import iso
from tradingapp.security.auth import issue_tokens, login_required
from tradingapp.services.market.candles import query_candles
from tradingapp.services.market.ticks import parse_tick, store_ticks

ZONE = ZoneInfo("Asia/Kolkata")
SESSION_OPEN = timedelta(hours=9, minutes=15)  # local
SESSION_SECONDS = 6 * 3600 + 15 * 60
LAST_SESSION = date(2026, 11, 20)  # a Friday
COPY_SQL = "COPY ticks (instrument_id, ts, seq, ltp, ltq, bid, ask, bid_qty, ask_qty, volume) FROM STDIN"
# One instrument at a time (its ticks in primary key order) into a staging table, then into candles_1m
# in time order: the heap of a live store holds each minute's candles of all instruments together,
# so one instrument's series is spread over many pages (built per instrument, it would sit packed).
BUILD_SQL = """
INSERT INTO candles_staging (instrument_id, bucket, open, high, low, close, volume, first_ts, last_ts,
                              first_seq, last_seq)
SELECT instrument_id, date_trunc('minute', ts) AS bucket,
       (array_agg(ltp ORDER BY ts, seq))[1], max(ltp), min(ltp), (array_agg(ltp ORDER BY ts DESC, seq DESC))[1],
       sum(ltq), min(ts), max(ts), (array_agg(seq ORDER BY ts, seq))[1], (array_agg(seq ORDER BY ts DESC, seq DESC))[1]
FROM ticks WHERE instrument_id = %s GROUP BY instrument_id, bucket
"""
RAW_SQL = "SELECT bucket FROM candles_1m WHERE instrument_id = %s AND bucket >= %s AND bucket < %s ORDER BY bucket"


def session_days(count: int) -> list[date]:
    days, day = [], LAST_SESSION
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return sorted(days)


def session_start(day: date) -> datetime:
    return (datetime.combine(day, datetime.min.time(), ZONE) + SESSION_OPEN).astimezone(UTC)


def tick_counts(total: int, instruments: int, sessions: int) -> list[int]:
    """Ticks per instrument per session: a Zipf share of the total for each instrument."""
    weights = [1 / rank for rank in range(1, instruments + 1)]
    scale = total / sum(weights) / sessions
    return [max(1, round(w * scale)) for w in weights]


def generate_ticks(conn: psycopg.Connection, total: int, instruments: int, sessions: int, seed: int = 1) -> int:
    """Stream the ticks into COPY, session by session (the heap is in time order, as a live store's is)."""
    rng = random.Random(seed)
    per_session = tick_counts(total, instruments, sessions)
    price = [rng.randint(2_000, 60_000) for _ in range(instruments)]  # in 0.05 units: 100.00 .. 3000.00
    seq = [0] * instruments
    written, report_every, next_report = 0, max(total // 10, 1), max(total // 10, 1)
    opens = session_start(LAST_SESSION)  # the same UTC time of day every session (no DST in the zone)
    clock = [(opens + timedelta(seconds=s)).strftime("%H:%M:%S") for s in range(SESSION_SECONDS)]
    with conn.cursor().copy(COPY_SQL) as copy:
        for day in session_days(sessions):
            start = session_start(day)
            assert start.time() == opens.time()
            prefix = start.strftime("%Y-%m-%d ")
            seconds = [prefix + hms for hms in clock]
            for index, count in enumerate(per_session):
                lines, iid, units = [], index + 1, price[index]
                spacing = SESSION_SECONDS * 1_000_000 / count
                for k in range(count):
                    offset = int((k + rng.random() * 0.9) * spacing)
                    units = max(units + rng.choice((-1, 0, 0, 1)), 20)
                    ltp, bid, ask = units * 5, units * 5 - 5, units * 5 + 5
                    seq[index] += 1
                    lines.append(
                        f"{iid}\t{seconds[offset // 1_000_000]}.{offset % 1_000_000:06d}+00\t{seq[index]}\t"
                        f"{ltp // 100}.{ltp % 100:02d}\t{rng.randint(1, 500)}\t{bid // 100}.{bid % 100:02d}\t"
                        f"{ask // 100}.{ask % 100:02d}\t{rng.randint(1, 2000)}\t{rng.randint(1, 2000)}\t{seq[index]}\n"
                    )
                price[index] = units
                copy.write("".join(lines))
                written += count
                if written >= next_report:
                    print(f"  {written:>12,} ticks", flush=True)
                    next_report += report_every
    return written


def build_candles(conn: psycopg.Connection, instruments: int) -> int:
    conn.execute("SET work_mem = '1GB'")
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("CREATE UNLOGGED TABLE candles_staging (LIKE candles_1m)")
    for iid in range(1, instruments + 1):
        conn.execute(BUILD_SQL, (iid,))
    conn.execute("INSERT INTO candles_1m SELECT * FROM candles_staging ORDER BY bucket, instrument_id")
    conn.execute("DROP TABLE candles_staging")
    conn.execute("RESET work_mem")
    return conn.execute("SELECT count(*) FROM candles_1m").fetchone()[0]


def check_sample(app, instrument_id: int, day: date) -> int:
    """The SQL-built candles of one instrument-session equal those of the real write path: its ticks
    deleted (with their candles) and stored again by services/ticks.store_ticks, shuffled, in
    consumer-sized batches. The store ends as it was."""
    start = session_start(day)
    end = start + timedelta(seconds=SESSION_SECONDS)
    c, t = Candle1m, Tick
    columns = (c.bucket, c.open, c.high, c.low, c.close, c.volume, c.first_ts, c.last_ts, c.first_seq, c.last_seq)
    candles_in = sa.and_(c.instrument_id == instrument_id, c.bucket >= start, c.bucket < end)
    ticks_in = sa.and_(t.instrument_id == instrument_id, t.ts >= start, t.ts < end)
    with app.app_context():
        built = [tuple(r) for r in db.session.execute(sa.select(*columns).where(candles_in).order_by(c.bucket))]
        raws = [
            {
                "instrument_id": r.instrument_id,
                "ts": r.ts.isoformat(),
                "seq": r.seq,
                "ltp": str(r.ltp),
                "ltq": r.ltq,
                "bid": str(r.bid),
                "ask": str(r.ask),
                "bid_qty": r.bid_qty,
                "ask_qty": r.ask_qty,
                "volume": r.volume,
            }
            for r in db.session.scalars(sa.select(t).where(ticks_in))
        ]
        db.session.execute(sa.delete(c).where(candles_in))
        db.session.execute(sa.delete(t).where(ticks_in))
        db.session.commit()
        random.Random(2).shuffle(raws)
        for i in range(0, len(raws), 1000):
            store_ticks([parse_tick(raw) for raw in raws[i : i + 1000]])
        again = [tuple(r) for r in db.session.execute(sa.select(*columns).where(candles_in).order_by(c.bucket))]
        db.session.remove()
    if again != built or not built:
        raise SystemExit(f"candles built by SQL differ from the write path's for instrument {instrument_id} on {day}")
    return len(raws)


def issued_sql(app, fn) -> tuple[str, dict]:
    """The last SQL statement (and its parameters) that fn() sends, to replay it with bare psycopg."""
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", capture)
        try:
            fn()
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", capture)
            db.session.remove()
    return seen[-1]


def timed(fn, runs: int, warmup: int = 10) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples)


def bench_headers(app) -> dict[str, str]:
    with app.app_context():
        user = User(
            email="bench-candles@bench.local",
            password_hash=FAST_HASHER.hash("bench-password-123"),
            name="Bench",
            role="trader",
        )
        db.session.add(user)
        db.session.commit()
        with app.test_request_context():
            return {"Authorization": f"Bearer {issue_tokens(user)['access_token']}"}


@login_required()
def _bare():
    return jsonify(items=[])


def measure(app, env, runs: int, day: date) -> None:
    app.add_url_rule("/bench/bare", "bench_bare", _bare)
    headers, client = bench_headers(app), app.test_client()
    zone = app.config["SESSION_TIMEZONE"]
    raw = psycopg.connect(dbname=env["DB_NAME"], autocommit=True, **PG)
    raw.execute("SET jit = off")  # as query_candles runs its re-bucketing query
    has_aggregates = raw.execute("SELECT count(*) FROM candle_aggregates").fetchone()[0] > 0
    summary: dict[str, dict[str, float]] = {}
    day_start = datetime.combine(day, datetime.min.time(), ZoneInfo(zone)).astimezone(UTC)
    end = day_start + timedelta(days=1)
    cases = [("1m", day_start)] + [(i, end - DEFAULT_SPANS[i]) for i in ("5m", "15m", "30m", "1h", "1d")]
    print(f"\nreads of instrument 1, {runs} runs each after 10 warm-up runs (ms)")
    bare = timed(lambda: client.get("/bench/bare", headers=headers), runs)
    print(f"bare authenticated route (test client)   {fmt(bare)}")
    for interval, start in cases:

        def service(s=start, i=interval):
            with app.app_context():
                query_candles(1, i, s, end, zone)
                db.session.remove()

        url = f"/api/v1/instruments/1/candles?interval={interval}&start={iso(start)}&end={iso(end)}"

        def route(u=url):
            response = client.get(u, headers=headers)
            assert response.status_code == 200

        minutes = raw.execute(
            "SELECT count(*) FROM candles_1m WHERE instrument_id = 1 AND bucket >= %s AND bucket < %s", (start, end)
        ).fetchone()[0]
        items = client.get(url, headers=headers).get_json()["items"]
        print(f"{interval:>3} over {(end - start).days:>3} d: {len(items):>5} candles from {minutes:>6} 1m candles")
        if interval == "1m" and [i["ts"] for i in items] != [iso(r[0]) for r in raw.execute(RAW_SQL, (1, start, end))]:
            raise SystemExit("the route's 1m candles are not the raw rows")
        sources = [("re-bucketing", True)]
        if has_aggregates and interval != "1m":
            sources.insert(0, ("aggregate", False))
        for source, hide in sources:
            if hide and has_aggregates:
                # Listed but lined up with no request: what another zone or a stale range gets.
                raw.execute("UPDATE candle_aggregates SET origin_seconds = -1 - origin_seconds, zone = '-' || zone")
            try:
                sql, params = issued_sql(app, service)
                if client.get(url, headers=headers).get_json()["items"] != items:
                    raise SystemExit(f"{interval}: the aggregate's candles differ from re-bucketing's")
                base = timed(lambda q=sql, p=params: raw.execute(q, p).fetchall(), runs)
                svc, api = timed(service, runs), timed(route, runs)
            finally:
                if hide and has_aggregates:
                    raw.execute(
                        "UPDATE candle_aggregates SET origin_seconds = -1 - origin_seconds, zone = substr(zone, 2)"
                    )
            label = f" [{source}]" if interval != "1m" else ""
            print(f"  {label}")
            print(f"    raw: the same SQL, bare psycopg      {fmt(base)}")
            print(f"    service query_candles                {fmt(svc)}")
            print(f"    HTTP route (test client)             {fmt(api)}")
            print(f"    route / raw SQL: p50 {api['p50'] / base['p50']:.1f}x, p99 {api['p99'] / base['p99']:.1f}x")
            summary.setdefault(interval, {})[source] = api["p50"]
    for interval, p50s in summary.items():
        if "aggregate" in p50s:
            print(f"route p50 {interval:>3}: aggregate {p50s['aggregate']:7.2f} ms, re-bucketing"
                  f" {p50s['re-bucketing']:7.2f} ms ({p50s['re-bucketing'] / p50s['aggregate']:.1f}x)")  # fmt: skip
    raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--instruments", type=int, default=100)
    parser.add_argument("--sessions", type=int, default=65, help="weekday sessions (65 ~ 90 calendar days)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--stores", default="timescaledb", help="timescaledb, plain, or both (timescaledb,plain)")
    args = parser.parse_args()
    for name in args.stores.split(","):
        print(f"\n== store: {name} ==")
        run_store(args, {"timescaledb": "auto", "plain": "off"}[name])


def refresh_aggregates(env) -> None:
    """Materialize the aggregates as their policy does (up to an hour ago), timed."""
    with psycopg.connect(dbname=env["DB_NAME"], autocommit=True, **PG) as conn:
        views = [r[0] for r in conn.execute("SELECT view_name FROM candle_aggregates ORDER BY step_seconds")]
        for view in views:
            started = time.perf_counter()
            conn.execute("CALL refresh_continuous_aggregate(%s, NULL, now() - interval '1 hour')", (view,))
            rows = conn.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
            print(f"refresh of {view}: {time.perf_counter() - started:.1f} s ({rows:,} candles)")
        if views:
            conn.execute("ANALYZE")


def run_store(args, timescaledb: str) -> None:
    with bench_environment(TIMESCALEDB=timescaledb) as (env, app):
        with psycopg.connect(dbname=env["DB_NAME"], autocommit=True, **PG) as conn:
            conn.execute(
                "INSERT INTO instruments (exchange_segment, exchange_instrument_id, symbol, name, lot_size, tick_size) "
                "SELECT 'BENCH', n, 'BENCH' || n, 'bench instrument ' || n, 1, 0.05 FROM generate_series(1, %s) n",
                (args.instruments,),
            )
            print(f"generating {args.ticks:,} ticks ({args.instruments} instruments, {args.sessions} sessions) ...")
            started = time.perf_counter()
            count = generate_ticks(conn, args.ticks, args.instruments, args.sessions)
            generated = time.perf_counter() - started
            print(f"COPY of {count:,} ticks: {generated:.1f} s ({count / generated:,.0f} ticks/s)")
            started = time.perf_counter()
            candles = build_candles(conn, args.instruments)
            print(f"candles_1m built by SQL: {candles:,} rows in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            conn.execute("VACUUM ANALYZE ticks")
            conn.execute("VACUUM ANALYZE candles_1m")
            print(f"VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")
            size = conn.execute(
                "SELECT pg_size_pretty(pg_total_relation_size('ticks')), "
                "pg_size_pretty(pg_total_relation_size('candles_1m'))"
            ).fetchone()
            print(f"ticks {size[0]}, candles_1m {size[1]} on disk")
        day = session_days(args.sessions)[-1]
        sampled = check_sample(app, 1, day)
        print(f"sample check: {sampled:,} ticks of instrument 1 on {day} stored again by store_ticks: same candles")
        refresh_aggregates(env)  # after the check, whose rewrite of a day invalidates it
        measure(app, env, args.runs, day)


if __name__ == "__main__":
    main()
