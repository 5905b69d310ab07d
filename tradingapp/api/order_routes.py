"""Orders: place, list, read, modify, cancel (one or all), and the audit trail of one order."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify, request

from tradingapp import metrics
from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.api.pagination import decode_time_cursor, encode_time_cursor, parse_limit
from tradingapp.domain.validation import CLIENT_ORDER_ID
from tradingapp.http import json_body
from tradingapp.replicas import read_only
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.orders import actions as order_actions
from tradingapp.services.orders import placement as order_service
from tradingapp.services.orders import reads

bp = Blueprint("orders", __name__, url_prefix="/api/v1/orders")


@bp.post("")
@doc(
    "Place an order (202 new; 200 the earlier order of the same client_order_id or Idempotency-Key; 409 the"
    " same key with another body)",
    ok=202,
    response=s.Order,
    body=s.NewOrder,
    errors=("403", "409", "423", "429"),
    also={"200": "the earlier order of the same client_order_id or Idempotency-Key (nothing new is placed)"},
    headers={"Idempotency-Key": {"type": "string", "pattern": CLIENT_ORDER_ID.pattern}},
)
@login_required(write=True)
def place_order():
    body = json_body()
    order, created = order_service.place_order(current_principal(), body, request.headers.get("Idempotency-Key"))
    if created:
        metrics.ORDERS_ACCEPTED.labels(order.order_type).inc()
    return jsonify(s.Order.dump(order.to_dict())), 202 if created else 200


@bp.get("")
@doc(
    "The caller's orders, newest first (status: comma-separated statuses)",
    response=s.OrderPage,
    params=("status", "instrument_id", "limit", "cursor"),
)
@login_required()
@read_only
def list_orders():
    limit = parse_limit(request.args.get("limit"))
    status = request.args.get("status")
    statuses = status.split(",") if status else None
    after = decode_time_cursor(cursor) if (cursor := request.args.get("cursor")) else None
    items, more = reads.list_orders(current_principal().id, limit, statuses, _instrument_filter(), after)
    next_cursor = encode_time_cursor(items[-1].created_at, items[-1].id) if more else None
    return jsonify(s.OrderPage.dump({"items": [o.to_dict() for o in items], "next_cursor": next_cursor}))


def _instrument_filter() -> int | None:
    value = request.args.get("instrument_id")
    return int(value) if value else None  # the gate checked it against schemas.Query


def owned_order(order_id: uuid.UUID):
    return reads.own_order(current_principal().id, str(order_id))


@bp.get("/<uuid:order_id>")
@doc("One order", response=s.Order, errors=("404",))
@login_required()
def get_order(order_id: uuid.UUID):
    return jsonify(s.Order.dump(owned_order(order_id).to_dict()))


@bp.patch("/<uuid:order_id>")
@doc(
    "Modify a working order (quantity is the new total); MODIFY_PENDING until the broker answers",
    ok=202,
    response=s.Order,
    body=s.ModifyOrder,
    errors=("403", "404", "409", "423", "429"),
)
@login_required(write=True)
def modify_order(order_id: uuid.UUID):
    body = json_body()
    order = owned_order(order_id)
    order = order_actions.modify_order(current_principal(), order.id, body)
    return jsonify(s.Order.dump(order.to_dict())), 202


@bp.delete("/<uuid:order_id>")
@doc(
    "Request cancellation (again while CANCEL_PENDING re-sends it)",
    ok=202,
    response=s.Order,
    errors=("403", "404", "409"),
)
@login_required(write=True)
def cancel_order(order_id: uuid.UUID):
    order = owned_order(order_id)
    order = order_actions.cancel_order(current_principal(), order.id)
    return jsonify(s.Order.dump(order.to_dict())), 202


@bp.delete("")
@doc(
    "Cancel every working order of the caller (optionally of one instrument)",
    ok=202,
    response=s.CancelledOrders,
    params=("instrument_id",),
    errors=("403",),
)
@login_required(write=True)
def cancel_all_orders():
    ids = order_actions.cancel_all(current_principal(), _instrument_filter())
    return jsonify(s.CancelledOrders.dump({"cancelled": [str(i) for i in ids]})), 202


@bp.get("/<uuid:order_id>/events")
@doc("The order's audit trail", response=s.OrderEventList, errors=("404",))
@login_required()
@read_only
def order_events(order_id: uuid.UUID):
    events = reads.order_events(owned_order(order_id))
    return jsonify(s.OrderEventList.dump({"items": [e.to_dict() for e in events]}))
