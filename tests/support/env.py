"""The environment of a test run: its database, Redis db and RabbitMQ namespace, and what spawned
processes are given."""

import os
import tempfile
import uuid

import psycopg
from argon2 import PasswordHasher

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
        # Many processes of one run (and several runs) share this machine: no fixed metrics port
        # (tests that read metrics give a process a free one), and heartbeats in the run's own folder.
        "WORKER_METRICS_PORT": "0",
        "CONSUMER_METRICS_PORT": "0",
        "FEED_METRICS_PORT": "0",
        "XTS_BRIDGE_METRICS_PORT": "0",
        "HEARTBEAT_DIR": os.path.join(tempfile.gettempdir(), f"tradingapp-heartbeats-{RUN_ID}"),
    }
    env.update(overrides)
    return env


TIMESCALEDB_LIBRARY = "/usr/lib/postgresql/15/lib/timescaledb.so"


def timescaledb_preload() -> str:
    """shared_preload_libraries for a throwaway cluster (initdb) a test starts: 'timescaledb' where
    the extension is installed here (scripts/ensure_timescaledb.sh), '' where it is not."""
    return "timescaledb" if os.path.exists(TIMESCALEDB_LIBRARY) else ""


def admin_conn():
    return psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG)


TABLES = (
    "candles_1m, ticks, paper_orders, processed_events, positions, trades, order_events, orders, instruments, users"
)
