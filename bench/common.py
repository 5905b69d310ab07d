"""A throwaway database, Redis db and RabbitMQ namespace for one benchmark run."""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from config import TestConfig  # noqa: E402
from tests.conftest import PG, test_env  # noqa: E402
from tradingapp import create_app  # noqa: E402
from tradingapp.cli import seed_demo_data  # noqa: E402
from tradingapp.extensions import get_redis  # noqa: E402


@contextlib.contextmanager
def bench_environment(**overrides):
    """(env, app) on a fresh migrated, seeded database; everything is dropped afterwards."""
    env = test_env(REDIS_DB=os.environ.get("BENCH_REDIS_DB", "12"), LOG_LEVEL="WARNING", **overrides)
    env["DB_NAME"] = env["DB_NAME"].replace("_test_", "_bench_")
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(f'CREATE DATABASE "{env["DB_NAME"]}"')
    app = create_app(TestConfig(env))
    try:
        with app.app_context():
            upgrade(revision="heads")
            get_redis().flushdb()
            seed_demo_data()
        yield env, app
    finally:
        with app.app_context():
            from tradingapp.extensions import db

            db.session.remove()
            db.engine.dispose()
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{env["DB_NAME"]}" WITH (FORCE)')


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"p50": statistics.median(ordered), "p90": q[89], "p99": q[98], "max": ordered[-1]}


def fmt(stats: dict[str, float]) -> str:
    return "  ".join(f"{k}={v:7.2f}ms" for k, v in stats.items())
