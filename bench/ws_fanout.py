"""WebSocket fan-out: quotes published to Redis exactly as the consumer does (realtime.store_quotes:
cache write + PUBLISH in one script call) at a fixed rate, delivered by the real websocket process
(gunicorn, the project's gunicorn.conf.py, gevent workers) to `--clients` WebSocket clients, each
subscribed to `--per-client` of `--instruments` instruments. The clients (bench/ws_clients.py) run in
`--procs` processes of their own. Beside them, in the same run, one plain Redis subscriber of the same
channel is the baseline: what pub/sub alone costs the same messages.

Reported: deliveries/s and publish -> receive latency at the clients, the same for the raw subscriber
and the ratio, RSS of the websocket worker(s) before and with the sockets open, and the CPU each part
used in the window (the machine's cores are shared by all of them).

Sockets are spread over ceil(clients / WS_MAX_SOCKETS_PER_USER) users, so the per-user limit stays at
its default. Each quote's `ts` is its publish time.

The cost of the instrumentation (README "Operations"): the websocket process runs with
METRICS_ENABLED=true (as deployed: gunicorn.conf.py's multiprocess metrics) and with false (every
metric a no-op), started again for each, alternating over `--rounds` rounds with clients of their
own; each run's figures are printed, then both settings side by side (the median of the rounds)
with their ratio, beside the raw pub/sub baseline of the same runs. `--metrics on` or `off` runs
one setting only.

    python -m bench.ws_fanout [--clients 1000] [--instruments 500] [--per-client 50] [--rate 1200]
                              [--seconds 20] [--mode quote] [--workers 1] [--procs 2]
                              [--metrics both|on|off] [--rounds 1]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import signal
import statistics
import sys
import time
from datetime import UTC, datetime

from bench.common import _cpu_seconds, _processes, bench_environment, fmt, percentiles
from bench.ws_clients import run_clients, run_raw_subscriber
from tests.support.env import FAST_HASHER
from tests.support.stack import BIN, Stack
from tradingapp import realtime
from tradingapp.extensions import db, get_redis
from tradingapp.models import User
from tradingapp.security.auth import issue_tokens

TICK = 0.01  # the publisher sends one batch every 10 ms, as the consumer stores a batch per message
WARMUP = 2.0  # seconds of publishing before the window opens


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--per-client", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1200, help="quotes published per second (all instruments)")
    parser.add_argument("--seconds", type=float, default=20, help="length of the measuring window")
    parser.add_argument("--mode", choices=("ltp", "quote", "full"), default="quote")
    parser.add_argument("--workers", type=int, default=1, help="gevent workers of the websocket process")
    parser.add_argument("--procs", type=int, default=2, help="processes of the load generator")
    parser.add_argument("--metrics", choices=("both", "on", "off"), default="both",
                        help="METRICS_ENABLED of the websocket process: both settings, or one")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=1, help="runs of each setting, alternating (with both)")
    return parser.parse_args()


# METRICS_ENABLED of each setting, in the websocket process's environment.
METRICS = {"on": "true", "off": "false"}


def schedule(args) -> list[str]:
    """The settings in the order they run: on, off, off, on...: neither always goes first."""
    if args.metrics != "both":
        return [args.metrics] * args.rounds
    return [setting for n in range(args.rounds) for setting in (("on", "off") if n % 2 == 0 else ("off", "on"))]


def make_tokens(app, clients: int, prefix: str = "ws-bench") -> list[str]:
    """One access token per client, over as few users as the per-user socket limit allows."""
    per_user = app.config["WS_MAX_SOCKETS_PER_USER"]
    with app.app_context():
        users = [
            User(
                email=f"{prefix}-{i}@bench.local",
                password_hash=FAST_HASHER.hash("bench-password-123"),
                name=f"WS bench {i}",
                role="trader",
            )
            for i in range(math.ceil(clients / per_user))
        ]
        db.session.add_all(users)
        db.session.commit()
        with app.test_request_context():
            tokens = [issue_tokens(user)["access_token"] for user in users]
    return [tokens[i // per_user] for i in range(clients)]


def quote(instrument_id: int, n: int, ts: str) -> dict:
    price = 1000 + instrument_id + (n % 100) / 20
    return {
        "instrument_id": instrument_id,
        "ltp": f"{price:.2f}",
        "ltq": 1 + n % 50,
        "bid": f"{price - 0.05:.2f}",
        "ask": f"{price + 0.05:.2f}",
        "bid_qty": 100 + n % 7,
        "ask_qty": 90 + n % 11,
        "open": "1000.00",
        "high": "1100.00",
        "low": "990.00",
        "close": "1001.00",
        "volume": 10_000 + n,
        "ts": ts,
    }


def publish(app, rate: float, instruments: int, until: float) -> int:
    """store_quotes batches every TICK, round-robin over the instruments, until `until`; returns the count."""
    per_tick, sent, due = rate * TICK, 0, time.time()
    with app.app_context():
        client, ttl = get_redis(), app.config["QUOTE_TTL"]
        while due < until:
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            due += TICK
            count = int(per_tick * (sent // per_tick + 1) - sent) if per_tick >= 1 else int(random.random() < per_tick)
            ts = datetime.now(UTC).isoformat()
            batch = [quote(1 + (sent + i) % instruments, sent + i, ts) for i in range(count)]
            realtime.store_quotes(client, batch, ttl)
            sent += count
    return sent


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle (all cores, /proc/stat)."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def redis_pids() -> list[int]:
    return [pid for pid, _, cmd in _processes() if cmd.startswith("redis-server") or "/redis-server" in cmd]


def user_system_seconds(pid: int) -> tuple[float, float]:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) / os.sysconf("SC_CLK_TCK"), int(fields[12]) / os.sysconf("SC_CLK_TCK")


def write_calls(pid: int) -> int:
    """Write system calls the process made so far (/proc/<pid>/io syscw)."""
    for line in open(f"/proc/{pid}/io"):
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def worker_pids(master: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1]) == master:
                    pids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return pids


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    fields = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def collect(report, expected: int, kind: str, timeout: float) -> dict:
    found, deadline = {}, time.monotonic() + timeout
    while len(found) < expected:
        message = report.get(timeout=max(deadline - time.monotonic(), 0.1))
        if message[0] == kind:
            found[message[1]] = message[2:]
    return found


def main() -> None:
    args = parse_args()
    # a TERM (a timeout, ^C from a wrapper) still stops the servers and drops the database
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs: list[tuple[str, dict]] = []
    with bench_environment() as (env, app):
        for n, setting in enumerate(schedule(args)):
            # users of their own each run: the sockets of the run before hold no place under the limit
            tokens = make_tokens(app, args.clients, prefix=f"ws-bench{n}")
            runs.append((setting, run_once(args, app, env, tokens, setting)))
            report(args, runs[-1][1], f"METRICS_ENABLED={METRICS[setting]}, run {n + 1}")
    if args.metrics == "both":
        report_cost(args, runs)


def run_once(args, app, env, tokens: list[str], metrics: str) -> dict:
    """One run: the websocket process with METRICS_ENABLED per `metrics`, the clients, the window."""
    rng = random.Random(4)
    stack = Stack(env)
    argv = [
        str(BIN / "gunicorn"),
        "-c",
        "gunicorn.conf.py",
        "-b",
        f"127.0.0.1:{stack.ws_port}",
        "-w",
        str(args.workers),
        "wsgi:app",
    ]
    extra = {"PORT": str(stack.ws_port), "WEBSOCKET_PORT": str(stack.ws_port), "METRICS_ENABLED": METRICS[metrics]}
    stack.start_one("websocket", argv, extra)
    children = []
    try:
        stack.wait_http(f"http://127.0.0.1:{stack.ws_port}/health", "websocket")
        master = stack.processes["websocket"].popen.pid
        workers = worker_pids(master)
        idle = {pid: memory_mb(pid)[0] for pid in workers}
        ctx = multiprocessing.get_context("spawn")
        window, report_queue = ctx.RawArray("d", 2), ctx.Queue()
        jobs = [{"index": i, "url": stack.ws_url, "mode": args.mode, "clients": []} for i in range(args.procs)]
        for n, token in enumerate(tokens):
            ids = rng.sample(range(1, args.instruments + 1), args.per_client)
            jobs[n % args.procs]["clients"].append((token, ids))
        with app.app_context():
            channel = realtime.quotes_channel()
        children.append(
            ctx.Process(target=run_raw_subscriber, args=(app.config["REDIS_URL"], channel, window, report_queue))
        )
        children += [ctx.Process(target=run_clients, args=(job, window, report_queue)) for job in jobs]
        for child in children:
            child.start()
        started = time.monotonic()
        ready = collect(report_queue, len(children), "ready", timeout=180)
        connected = sum(r[0] for r in ready.values())
        errors = [e for r in ready.values() for e in r[1]]
        print(f"{connected}/{args.clients} clients subscribed in {time.monotonic() - started:.1f}s {errors or ''}")
        loaded = {pid: memory_mb(pid)[0] for pid in workers}

        begin = time.time()
        window[0] = begin + WARMUP
        window[1] = window[0] + args.seconds
        pids = {
            "websocket": workers,
            "load generator": [c.pid for c in children[1:]],
            "raw subscriber": [children[0].pid],
            "publisher": [os.getpid()],
            "redis": redis_pids(),
        }
        sent_before = publish(app, args.rate, args.instruments, window[0])
        cpu0 = {name: sum(_cpu_seconds(p) for p in group) for name, group in pids.items()}
        busy0, writes0 = machine_busy_seconds(), sum(write_calls(p) for p in workers)
        system0 = sum(user_system_seconds(p)[1] for p in workers)
        sent = publish(app, args.rate, args.instruments, window[1])
        cpu = {name: sum(_cpu_seconds(p) for p in group) - cpu0[name] for name, group in pids.items()}
        cpu["whole machine"] = machine_busy_seconds() - busy0
        writes = sum(write_calls(p) for p in workers) - writes0
        system = sum(user_system_seconds(p)[1] for p in workers) - system0
        memory = {pid: memory_mb(pid) for pid in workers}
        done = collect(report_queue, len(children), "done", timeout=60)
    finally:
        for child in children:
            child.join(timeout=10)
            if child.is_alive():
                child.terminate()
        logs = stack.logs()
        stack.stop()
    raw = done.pop("raw")[0]
    results = [r[0] for r in done.values()]
    return {
        "sent_total": sent_before + sent, "sent": sent, "connected": connected, "workers": workers,
        "latencies": [x for r in results for x in r["latencies"]], "raw": raw,
        "deliveries": sum(r["count"] for r in results), "dropped": sum(r["dropped"] for r in results),
        "cpu": cpu, "writes": writes, "system": system, "memory": memory, "idle": idle, "loaded": loaded,
        "logs": logs,
    }  # fmt: skip


def report(args, r: dict, title: str) -> None:
    sent, deliveries, raw, cpu = r["sent"], r["deliveries"], r["raw"], r["cpu"]
    subscribers = args.clients * args.per_client / args.instruments
    expected = sent * subscribers
    ws_stats, raw_stats = percentiles(r["latencies"] or [0.0]), percentiles(list(raw["latencies"]) or [0.0])
    print(
        f"\nWebSocket fan-out ({title}): {args.clients} clients x {args.per_client} of {args.instruments} "
        f"instruments (mode {args.mode}), {args.rate:g} quotes/s, window {args.seconds:g}s; websocket: "
        f"{args.workers} gevent worker(s); load generator: {args.procs} process(es)"
    )
    print(f"  published         {r['sent_total']} quotes, {sent} in the window ({sent / args.seconds:,.0f}/s)")
    share = deliveries / max(expected, 1)
    print(f"  websocket         {deliveries / args.seconds:>10,.0f} deliveries/s  {fmt(ws_stats)}")
    print(
        f"                    {share:.1%} of published x subscribers ({expected / args.seconds:,.0f}/s); "
        "the rest conflated or not yet sent"
    )
    print(f"  raw pub/sub       {raw['count'] / args.seconds:>10,.0f} messages/s    {fmt(raw_stats)}  (1 subscriber)")
    p50, p99 = (ws_stats[p] / max(raw_stats[p], 1e-9) for p in ("p50", "p99"))
    print(
        f"  ratio             deliveries/s {deliveries / max(raw['count'], 1):.1f}x raw messages/s; "
        f"latency p50 {p50:.1f}x, p99 {p99:.1f}x raw"
    )
    for pid in r["workers"]:
        rss, peak = r["memory"][pid]
        idle, loaded = r["idle"][pid], r["loaded"][pid]
        per_socket = (loaded - idle) * 1024 / max(r["connected"] / len(r["workers"]), 1)
        print(
            f"  websocket worker  pid {pid}: RSS {idle:.0f} MiB idle, {loaded:.0f} MiB with sockets "
            f"(~{per_socket:.0f} KiB each), {rss:.0f} MiB at the window's end, peak {peak:.0f} MiB"
        )
    busy = "  ".join(f"{name} {seconds / args.seconds:.2f}" for name, seconds in cpu.items())
    print(f"  CPU (cores busy)  {busy}   [{os.cpu_count()} cores]")
    per_write = deliveries / max(r["writes"], 1)
    print(
        f"  websocket CPU     {cpu_per_delivery(r):.1f} us per delivery "
        f"({r['system'] / max(cpu['websocket'], 1e-9):.0%} in the kernel); "
        f"{r['writes'] / args.seconds:,.0f} socket writes/s, {per_write:.1f} frames per write"
    )
    if r["dropped"] or r["connected"] < args.clients:
        print(f"  !! {args.clients - r['connected']} clients never subscribed, {r['dropped']} sockets ended early")
        print(r["logs"][-3000:])
    if ws_stats["p99"] > 50 or deliveries / args.seconds < 100_000:
        print("  (target: >= 100,000 deliveries/s at p99 <= 50 ms)")


def cpu_per_delivery(r: dict) -> float:
    return r["cpu"]["websocket"] * 1e6 / max(r["deliveries"], 1)


def report_cost(args, runs: list[tuple[str, dict]]) -> None:
    """Both settings side by side: the median of each one's runs, and on / off."""
    by = {setting: [r for s, r in runs if s == setting] for setting in METRICS}

    def row(name: str, pick, unit: str, digits: int = 0) -> None:
        m = {setting: statistics.median(pick(r) for r in results) for setting, results in by.items()}
        ratio = m["on"] / m["off"] if m["off"] else float("nan")
        print(f"  {name:<36} on {m['on']:11,.{digits}f}{unit}  off {m['off']:11,.{digits}f}{unit}  on/off {ratio:6.3f}")

    lat = lambda q: lambda r: percentiles(r["latencies"] or [0.0])[q]  # noqa: E731
    raw = lambda q: lambda r: percentiles(list(r["raw"]["latencies"]) or [0.0])[q]  # noqa: E731
    print(f"\ninstrumentation cost: METRICS_ENABLED true vs false, median of {len(by['on'])} run(s) each")
    row("raw pub/sub messages/s (baseline)", lambda r: r["raw"]["count"] / args.seconds, "/s")
    row("raw pub/sub latency p50 (baseline)", raw("p50"), " ms", 2)
    row("websocket deliveries/s", lambda r: r["deliveries"] / args.seconds, "/s")
    row("websocket CPU per delivery", cpu_per_delivery, " us", 2)
    row("websocket cores busy", lambda r: r["cpu"]["websocket"] / args.seconds, "", 3)
    row("publish -> receive p50", lat("p50"), " ms", 2)
    row("publish -> receive p99", lat("p99"), " ms", 2)


if __name__ == "__main__":
    main()
