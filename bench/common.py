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
from tests.support.env import PG, test_env  # noqa: E402
from tradingapp import create_app  # noqa: E402
from tradingapp.cli import seed_demo_data  # noqa: E402
from tradingapp.extensions import get_redis  # noqa: E402


@contextlib.contextmanager
def bench_environment(**overrides):
    """(env, app) on a fresh migrated, seeded database; everything is dropped afterwards."""
    env = test_env(**{"REDIS_DB": os.environ.get("BENCH_REDIS_DB", "12"), "LOG_LEVEL": "WARNING", **overrides})
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


# -- CPU per component (Linux /proc) ---------------------------------------------------------------
def _cpu_seconds(pid: int) -> float:
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, command line) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            cmdline = open(f"/proc/{entry}/cmdline").read().replace("\0", " ")
        except (OSError, IndexError, ValueError):
            continue
        found.append((int(entry), ppid, cmdline))
    return found


def component_pids(roots: dict[str, int], db_name: str) -> dict[str, set[int]]:
    """Process groups of a run: each root process with its descendants, the Postgres backends
    serving `db_name`, and redis-server."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, ppid, _ in procs:
        children.setdefault(ppid, []).append(pid)
    groups: dict[str, set[int]] = {}
    for name, root in roots.items():
        todo, seen = [root], set()
        while todo:
            pid = todo.pop()
            seen.add(pid)
            todo += children.get(pid, [])
        groups[name] = seen
    groups["postgres"] = {pid for pid, _, cmd in procs if cmd.startswith("postgres:") and f" {db_name} " in cmd}
    groups["redis"] = {pid for pid, _, cmd in procs if "redis-server" in cmd}
    return groups


class CpuMeter:
    """CPU seconds each component used between start() and stop()."""

    def __init__(self, roots: dict[str, int], db_name: str):
        self.roots, self.db_name = roots, db_name

    def start(self) -> None:
        self.before = {pid: _cpu_seconds(pid) for pids in self._groups().values() for pid in pids}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, pids in self._groups().items():
            used[name] = sum(_cpu_seconds(pid) - self.before.get(pid, 0.0) for pid in pids)
        return used

    def _groups(self) -> dict[str, set[int]]:
        return component_pids(self.roots, self.db_name)
