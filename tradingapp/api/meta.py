"""GET /api/v1/meta (no auth): what the terminal needs before login. The server's clock (to
correct its own), the session's time zone and market hours, whether registration is open, the
broker, and where the WebSocket is."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.domain.market_hours import market_session
from tradingapp.models.types import iso, utcnow

bp = Blueprint("meta", __name__, url_prefix="/api/v1")


@bp.get("/meta")
@doc(
    "Server time, session time zone and market hours, registration, broker, WebSocket address (no auth)",
    response=s.Meta,
    auth=False,
)
def meta():
    config = current_app.config
    now = utcnow()
    session = market_session(
        now, config["PAPER_SESSION_START"], config["PAPER_SESSION_END"], ZoneInfo(config["PAPER_SESSION_TZ"])
    )
    body = {
        "server_time": iso(now),
        "timezone": config["SESSION_TIMEZONE"],
        "market": {"open": session.open, "opens_at": iso(session.opens_at), "closes_at": iso(session.closes_at)},
        "registration_open": config["ALLOW_REGISTRATION"],
        "broker": config["BROKER"],
        "websocket_url": config["WEBSOCKET_PUBLIC_URL"],
        "websocket_port": config["WEBSOCKET_PORT"],
        "version": config["APP_VERSION"],
    }
    response = jsonify(s.Meta.dump(body))
    response.headers["Cache-Control"] = "no-store"  # server_time is read to correct the client's clock
    return response
