"""Liveness, readiness (Postgres, Redis, RabbitMQ) — no auth.

/ready also reports stale quotes (instruments whose feed has been silent past QUOTE_STALE_AFTER)
as `stale_quotes: {count, instrument_ids}` (the longest silent first, at most STALE_LISTED). It does
not fail readiness for them: a silent instrument is a market-data condition, not a broken process,
and failing the probe would take every backend out of rotation for it.
"""

from __future__ import annotations

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


@bp.get("/health")
@doc("Liveness", response=ANY, auth=False, errors=())
def health():
    return jsonify(status="ok")


def _check_database() -> None:
    db.session.execute(sa.text("SELECT 1"))


def _check_redis() -> None:
    get_redis().ping()


def _check_rabbitmq() -> None:
    with amqp_connection() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)


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
            current_app.logger.warning("readiness check failed check=%s error=%s", name, type(exc).__name__)
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
