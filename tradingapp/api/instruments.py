"""Instrument reference data."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.api.pagination import decode_cursor, encode_cursor, parse_limit
from tradingapp.errors import not_found, validation_error
from tradingapp.extensions import db
from tradingapp.models import Instrument
from tradingapp.security.auth import login_required

bp = Blueprint("instruments", __name__, url_prefix="/api/v1/instruments")


@bp.get("")
@doc(
    "Search instruments",
    response=s.InstrumentPage,
    params=("q", "exchange_segment", "include_inactive", "limit", "cursor"),
)
@login_required()
def list_instruments():
    limit = parse_limit(request.args.get("limit"))
    query = sa.select(Instrument).order_by(Instrument.id).limit(limit + 1)
    if q := request.args.get("q", "").strip():
        pattern = f"%{q.lower()}%"
        query = query.where(
            sa.or_(sa.func.lower(Instrument.symbol).like(pattern), sa.func.lower(Instrument.name).like(pattern))
        )
    if request.args.get("include_inactive", "").lower() not in ("1", "true"):
        query = query.where(Instrument.active)  # what can be traded; an old order's instrument by its id
    if segment := request.args.get("exchange_segment"):
        query = query.where(Instrument.exchange_segment == segment.upper())
    if cursor := request.args.get("cursor"):
        (after_id,) = decode_cursor(cursor, 1)
        if not isinstance(after_id, int):
            raise validation_error("invalid cursor")
        query = query.where(Instrument.id > after_id)
    rows = db.session.scalars(query).all()
    items = rows[:limit]
    next_cursor = encode_cursor([items[-1].id]) if len(rows) > limit else None
    return jsonify(s.InstrumentPage.dump({"items": [i.to_dict() for i in items], "next_cursor": next_cursor}))


@bp.get("/<int:instrument_id>")
@doc("One instrument", response=s.Instrument, errors=("401", "404"))
@login_required()
def get_instrument(instrument_id: int):
    instrument = db.session.get(Instrument, instrument_id)
    if instrument is None:
        raise not_found("instrument")
    return jsonify(s.Instrument.dump(instrument.to_dict()))
