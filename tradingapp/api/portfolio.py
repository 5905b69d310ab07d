"""Trades and positions of the caller."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from tradingapp.api.pagination import decode_cursor, encode_cursor, parse_limit
from tradingapp.auth import current_user, login_required
from tradingapp.errors import validation_error
from tradingapp.extensions import db, get_redis
from tradingapp.models import Position, Trade
from tradingapp.realtime import last_price, read_quotes

bp = Blueprint("portfolio", __name__, url_prefix="/api/v1")


@bp.get("/trades")
@login_required()
def list_trades():
    limit = parse_limit(request.args.get("limit"))
    query = sa.select(Trade).where(Trade.user_id == current_user().id)
    if order_id := request.args.get("order_id"):
        try:
            query = query.where(Trade.order_id == uuid.UUID(order_id))
        except ValueError:
            raise validation_error("order_id must be a UUID", order_id=order_id) from None
    if cursor := request.args.get("cursor"):
        traded_at, trade_id = decode_cursor(cursor, 2)
        try:
            key = (datetime.fromisoformat(traded_at), uuid.UUID(trade_id))
        except (TypeError, ValueError):
            raise validation_error("invalid cursor") from None
        query = query.where(sa.tuple_(Trade.traded_at, Trade.id) < sa.tuple_(*key))
    rows = db.session.scalars(query.order_by(Trade.traded_at.desc(), Trade.id.desc()).limit(limit + 1)).all()
    items = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = encode_cursor([items[-1].traded_at.isoformat(), str(items[-1].id)])
    return jsonify(items=[t.to_dict() for t in items], next_cursor=next_cursor)


@bp.get("/positions")
@login_required()
def list_positions():
    positions = db.session.scalars(
        sa.select(Position)
        .where(Position.user_id == current_user().id, sa.or_(Position.quantity != 0, Position.realized_pnl != 0))
        .order_by(Position.instrument_id, Position.product)
    ).all()
    quotes = read_quotes(get_redis(), sorted({p.instrument_id for p in positions})) if positions else {}
    return jsonify(items=[p.to_dict(last_price(quotes.get(p.instrument_id))) for p in positions])
