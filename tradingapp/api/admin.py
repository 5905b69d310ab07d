"""Administration (admin role only): users, risk limits, trading states (kill switch), audit log."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from tradingapp.api.pagination import parse_limit
from tradingapp.http import json_body
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import admin

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")
ADMIN = {"admin"}


@bp.get("/users")
@login_required(roles=ADMIN)
def list_users():
    return jsonify(items=admin.list_users())


@bp.patch("/users/<user_id>")
@login_required(write=True, roles=ADMIN)
def update_user(user_id: str):
    return jsonify(admin.update_user(current_principal(), user_id, json_body()))


@bp.get("/risk-limits")
@login_required(roles=ADMIN)
def get_risk_limits():
    return jsonify(admin.risk_limits_view())


@bp.put("/risk-limits")
@login_required(write=True, roles=ADMIN)
def put_risk_limits():
    return jsonify(admin.update_risk_limits(current_principal(), json_body()))


@bp.get("/kill-switch")
@login_required(roles=ADMIN)
def get_trading_states():
    return jsonify(admin.trading_states())


@bp.post("/kill-switch")
@login_required(write=True, roles=ADMIN)
def set_trading_state():
    body = json_body()
    state, user_id = admin.parse_state_body(body)
    return jsonify(admin.set_trading_state(current_principal(), state, user_id, body.get("reason")))


@bp.get("/audit")
@login_required(roles=ADMIN)
def audit_log():
    return jsonify(items=admin.audit_log(parse_limit(request.args.get("limit"))))
