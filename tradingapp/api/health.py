"""Liveness, readiness (Postgres, Redis, RabbitMQ) — no auth."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify

from tradingapp.extensions import db, get_redis
from tradingapp.messaging import amqp_connection

bp = Blueprint("health", __name__)


@bp.get("/health")
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
    return jsonify(status="ok", checks=results)
