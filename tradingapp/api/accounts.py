"""Broker accounts the caller linked (their own XTS app key and secret). Secrets go in, never out:
responses carry a masked app key and has_secret."""

from __future__ import annotations

from flask import Blueprint, jsonify

from tradingapp.http import json_body
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import broker_accounts

bp = Blueprint("broker_accounts", __name__, url_prefix="/api/v1/broker-accounts")


@bp.get("")
@login_required()
def list_accounts():
    return jsonify(items=broker_accounts.list_accounts(current_principal().id))


@bp.post("")
@login_required(write=True)
def link_account():
    return jsonify(broker_accounts.link_account(current_principal().id, json_body())), 201


@bp.put("/<account_id>")
@login_required(write=True)
def replace_secrets(account_id: str):
    return jsonify(broker_accounts.replace_secrets(current_principal().id, account_id, json_body()))


@bp.delete("/<account_id>")
@login_required(write=True)
def unlink_account(account_id: str):
    return jsonify(broker_accounts.unlink_account(current_principal().id, account_id))
