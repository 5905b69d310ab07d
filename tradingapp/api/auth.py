"""Auth: register, log in (throttled), refresh, log out, and who am I. The rules:
tradingapp/services/accounts/users.py; the tokens: tradingapp/security/auth.py; the policy:
docs/security.md."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from tradingapp.api import schemas as s
from tradingapp.api.openapi import ANY, doc
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
# One answer for a new email and a taken one (no account enumeration): the client logs in next.
REGISTERED = {"status": "accepted", "message": "registration accepted: log in with this email and password"}


@bp.post("/register")
@doc(
    "Create a trader account (the same 202 whether or not the email was taken; then log in)",
    ok=202,
    response=s.RegisterAccepted,
    body=s.Register,
    auth=False,
    errors=("400", "403", "429"),
)
def register():
    users.register(json_body(), request.remote_addr)
    return jsonify(s.RegisterAccepted.dump(REGISTERED)), 202


@bp.post("/login")
@doc("Log in", response=s.Tokens, body=s.Login, auth=False, errors=("400", "401", "429"))
def login():
    body = json_body()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        raise validation_error("email and password are required strings", fields=["email", "password"])
    user = users.authenticate(email, password, request.remote_addr)
    if user is None:
        raise APIError(401, "unauthorized", BAD_CREDENTIALS)
    return jsonify(s.Tokens.dump(issue_tokens(user)))


@bp.post("/refresh")
@doc("New access token (refresh token as Bearer)", response=ANY)
@login_required(refresh=True)
def refresh():
    return jsonify(issue_access_token(current_user(), current_claims()["sid"]))


@bp.post("/logout")
@doc("Revoke this session's tokens (the access or the refresh token as Bearer)", ok=204)
@login_required(any_token=True)
def logout():
    revoke_session(current_claims())
    log.info("event=logout user_id=%s", current_principal().id)
    return "", 204


@bp.get("/me")
@doc("The caller", response=s.User)
@login_required()
def me():
    return jsonify(s.User.dump(current_user().to_dict()))
