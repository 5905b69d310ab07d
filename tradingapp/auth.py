"""Token plumbing: issuing, revoking and checking JWTs, and the route guard.

Access and refresh tokens of one login share a session id (`sid`); logout revokes the
session in Redis, so both tokens stop working at once, for REST and WebSocket alike.
Deactivating a user revokes all of their sessions the same way (a per-user cut-off time).
"""

from __future__ import annotations

import functools
import time
import uuid

from flask import Flask, current_app, jsonify
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_current_user,
    get_jwt,
    verify_jwt_in_request,
)
from jwt import PyJWTError

from tradingapp.errors import APIError, error_body
from tradingapp.extensions import db, get_redis, jwt
from tradingapp.models import User

WRITE_ROLES = {"admin", "trader"}


def _revoked_key(sid: str) -> str:
    return f"auth:revoked:{sid}"


def issue_tokens(user: User) -> dict:
    sid = uuid.uuid4().hex
    claims = {"role": user.role, "sid": sid}
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id), additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": current_app.config["JWT_EXPIRATION"],
    }


def issue_access_token(user: User, sid: str) -> dict:
    token = create_access_token(identity=str(user.id), additional_claims={"role": user.role, "sid": sid})
    return {"access_token": token, "expires_in": current_app.config["JWT_EXPIRATION"]}


def revoke_session(claims: dict) -> None:
    """Revoke every token of the session until the longest of them would expire anyway."""
    ttl = max(int(claims["exp"] - time.time()), 1)
    ttl = max(ttl, current_app.config["JWT_REFRESH_EXPIRATION"])
    get_redis().set(_revoked_key(claims["sid"]), 1, ex=ttl)


def _user_revoked_key(user_id: str) -> str:
    return f"auth:user-revoked:{user_id}"


def revoke_user_sessions(user_id: str) -> None:
    """Revoke every token the user holds now (deactivation): tokens issued up to this second die."""
    ttl = max(current_app.config["JWT_REFRESH_EXPIRATION"], current_app.config["JWT_EXPIRATION"])
    get_redis().set(_user_revoked_key(user_id), int(time.time()), ex=ttl)


def is_revoked(claims: dict) -> bool:
    sid = claims.get("sid")
    if not sid:
        return True
    session, user_cutoff = get_redis().mget(_revoked_key(sid), _user_revoked_key(str(claims.get("sub"))))
    return session is not None or (user_cutoff is not None and claims.get("iat", 0) <= int(user_cutoff))


def user_from_token(token: str) -> User | None:
    """The active user behind an access token, or None (bad, expired or revoked): for WebSocket auth."""
    try:
        claims = decode_token(token)
    except (PyJWTError, Exception):  # flask-jwt-extended raises its own and PyJWT's errors
        return None
    if claims.get("type") != "access" or is_revoked(claims):
        return None
    user = db.session.get(User, uuid.UUID(claims["sub"]))
    return user if user is not None and user.active else None


def login_required(write: bool = False, refresh: bool = False, roles: set[str] | None = None):
    """Guard a route: a valid, unrevoked token of an active user; `write` refuses viewers."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh)
            user = current_user()
            if write and user.role not in WRITE_ROLES:
                raise APIError(403, "forbidden", "your role is read-only")
            if roles and user.role not in roles:
                raise APIError(403, "forbidden", "not allowed for your role")
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def current_user() -> User:
    return get_current_user()


def current_claims() -> dict:
    return get_jwt()


def init_app(app: Flask) -> None:
    @jwt.token_in_blocklist_loader
    def _check_revoked(_header, payload):
        return is_revoked(payload)

    @jwt.user_lookup_loader
    def _load_user(_header, payload):
        user = db.session.get(User, uuid.UUID(payload["sub"]))
        if user is None or not user.active:
            return None  # -> user_lookup_error_loader: 401
        return user

    @jwt.user_lookup_error_loader
    def _user_gone(_header, _payload):
        return _auth_error("the token's user no longer exists")

    @jwt.unauthorized_loader
    def _missing(reason):
        return _auth_error(f"missing or malformed token: {reason}")

    @jwt.invalid_token_loader
    def _invalid(reason):
        return _auth_error(f"invalid token: {reason}")

    @jwt.expired_token_loader
    def _expired(_header, _payload):
        return _auth_error("token has expired")

    @jwt.revoked_token_loader
    def _revoked(_header, _payload):
        return _auth_error("token has been revoked")

    @jwt.needs_fresh_token_loader
    def _not_fresh(_header, _payload):
        return _auth_error("fresh token required")

    @jwt.token_verification_failed_loader
    def _claims_failed(_header, _payload):
        return _auth_error("token failed verification")


def _auth_error(message: str):
    return jsonify(error_body("unauthorized", message)), 401
