"""The chaos run: the real processes (tests/support/stack.py) against throwaway PostgreSQL, Redis
and RabbitMQ (tests/chaos/services.py), each reached through a TCP relay of ours
(tests/support/net.py TcpProxy: Debian has no Toxiproxy package), a steady order load over HTTP
and a socket per trader (tests/chaos/load.py), and a schedule of faults. After the schedule the
load stops, the book settles, the feed stops and `flask check-invariants` runs; then every order
the clients were told was accepted is looked up (lost: missing, or stuck in a transient state),
the worker's log is read for orders the paper exchange got more than once (duplicated), and each
socket's view is compared with the database.

`python -m tests.chaos` (make chaos) runs FULL; tests/chaos/test_chaos.py runs SHORT in make test.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests
import sqlalchemy as sa
from flask_migrate import upgrade
from kombu import Connection

from config import TestConfig
from tests.chaos.load import Client, Probe, Trader, Watcher, Windows
from tests.chaos.services import Services
from tests.support import ROOT
from tests.support.env import FAST_HASHER, test_env
from tests.support.net import TcpProxy, free_port
from tests.support.stack import Stack
from tradingapp import create_app
from tradingapp.cli import seed_demo_data
from tradingapp.extensions import db
from tradingapp.messaging import Topology
from tradingapp.models import Order, User

TRANSIENT = ("PENDING", "SUBMITTED", "CANCEL_PENDING", "MODIFY_PENDING")
PASSWORD = "chaos-password-123"
PLACE_LINE = re.compile(r"event=paper_place order_id=(\S+) .* repeat=(True|False)")


@dataclass(frozen=True)
class Fault:
    kind: str  # kill | restart | cut | latency
    target: str  # a process (backend, websocket, worker, consumer, feed) or a service (postgres, redis, rabbitmq)
    seconds: float = 0.0  # how long a cut or the added latency lasts
    latency: float = 0.0  # seconds per relayed chunk, each way

    @property
    def name(self) -> str:
        if self.kind == "kill":
            return f"kill -9 {self.target}"
        if self.kind == "restart":
            return f"restart {self.target}"
        if self.kind == "cut":
            return f"cut app<->{self.target} {self.seconds:g}s"
        return f"+{self.latency * 1000:g}ms app<->{self.target} {self.seconds:g}s"


FULL = [
    Fault("kill", "backend"),
    Fault("kill", "websocket"),
    Fault("kill", "worker"),
    Fault("kill", "consumer"),
    Fault("kill", "feed"),
    Fault("restart", "postgres"),
    Fault("restart", "redis"),
    Fault("restart", "rabbitmq"),
    Fault("cut", "postgres", seconds=5),
    Fault("cut", "redis", seconds=5),
    Fault("cut", "rabbitmq", seconds=5),
    Fault("latency", "postgres", seconds=10, latency=0.05),
    Fault("latency", "redis", seconds=10, latency=0.05),
    Fault("latency", "rabbitmq", seconds=10, latency=0.2),
]
SHORT = [Fault("kill", "worker"), Fault("kill", "consumer"), Fault("restart", "redis"), Fault("cut", "postgres", 3)]
# The sweeper as deployed (config.py defaults), or fast for the short run inside make test.
DEPLOYED_SWEEPS = {
    "SWEEP_INTERVAL": "15",
    "SWEEP_PENDING_AFTER": "10",
    "SWEEP_RECONCILE_EVERY": "60",
    "ORDER_JOB_TIMEOUT": "30",
}
FAST_SWEEPS = {
    "SWEEP_INTERVAL": "2",
    "SWEEP_PENDING_AFTER": "3",
    "SWEEP_RECONCILE_EVERY": "5",
    "ORDER_JOB_TIMEOUT": "10",
}


@dataclass
class Row:
    fault: str
    lasted_s: float = 0.0
    recovery_s: float | None = None
    accepted: int = 0
    lost: int = 0
    duplicated: int = 0
    errors: dict = field(default_factory=dict)
    restarts: dict = field(default_factory=dict)  # processes the supervisor restarted (they died)
    socket_resyncs: int = 0  # sockets that dropped and caught up again (reconnect + snapshot)
    socket_lag_s: float | None = None  # the longest of those, from the drop to the snapshot read

    def errors_text(self) -> str:
        return ", ".join(f"{k}:{v}" for k, v in sorted(self.errors.items())) or "-"


class ChaosStack(Stack):
    """Stack with the worker logging at INFO (its paper_place lines say what reached the exchange)
    and a supervisor: a process that dies unasked is started again, as compose's restart policy
    would, and counted."""

    def commands(self):
        commands = super().commands()
        for name, (argv, extra) in commands.items():  # the websocket process serves /ws on WEBSOCKET_PORT
            commands[name] = (argv, {**extra, "WEBSOCKET_PORT": str(self.ws_port)})
        argv, extra = commands["worker"]
        commands["worker"] = (argv, {**extra, "LOG_LEVEL": "INFO"})
        return commands

    def restart(self, name: str) -> None:
        argv, extra = self.commands()[name]
        self.start_one(name, argv, extra)
        if name in ("backend", "websocket"):
            port = self.http_port if name == "backend" else self.ws_port
            self.wait_http(f"http://127.0.0.1:{port}/health", name, timeout=60)


class Supervisor(threading.Thread):
    def __init__(self, stack: ChaosStack, windows: Windows):
        super().__init__(name="supervisor", daemon=True)
        self.stack, self.windows = stack, windows
        self.lock = threading.Lock()  # held while a fault kills and restarts a process itself
        self.restarts: dict[int, Counter] = defaultdict(Counter)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.5):
            with self.lock:
                for name, process in list(self.stack.processes.items()):
                    if process.popen.poll() is not None:
                        self.restarts[self.windows.current][name] += 1
                        self.stack.processes.pop(name)
                        try:
                            self.stack.restart(name)
                        except RuntimeError:
                            pass  # tried again on the next round


class Chaos:
    def __init__(
        self,
        schedule: list[Fault],
        users: int = 4,
        rate: float = 2.0,
        settle: float = 10.0,
        sweeps: dict | None = None,
        recovery_timeout: float = 120.0,
        keep: bool = False,
        log=print,
    ):
        self.schedule, self.users, self.rate, self.settle = schedule, users, rate, settle
        self.sweeps = sweeps or DEPLOYED_SWEEPS
        self.recovery_timeout = recovery_timeout
        self.keep, self.log = keep, log
        self.windows = Windows()
        self.stop_load = threading.Event()
        self.rows: list[Row] = []
        self.revocation: dict = {}

    # -- set-up ------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.services = Services(keep=self.keep).start()
        s = self.services
        self.proxies = {
            name: TcpProxy(free_port(), ("127.0.0.1", svc.port))
            for name, svc in (("postgres", s.postgres), ("redis", s.redis), ("rabbitmq", s.rabbitmq))
        }
        for proxy in self.proxies.values():
            proxy.start()
        common = {
            "DB_HOST": "127.0.0.1",
            "DB_NAME": "tradingapp_chaos",
            "DB_USER": "postgres",
            "REDIS_DB": "0",
            "REDIS_HOST": "127.0.0.1",
            "RABBITMQ_HOST": "127.0.0.1",
            "NAMESPACE": "chaos",
            **self.sweeps,
        }
        self.direct_env = test_env(
            **common, DB_PORT=str(s.postgres.port), REDIS_PORT=str(s.redis.port), RABBITMQ_PORT=str(s.rabbitmq.port)
        )
        app_env = test_env(
            **common,
            DB_PORT=str(self.proxies["postgres"].port),
            REDIS_PORT=str(self.proxies["redis"].port),
            RABBITMQ_PORT=str(self.proxies["rabbitmq"].port),
        )
        with psycopg.connect(
            host="127.0.0.1", port=s.postgres.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute('CREATE DATABASE "tradingapp_chaos"')
        self.app = create_app(TestConfig(self.direct_env))
        with self.app.app_context():
            with contextlib.redirect_stderr(io.StringIO()):  # alembic's INFO lines
                upgrade(revision="heads")
            seed_demo_data()
            users = [
                User(email=email, password_hash=FAST_HASHER.hash(PASSWORD), name=email, role="trader")
                for email in [*self.emails(), "chaos-probe@example.com", "chaos-revoked@example.com"]
            ]
            db.session.add_all(users)
            db.session.commit()
            self.user_ids = {u.email: str(u.id) for u in users}
            with Connection(self.app.config["AMQP_URL"]) as conn:
                Topology("chaos").declare(conn)
        (s.root / "logs").mkdir()
        self.stack = ChaosStack(app_env, log_dir=s.root / "logs")
        self.stack.start()
        self.supervisor = Supervisor(self.stack, self.windows)
        self.supervisor.start()
        self.wait_for_quotes()

    def emails(self) -> list[str]:
        return [f"chaos-trader-{i}@example.com" for i in range(self.users)]

    def client(self, email: str) -> Client:
        client = Client(
            self.stack.base_url, email, PASSWORD, self.windows, self.stop_load, user_id=self.user_ids[email]
        )
        client.login()
        return client

    def wait_for_quotes(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        probe = self.client("chaos-probe@example.com")
        while time.monotonic() < deadline:
            answer = probe.session.get(f"{self.stack.base_url}/api/v1/quotes?instrument_ids=1,2,3,4,5", timeout=5)
            if answer.status_code == 200 and len([q for q in answer.json()["items"] if q.get("ltp")]) == 5:
                probe.session.close()
                return
            time.sleep(0.2)
        raise RuntimeError(f"no quotes from the feed within {timeout}s:\n{self.stack.logs()}")

    # -- faults -----------------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        if fault.kind == "kill":
            with self.supervisor.lock:
                self.stack.kill(fault.target, signal.SIGKILL)
                time.sleep(1.0)  # a supervisor notices, then starts it again
                self.stack.restart(fault.target)
        elif fault.kind == "restart":
            service = getattr(self.services, fault.target)
            service.restart()
            if fault.target == "redis":
                self.check_revocation("after redis restart")
        elif fault.kind == "cut":
            proxy = self.proxies[fault.target]
            proxy.cut()
            time.sleep(fault.seconds)
            proxy.restore()
        elif fault.kind == "latency":
            proxy = self.proxies[fault.target]
            proxy.latency = fault.latency
            time.sleep(fault.seconds)
            proxy.latency = 0.0

    def revoke_a_token(self) -> None:
        client = self.client("chaos-revoked@example.com")
        answer = client.session.post(f"{self.stack.base_url}/api/v1/auth/logout", timeout=10)
        self.revoked_token = client.token
        client.session.close()
        self.revocation["logout"] = answer.status_code
        self.check_revocation("after logout")

    def check_revocation(self, when: str) -> None:
        headers = {"Authorization": f"Bearer {self.revoked_token}"}
        for _ in range(100):  # the backend may itself be reconnecting to Redis
            try:
                status = requests.get(f"{self.stack.base_url}/api/v1/orders", headers=headers, timeout=10).status_code
            except requests.RequestException:
                status = None
            if status is not None and status < 500:
                break
            time.sleep(0.2)
        self.revocation[when] = status

    # -- the run ----------------------------------------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        try:
            self.start()
            self.revoke_a_token()
            clients = [self.client(email) for email in self.emails()]
            self.watchers = [Watcher(c, self.stack.ws_url) for c in clients]
            self.traders = [
                Trader(c, w, self.rate, seed=i) for i, (c, w) in enumerate(zip(clients, self.watchers, strict=True))
            ]
            for thread in [*self.watchers, *self.traders]:
                thread.start()
            self.probe = Probe(self.client("chaos-probe@example.com"))
            self.window(Fault("none", "baseline"), lambda: None)
            for fault in self.schedule:
                self.window(fault, lambda f=fault: self.inject(f))
            report = self.finish()  # the last requests in flight count under the last fault
        finally:
            self.teardown()
        report["seconds"] = round(time.monotonic() - started, 1)
        return report

    def window(self, fault: Fault, inject) -> None:
        self.windows.current = len(self.rows)
        row = Row("none (steady load)" if fault.kind == "none" else fault.name)
        self.rows.append(row)
        self.log(f"chaos: {row.fault} ...")
        t0 = time.monotonic()
        failure: list[BaseException] = []

        def run_inject():
            try:
                inject()
            except BaseException as exc:  # reported with the row; the run goes on
                failure.append(exc)

        injector = threading.Thread(target=run_inject, name="inject", daemon=True)
        injector.start()
        row.recovery_s = self.probe.first_fill_after(t0, self.recovery_timeout)
        injector.join()
        row.lasted_s = round(time.monotonic() - t0, 1) if fault.kind != "none" else 0.0
        if failure:
            row.errors["inject-failed"] = 1
            self.log(f"chaos: injecting {row.fault} failed: {failure[0]!r}")
        if row.recovery_s is not None:
            row.recovery_s = round(row.recovery_s, 2)
        self.stop_load.wait(self.settle)

    # -- after the schedule -----------------------------------------------------------------------------
    def finish(self) -> dict:
        self.stop_load.set()
        for trader in self.traders:
            trader.join(timeout=90)
        settled = self.quiesce()
        self.supervisor.stopped.set()
        self.supervisor.join(timeout=30)
        self.stack.kill("feed", signal.SIGTERM)  # no more ticks: no more fills while we look
        self.drain_events()
        invariants = self.check_invariants()
        time.sleep(1.0)  # the last pushes reach the sockets
        sockets = self.compare_sockets()
        accounting = self.account()
        for i, row in enumerate(self.rows):
            row.accepted = accounting["accepted"][i]
            row.lost = accounting["lost"][i]
            row.duplicated = accounting["duplicated"][i]
            row.errors.update(self.windows.errors.get(i, {}))
            row.restarts = dict(self.supervisor.restarts.get(i, {}))
            lags = [lag for w in self.watchers for window, lag in w.caught_up if window == i]
            row.socket_resyncs = len(lags)
            row.socket_lag_s = round(max(lags), 2) if lags else None
        return {
            "ports": {
                "backend": self.stack.http_port,
                "websocket": self.stack.ws_port,
                **{f"{name}_proxy": proxy.port for name, proxy in self.proxies.items()},
                **{name: getattr(self.services, name).port for name in self.proxies},
            },
            "settings": {
                "users": self.users,
                "rate_per_user": self.rate,
                "settle_s": self.settle,
                **self.sweeps,
                "proxy": "tests/support/net.py TcpProxy",
            },
            "faults": [row.__dict__ for row in self.rows],
            "totals": {
                "accepted": sum(r.accepted for r in self.rows),
                "lost": sum(r.lost for r in self.rows),
                "duplicated": sum(r.duplicated for r in self.rows),
                "outcome_unknown_to_client": accounting["unknown_accepted"],
                "never_accepted": accounting["unknown_missing"],
                "actions": dict(sum((t.actions for t in self.traders), Counter())),
                "quiesced_s": settled,
            },
            "lost_orders": accounting["lost_ids"][:50],
            "duplicated_orders": accounting["duplicated_ids"][:50],
            "invariants": invariants,
            "websocket": sockets,
            "revocation": self.revocation,
        }

    def orders(self) -> dict[str, tuple[str, int, str | None, str]]:
        """Every order in the database: id -> (status, filled quantity, client_order_id, user id)."""
        with self.app.app_context():
            rows = db.session.execute(
                sa.select(Order.id, Order.status, Order.filled_quantity, Order.client_order_id, Order.user_id)
            ).all()
            db.session.remove()
        return {str(r.id): (r.status, r.filled_quantity, r.client_order_id, str(r.user_id)) for r in rows}

    def quiesce(self, timeout: float = 180) -> float | None:
        """Seconds until no order is in a transient state (None: some still are after `timeout`)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if not [o for o in self.orders().values() if o[0] in TRANSIENT]:
                return round(time.monotonic() - started, 1)
            time.sleep(0.5)
        return None

    def drain_events(self, timeout: float = 30) -> None:
        queue = Topology("chaos").q_broker_events
        deadline = time.monotonic() + timeout
        with Connection(self.app.config["AMQP_URL"]) as conn:
            while time.monotonic() < deadline:
                declared = queue(conn.default_channel).queue_declare(passive=True)
                if declared.message_count == 0:
                    break
                time.sleep(0.2)
        time.sleep(1.0)  # the consumer's last transaction commits

    def check_invariants(self) -> dict:
        env = {**self.direct_env, "FLASK_APP": "wsgi", "PATH": str(Path(sys.executable).parent)}
        done = subprocess.run(
            [str(Path(sys.executable).parent / "flask"), "check-invariants", "--json", "--grace", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        try:
            report = json.loads(done.stdout)
        except json.JSONDecodeError:
            report = {"ok": False, "output": done.stdout[-2000:], "stderr": done.stderr[-2000:]}
        report["exit_status"] = done.returncode
        return report

    def compare_sockets(self) -> dict:
        orders = self.orders()
        result = {
            "users": len(self.watchers),
            "orders": 0,
            "missed": 0,
            "wrong": 0,
            "connects": 0,
            "snapshots": 0,
            "updates_from_socket": 0,
            "examples": [],
        }
        for watcher in self.watchers:
            watcher.stop.set()
            watcher.close()
            watcher.join(timeout=10)
            user_orders = {i: o for i, o in orders.items() if o[3] == watcher.client.user_id}
            result["orders"] += len(user_orders)
            result["connects"] += watcher.connects
            result["snapshots"] += watcher.snapshots
            result["updates_from_socket"] += watcher.from_socket
            result.setdefault("drops", Counter()).update(watcher.drops)
            for order_id, (status, filled, _key, _user) in user_orders.items():
                seen = watcher.view.get(order_id)
                if seen is None:
                    result["missed"] += 1
                elif (seen["status"], seen["filled_quantity"]) != (status, filled):
                    result["wrong"] += 1
                    if len(result["examples"]) < 10:
                        result["examples"].append(
                            {
                                "order_id": order_id,
                                "database": [status, filled],
                                "socket_view": [seen["status"], seen["filled_quantity"]],
                            }
                        )
        return result

    def account(self) -> dict:
        orders = self.orders()
        by_key = {o[2]: i for i, o in orders.items() if o[2]}
        accepted = [a for t in self.traders for a in t.accepted] + self.probe.accepted
        window_of = {a.order_id: a.window for a in accepted}
        counts = {k: Counter() for k in ("accepted", "lost", "duplicated")}
        lost_ids, duplicated_ids = [], []
        for a in accepted:
            counts["accepted"][a.window] += 1
            status = orders.get(a.order_id, (None,))[0]
            if status is None or status in TRANSIENT:
                counts["lost"][a.window] += 1
                lost_ids.append({"order_id": a.order_id, "status": status, "window": a.window})
        places = Counter()
        repeats = set()
        log = self.stack.log_dir / "worker.log"
        for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
            if match := PLACE_LINE.search(line):
                places[match.group(1)] += 1
                if match.group(2) == "True":
                    repeats.add(match.group(1))
        for order_id in sorted({o for o, n in places.items() if n > 1} | repeats):
            counts["duplicated"][window_of.get(order_id, len(self.rows) - 1)] += 1
            duplicated_ids.append({"order_id": order_id, "places": places[order_id], "window": window_of.get(order_id)})
        unknown = [k for t in self.traders for k in t.unknown]
        return {
            **{k: [c[i] for i in range(len(self.rows))] for k, c in counts.items()},
            "lost_ids": lost_ids,
            "duplicated_ids": duplicated_ids,
            "unknown_accepted": sum(1 for k in unknown if k in by_key),
            "unknown_missing": sum(1 for k in unknown if k not in by_key),
        }

    def teardown(self) -> None:
        """Stop everything that was started, each step whatever the one before raised: the
        throwaway services above all (a server left running outlives the test run)."""
        failures = []
        for step in (self._stop_clients, self._stop_processes, self._close_app, self._stop_services):
            try:
                step()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]

    def _stop_clients(self) -> None:
        self.stop_load.set()
        supervisor = getattr(self, "supervisor", None)
        if supervisor is not None:
            supervisor.stopped.set()
            supervisor.join(timeout=30)
        for watcher in getattr(self, "watchers", []):
            watcher.stop.set()
            watcher.close()
            watcher.join(timeout=10)
            watcher.client.session.close()
        if getattr(self, "probe", None) is not None:
            self.probe.client.session.close()

    def _stop_processes(self) -> None:
        if getattr(self, "stack", None) is not None:
            self.stack.stop()
        for proxy in getattr(self, "proxies", {}).values():
            proxy.close()

    def _close_app(self) -> None:
        if getattr(self, "app", None) is not None:
            with self.app.app_context():
                db.session.remove()
                db.engine.dispose()
            publisher = self.app.extensions.pop("tradingapp.publisher", None)
            if publisher is not None:
                publisher.close()

    def _stop_services(self) -> None:
        if getattr(self, "services", None) is not None:
            self.services.stop()


def table(report: dict) -> str:
    """The per-fault table: how long the fault lasted, the first probe order filled after it (from
    the fault's start), orders accepted in its window, lost and duplicated ones, the sockets that
    reconnected and re-read (and the longest time from the drop to the re-read), and each failed
    attempt clients saw, by status."""
    lines = [
        f"{'fault':<28} {'lasted':>6} {'recovery':>8} {'accepted':>8} {'lost':>4} {'dup':>3} {'sockets':>12}  "
        "client-visible errors"
    ]
    for row in report["faults"]:
        recovery = "never" if row["recovery_s"] is None else f"{row['recovery_s']:.2f}s"
        errors = ", ".join(f"{k}:{v}" for k, v in sorted(row["errors"].items())) or "-"
        restarts = ", ".join(f"{k} x{v}" for k, v in row["restarts"].items())
        sockets = f"{row['socket_resyncs']} in {row['socket_lag_s']:.1f}s" if row["socket_resyncs"] else "-"
        lines.append(
            f"{row['fault']:<28} {row['lasted_s']:>5.1f}s {recovery:>8} {row['accepted']:>8} {row['lost']:>4} "
            f"{row['duplicated']:>3} {sockets:>12}  {errors}" + (f"  [died, restarted: {restarts}]" if restarts else "")
        )
    totals = report["totals"]
    lines.append(f"{'total':<28} {'':>6} {'':>8} {totals['accepted']:>8} {totals['lost']:>4} {totals['duplicated']:>3}")
    return "\n".join(lines)
