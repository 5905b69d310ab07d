"""The caller's watchlists (several named lists of instruments, kept on the server). Viewers manage
their own too: a watchlist is not trading. The rules: tradingapp/services/accounts/watchlists.py."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.http import json_body
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import watchlists

bp = Blueprint("watchlists", __name__, url_prefix="/api/v1/watchlists")


@bp.get("")
@doc(
    "The caller's watchlists, by position then creation (none: an empty list; nothing is created)",
    response=s.WatchlistList,
)
@login_required()
def list_watchlists():
    return jsonify(s.WatchlistList.dump({"items": watchlists.list_watchlists(current_principal().id)}))


@bp.post("")
@doc(
    f"Create a watchlist: the name is trimmed, 1-{watchlists.NAME_MAX} characters, unique per user ignoring case"
    f" (409); at most {watchlists.MAX_LISTS} per user (422)",
    ok=201,
    response=s.Watchlist,
    body=s.NewWatchlist,
    errors=("409",),
)
@login_required()
def create_watchlist():
    return jsonify(s.Watchlist.dump(watchlists.create_watchlist(current_principal().id, json_body()))), 201


@bp.patch("/<uuid:watchlist_id>")
@doc(
    "Rename and/or replace the instruments (instrument_ids in the new order: how a list is reordered); an unknown"
    f" or repeated id, or more than {watchlists.MAX_INSTRUMENTS}, is a 400 and nothing changes",
    response=s.Watchlist,
    body=s.WatchlistChange,
    errors=("404", "409"),
)
@login_required()
def update_watchlist(watchlist_id: uuid.UUID):
    watchlist = watchlists.update_watchlist(current_principal().id, str(watchlist_id), json_body())
    return jsonify(s.Watchlist.dump(watchlist))


@bp.delete("/<uuid:watchlist_id>")
@doc("Delete a watchlist", ok=204, errors=("404",))
@login_required()
def delete_watchlist(watchlist_id: uuid.UUID):
    watchlists.delete_watchlist(current_principal().id, str(watchlist_id))
    return "", 204


@bp.put("/<uuid:watchlist_id>/instruments/<int:instrument_id>")
@doc(
    "Append an instrument (already there: 200, unchanged); unknown instrument 404; list full"
    f" ({watchlists.MAX_INSTRUMENTS}) 422",
    response=s.Watchlist,
    errors=("404", "422"),
)
@login_required()
def add_instrument(watchlist_id: uuid.UUID, instrument_id: int):
    return jsonify(
        s.Watchlist.dump(watchlists.add_instrument(current_principal().id, str(watchlist_id), instrument_id))
    )


@bp.delete("/<uuid:watchlist_id>/instruments/<int:instrument_id>")
@doc("Remove an instrument (not in the list: 404)", response=s.Watchlist, errors=("404",))
@login_required()
def remove_instrument(watchlist_id: uuid.UUID, instrument_id: int):
    watchlist = watchlists.remove_instrument(current_principal().id, str(watchlist_id), instrument_id)
    return jsonify(s.Watchlist.dump(watchlist))
