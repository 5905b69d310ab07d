"""POST /api/v1/orders/estimate: the margin an order would block and the funds available, before it
is sent. The same body and validation as POST /api/v1/orders; nothing is written or queued."""

from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, jsonify

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.http import json_body
from tradingapp.models.types import dec
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.orders.estimate import estimate_order

bp = Blueprint("order_estimate", __name__, url_prefix="/api/v1/orders")
AMOUNT = Decimal("0.0001")  # the scale of every stored amount, as GET /funds shows them


@bp.post("/estimate")
@doc(
    "The margin the order would block and the funds available, by the risk engine's margin model; the"
    " body and its validation (400) are POST /orders' (client_order_id ignored). Nothing is written or"
    " queued. 422 price_unavailable when there is no last price to value a MARKET order",
    response=s.OrderEstimate,
    body=s.NewOrder,
    errors=("503",),
)
@login_required()
def estimate():
    result = estimate_order(current_principal().id, json_body())
    return jsonify(
        s.OrderEstimate.dump(
            {
                "required_margin": dec(result.required_margin.quantize(AMOUNT)),
                "available": dec(result.available.quantize(AMOUNT)),
                "sufficient": result.sufficient,
                "price": dec(result.price),
            }
        )
    )
