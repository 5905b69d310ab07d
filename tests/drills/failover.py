"""The failover drill (`make failover-drill`, `python -m tests.drills.failover [--small]`).

On free ports of this machine: etcd and two Patroni nodes running PostgreSQL 15 with streaming
replication in synchronous mode (tests/drills/patroni_cluster.py). The real processes (gunicorn
backend, RQ worker, Kombu consumer, market feed: tests/support/stack.py) reach the database through
DB_HOST listing both nodes, so libpq keeps the one that accepts writes
(target_session_attrs=read-write). Redis and RabbitMQ are the machine's (a Redis db and a
namespace of the run's own): the drill never touches them.

Traders place orders at a steady rate over HTTP (MARKET and LIMIT, paper broker), each request
retried with the same client_order_id on a 5xx or a connection error, as a client does. Then the
primary's node is lost (SIGKILL to its Patroni and its postmaster) and the drill measures:

- failover: from the kill to a writable new primary (Patroni's leader key expires, the
  synchronous standby is promoted);
- recovery: from the kill to the first order accepted (2xx) on a request sent after the kill;
- lost: orders the API acknowledged (2xx) missing afterwards or stuck in a transient state;
- duplicated: orders sent to the paper exchange more than once (the worker's paper_place lines,
  which live outside the database), or filled there beyond their quantity (the exchange's own
  journal, paper_events); every order the exchange holds must have its paper_place line, else the
  log is not the record it is taken for (unlogged); and the invariants' sent_once and
  fills_match_trades;
- every order's final state (open LIMIT orders are cancelled at the end, so each ends FILLED,
  CANCELLED or REJECTED, each rejection with its reason);
- that backend (gunicorn's master and its workers), worker, consumer and feed kept their PIDs
  (none restarted) and served again;
- rejoin: the old primary started again (Patroni rewinds it with pg_rewind) until it streams as
  the synchronous standby;
- fail back: a switchover (patronictl switchover's REST call) makes the old primary lead again,
  and the longest time without an acknowledged order meanwhile;
- what synchronous replication costs: a one-row commit's median with synchronous_commit on and
  local on the same primary, and POST /orders latency (`--async` runs the drill without it).

It prints a table and exits 1 when a target fails. tests/drills/test_failover_drill.py runs --small.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import requests
import sqlalchemy as sa
from flask_migrate import upgrade
from kombu import Connection

from config import TestConfig
from tests.drills.patroni_cluster import Cluster
from tests.support.env import FAST_HASHER, test_env
from tests.support.stack import Stack
from tradingapp import create_app
from tradingapp.cli import seed_demo_data
from tradingapp.events import FILL
from tradingapp.extensions import db
from tradingapp.messaging import Topology
from tradingapp.models import Order, Trade, User
from tradingapp.services.invariants import check_all

TRANSIENT = ("PENDING", "SUBMITTED", "CANCEL_PENDING", "MODIFY_PENDING")
RESTING = ("OPEN", "PARTIALLY_FILLED")
PASSWORD = "failover-password-123"
PLACE_LINE = re.compile(r"event=paper_place order_id=(\S+) .* repeat=(True|False)")
PROCESSES = ["backend", "worker", "consumer", "feed"]
SWEEPS = {"SWEEP_INTERVAL": "2", "SWEEP_PENDING_AFTER": "3", "SWEEP_RECONCILE_EVERY": "5", "ORDER_JOB_TIMEOUT": "10"}


@dataclass
class Plan:
    traders: int
    rate: float  # orders a second per trader
    before: float  # seconds of load before the kill
    after: float  # seconds of load after the first order accepted again


FULL = Plan(traders=3, rate=3.0, before=20.0, after=20.0)
SMALL = Plan(traders=2, rate=3.0, before=4.0, after=4.0)


@dataclass
class Attempt:
    key: str
    started: float
    ended: float
    status: str  # HTTP status or conn/timeout


@dataclass
class Placed:
    key: str
    order_id: str | None = None  # set when acknowledged (2xx)
    acknowledged_at: float | None = None


class Trader(threading.Thread):
    """Places one order every 1/rate seconds: a MARKET order or a LIMIT one near the last price,
    retried with the same client_order_id on 5xx, 429 and connection errors."""

    def __init__(self, base_url: str, email: str, rate: float, stop: threading.Event, seed: int):
        super().__init__(name=f"trader-{email}", daemon=True)
        self.base_url, self.email, self.rate, self.stop = base_url, email, rate, stop
        self.random = random.Random(seed)
        self.session = requests.Session()
        self.attempts: list[Attempt] = []
        self.placed: list[Placed] = []
        self.prices: dict[int, Decimal] = {}

    def login(self) -> None:
        answer = self.session.post(
            f"{self.base_url}/api/v1/auth/login", json={"email": self.email, "password": PASSWORD}, timeout=10
        )
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.place(self.body())
            except Exception as exc:  # a bug in the load must show, not end the thread silently
                self.attempts.append(Attempt("-", started, time.monotonic(), f"client-error:{type(exc).__name__}"))
            self.stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def body(self) -> dict:
        instrument = self.random.choice((1, 2, 3, 4, 5))
        side = self.random.choice(("BUY", "SELL"))
        body = {"instrument_id": instrument, "side": side, "quantity": self.random.randint(1, 5), "product": "MIS"}
        price = self.prices.get(instrument)
        if price is None or self.random.random() < 0.6:
            return {**body, "order_type": "MARKET"}
        away = Decimal(self.random.choice(("0.001", "0.003", "0.01")))
        limit = price * (1 - away if side == "BUY" else 1 + away)
        return {
            **body,
            "order_type": "LIMIT",
            "limit_price": str((limit / Decimal("0.05")).quantize(1) * Decimal("0.05")),
        }

    def place(self, body: dict, give_up_after: float = 60.0) -> None:
        placed = Placed(str(uuid.uuid4()))
        self.placed.append(placed)
        first = time.monotonic()
        delay = 0.1
        while time.monotonic() - first < give_up_after:
            started = time.monotonic()
            try:
                answer = self.session.post(
                    f"{self.base_url}/api/v1/orders", json={**body, "client_order_id": placed.key}, timeout=10
                )
                status = str(answer.status_code)
            except requests.Timeout:
                answer, status = None, "timeout"
            except requests.ConnectionError:
                answer, status = None, "conn"
            self.attempts.append(Attempt(placed.key, started, time.monotonic(), status))
            if answer is not None and answer.status_code in (200, 202):
                order = answer.json()
                placed.order_id, placed.acknowledged_at = order["id"], time.monotonic()
                if order.get("limit_price") is None and order.get("average_price"):
                    self.prices[body["instrument_id"]] = Decimal(str(order["average_price"]))
                return
            if answer is not None and answer.status_code < 500 and answer.status_code != 429:
                return  # refused for a reason of its own (risk, validation): not retried
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def refresh_prices(self) -> None:
        answer = self.session.get(f"{self.base_url}/api/v1/quotes?instrument_ids=1,2,3,4,5", timeout=5)
        if answer.status_code == 200:
            for quote in answer.json()["items"]:
                if quote.get("ltp"):
                    self.prices[int(quote["instrument_id"])] = Decimal(str(quote["ltp"]))


class DrillStack(Stack):
    """The worker logs at INFO: its paper_place lines say what reached the paper exchange."""

    def commands(self):
        commands = super().commands()
        argv, extra = commands["worker"]
        commands["worker"] = (argv, {**extra, "LOG_LEVEL": "INFO"})
        return commands


@dataclass
class Report:
    plan: str
    synchronous: str = "on (not strict)"
    timescaledb: str | None = None  # the extension's version in the drill's database, None: plain PostgreSQL
    cluster_start_s: float = 0.0
    commit_ms: dict = field(default_factory=dict)  # median one-row commit: on (waits for the standby), local
    place_ms: dict = field(default_factory=dict)  # POST /orders answered 2xx before the kill: p50, p95
    failover_s: float | None = None
    recovery_s: float | None = None
    outage_failures: dict = field(default_factory=dict)
    rejoin_s: float | None = None
    switchover_s: float | None = None  # fail back: the switchover's request to the old primary writable
    switchover_gap_s: float | None = None  # the longest time without an acknowledged order meanwhile
    acknowledged: int = 0
    acknowledged_after_kill: int = 0
    lost: list = field(default_factory=list)
    duplicated: list = field(default_factory=list)
    placements_logged: int = 0  # paper_place lines read from the worker's log
    unlogged: list = field(default_factory=list)  # orders the exchange holds without a paper_place line
    never_acknowledged: int = 0
    final_states: dict = field(default_factory=dict)
    rejections: dict = field(default_factory=dict)
    stuck: list = field(default_factory=list)
    restarted: list = field(default_factory=list)
    served_after: dict = field(default_factory=dict)
    invariants: dict = field(default_factory=dict)
    seconds: float = 0.0

    def failures(self) -> list[str]:
        problems = []
        if self.recovery_s is None:
            problems.append("orders were never accepted again")
        if self.lost:
            problems.append(f"{len(self.lost)} acknowledged orders lost")
        if self.duplicated:
            problems.append(f"{len(self.duplicated)} orders duplicated at the broker")
        if self.unlogged or not self.placements_logged:
            problems.append(
                f"the worker's log misses the placements of {len(self.unlogged)} orders the exchange holds"
                f" ({self.placements_logged} read): the duplicate count cannot be trusted"
            )
        if self.stuck:
            problems.append(f"{len(self.stuck)} orders not in a final state")
        if self.restarted:
            problems.append(f"processes restarted or dead: {', '.join(self.restarted)}")
        if not all(self.served_after.values()):
            problems.append(f"processes that did no work after the failover: {self.served_after}")
        if self.rejoin_s is None:
            problems.append("the old primary did not rejoin")
        elif self.switchover_gap_s is None:
            problems.append("no order acknowledged after the switchover back to the old primary")
        if not self.invariants.get("ok"):
            broken = [i["name"] for i in self.invariants.get("invariants", []) if not i.get("ok")]
            problems.append(f"invariants broken: {', '.join(broken) or self.invariants}")
        return problems


class Drill:
    def __init__(self, plan: Plan, name: str = "full", keep: bool = False, synchronous: bool = True, log=print):
        self.plan, self.keep, self.log, self.synchronous = plan, keep, log, synchronous
        self.report = Report(plan=name, synchronous="on (not strict)" if synchronous else "off (asynchronous)")
        self.stop_load = threading.Event()
        self.namespace = f"failover{secrets.token_hex(3)}"

    # -- set-up -----------------------------------------------------------------------------------------
    def start(self) -> None:
        t0 = time.monotonic()
        self.cluster = Cluster(size=2, synchronous_mode=self.synchronous, strict=False, keep=self.keep).start()
        self.report.cluster_start_s = round(time.monotonic() - t0, 1)
        self.log(f"failover: cluster up in {self.report.cluster_start_s}s ({self.cluster.db_host})")
        self.report.commit_ms = self.commit_cost()
        with psycopg.connect(
            host=",".join(h for h, _ in self.cluster.hosts),
            port=",".join(str(p) for _, p in self.cluster.hosts),
            user="postgres",
            dbname="postgres",
            target_session_attrs="read-write",
            autocommit=True,
        ) as conn:
            conn.execute('CREATE DATABASE "tradingapp_failover"')
        self.env = test_env(
            DB_HOST=self.cluster.db_host,
            DB_NAME="tradingapp_failover",
            DB_CONNECT_TIMEOUT="3",
            REDIS_DB=os.environ.get("TEST_REDIS_DB", "13"),
            NAMESPACE=self.namespace,
            **SWEEPS,
        )
        self.app = create_app(TestConfig(self.env))
        with self.app.app_context():
            with contextlib.redirect_stderr(io.StringIO()):  # alembic's INFO lines
                upgrade(revision="heads")
            self.report.timescaledb = db.session.execute(
                sa.text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            ).scalar()
            seed_demo_data()
            users = [
                User(email=email, password_hash=FAST_HASHER.hash(PASSWORD), name=email, role="trader")
                for email in self.emails()
            ]
            db.session.add_all(users)
            db.session.commit()
            db.session.remove()
            with Connection(self.app.config["AMQP_URL"]) as conn:
                Topology(self.namespace).declare(conn)
        self.stack = DrillStack(self.env, log_dir=self.cluster.root / "app-logs")
        self.stack.log_dir.mkdir(exist_ok=True)
        self.stack.start(PROCESSES)
        self.pids = {name: p.popen.pid for name, p in self.stack.processes.items()}
        self.web_workers = children(self.pids["backend"])  # gunicorn's master respawns a dead worker silently
        self.traders = [
            Trader(self.stack.base_url, email, self.plan.rate, self.stop_load, seed=i)
            for i, email in enumerate(self.emails())
        ]
        for trader in self.traders:
            trader.login()
        self.wait_for_quotes()

    def commit_cost(self, rounds: int = 200) -> dict:
        """Median milliseconds of a one-row commit on the primary waiting for the synchronous standby
        (synchronous_commit=on) and not waiting (local), interleaved so both see the same machine."""
        leader = self.cluster.leader()
        took: dict[str, list[float]] = {"on": [], "local": []}
        with psycopg.connect(host="127.0.0.1", port=leader.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute("CREATE TABLE IF NOT EXISTS drill_commits (id serial PRIMARY KEY, at timestamptz)")
            for i in range(rounds):
                mode = ("on", "local")[i % 2]
                conn.execute(f"SET synchronous_commit = {mode}")
                started = time.perf_counter()
                conn.execute("INSERT INTO drill_commits (at) VALUES (now())")
                took[mode].append((time.perf_counter() - started) * 1000)
            conn.execute("DROP TABLE drill_commits")
        return {mode: round(sorted(values)[len(values) // 2], 2) for mode, values in took.items()}

    def emails(self) -> list[str]:
        return [f"failover-trader-{i}@example.com" for i in range(self.plan.traders)]

    def wait_for_quotes(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for trader in self.traders:
                trader.refresh_prices()
            if all(len(t.prices) == 5 for t in self.traders):
                return
            time.sleep(0.2)
        raise RuntimeError(f"no quotes from the feed within {timeout}s:\n{self.stack.logs()}")

    # -- the run ----------------------------------------------------------------------------------------
    def run(self) -> Report:
        started = time.monotonic()
        try:
            self.start()
            for trader in self.traders:
                trader.start()
            self.stop_load.wait(self.plan.before)
            self.fail_over()
            self.finish()
        finally:
            self.teardown()
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    def fail_over(self) -> None:
        old = self.cluster.leader()
        others = [n for n in self.cluster.nodes if n is not old]
        self.log(f"failover: kill -9 {old.name} (Patroni and postmaster)")
        self.killed_at = time.monotonic()
        self.killed_wall = time.time()
        old.kill()
        new = self.cluster.wait_leader(60, among=others)
        self.report.failover_s = round(time.monotonic() - self.killed_at, 2)
        self.log(f"failover: {new.name} is the primary after {self.report.failover_s}s")
        self.report.recovery_s = self.wait_recovery(timeout=90)
        self.log(f"failover: orders accepted again after {self.report.recovery_s}s")
        self.stop_load.wait(self.plan.after)
        t0 = time.monotonic()
        old.start()
        try:
            rows = self.cluster.wait_streaming(90)
            self.report.rejoin_s = round(time.monotonic() - t0, 2)
            self.log(f"failover: {old.name} rejoined in {self.report.rejoin_s}s: {rows}")
        except RuntimeError as exc:
            self.log(f"failover: {old.name} did not rejoin: {exc}")
        else:
            self.fail_back(new, old)

    def fail_back(self, new, old) -> None:
        """Fail back under the load: a switchover (patronictl switchover's REST call) makes the
        old primary lead again; the longest time without an order acknowledged is its cost."""
        deadline = time.monotonic() + 30
        while True:  # 412 until Patroni itself records the rejoined node as the synchronous standby
            t0 = time.monotonic()
            answer = requests.post(
                f"{new.rest}/switchover", json={"leader": new.name, "candidate": old.name}, timeout=60
            )
            if answer.status_code != 412 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if answer.status_code != 200:
            self.log(f"failover: switchover refused: {answer.status_code} {answer.text}")
            return
        self.cluster.wait_leader(60, among=[old])
        self.report.switchover_s = round(time.monotonic() - t0, 2)
        self.stop_load.wait(3)
        now = time.monotonic()
        ends = sorted(
            a.ended for t in self.traders for a in list(t.attempts) if a.ended > t0 and a.status in ("200", "202")
        )
        # The gaps between acknowledgements, from the request to now: orders that stop being
        # acknowledged after the switchover leave a gap up to now, not none.
        self.report.switchover_gap_s = round(longest_gap([t0, *ends, now]), 2) if ends else None
        self.log(f"failover: switched back to {old.name} in {self.report.switchover_s}s")

    def wait_recovery(self, timeout: float) -> float | None:
        """Seconds from the kill to the end of the first accepted request sent after it."""
        deadline = self.killed_at + timeout
        while time.monotonic() < deadline:
            ends = [
                a.ended
                for t in self.traders
                for a in list(t.attempts)
                if a.started > self.killed_at and a.status in ("200", "202")
            ]
            if ends:
                return round(min(ends) - self.killed_at, 2)
            time.sleep(0.1)
        return None

    # -- after the load ---------------------------------------------------------------------------------
    def finish(self) -> None:
        self.stop_load.set()
        for trader in self.traders:
            trader.join(timeout=90)
        failures = Counter(
            a.status
            for t in self.traders
            for a in t.attempts
            if a.started >= self.killed_at and a.status not in ("200", "202")
        )
        self.report.outage_failures = dict(failures)
        took = sorted(
            (a.ended - a.started) * 1000
            for t in self.traders
            for a in t.attempts
            if a.ended < self.killed_at and a.status in ("200", "202")
        )
        if took:
            self.report.place_ms = {"p50": round(took[len(took) // 2], 1), "p95": round(took[int(len(took) * 0.95)], 1)}
        for trader in self.traders:  # the resting LIMIT orders end cancelled: every order then ends final
            trader.session.delete(f"{self.stack.base_url}/api/v1/orders", timeout=30)
        self.quiesce()
        self.account()
        self.report.restarted = [
            name
            for name in PROCESSES
            if name not in self.stack.processes
            or self.stack.processes[name].popen.pid != self.pids[name]
            or self.stack.processes[name].popen.poll() is not None
        ]
        if "backend" not in self.report.restarted and not set(self.web_workers) <= set(children(self.pids["backend"])):
            self.report.restarted.append("backend (a gunicorn worker)")
        self.stack.kill("feed", signal.SIGTERM)  # no more ticks while the invariants are read
        time.sleep(1.0)
        with self.app.app_context():
            report = check_all(grace=timedelta(seconds=0), dead_letters=True)
            self.report.invariants = report.to_dict()
            db.session.remove()

    def orders(self) -> dict[str, dict]:
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(Order.id, Order.status, Order.client_order_id, Order.reject_reason, Order.updated_at)
            ).all()
            traded = db.session.execute(
                sa.select(Trade.order_id, sa.func.max(Trade.traded_at)).group_by(Trade.order_id)
            ).all()
            db.session.remove()
        fills = {str(order_id): at for order_id, at in traded}
        return {
            str(r.id): {
                "status": r.status,
                "key": r.client_order_id,
                "reason": r.reject_reason,
                "filled_at": fills.get(str(r.id)),
            }
            for r in rows
        }

    def quiesce(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not [o for o in self.orders().values() if o["status"] in TRANSIENT + RESTING]:
                return
            time.sleep(0.5)

    def account(self) -> None:
        orders = self.orders()
        placed = [p for t in self.traders for p in t.placed]
        acknowledged = [p for p in placed if p.order_id]
        self.report.acknowledged = len(acknowledged)
        self.report.acknowledged_after_kill = sum(1 for p in acknowledged if p.acknowledged_at > self.killed_at)
        by_key = {o["key"]: o for o in orders.values()}
        self.report.never_acknowledged = sum(1 for p in placed if not p.order_id and p.key in by_key)
        for p in acknowledged:
            order = orders.get(p.order_id)
            if order is None:
                self.report.lost.append({"order_id": p.order_id, "client_order_id": p.key})
        self.report.final_states = dict(Counter(o["status"] for o in orders.values()))
        self.report.rejections = dict(Counter(o["reason"] for o in orders.values() if o["status"] == "REJECTED"))
        self.report.stuck = [i for i, o in orders.items() if o["status"] in TRANSIENT + RESTING]
        log = self.stack.log_dir / "worker.log"
        places, repeats = placements(log.read_text(errors="replace") if log.exists() else "")
        with self.app.app_context():
            exchange = db.session.execute(
                sa.text(
                    "SELECT p.order_id::text, p.quantity,"
                    " coalesce(sum(e.quantity) FILTER (WHERE e.type = :fill), 0) AS filled"
                    " FROM paper_orders p LEFT JOIN paper_events e ON e.order_id = p.order_id"
                    " WHERE p.quantity > 0 GROUP BY p.order_id, p.quantity"  # quantity 0: a cancel's tombstone
                ),
                {"fill": FILL},
            ).all()
            db.session.remove()
        overfilled = {order_id for order_id, quantity, filled in exchange if filled > quantity}
        self.report.placements_logged = sum(places.values())
        self.report.unlogged = sorted({order_id for order_id, _, _ in exchange} - set(places))
        self.report.duplicated = sorted({o for o, n in places.items() if n > 1} | repeats | overfilled)
        # Each process did its part after the failover: the backend answered, the worker placed
        # orders at the exchange, the consumer applied fills (trades), the feed wrote ticks.
        killed = self.killed_wall
        with self.app.app_context():
            after = lambda sql: db.session.execute(sa.text(sql), {"t": killed}).scalar()  # noqa: E731
            served = {
                "backend": self.report.acknowledged_after_kill > 0,
                "worker": after("SELECT count(*) FROM paper_orders WHERE created_at > to_timestamp(:t)") > 0,
                "consumer": after("SELECT count(*) FROM trades WHERE traded_at > to_timestamp(:t)") > 0,
                "feed": after("SELECT count(*) FROM ticks WHERE ts > to_timestamp(:t)") > 0,
            }
            db.session.remove()
        self.report.served_after = served

    def teardown(self) -> None:
        self.stop_load.set()
        failures = []
        for step in (self._stop_stack, self._close_app, self._delete_namespace, self._stop_cluster):
            try:
                step()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def _stop_stack(self) -> None:
        if getattr(self, "stack", None) is not None:
            self.stack.stop()
        for trader in getattr(self, "traders", []):
            trader.session.close()

    def _close_app(self) -> None:
        if getattr(self, "app", None) is not None:
            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
            publisher = self.app.extensions.pop("tradingapp.publisher", None)
            if publisher is not None:
                publisher.close()

    def _delete_namespace(self) -> None:
        if getattr(self, "app", None) is None:
            return
        topology = Topology(self.namespace)
        with Connection(self.app.config["AMQP_URL"], connect_timeout=3) as conn:
            channel = conn.default_channel
            for queue in topology.all_queues():
                with contextlib.suppress(Exception):
                    queue(channel).delete()
            for exchange in (topology.broker_events, topology.market_ticks, topology.dead_letter):
                with contextlib.suppress(Exception):
                    exchange(channel).delete()

    def _stop_cluster(self) -> None:
        if getattr(self, "cluster", None) is not None:
            self.cluster.stop()


def placements(log: str) -> tuple[Counter, set[str]]:
    """The worker log's paper_place lines: how many per order id, and the order ids placed again
    (repeat=True: the exchange already had the order)."""
    places, repeats = Counter(), set()
    for line in log.splitlines():
        if match := PLACE_LINE.search(line):
            places[match.group(1)] += 1
            if match.group(2) == "True":
                repeats.add(match.group(1))
    return places, repeats


def longest_gap(times: list[float]) -> float:
    """The longest interval between consecutive moments of `times` (sorted)."""
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def children(pid: int) -> list[int]:
    """The PIDs `pid` started (gunicorn's workers under its master)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def table(report: Report) -> str:
    def seconds(value: float | None) -> str:
        return "never" if value is None else f"{value:.2f} s"

    rows = [
        ("run", f"{report.plan}, synchronous_mode {report.synchronous}", ""),
        ("cluster up (etcd + 2 nodes)", f"{report.cluster_start_s:.1f} s", ""),
        ("TimescaleDB", report.timescaledb or "no (plain PostgreSQL)", ""),
        (
            "commit: sync standby / local",
            f"{report.commit_ms.get('on')} / {report.commit_ms.get('local')} ms",
            "median, 1-row insert",
        ),
        ("POST /orders before the kill", " / ".join(f"{k} {v} ms" for k, v in report.place_ms.items()), ""),
        ("failover: kill -> writable primary", seconds(report.failover_s), "Patroni ttl 10 s"),
        ("recovery: kill -> order accepted", seconds(report.recovery_s), "target: < 60 s"),
        (
            "failed attempts after the kill",
            ", ".join(f"{k}:{v}" for k, v in sorted(report.outage_failures.items())) or "-",
            "retried, same key",
        ),
        ("orders acknowledged (2xx)", f"{report.acknowledged} ({report.acknowledged_after_kill} after the kill)", ""),
        ("acknowledged orders lost", str(len(report.lost)), "target: 0"),
        (
            "orders duplicated at the broker",
            str(len(report.duplicated)),
            f"target: 0 ({report.placements_logged} placements logged, {len(report.unlogged)} unlogged)",
        ),
        ("orders not final (stuck)", str(len(report.stuck)), "target: 0"),
        ("final states", ", ".join(f"{k}:{v}" for k, v in sorted(report.final_states.items())), ""),
        ("rejections", ", ".join(f"{k}:{v}" for k, v in report.rejections.items()) or "-", ""),
        ("processes restarted", ", ".join(report.restarted) or "none (same PIDs)", "target: none"),
        ("worked after the failover", ", ".join(k for k, v in report.served_after.items() if v) or "-", ""),
        ("old primary rejoined (pg_rewind)", seconds(report.rejoin_s), "as a standby again"),
        ("fail back: switchover", seconds(report.switchover_s), "patronictl switchover"),
        ("fail back: longest gap in orders", seconds(report.switchover_gap_s), ""),
        ("invariants", "all hold" if report.invariants.get("ok") else "BROKEN", ""),
        ("drill took", f"{report.seconds:.1f} s", ""),
    ]
    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:<{value_width}}  {note}".rstrip() for name, value, note in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.drills.failover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the short run of make test (2 traders, 4 s each side)")
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory (logs)")
    parser.add_argument(
        "--async", dest="synchronous", action="store_false", help="asynchronous replication (to compare its cost)"
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    drill = Drill(
        SMALL if args.small else FULL,
        "small" if args.small else "full",
        keep=args.keep,
        synchronous=args.synchronous,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    report = drill.run()
    print(table(report))
    problems = report.failures()
    for problem in problems:
        print(f"FAILED: {problem}")
    if report.lost or report.duplicated:
        print(f"lost: {report.lost[:10]}\nduplicated: {report.duplicated[:10]}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
