"""Broker accounts the caller linked (their own XTS app key and secret). Secrets go in, never out:
responses carry a masked app key and has_secret."""

from __future__ import annotations

import uuid

from flask import Blueprint, jsonify

from tradingapp.api import schemas as s
from tradingapp.api.openapi import doc
from tradingapp.http import json_body
from tradingapp.security.auth import current_principal, login_required
from tradingapp.services.accounts import broker_accounts

bp = Blueprint("broker_accounts", __name__, url_prefix="/api/v1/broker-accounts")


@bp.get("")
@doc(
    "The caller's active linked broker accounts (app keys masked, secrets never returned)",
    response=s.BrokerAccountList,
)
@login_required()
def list_accounts():
    return jsonify(s.BrokerAccountList.dump({"items": broker_accounts.list_accounts(current_principal().id)}))


@bp.post("")
@doc(
    "Link a broker account (its secrets are stored encrypted); one active account per broker (409); 503 when the"
    " server has no encryption key",
    ok=201,
    response=s.BrokerAccount,
    body=s.NewBrokerAccount,
    errors=("403", "409", "503"),
)
@login_required(write=True)
def link_account():
    return jsonify(s.BrokerAccount.dump(broker_accounts.link_account(current_principal().id, json_body()))), 201


@bp.put("/<uuid:account_id>")
@doc(
    "Replace the account's secrets: {secret_key, app_key?} and/or {md_secret_key, md_app_key?}",
    response=s.BrokerAccount,
    body=s.BrokerAccountSecrets,
    errors=("403", "404", "503"),
)
@login_required(write=True)
def replace_secrets(account_id: uuid.UUID):
    account = broker_accounts.replace_secrets(current_principal().id, str(account_id), json_body())
    return jsonify(s.BrokerAccount.dump(account))


@bp.delete("/<uuid:account_id>")
@doc(
    "Unlink: the account is deactivated and its secrets erased; orders then use the default account",
    response=s.BrokerAccount,
    errors=("403", "404"),
)
@login_required(write=True)
def unlink_account(account_id: uuid.UUID):
    return jsonify(s.BrokerAccount.dump(broker_accounts.unlink_account(current_principal().id, str(account_id))))
