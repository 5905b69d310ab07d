"""Orders: place, list, read, modify, cancel (one or all), and the audit trail of one order."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.api.pagination import decode_cursor, encode_cursor, parse_limit
from tradingapp.domain.order_lifecycle import Status
from tradingapp.errors import not_found, validation_error
from tradingapp.extensions import db
from tradingapp.http import json_body
from tradingapp.metrics import ORDERS_ACCEPTED
from tradingapp.models import Order, OrderEvent
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.orders import actions as order_actions
from tradingapp.services.orders import placement as order_service

bp = Blueprint("orders", __name__, url_prefix="/api/v1/orders")


@bp.post("")
@doc(
    "Place an order (202 new; 200 the earlier order of the same client_order_id or Idempotency-Key)",
    ok=202,
    response=s.Order,
    body=s.NewOrder,
    errors=("400", "401", "403", "409", "422", "423", "429"),
)
@login_required(write=True)
def place_order():
    body = json_body()
    order, created = order_service.place_order(current_principal(), body, request.headers.get("Idempotency-Key"))
    if created:
        ORDERS_ACCEPTED.labels(order.order_type).inc()
    return jsonify(s.Order.dump(order.to_dict())), 202 if created else 200


@bp.get("")
@doc("The caller's orders, newest first", response=s.OrderPage, params=("status", "instrument_id", "limit", "cursor"))
@login_required()
def list_orders():
    limit = parse_limit(request.args.get("limit"))
    query = sa.select(Order).where(Order.user_id == current_principal().id)
    if status := request.args.get("status"):
        statuses = [s.strip().upper() for s in status.split(",")]
        unknown = [s for s in statuses if s not in Status.__members__]
        if unknown:
            raise validation_error("unknown status", status=unknown, allowed=list(Status.__members__))
        query = query.where(Order.status.in_(statuses))
    if (instrument_id := _instrument_filter()) is not None:
        query = query.where(Order.instrument_id == instrument_id)
    if cursor := request.args.get("cursor"):
        created_at, order_id = _parse_order_cursor(cursor)
        query = query.where(sa.tuple_(Order.created_at, Order.id) < sa.tuple_(created_at, order_id))
    rows = db.session.scalars(query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1)).all()
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor([items[-1].created_at.isoformat(), str(items[-1].id)])
    return jsonify(s.OrderPage.dump({"items": [o.to_dict() for o in items], "next_cursor": next_cursor}))


def _instrument_filter() -> int | None:
    value = request.args.get("instrument_id")
    if not value:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", value):
        raise validation_error("instrument_id must be an integer", instrument_id=value)
    return int(value)


def _parse_order_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    created_at, order_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(created_at), uuid.UUID(order_id)
    except (TypeError, ValueError):
        raise validation_error("invalid cursor") from None


def owned_order(order_id: str) -> Order:
    """The caller's order, or 404 (another user's order is not found, not forbidden)."""
    try:
        oid = uuid.UUID(order_id)
    except ValueError:
        raise not_found("order") from None
    order = db.session.get(Order, oid)
    if order is None or order.user_id != current_principal().id:
        raise not_found("order")
    return order


@bp.get("/<order_id>")
@doc("One order", response=s.Order, errors=("401", "404"))
@login_required()
def get_order(order_id: str):
    return jsonify(s.Order.dump(owned_order(order_id).to_dict()))


@bp.patch("/<order_id>")
@doc(
    "Modify a working order (quantity is the new total); MODIFY_PENDING until the broker answers",
    ok=202,
    response=s.Order,
    body=s.ModifyOrder,
    errors=("400", "401", "403", "404", "409", "422", "423", "429"),
)
@login_required(write=True)
def modify_order(order_id: str):
    body = json_body()
    order = owned_order(order_id)
    order = order_actions.modify_order(current_principal(), order.id, body)
    return jsonify(s.Order.dump(order.to_dict())), 202


@bp.delete("/<order_id>")
@doc(
    "Request cancellation (again while CANCEL_PENDING re-sends it)",
    ok=202,
    response=s.Order,
    errors=("401", "403", "404", "409"),
)
@login_required(write=True)
def cancel_order(order_id: str):
    order = owned_order(order_id)
    order = order_actions.cancel_order(current_principal(), order.id)
    return jsonify(s.Order.dump(order.to_dict())), 202


@bp.delete("")
@doc(
    "Cancel every working order of the caller (optionally of one instrument)",
    ok=202,
    response=s.CancelledOrders,
    params=("instrument_id",),
    errors=("400", "401", "403"),
)
@login_required(write=True)
def cancel_all_orders():
    ids = order_actions.cancel_all(current_principal(), _instrument_filter())
    return jsonify(s.CancelledOrders.dump({"cancelled": [str(i) for i in ids]})), 202


@bp.get("/<order_id>/events")
@doc("The order's audit trail", response=s.OrderEventList, errors=("401", "404"))
@login_required()
def order_events(order_id: str):
    order = owned_order(order_id)
    rows = db.session.scalars(
        sa.select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    ).all()
    return jsonify(s.OrderEventList.dump({"items": [e.to_dict() for e in rows]}))
