"""The caller's trades, positions (net and day views; closing them all), funds and account (trading
state, limits)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from flask import Blueprint, jsonify, request

from tradingapp import metrics
from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.api.pagination import decode_time_cursor, encode_time_cursor, parse_limit
from tradingapp.models.types import dec
from tradingapp.replicas import read_only
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import funds, positions
from tradingapp.services.accounts.positions import VIEWS
from tradingapp.services.orders import actions as order_actions
from tradingapp.services.orders import reads

bp = Blueprint("portfolio", __name__, url_prefix="/api/v1")
CENTS = Decimal("0.0001")  # the scale of every stored amount


@bp.get("/trades")
@doc("The caller's fills, newest first", response=s.TradePage, params=("order_id", "limit", "cursor"))
@login_required()
@read_only
def list_trades():
    limit = parse_limit(request.args.get("limit"))
    order_id = uuid.UUID(raw) if (raw := request.args.get("order_id")) else None  # the gate checked it
    after = decode_time_cursor(cursor) if (cursor := request.args.get("cursor")) else None
    items, more = reads.list_trades(current_principal().id, limit, order_id, after)
    next_cursor = encode_time_cursor(items[-1].traded_at, items[-1].id) if more else None
    return jsonify(s.TradePage.dump({"items": [t.to_dict() for t in items], "next_cursor": next_cursor}))


@bp.get("/positions")
@doc(
    "Positions: view=net (default; held or with P&L, marked to the last price) or view=day (today's "
    "buys, sells and realized P&L per position; the session day is SESSION_TIMEZONE's)",
    response=s.PositionList,
    params=("view",),
)
@login_required()
def list_positions():
    view = request.args.get("view", VIEWS[0])
    return jsonify(
        s.PositionList.dump({"items": positions.list_positions(current_principal().id, view, funds.today())})
    )


@bp.delete("/positions")
@doc(
    "Close every position by market orders (sliced by freeze quantity); skipped names any refused",
    ok=202,
    response=s.ClosedPositions,
    errors=("403",),
)
@login_required(write=True)
def close_all_positions():
    """Market orders that flatten every position (services/orders/actions.py says how)."""
    orders, skipped = order_actions.close_all_positions(current_principal())
    for order in orders:
        metrics.ORDERS_ACCEPTED.labels(order.order_type).inc()
    return jsonify(s.ClosedPositions.dump({"orders": [o.to_dict() for o in orders], "skipped": skipped})), 202


@bp.get("/funds")
@doc("Cash, used margin, available funds and P&L (margin model in the README)", response=s.Funds)
@login_required()
def get_funds():
    summary, _limits = funds.funds_of(current_principal().id)
    return jsonify(s.Funds.dump({name: dec(value.quantize(CENTS)) for name, value in vars(summary).items()}))


@bp.get("/account")
@doc("The caller's effective trading state (stricter of global and own) and risk limits", response=s.Account)
@login_required()
def get_account():
    view = funds.account_view(current_principal().id)
    body = {**vars(view), "user_id": str(view.user_id), "session_day": view.session_day.isoformat()}
    return jsonify(s.Account.dump({**body, "limits": view.limits.to_dict()}))
