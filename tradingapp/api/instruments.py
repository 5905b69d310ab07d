"""Instrument reference data."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.api.pagination import decode_id_cursor, encode_cursor, parse_limit
from tradingapp.security.auth import login_required
from tradingapp.services.market import instruments as reference

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
    after_id = decode_id_cursor(cursor) if (cursor := request.args.get("cursor")) else None
    items, more = reference.search_instruments(
        limit,
        text=request.args.get("q", "").strip(),
        segment=request.args.get("exchange_segment"),
        # By default what can be traded; an old order's instrument is read by its id.
        include_inactive=request.args.get("include_inactive", "").lower() in ("1", "true"),
        after_id=after_id,
    )
    next_cursor = encode_cursor([items[-1].id]) if more else None
    return jsonify(s.InstrumentPage.dump({"items": [i.to_dict() for i in items], "next_cursor": next_cursor}))


@bp.get("/<int:instrument_id>")
@doc("One instrument", response=s.Instrument, errors=("401", "404"))
@login_required()
def get_instrument(instrument_id: int):
    return jsonify(s.Instrument.dump(reference.get_instrument(instrument_id).to_dict()))
