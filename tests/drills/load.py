"""The application against a drill's cluster, and a steady order load through it.

- DrillApp: the real processes of tradingapp (tests.support.stack: gunicorn backend, RQ worker,
  Kombu consumer, simulated feed) on a database of a throwaway cluster, a throwaway redis-server
  and the machine's RabbitMQ under a namespace of their own (removed at the end). The database is
  made, migrated and seeded by the CLI a deployment uses: `flask create-db`, `flask db upgrade`,
  `flask seed`.
- OrderLoad: one trader's steady stream of orders over the HTTP API (MARKET orders the paper
  exchange fills against the feed's quotes, and LIMIT orders away from the market that stay open).
  A request that fails with a 5xx, a 429 or a connection error is sent again unchanged (same
  client_order_id). Every acknowledged order is recorded here, outside the database, with the
  wall-clock times its request was sent and answered: the record a drill checks the database
  against (an acknowledged order was committed before the answer left the backend).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import requests
from kombu import Connection

from tests.chaos.services import Redis
from tests.support import ROOT
from tests.support.env import test_env
from tests.support.stack import DEMO, Stack
from tradingapp.messaging import Topology

BIN = Path(sys.executable).parent
DB_NAME = "tradingapp_drill"
RETRYABLE = {429, 500, 502, 503, 504}


class DrillApp:
    """tradingapp on a drill's cluster (see the module doc). `env` is what every process gets."""

    def __init__(self, root: Path, db_port: int, **overrides: str):
        self.root = root
        self.redis = Redis(root).start()
        self.namespace = f"drill{uuid.uuid4().hex[:8]}"
        self.env = test_env(
            DB_HOST="127.0.0.1",
            DB_PORT=str(db_port),
            DB_NAME=DB_NAME,
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=str(self.redis.port),
            REDIS_DB="0",
            NAMESPACE=self.namespace,
            HEARTBEAT_DIR=str(root / "heartbeats"),
            **overrides,
        )
        self.stacks: list[Stack] = []

    def flask(self, *argv: str, **env: str) -> str:
        done = subprocess.run(
            [str(BIN / "flask"), *argv],
            cwd=ROOT,
            env={**os.environ, **self.env, "FLASK_APP": "wsgi", **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def migrate(self) -> None:
        """The deploy steps: create the database, apply the migrations, the demo users and instruments."""
        self.flask("create-db")
        self.flask("db", "upgrade")
        self.flask("seed")
        with Connection(self.amqp_url()) as conn:
            Topology(self.namespace).declare(conn)

    def amqp_url(self) -> str:
        from config import TestConfig

        return TestConfig(self.env).amqp_url

    def start(self, names=("backend", "worker", "consumer", "feed"), db_port: int | None = None) -> Stack:
        """Start `names` (against another cluster's port when `db_port` is given); the Stack."""
        env = {**self.env, **({"DB_PORT": str(db_port)} if db_port else {})}
        log_dir = self.root / "logs" / str(len(self.stacks))
        log_dir.mkdir(parents=True)
        stack = Stack(env, log_dir=log_dir)
        self.stacks.append(stack)
        stack.start(list(names))
        return stack

    def wait_for_quotes(self, stack: Stack, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with login(stack.base_url) as session:
            while time.monotonic() < deadline:
                answer = session.get(f"{stack.base_url}/api/v1/quotes?instrument_ids=1,2,3,4,5", timeout=5)
                if answer.status_code == 200 and all(q.get("ltp") for q in answer.json()["items"]):
                    return
                time.sleep(0.2)
        raise RuntimeError(f"no quotes from the feed within {timeout}s:\n{stack.logs()}")

    def close(self) -> None:
        for stack in self.stacks:
            stack.stop()
        self.redis.stop()
        try:
            with Connection(self.amqp_url(), connect_timeout=5) as conn:
                topology = Topology(self.namespace)
                channel = conn.default_channel
                for queue in topology.all_queues():
                    queue(channel).delete()
                for exchange in (topology.broker_events, topology.market_ticks, topology.dead_letter):
                    exchange(channel).delete()
        except Exception as exc:  # cleaning up must not hide the drill's own outcome
            print(f"(could not remove the drill's RabbitMQ namespace {self.namespace}: {exc})", file=sys.stderr)


def login(base_url: str, email: str = DEMO["email"], password: str = DEMO["password"]) -> requests.Session:
    answer = requests.post(f"{base_url}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)
    if answer.status_code != 200:
        raise RuntimeError(f"login of {email} failed: {answer.status_code} {answer.text}")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
    return session


def ready_seconds(url: str, since: float, timeout: float) -> float:
    """Poll `url` (a /ready) until it answers 200; the seconds from `since` (time.monotonic()) to then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.monotonic() - since
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready within {timeout}s")


@dataclass
class Ack:
    """An order the API acknowledged: its id, key, and the wall-clock times the request was sent
    and answered (time.time(), the clock PostgreSQL's commit timestamps use on this machine)."""

    order_id: str
    client_order_id: str
    order_type: str
    sent: float
    acked: float


@dataclass(eq=False)  # a Thread: hashable by identity
class OrderLoad(threading.Thread):
    """`rate` new orders a second for one user (see the module doc)."""

    base_url: str
    rate: float = 10.0
    email: str = DEMO["email"]
    password: str = DEMO["password"]
    seed: int = 0
    instruments: tuple[int, ...] = (1, 2, 3, 4, 5)
    give_up: float = 20.0  # seconds one order is retried before it counts as unknown
    acks: list[Ack] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # keys whose outcome the client never learnt
    outcomes: Counter = field(default_factory=Counter)
    stopping: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self):
        super().__init__(name=f"load-{self.email}", daemon=True)
        self.random = random.Random(self.seed)
        self.session = login(self.base_url, self.email, self.password)
        self.prices: dict[int, Decimal] = {}
        self.lock = threading.Lock()

    def stop(self, timeout: float = 15) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout)
        self.session.close()

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception as exc:  # a bug in the load must show, not end the thread silently
                self.outcomes[f"client-error:{type(exc).__name__}"] += 1
            self.stopping.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def step(self) -> None:
        if not self.prices or self.random.random() < 0.05:
            self.refresh_prices()
        instrument = self.random.choice(self.instruments)
        side = self.random.choice(("BUY", "SELL"))
        body = {"instrument_id": instrument, "side": side, "quantity": self.random.randint(1, 5), "product": "MIS"}
        if self.random.random() < 0.3 and instrument in self.prices:
            away = Decimal("0.97") if side == "BUY" else Decimal("1.03")
            body.update(order_type="LIMIT", limit_price=str(_tick(self.prices[instrument] * away)))
        else:
            body["order_type"] = "MARKET"
        self.place(body)

    def refresh_prices(self) -> None:
        ids = ",".join(map(str, self.instruments))
        try:
            answer = self.session.get(f"{self.base_url}/api/v1/quotes?instrument_ids={ids}", timeout=5)
        except requests.RequestException:
            return
        if answer.status_code == 200:
            for quote in answer.json()["items"]:
                if quote.get("ltp"):
                    self.prices[int(quote["instrument_id"])] = Decimal(str(quote["ltp"]))

    def place(self, body: dict) -> None:
        key = str(uuid.uuid4())
        sent = time.time()
        started, delay = time.monotonic(), 0.1
        while True:
            try:
                answer = self.session.post(
                    f"{self.base_url}/api/v1/orders", json={**body, "client_order_id": key}, timeout=10
                )
                outcome = str(answer.status_code)
            except requests.RequestException:
                answer, outcome = None, "conn"
            if answer is not None and answer.status_code in (200, 201, 202):
                with self.lock:
                    self.acks.append(Ack(answer.json()["id"], key, body["order_type"], sent, time.time()))
                    self.outcomes["acked"] += 1
                return
            self.outcomes[outcome] += 1
            if answer is not None and answer.status_code not in RETRYABLE:
                return  # refused (a 4xx): nothing was written
            if self.stopping.is_set() or time.monotonic() - started > self.give_up:
                with self.lock:
                    self.unknown.append(key)
                return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def acknowledged(self) -> list[Ack]:
        with self.lock:
            return list(self.acks)


def _tick(price: Decimal, size: Decimal = Decimal("0.05")) -> Decimal:
    return (price / size).quantize(Decimal(1)) * size
