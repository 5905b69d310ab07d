"""Order intake: POST /api/v1/orders throughput and latency on gunicorn (gevent workers, the real
gunicorn.conf.py) with real Postgres and Redis, beside a bare Flask route served by the same workers
in the same run; then accept -> broker place() latency through RQ with the worker running.

Phases (each `--duration` seconds after a 1 s warm-up; keep-alive clients from bench/load.py):
1. the client's own floor: a plain WSGI answer in front of Flask (bench/wsgi.py /bench/raw);
2. closed loop, `--clients` connections: the bare Flask route, then LIMIT orders 5% under the market
   (they rest), spread over `--users` traders so no one trader's rate limit is what is measured: the
   most each does per second, its latency at that load, and the CPU milliseconds each process group
   (gunicorn, the run's Postgres backends, Redis, the client) spends per request (Linux /proc);
3. open loop at `--rate` requests/s (default 1,000, the target): latency of the bare route and of
   orders at the same offered load, counted from when each request was due;
4. with one RQ worker started (queue emptied first): orders at `--latency-rate`/s; accept -> broker is
   the paper book row's created_at (stamped as place() begins) minus the order's created_at (stamped
   before the API's INSERT), from the database, split at the worker's claim. Baseline: an empty RQ
   job's enqueue -> start. Also the worker's CPU per order.


The cost of the instrumentation (README "Operations"): every phase runs with METRICS_ENABLED=true
(metrics as deployed: gunicorn's multiprocess files, the worker's registry) and with false (every
metric a no-op), the processes started again for each, alternating over `--rounds` rounds; the
figures of each run are printed, then both settings side by side (the median of the rounds) with
their ratio. `--metrics on` or `off` runs one setting only.

    python -m bench.order_throughput [--workers 2] [--clients 8] [--duration 5] [--rate 1000] [--latency-rate 20]
                                     [--metrics both|on|off] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from rq import Queue, Worker

from bench.common import ROOT, CpuMeter, bench_environment, fmt, percentiles
from tests.support.env import FAST_HASHER
from tests.support.stack import BIN, Stack
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db, get_redis
from tradingapp.models import Order, OrderEvent, User
from tradingapp.realtime import store_quote
from tradingapp.security.auth import issue_tokens
from tradingapp.services.orders import jobqueue

LAST_PRICE = "2900.00"
# BUY 5% under the market: inside the price band, never fills, so every order rests at the exchange.
ORDER_BODY = (
    '{"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": "2755.00", '
    '"product": "MIS", "time_in_force": "DAY", "client_order_id": "bench-{n}"}'
)
BARE_BODY = ORDER_BODY


def make_users(app, count: int, prefix: str = "bench") -> list[dict]:
    """Traders with bearer headers (tokens issued directly: argon2 logins are not what is measured)."""
    with app.app_context():
        users = [
            User(
                email=f"{prefix}-{i}@bench.local",
                password_hash=FAST_HASHER.hash("bench-password-123"),
                name=f"Bench {i}",
                role="trader",
            )
            for i in range(count)
        ]
        db.session.add_all(users)
        db.session.commit()
        with app.test_request_context():
            return [{"Authorization": f"Bearer {issue_tokens(u)['access_token']}"} for u in users]


def set_quotes(app) -> None:
    with app.app_context():
        pipe = get_redis().pipeline()
        for instrument_id in range(1, 6):
            quote = {
                "instrument_id": instrument_id,
                "ltp": LAST_PRICE,
                "bid": LAST_PRICE,
                "ask": LAST_PRICE,
                "ts": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
            }
            store_quote(pipe, quote, ttl=3600)
        pipe.execute()


def load(
    stack: Stack,
    path: str,
    clients: int,
    duration: float,
    rate: float = 0,
    headers=None,
    first: int = 0,
    body: str | None = BARE_BODY,
    meter: CpuMeter | None = None,
) -> dict:
    job = {
        "host": "127.0.0.1",
        "port": stack.http_port,
        "method": "POST",
        "path": path,
        "body": body,
        "clients": clients,
        "duration": duration,
        "rate": rate,
        "headers": headers or [],
        "first": first,
    }
    if meter:
        meter.start()
    done = subprocess.run(
        [sys.executable, "-m", "bench.load"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(done.stdout)
    if meter:  # CPU milliseconds per answered request, by process group
        used = {**meter.stop(), "client": result["client_cpu_s"]}
        result["cpu_ms"] = {name: seconds * 1000 / max(result["completed"], 1) for name, seconds in used.items()}
    result["rps"] = len(result["samples_ms"]) / duration
    bad = {k: v for k, v in result["statuses"].items() if not k.startswith("2")}
    if bad or result["error_count"]:
        raise SystemExit(f"{path}: non-2xx answers {bad}, errors {result['errors']}\n{stack.logs()}")
    return result


# METRICS_ENABLED of each setting, in the processes' environment.
METRICS = {"on": "true", "off": "false"}


def start_backend(stack: Stack, metrics: str = "on") -> None:
    argv = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "bench.wsgi:app", "-b", f"127.0.0.1:{stack.http_port}"]
    stack.start_one("backend", argv, {"PORT": str(stack.http_port), "METRICS_ENABLED": METRICS[metrics]})
    stack.wait_http(f"{stack.base_url}/health", "backend")


def start_worker(stack: Stack, app, metrics: str = "on") -> None:
    process = stack.start_one("worker", [sys.executable, "-m", "jobs.worker"], {"METRICS_ENABLED": METRICS[metrics]})
    deadline = time.monotonic() + 20
    with app.app_context():
        while not [w for w in Worker.all(connection=get_redis()) if w.pid == process.popen.pid]:
            if time.monotonic() > deadline or process.popen.poll() is not None:
                raise SystemExit(f"worker did not start:\n{process.tail()}")
            time.sleep(0.05)


def rq_hop(enqueued_at: float) -> None:
    """An RQ job that only notes how long after its enqueue it started (the baseline of phase 4)."""
    get_redis().rpush("bench:rq_hop", time.time() - enqueued_at)


def rq_baseline(app, count: int, rate: float) -> list[float]:
    with app.app_context():
        redis = get_redis()
        queue = Queue(jobqueue.queue_name(jobqueue.ORDERS), connection=redis)
        for _ in range(count):
            queue.enqueue("bench.order_throughput.rq_hop", time.time(), result_ttl=0)
            time.sleep(1 / rate)
        deadline = time.monotonic() + 10
        while redis.llen("bench:rq_hop") < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return [float(x) * 1000 for x in redis.lrange("bench:rq_hop", 0, -1)]


def broker_latencies(app, since, expected: int, timeout: float = 30) -> dict[str, list[float]]:
    """accept (order created_at, stamped before the API's INSERT) -> the paper exchange's place() (its
    book row's created_at, stamped as place() begins), split at the worker's claim (the `submitted`
    audit row, stamped as the claim writes it): API commit + enqueue + RQ + row lock | claim + commit."""
    deadline = time.monotonic() + timeout
    query = (
        sa.select(Order.created_at, OrderEvent.ts, PaperOrder.created_at)
        .join(PaperOrder, PaperOrder.order_id == Order.id)
        .join(OrderEvent, sa.and_(OrderEvent.order_id == Order.id, OrderEvent.event == "submitted"))
        .where(Order.created_at >= since)
    )
    with app.app_context():
        while True:
            rows = db.session.execute(query).all()
            db.session.rollback()
            if len(rows) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    ms = lambda a, b: (b - a).total_seconds() * 1000  # noqa: E731
    return {
        "total": [ms(created, placed) for created, _, placed in rows],
        "to_claim": [ms(created, claimed) for created, claimed, _ in rows],
        "claim_to_place": [ms(claimed, placed) for _, claimed, placed in rows],
    }


def orders_since(app, since) -> int:
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Order).where(Order.created_at >= since))
        db.session.rollback()
        return count


def line(name: str, result: dict) -> str:
    stats = percentiles(result["samples_ms"])
    text = f"  {name:<34} {result['rps']:8.0f}/s  p50 {stats['p50']:7.2f} ms  p99 {stats['p99']:8.2f} ms"
    if result.get("never_sent"):
        text += f"  ({result['never_sent']} requests due were never sent: the figures understate)"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (WEB_CONCURRENCY)")
    parser.add_argument("--clients", type=int, default=8, help="keep-alive connections of the closed loop")
    parser.add_argument("--users", type=int, default=64, help="traders the orders are spread over")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds measured per phase")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered requests/s of the open loop")
    parser.add_argument("--latency-rate", type=float, default=20.0, help="orders/s while the worker runs")
    parser.add_argument("--metrics", choices=("both", "on", "off"), default="both",
                        help="METRICS_ENABLED of the processes: both settings in the same run, or one")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting, alternating (with both)")
    args = parser.parse_args()
    # The sweeper must not re-queue the thousands of orders phases 2-3 leave PENDING (their jobs are dropped).
    overrides = {"WEB_CONCURRENCY": str(args.workers), "LOG_LEVEL": "INFO", "SWEEP_PENDING_AFTER": "1h"}
    runs: list[tuple[str, dict]] = []
    with bench_environment(**overrides) as (env, app):
        for n, setting in enumerate(schedule(args)):
            set_quotes(app)  # fresh for each run: the paper exchange refuses to fill on an old quote
            # Traders of their own each run: the orders left resting by the runs before do not
            # bring anyone near the open-order limit.
            headers = make_users(app, args.users, prefix=f"bench{n}")
            stack = Stack(env)
            try:
                runs.append((setting, run_phases(args, app, env, stack, headers, setting, first=n * 10**8)))
            finally:
                stack.stop()
            report(args, runs[-1][1], f"METRICS_ENABLED={METRICS[setting]}, run {n + 1}")
    if args.metrics == "both":
        report_cost(args, runs)


def schedule(args) -> list[str]:
    """The settings in the order they run: on, off, off, on, on, off...: neither always goes first."""
    if args.metrics != "both":
        return [args.metrics] * args.rounds
    return [setting for n in range(args.rounds) for setting in (("on", "off") if n % 2 == 0 else ("off", "on"))]


def run_phases(args, app, env, stack: Stack, headers: list[dict], metrics: str = "on", first: int = 0) -> dict:
    start_backend(stack, metrics)
    meter = CpuMeter({"gunicorn": stack.processes["backend"].popen.pid}, env["DB_NAME"])
    closed = dict(clients=args.clients, duration=args.duration, meter=meter)
    orders = dict(headers=headers, body=ORDER_BODY)
    paced = dict(clients=max(args.clients, int(args.rate // 50)), duration=args.duration, rate=args.rate)
    r = {
        "raw": load(stack, "/bench/raw", **closed),
        "bare": load(stack, "/bench/bare", **closed),
        "orders": load(stack, "/api/v1/orders", **closed, **orders, first=first),
        "bare_paced": load(stack, "/bench/bare", **paced),
        "orders_paced": load(stack, "/api/v1/orders", **paced, **orders, first=first + 10**7),
    }
    with app.app_context():
        jobqueue.get_queue().empty()  # those orders stay PENDING: the worker starts on an empty queue
        get_redis().delete("bench:rq_hop")
    set_quotes(app)
    start_worker(stack, app, metrics)
    r["hop"] = rq_baseline(app, count=100, rate=args.latency_rate)
    worker = CpuMeter({"worker": stack.processes["worker"].popen.pid}, env["DB_NAME"])
    since = datetime.now(UTC)
    worker.start()
    r["api_at_latency_rate"] = load(
        stack, "/api/v1/orders", clients=2, duration=args.duration, rate=args.latency_rate, **orders,
        first=first + 2 * 10**7,
    )  # fmt: skip
    r["broker"] = broker_latencies(app, since, orders_since(app, since))
    r["worker_cpu_ms"] = worker.stop()["worker"] * 1000 / max(len(r["broker"]["total"]), 1)
    for name in ("worker", "backend"):
        stack.kill(name, signal.SIGTERM)
    return r


def cpu_line(result: dict) -> str:
    cpu = result["cpu_ms"]
    parts = [f"{name} {cpu[name]:.2f}" for name in ("gunicorn", "postgres", "redis", "client")]
    return "      CPU ms/request: " + ", ".join(parts)


def report(args, r: dict, title: str = "") -> None:
    print(
        f"\norder intake{' (' + title + ')' if title else ''}: gunicorn gevent x{args.workers}, Postgres, Redis; "
        f"LIMIT orders from {args.users} traders; {args.duration:.0f} s per phase"
    )
    print(f" closed loop, {args.clients} keep-alive clients:")
    for key, name in (
        ("raw", "raw WSGI (client + gunicorn floor)"),
        ("bare", "bare Flask route (baseline)"),
        ("orders", "POST /api/v1/orders"),
    ):
        print(line(name, r[key]))
        print(cpu_line(r[key]))
    print(f"  {'orders/s : bare requests/s':<34} {r['orders']['rps'] / r['bare']['rps']:8.3f}")
    print(f" open loop, {args.rate:.0f} requests/s offered (latency from when each request was due):")
    print(line("bare Flask route (baseline)", r["bare_paced"]))
    print(line("POST /api/v1/orders", r["orders_paced"]))
    b, o = percentiles(r["bare_paced"]["samples_ms"]), percentiles(r["orders_paced"]["samples_ms"])
    print(f"  {'orders / bare latency':<34} p50 {o['p50'] / b['p50']:6.1f}x  p99 {o['p99'] / b['p99']:6.1f}x")
    print(f" accept -> broker place() through RQ, {args.latency_rate:.0f} orders/s, one SimpleWorker:")
    print(line("POST /api/v1/orders", r["api_at_latency_rate"]))
    broker = r["broker"]
    print(f"  {'orders (' + str(len(broker['total'])) + ')':<34} {fmt(percentiles(broker['total']))}")
    print(f"  {'  accept -> worker claim':<34} {fmt(percentiles(broker['to_claim']))}")
    print(f"  {'  claim -> place() entered':<34} {fmt(percentiles(broker['claim_to_place']))}")
    print(f"  {'empty RQ job: enqueue -> start':<34} {fmt(percentiles(r['hop']))}")
    print(f"  {'ratio p50':<34} {percentiles(broker['total'])['p50'] / percentiles(r['hop'])['p50']:.1f}x")
    print(
        f"  worker CPU per order: {r['worker_cpu_ms']:.2f} ms (one worker sustains about "
        f"{1000 / r['worker_cpu_ms']:.0f} orders/s on a free core)"
    )


def report_cost(args, runs: list[tuple[str, dict]]) -> None:
    """Both settings side by side: the median of each one's runs, and on / off."""
    by = {setting: [r for s, r in runs if s == setting] for setting in METRICS}

    def median(pick) -> dict[str, float]:
        return {setting: statistics.median(pick(r) for r in results) for setting, results in by.items()}

    def row(name: str, pick, unit: str, digits: int = 0) -> None:
        m = median(pick)
        ratio = m["on"] / m["off"] if m["off"] else float("nan")
        print(f"  {name:<40} on {m['on']:9.{digits}f}{unit}  off {m['off']:9.{digits}f}{unit}  on/off {ratio:6.3f}")

    p = lambda key, q: lambda r: percentiles(r[key]["samples_ms"])[q]  # noqa: E731
    print(f"\ninstrumentation cost: METRICS_ENABLED true vs false, median of {len(by['on'])} run(s) each")
    row("raw WSGI, closed loop (baseline)", lambda r: r["raw"]["rps"], "/s")
    row("bare Flask route, closed loop", lambda r: r["bare"]["rps"], "/s")
    row("POST /api/v1/orders, closed loop", lambda r: r["orders"]["rps"], "/s")
    row("  gunicorn CPU per order", lambda r: r["orders"]["cpu_ms"]["gunicorn"], " ms", 3)
    row("  gunicorn CPU per bare request", lambda r: r["bare"]["cpu_ms"]["gunicorn"], " ms", 3)
    row(f"POST /api/v1/orders at {args.rate:.0f}/s, p50", p("orders_paced", "p50"), " ms", 2)
    row(f"POST /api/v1/orders at {args.rate:.0f}/s, p99", p("orders_paced", "p99"), " ms", 2)
    row(f"bare route at {args.rate:.0f}/s, p50", p("bare_paced", "p50"), " ms", 2)
    row("accept -> broker place(), p50", lambda r: percentiles(r["broker"]["total"])["p50"], " ms", 2)
    row("accept -> broker place(), p99", lambda r: percentiles(r["broker"]["total"])["p99"], " ms", 2)
    row("worker CPU per order", lambda r: r["worker_cpu_ms"], " ms", 2)


if __name__ == "__main__":
    main()
