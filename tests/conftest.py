"""Fixtures on the real services: a Postgres database per run, a Redis db of its own and a
RabbitMQ namespace (prefixed exchange/queue names and Redis channels) of its own."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask_migrate import upgrade
from kombu import Connection, Queue

from config import TestConfig
from tradingapp import create_app
from tradingapp.cli import seed_demo_data
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.messaging import Topology
from tradingapp.models import User
from tradingapp.security.auth import issue_tokens

RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
PG = {
    "host": os.environ.get("TEST_DB_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_DB_PORT", "5432")),
    "user": os.environ.get("TEST_DB_USER", "postgres"),
}
# Cheap hashing for tests only; production uses argon2's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def test_env(**overrides) -> dict[str, str]:
    """The environment of this test run: what the in-process app and spawned processes use."""
    env = {
        "APP_ENV": "test",
        "DB_HOST": PG["host"],
        "DB_PORT": str(PG["port"]),
        "DB_USER": PG["user"],
        "DB_NAME": f"tradingapp_test_{RUN_ID}",
        "DB_SSL_MODE": "disable",
        "REDIS_HOST": os.environ.get("TEST_REDIS_HOST", "127.0.0.1"),
        "REDIS_PORT": os.environ.get("TEST_REDIS_PORT", "6379"),
        "REDIS_DB": os.environ.get("TEST_REDIS_DB", "13"),
        "RABBITMQ_HOST": os.environ.get("TEST_RABBITMQ_HOST", "127.0.0.1"),
        "NAMESPACE": f"t{RUN_ID}",
        "JWT_SECRET": "test-secret-that-is-long-enough-for-hs256-0123456789",
        "LOG_LEVEL": "WARNING",
    }
    env.update(overrides)
    return env


def _admin_conn():
    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG)


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    return test_env()


@pytest.fixture(scope="session")
def app(env):
    with _admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{env["DB_NAME"]}"')
    application = create_app(TestConfig(env))
    with application.app_context():
        upgrade(revision="heads")  # branches of parallel work are merged before release
        get_redis().flushdb()
    yield application
    with application.app_context():
        _db.session.remove()
        _db.engine.dispose()
    with _admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{env["DB_NAME"]}" WITH (FORCE)')
    _delete_rabbitmq_namespace(application.config["AMQP_URL"], env["NAMESPACE"])


def _delete_rabbitmq_namespace(url: str, namespace: str) -> None:
    topology = Topology(namespace)
    try:
        with Connection(url, connect_timeout=3) as conn:
            channel = conn.default_channel
            for queue in topology.all_queues():
                queue(channel).delete()
            for exchange in (topology.broker_events, topology.market_ticks, topology.dead_letter):
                exchange(channel).delete()
    except Exception:  # cleanup is best effort: a missing queue is already clean
        pass


TABLES = (
    "candles_1m, ticks, paper_orders, processed_events, positions, trades, order_events, orders, instruments, users"
)


@pytest.fixture
def db(app):
    """A clean database (demo instruments seeded) and a clean Redis db for each test."""
    with app.app_context():
        _db.session.execute(sa.text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        _db.session.commit()
        get_redis().flushdb()
        seed_instruments()
        yield _db
        _db.session.rollback()
        _db.session.remove()


def seed_instruments() -> None:
    seed_demo_data(include_users=False)


@pytest.fixture
def client(app, db):
    return app.test_client()


@pytest.fixture
def make_user(db):
    def factory(
        email: str | None = None,
        password: str = "correct-horse-battery",
        role: str = "trader",
        name: str = "Test User",
        active: bool = True,
    ) -> User:
        user = User(
            email=email or f"user-{uuid.uuid4().hex[:8]}@example.com",
            password_hash=FAST_HASHER.hash(password),
            name=name,
            role=role,
            active=active,
        )
        _db.session.add(user)
        _db.session.commit()
        return user

    return factory


@pytest.fixture
def auth_headers(app):
    """Bearer headers for a user: auth_headers(user) -> {"Authorization": "Bearer ..."}."""

    def factory(user: User) -> dict[str, str]:
        with app.test_request_context():
            tokens = issue_tokens(user)
        return {"Authorization": f"Bearer {tokens['access_token']}"}

    return factory


@pytest.fixture
def trader(make_user):
    return make_user(role="trader")


@pytest.fixture
def trader_headers(trader, auth_headers):
    return auth_headers(trader)


@pytest.fixture
def admin(make_user):
    return make_user(role="admin")


@pytest.fixture
def admin_headers(admin, auth_headers):
    return auth_headers(admin)


@pytest.fixture
def seeded_demo(db):
    """The demo users of `flask seed` (their real argon2 hashes)."""
    seed_demo_data()


class EventTap:
    """An exclusive queue bound to every routing key of broker.events, read with basic_get.
    Publisher confirms mean an event is on this queue by the time publish() returns."""

    def __init__(self, app):
        self.connection = Connection(app.config["AMQP_URL"], connect_timeout=5)
        topology = Topology(app.config["NAMESPACE"])
        topology.broker_events(self.connection.default_channel).declare()
        queue = Queue(f"{topology.names['broker_events']}.tap-{uuid.uuid4().hex[:8]}", topology.broker_events,
                      routing_key="#", exclusive=True, auto_delete=True)  # fmt: skip
        self.queue = self.connection.SimpleQueue(queue, accept=["json"])

    def drain(self) -> list[dict]:
        """Every event published so far, in order."""
        bodies = []
        while True:
            try:
                message = self.queue.get_nowait()
            except self.queue.Empty:
                return bodies
            bodies.append(message.payload)
            message.ack()

    def close(self) -> None:
        self.queue.close()
        self.connection.release()


@pytest.fixture(scope="module")
def close_publisher(app):
    """Code under test publishes through the app's process-wide publisher: close it with the module."""
    yield
    publisher = app.extensions.pop("tradingapp.publisher", None)
    if publisher is not None:
        publisher.close()


@pytest.fixture
def tap(app, db):
    """Every broker event published during the test, read with tap.drain()."""
    events = EventTap(app)
    yield events
    events.close()


def wait_until(predicate, timeout: float = 10, details=lambda: "", interval: float = 0.05):
    """The first truthy value of predicate() within timeout seconds, else AssertionError (with details())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s. {details()}")


@contextlib.contextmanager
def consumer_thread(app, queues: set[str]):
    """The real Kombu consumer of `queues` (jobs.consumer EVENTS / TICKS) in a thread of this
    process, on purged queues; stopped and its connection released on exit."""
    from jobs.consumer import Consumer

    topology = Topology(app.config["NAMESPACE"])
    with Connection(app.config["AMQP_URL"]) as conn:
        topology.declare(conn)
        for queue in topology.all_queues():
            queue(conn.default_channel).purge()
    running = Consumer(app, Connection(app.config["AMQP_URL"]), paper_exchange=False, retry_delay=0.2, queues=queues)
    thread = threading.Thread(target=running.run, kwargs={"safety_interval": 0.1}, daemon=True)
    thread.start()
    assert running.ready.wait(10)
    try:
        yield running
    finally:
        running.should_stop = True
        thread.join(10)
        running.connection.release()
