"""Liveness and readiness, no auth. /health answers without calling anything. /ready checks what this
process needs: the backend Postgres, Redis and RabbitMQ; the websocket process Postgres (sessions are
checked against it), Redis and its pub/sub feed (the Redis listener that routes quotes and order events to
the sockets; it does not use RabbitMQ). /ready reports stale quotes without failing for them (a silent
instrument is a market-data condition, not a broken process: failing would take every backend out of
rotation) and keeps the result of a probe that opens a connection (RabbitMQ, a pub/sub round trip) for
PROBE_SECONDS per process, so a flood of /ready costs each service one connection per process per
interval."""

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
from tradingapp.realtime import quotes_channel, stale_instruments, user_events_channel

bp = Blueprint("health", __name__)

STALE_LISTED = 50
# Orchestrators probe every 10 s (Kubernetes' default) to 30 s (docker-compose.yml's healthcheck):
# a result up to 5 s old is as fresh as their next look needs, and a broker that went down shows
# in the first probe after it.
PROBE_SECONDS = 5.0
RABBITMQ_PROBE_SECONDS = PROBE_SECONDS


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


def _cached(name: str, probe) -> CachedProbe:
    """This app's CachedProbe of `probe`, made at its first use."""
    key = f"tradingapp.{name}_probe"
    cached = current_app.extensions.get(key)
    if cached is None:
        cached = current_app.extensions.setdefault(key, CachedProbe(probe, PROBE_SECONDS))
    return cached


def _check_rabbitmq() -> None:
    _cached("rabbitmq", _connect_rabbitmq).check()


def _subscribe_once() -> None:
    """Subscribe to the feed's channels and get Redis' confirmation, as the listener does."""
    pubsub = get_redis().pubsub()
    try:
        pubsub.subscribe(quotes_channel(), user_events_channel())
        deadline = time.monotonic() + 3
        while (left := deadline - time.monotonic()) > 0:
            message = pubsub.get_message(timeout=left)
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError("no subscription confirmed")
    finally:
        pubsub.close()


def _check_pubsub() -> None:
    """The websocket process's live feed. Once the first socket has started this process's Redis
    listener (tradingapp/ws/listener.py), its own state: subscribed, or away and reconnecting. Before
    that, a pub/sub round trip on its channels, which the first socket's listener will need."""
    listener = current_app.extensions.get("ws_listener")
    if listener is not None:
        if not listener.ready.is_set():
            raise ProbeFailed("listener not subscribed")
        return
    _cached("pubsub", _subscribe_once).check()


BACKEND_CHECKS = {"database": _check_database, "redis": _check_redis, "rabbitmq": _check_rabbitmq}
WEBSOCKET_CHECKS = {"database": _check_database, "redis": _check_redis, "pubsub": _check_pubsub}


def _checks() -> dict:
    # The rule of tradingapp.ws.routes.serves_websocket (the API layer does not import the WebSocket's).
    config = current_app.config
    return WEBSOCKET_CHECKS if config["PORT"] == config["WEBSOCKET_PORT"] else BACKEND_CHECKS


@bp.get("/ready")
@doc(
    "Readiness of Postgres, Redis and RabbitMQ (503 names the one down); stale quotes are reported, not failed",
    response=s.Readiness,
    auth=False,
    errors=(),
)
def ready():
    results, failed = {}, []
    for name, check in _checks().items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # a readiness probe reports any failure, it never raises
            error = str(exc) if isinstance(exc, ProbeFailed) else type(exc).__name__
            current_app.logger.warning("event=readiness_check_failed check=%s error=%s", name, error)
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
        current_app.logger.warning("event=stale_quote_check_failed error=%s", type(exc).__name__)
        return None
    return {"count": count, "instrument_ids": ids}
