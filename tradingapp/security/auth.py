"""Token plumbing: issuing, revoking and checking JWTs, and the route guard. A login's tokens share
a session id that logout revokes in Redis; a request's caller is a Principal whose active flag and
role come from a short-lived Redis entry (see the comments by USER_STATE_TTL and _principal).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass

import redis
from flask import Flask, current_app, has_request_context, jsonify, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    verify_jwt_in_request,
)
from jwt import PyJWTError

from tradingapp.errors import APIError, error_body
from tradingapp.extensions import db, get_redis, jwt
from tradingapp.models import User

WRITE_ROLES = {"admin", "trader"}
# Whether a caller is still active, and their role, come from a short-lived Redis entry read in the
# same round trip as the revocation keys (is_revoked); only on a miss is the users row read (and the
# entry written, _principal). Admin changes overwrite the entry at once (remember_user_state); a
# change made behind the API's back (straight in the database) shows within USER_STATE_TTL.
USER_STATE_TTL = 60  # seconds a cached "active, role" of a user is trusted
# Per-request values live in the request's environ, not flask.g: an app context (and its g) can
# outlive one request, as in a test or a CLI command that serves several.
STATE_KEY, PRINCIPAL_KEY, USER_KEY = "tradingapp.user_state", "tradingapp.principal", "tradingapp.user"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is calling: enough for the order path, which never needs the whole users row."""

    id: uuid.UUID
    role: str


def _user_state_key(user_id: str) -> str:
    ns = current_app.config.get("NAMESPACE", "")
    return f"{ns}:auth:user-state:{user_id}" if ns else f"auth:user-state:{user_id}"


def _state_of(user: User) -> str:
    return f"{int(user.active)}:{user.role}"


def remember_user_state(user: User) -> None:
    """After an admin changes a user (committed): their new active flag and role, written over
    whatever a request read before the change."""
    get_redis().set(_user_state_key(str(user.id)), _state_of(user), ex=USER_STATE_TTL)


def _revoked_key(sid: str) -> str:
    return f"auth:revoked:{sid}"


# Access and refresh tokens of one login share a session id (`sid`): logout revokes the session in
# Redis, so both stop working at once, for REST and WebSocket alike. Deactivating a user revokes
# all of their sessions the same way, through a per-user cut-off time (revoke_user_sessions).
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
    sub = str(claims.get("sub"))
    session, user_cutoff, state = get_redis().mget(_revoked_key(sid), _user_revoked_key(sub), _user_state_key(sub))
    if has_request_context():
        request.environ[STATE_KEY] = state  # read in the same round trip; used by _principal
    return session is not None or (user_cutoff is not None and claims.get("iat", 0) <= int(user_cutoff))


def revoked_sessions(claims_list: list[dict], chunk: int = 500) -> list[bool]:
    """is_revoked for many tokens in a few round trips: the websocket process re-checks all of its
    sockets at once instead of one read per socket."""
    pipe = get_redis().pipeline(transaction=False)
    for start in range(0, len(claims_list), chunk):
        keys = []
        for claims in claims_list[start : start + chunk]:
            keys += [_revoked_key(claims.get("sid") or ""), _user_revoked_key(str(claims.get("sub")))]
        pipe.mget(keys)
    values = [value for reply in pipe.execute() for value in reply] if claims_list else []
    return [
        not claims.get("sid") or session is not None or (cutoff is not None and claims.get("iat", 0) <= int(cutoff))
        for claims, session, cutoff in zip(claims_list, values[::2], values[1::2], strict=True)
    ]


def _principal(claims: dict) -> Principal | None:
    """The caller if the user still exists and is active, else None."""
    user_id = uuid.UUID(claims["sub"])
    state = request.environ.pop(STATE_KEY, None)
    if state is None:
        user = db.session.get(User, user_id)
        if user is None:
            return None
        state = _state_of(user)
        try:
            # NX: a reader that raced an admin's change must not overwrite the value the admin wrote.
            get_redis().set(_user_state_key(str(user_id)), state, ex=USER_STATE_TTL, nx=True)
        except redis.RedisError:
            log.warning("event=user_state_cache_failed user_id=%s", user_id)
    elif isinstance(state, bytes):
        state = state.decode()
    active, _, role = state.partition(":")
    return Principal(user_id, role) if active == "1" else None


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
            user = request.environ[PRINCIPAL_KEY] = _principal(get_jwt())
            if user is None:
                raise APIError(401, "unauthorized", "the token's user no longer exists or is inactive")
            if write and user.role not in WRITE_ROLES:
                raise APIError(403, "forbidden", "your role is read-only")
            if roles and user.role not in roles:
                raise APIError(403, "forbidden", "not allowed for your role")
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def current_principal() -> Principal:
    """The caller of a `login_required` route (no database read)."""
    return request.environ[PRINCIPAL_KEY]


def current_user() -> User:
    """The caller's users row (one read, kept for the request)."""
    user = request.environ.get(USER_KEY)
    if user is None:
        user = request.environ[USER_KEY] = db.session.get(User, current_principal().id)
    return user


def current_claims() -> dict:
    return get_jwt()


def init_app(app: Flask) -> None:
    @jwt.token_in_blocklist_loader
    def _check_revoked(_header, payload):
        return is_revoked(payload)

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
