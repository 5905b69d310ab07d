"""Administration (admin role only): users, risk limits, trading states (kill switch), audit log."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.api.pagination import parse_limit
from tradingapp.http import json_body
from tradingapp.replicas import read_only
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import admin

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")
ADMIN = {"admin"}


@bp.get("/users")
@doc("Every user with role and active (admin)", response=s.AdminUserList, errors=("403",))
@login_required(roles=ADMIN)
def list_users():
    return jsonify(s.AdminUserList.dump({"items": admin.list_users()}))


@bp.patch("/users/<uuid:user_id>")
@doc(
    "Change a user's role and/or active; deactivating revokes their sessions at once; an admin cannot deactivate"
    " or demote themself (409)",
    response=s.AdminUser,
    body=s.UserChange,
    errors=("403", "404", "409"),
)
@login_required(write=True, roles=ADMIN)
def update_user(user_id: uuid.UUID):
    return jsonify(s.AdminUser.dump(admin.update_user(current_principal(), str(user_id), json_body())))


@bp.get("/risk-limits")
@doc(
    "Built-in defaults, effective global limits and per-user overrides",
    response=s.RiskLimitsView,
    errors=("403",),
)
@login_required(roles=ADMIN)
def get_risk_limits():
    return jsonify(s.RiskLimitsView.dump(admin.risk_limits_view()))


@bp.put("/risk-limits")
@doc(
    "Change global limits and per-user overrides: a null value removes that override (a global one falls back to"
    " the built-in default), users.{id}: null removes all of a user's overrides; any invalid field is a 400"
    " naming it (422 for a value the rules refuse, such as an unknown user), and nothing changes",
    response=s.RiskLimitsView,
    body=s.RiskLimitsChange,
    errors=("403",),
)
@login_required(write=True, roles=ADMIN)
def put_risk_limits():
    return jsonify(s.RiskLimitsView.dump(admin.update_risk_limits(current_principal(), json_body())))


@bp.get("/kill-switch")
@doc("The global trading state and every user not ACTIVE", response=s.TradingStates, errors=("403",))
@login_required(roles=ADMIN)
def get_trading_states():
    return jsonify(s.TradingStates.dump(admin.trading_states()))


@bp.post("/kill-switch")
@doc(
    "Set the trading state of everyone (no user_id) or one user: {active: true} halts (HALTED), {active: false}"
    " resumes (ACTIVE), or {state: ACTIVE|REDUCING|HALTED}. HALTED refuses new orders and modifications that add"
    " exposure (423); REDUCING passes only orders that shrink a position; cancels always pass. The effective state"
    " is the stricter of global and user",
    response=s.TradingStateSet,
    body=s.TradingStateChange,
    errors=("403", "404"),
)
@login_required(write=True, roles=ADMIN)
def set_trading_state():
    body = json_body()
    state, user_id = admin.parse_state_body(body)
    changed = admin.set_trading_state(current_principal(), state, user_id, body.get("reason"))
    return jsonify(s.TradingStateSet.dump(changed))


@bp.get("/audit")
@doc(
    "Admin changes, newest first (who, when, what, before/after)",
    response=s.AdminActionList,
    params=("limit",),
    errors=("403",),
)
@login_required(roles=ADMIN)
@read_only
def audit_log():
    return jsonify(s.AdminActionList.dump({"items": admin.audit_log(parse_limit(request.args.get("limit")))}))
