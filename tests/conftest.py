"""Fixtures on the real services: a Postgres database per run, a Redis db of its own and a
RabbitMQ namespace (prefixed exchange/queue names and Redis channels) of its own."""

from __future__ import annotations

import gc
import socket
import sys
import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from kombu import Connection

from config import TestConfig
from tests.support.env import FAST_HASHER, TABLES, admin_conn, test_env
from tests.support.taps import Tap
from tradingapp import create_app
from tradingapp.cli import seed_demo_data
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.messaging import Topology
from tradingapp.models import User
from tradingapp.security.auth import issue_tokens

# Fixtures shared by folders: the consumer on a thread, the XTS simulator and an app wired to it.
pytest_plugins = ["tests.support.consumer", "tests.support.xts_sim", "tests.support.xts_client"]


# Cheap hashing for tests only; production uses argon2's defaults.
@pytest.fixture(autouse=True, scope="module")
def collect_module_garbage(request):
    """A full garbage collection at the end of every module, so a socket (or any resource) a module
    leaves to the collector fails that module's last test, not whichever later test the collector
    happens to run in. A module that sets LEAKS_PLAIN_SOCKETS (to its reason: python-engineio's
    clients leave a cut connection's socket to the collector) has plain sockets dropped here; every
    other unraisable warning (an SSL socket, a file, an exception in __del__) still fails."""
    yield
    if not getattr(request.module, "LEAKS_PLAIN_SOCKETS", ""):
        gc.collect()
        return
    report = sys.unraisablehook

    def drop_plain_sockets(unraisable):
        if isinstance(unraisable.exc_value, ResourceWarning) and type(unraisable.object) is socket.socket:
            return
        report(unraisable)

    sys.unraisablehook = drop_plain_sockets
    try:
        gc.collect()
    finally:
        sys.unraisablehook = report


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    return test_env()


@pytest.fixture(scope="session")
def app(env):
    with admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{env["DB_NAME"]}"')
    application = create_app(TestConfig(env))
    with application.app_context():
        upgrade(revision="heads")  # branches of parallel work are merged before release
        get_redis().flushdb()
    yield application
    with application.app_context():
        _db.session.remove()
        _db.engine.dispose()
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{env["DB_NAME"]}" WITH (FORCE)')
    _delete_rabbitmq_namespace(application.config["AMQP_URL"], env["NAMESPACE"])


@pytest.fixture(scope="session")
def plain_app(env):
    """An app on a second database of this run migrated with TIMESCALEDB=off: `ticks` a plain table,
    as on a server without the extension. Modules that must hold on both stores override `app`
    with both (tests/services/market: on_each_store)."""
    plain_env = {**env, "DB_NAME": f"{env['DB_NAME']}_plain", "TIMESCALEDB": "off"}
    with admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{plain_env["DB_NAME"]}"')
    application = create_app(TestConfig(plain_env))
    with application.app_context():
        upgrade(revision="heads")
    yield application
    with application.app_context():
        _db.session.remove()
        _db.engine.dispose()
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{plain_env["DB_NAME"]}" WITH (FORCE)')


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
def make_app(env):
    """Another app of this run with some settings changed: make_app(CORS_ALLOWED_ORIGINS=...). Its
    database pool and Redis client are closed after the test (no connection left to the collector)."""
    made = []

    def factory(**overrides):
        application = create_app(TestConfig({**env, **overrides}))
        made.append(application)
        return application

    yield factory
    for application in made:
        with application.app_context():
            _db.session.remove()
            _db.engine.dispose()
        redis_client = application.extensions.get("redis")
        if redis_client is not None:
            redis_client.close()


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
    events = Tap(app, "broker_events")
    yield events
    events.close()
