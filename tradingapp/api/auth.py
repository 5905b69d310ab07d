"""Auth: register, log in (throttled), refresh, log out, and who am I. The rules:
tradingapp/services/accounts/users.py."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from tradingapp.errors import APIError, validation_error
from tradingapp.http import json_body
from tradingapp.security.auth import (
    current_claims,
    current_principal,
    current_user,
    issue_access_token,
    issue_tokens,
    login_required,
    revoke_session,
)
from tradingapp.services.accounts import users

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

# One message for unknown user, wrong password and inactive account: no account enumeration.
BAD_CREDENTIALS = "invalid email or password"


@bp.post("/register")
def register():
    return jsonify(users.register(json_body()).to_dict()), 201


@bp.post("/login")
def login():
    body = json_body()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        raise validation_error("email and password are required strings", fields=["email", "password"])
    user = users.authenticate(email, password, request.remote_addr or "unknown")
    if user is None:
        raise APIError(401, "unauthorized", BAD_CREDENTIALS)
    return jsonify(issue_tokens(user))


@bp.post("/refresh")
@login_required(refresh=True)
def refresh():
    return jsonify(issue_access_token(current_user(), current_claims()["sid"]))


@bp.post("/logout")
@login_required()
def logout():
    revoke_session(current_claims())
    log.info("event=logout user_id=%s", current_principal().id)
    return "", 204


@bp.get("/me")
@login_required()
def me():
    return jsonify(current_user().to_dict())
