"""The caller's watchlists (several named lists of instruments, kept on the server). Viewers manage
their own too: a watchlist is not trading. The rules: tradingapp/services/accounts/watchlists.py."""

from __future__ import annotations

from flask import Blueprint, jsonify

from tradingapp.http import json_body
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import watchlists

bp = Blueprint("watchlists", __name__, url_prefix="/api/v1/watchlists")


@bp.get("")
@login_required()
def list_watchlists():
    return jsonify(items=watchlists.list_watchlists(current_principal().id))


@bp.post("")
@login_required()
def create_watchlist():
    return jsonify(watchlists.create_watchlist(current_principal().id, json_body())), 201


@bp.patch("/<watchlist_id>")
@login_required()
def update_watchlist(watchlist_id: str):
    return jsonify(watchlists.update_watchlist(current_principal().id, watchlist_id, json_body()))


@bp.delete("/<watchlist_id>")
@login_required()
def delete_watchlist(watchlist_id: str):
    watchlists.delete_watchlist(current_principal().id, watchlist_id)
    return "", 204


@bp.put("/<watchlist_id>/instruments/<int:instrument_id>")
@login_required()
def add_instrument(watchlist_id: str, instrument_id: int):
    return jsonify(watchlists.add_instrument(current_principal().id, watchlist_id, instrument_id))


@bp.delete("/<watchlist_id>/instruments/<int:instrument_id>")
@login_required()
def remove_instrument(watchlist_id: str, instrument_id: int):
    return jsonify(watchlists.remove_instrument(current_principal().id, watchlist_id, instrument_id))
