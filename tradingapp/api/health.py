"""Liveness and readiness (Postgres, Redis, RabbitMQ), no auth. /ready reports stale quotes without
failing for them (a silent instrument is a market-data condition, not a broken process: failing would
take every backend out of rotation) and keeps RabbitMQ's probe result for RABBITMQ_PROBE_SECONDS per
process, so a flood of /ready costs the broker one connection per process per interval."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from tradingapp.api import schemas as s
from tradingapp.api.openapi import ANY, doc
from tradingapp.extensions import db, get_redis
from tradingapp.messaging import amqp_connection
from tradingapp.realtime import stale_instruments

bp = Blueprint("health", __name__)

STALE_LISTED = 50
# Orchestrators probe every 10 s (Kubernetes' default) to 30 s (docker-compose.yml's healthcheck):
# a result up to 5 s old is as fresh as their next look needs, and a broker that went down shows
# in the first probe after it.
RABBITMQ_PROBE_SECONDS = 5.0


@bp.get("/health")
@doc("Liveness", response=ANY, auth=False, errors=())
def health():
    return jsonify(status="ok")


def _check_database() -> None:
    db.session.execute(sa.text("SELECT 1"))


def _check_redis() -> None:
    get_redis().ping()


class ProbeFailed(Exception):
    """A probe's failure as kept: the name of what it raised."""


class CachedProbe:
    """One probe's last result, reused for `seconds`. One caller at a time runs the probe; callers
    arriving meanwhile wait for it and take its result (gevent patches the lock)."""

    def __init__(self, probe, seconds: float):
        self.probe, self.seconds = probe, seconds
        self.lock = threading.Lock()
        self.checked_at: float | None = None
        self.error: str | None = None

    def check(self) -> None:
        with self.lock:
            if self.checked_at is None or time.monotonic() - self.checked_at >= self.seconds:
                try:
                    self.probe()
                    self.error = None
                except Exception as exc:  # kept and raised again to every caller of the interval
                    self.error = type(exc).__name__
                self.checked_at = time.monotonic()
            error = self.error
        if error is not None:
            raise ProbeFailed(error)


def _connect_rabbitmq() -> None:
    with amqp_connection() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


def _check_rabbitmq() -> None:
    probe = current_app.extensions.get("tradingapp.rabbitmq_probe")
    if probe is None:
        probe = current_app.extensions.setdefault(
            "tradingapp.rabbitmq_probe", CachedProbe(_connect_rabbitmq, RABBITMQ_PROBE_SECONDS)
        )
    probe.check()


CHECKS = {"database": _check_database, "redis": _check_redis, "rabbitmq": _check_rabbitmq}


@bp.get("/ready")
@doc(
    "Readiness of Postgres, Redis and RabbitMQ (503 names the one down); stale quotes are reported, not failed",
    response=s.Readiness,
    auth=False,
    errors=(),
)
def ready():
    results, failed = {}, []
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a readiness probe reports any failure, it never raises
            error = str(exc) if isinstance(exc, ProbeFailed) else type(exc).__name__
            current_app.logger.warning("readiness check failed check=%s error=%s", name, error)
            results[name] = "unavailable"
            failed.append(name)
    if failed:
        body = {
            "status": "unavailable",
            "checks": results,
            "error": {"code": "unavailable", "message": f"{', '.join(failed)} unavailable", "details": results},
        }
        return jsonify(body), 503
    return jsonify(s.Readiness.dump({"status": "ok", "checks": results, "stale_quotes": _stale_quotes()}))


def _stale_quotes() -> dict | None:
    try:
        count, ids = stale_instruments(
            get_redis(), datetime.now(UTC), current_app.config["QUOTE_STALE_AFTER"], STALE_LISTED
        )
    except Exception as exc:  # the probe never raises
        current_app.logger.warning("stale quote check failed error=%s", type(exc).__name__)
        return None
    return {"count": count, "instrument_ids": ids}
