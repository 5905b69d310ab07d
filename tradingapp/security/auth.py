"""Token plumbing: issuing, revoking and checking JWTs, and the route guard.

A login's tokens share a session id (`sid`) and carry the user's token generation (`gen`). Logout
revokes the session; deactivating a user raises their generation, which ends every token they hold
whatever second it was issued in (no race with a login in the same second). Both live in
PostgreSQL (revoked_sessions, users.token_generation): losing Redis brings no revoked token back.
Redis caches them (a session's state and a user's "active, role, generation", each for a minute),
so a request costs one Redis read and no database read; a miss, or Redis down, reads PostgreSQL.
"""

from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
import sqlalchemy as sa
from flask import Flask, current_app, has_request_context, jsonify, request
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    decode_token,
    get_jwt,
    verify_jwt_in_request,
)
from jwt import PyJWTError

from tradingapp import logs
from tradingapp.errors import APIError, error_body
from tradingapp.extensions import db, get_redis, jwt, upsert_insert
from tradingapp.models import RevokedSession, User

WRITE_ROLES = {"admin", "trader"}
# A user's "active, role, generation" and a session's revoked flag are cached in Redis for this long.
# Admin changes and logouts overwrite the entry at once (the database first); a change made behind
# the API's back (straight in the database) shows within the TTL.
USER_STATE_TTL = 60
SESSION_STATE_TTL = 60
MAX_SID = 64
# Per-request values live in the request's environ, not flask.g: an app context (and its g) can
# outlive one request, as in a test or a CLI command that serves several.
STATE_KEY, PRINCIPAL_KEY, USER_KEY = "tradingapp.user_state", "tradingapp.principal", "tradingapp.user"
LIVE, REVOKED = b"0", b"1"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    """Who is calling: enough for the order path, which never needs the whole users row."""

    id: uuid.UUID
    role: str


@dataclass(frozen=True)
class UserState:
    active: bool
    role: str
    generation: int

    @classmethod
    def of(cls, user) -> UserState:
        return cls(bool(user.active), user.role, int(user.token_generation or 0))

    def encode(self) -> str:
        return f"{int(self.active)}:{self.role}:{self.generation}"

    @classmethod
    def decode(cls, raw: bytes | str) -> UserState | None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        active, role, generation = (text.split(":") + ["", ""])[:3]
        if not generation.isdigit():
            return None  # written by an older release (no generation): read the row instead
        return cls(active == "1", role, int(generation))


def _key(name: str) -> str:
    ns = current_app.config.get("NAMESPACE", "")
    return f"{ns}:{name}" if ns else name


def _user_state_key(user_id: str) -> str:
    return _key(f"auth:user-state:{user_id}")


def _session_key(sid: str) -> str:
    return _key(f"auth:session:{sid}")


def remember_user_state(user: User) -> None:
    """After an admin changes a user (committed): their new state, written over whatever a request
    read before the change. The change stands if Redis fails here (the database decides); a state
    cached before it then lives out its USER_STATE_TTL."""
    try:
        get_redis().set(_user_state_key(str(user.id)), UserState.of(user).encode(), ex=USER_STATE_TTL)
    except redis.RedisError:
        log.warning("event=user_state_cache_failed user_id=%s", user.id)


def end_all_sessions(user: User) -> None:
    """Every token the user holds stops working once the caller commits (deactivation)."""
    user.token_generation = int(user.token_generation or 0) + 1


def _claims_for(user: User, sid: str) -> dict:
    return {"role": user.role, "sid": sid, "gen": int(user.token_generation or 0)}


def issue_tokens(user: User) -> dict:
    sid = uuid.uuid4().hex
    claims = _claims_for(user, sid)
    return {
        "access_token": create_access_token(identity=str(user.id), additional_claims=claims),
        "refresh_token": create_refresh_token(identity=str(user.id), additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": current_app.config["JWT_EXPIRATION"],
    }


def issue_access_token(user: User, sid: str) -> dict:
    token = create_access_token(identity=str(user.id), additional_claims=_claims_for(user, sid))
    return {"access_token": token, "expires_in": current_app.config["JWT_EXPIRATION"]}


def revoke_session(claims: dict) -> None:
    """Logout: every token of the session (access, refresh, and access tokens it refreshed) stops
    working, until the longest of them would expire anyway. Committed to PostgreSQL first."""
    config = current_app.config
    now = datetime.now(UTC)
    longest = max(config["JWT_REFRESH_EXPIRATION"], config["JWT_EXPIRATION"])
    expires_at = max(datetime.fromtimestamp(claims["exp"], UTC), now + timedelta(seconds=longest))
    db.session.execute(
        upsert_insert(RevokedSession)
        .values(sid=claims["sid"], user_id=uuid.UUID(claims["sub"]), revoked_at=now, expires_at=expires_at)
        .on_conflict_do_nothing(index_elements=[RevokedSession.sid])
    )
    # Sessions past their tokens' expiry need no record any more.
    db.session.execute(sa.delete(RevokedSession).where(RevokedSession.expires_at < now))
    db.session.commit()
    try:
        get_redis().set(_session_key(claims["sid"]), REVOKED, ex=max(int((expires_at - now).total_seconds()), 1))
    except redis.RedisError:
        log.warning("event=session_revocation_cache_failed user_id=%s", claims["sub"])


def well_formed(claims: dict) -> bool:
    """A session id, a user id that is a UUID, and a generation that is an integer when given."""
    sid, sub, gen = claims.get("sid"), claims.get("sub"), claims.get("gen", 0)
    if not isinstance(sid, str) or not 0 < len(sid) <= MAX_SID or not isinstance(sub, str):
        return False
    if not isinstance(gen, int) or isinstance(gen, bool):
        return False
    try:
        uuid.UUID(sub)
    except ValueError:
        return False
    return True


def token_states(claims_list: list[dict], chunk: int = 500) -> list[tuple[bool, UserState | None]]:
    """(session revoked, the user's state or None when the user is gone) for each token's claims,
    from Redis in a few round trips; what Redis lacks (or all of it, Redis down) from PostgreSQL in
    two queries, then cached. A malformed token is revoked."""
    formed = [well_formed(claims) for claims in claims_list]
    good = [claims for claims, ok in zip(claims_list, formed, strict=True) if ok]
    sessions: dict[str, bool | None] = {claims["sid"]: None for claims in good}
    users: dict[str, UserState | None] = {claims["sub"]: None for claims in good}
    sids, subs = list(sessions), list(users)
    cached_users: set[str] = set()
    redis_up = True
    if good:
        try:
            pipe = get_redis().pipeline(transaction=False)
            for start in range(0, len(sids), chunk):
                pipe.mget([_session_key(sid) for sid in sids[start : start + chunk]])
            for start in range(0, len(subs), chunk):
                pipe.mget([_user_state_key(sub) for sub in subs[start : start + chunk]])
            values = [value for reply in pipe.execute() for value in reply]
        except redis.RedisError:
            log.warning("event=token_state_cache_unavailable")
            values, redis_up = [], False
        for sid, value in zip(sids, values[: len(sids)], strict=False):
            sessions[sid] = None if value is None else value == REVOKED
        for sub, value in zip(subs, values[len(sids) :], strict=False):
            state = None if value is None else UserState.decode(value)
            if state is not None:
                users[sub] = state
                cached_users.add(sub)
        _read_missing(sessions, users, cached_users, redis_up)
    results = []
    for claims, ok in zip(claims_list, formed, strict=True):
        if not ok:
            results.append((True, None))
            continue
        state = users[claims["sub"]]
        revoked = bool(sessions[claims["sid"]]) or (state is not None and claims.get("gen", 0) != state.generation)
        results.append((revoked, state))
    return results


def _read_missing(sessions: dict, users: dict, cached_users: set[str], cache: bool) -> None:
    """Fill in from PostgreSQL what the cache did not have, and cache it (NX: a reader that raced
    an admin's change or a logout must not overwrite what they wrote)."""
    missing_sids = [sid for sid, revoked in sessions.items() if revoked is None]
    missing_users = [sub for sub in users if sub not in cached_users]
    if missing_sids:
        found = set(db.session.scalars(sa.select(RevokedSession.sid).where(RevokedSession.sid.in_(missing_sids))))
        for sid in missing_sids:
            sessions[sid] = sid in found
    if missing_users:
        rows = db.session.execute(
            sa.select(User.id, User.active, User.role, User.token_generation).where(
                User.id.in_([uuid.UUID(sub) for sub in missing_users])
            )
        )
        for row in rows:
            users[str(row.id)] = UserState(bool(row.active), row.role, int(row.token_generation or 0))
    if not cache or not (missing_sids or missing_users):
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for sid in missing_sids:
            # a revoked session stays revoked: cache it as long as any token of it may live
            ttl = current_app.config["JWT_REFRESH_EXPIRATION"] if sessions[sid] else SESSION_STATE_TTL
            pipe.set(_session_key(sid), REVOKED if sessions[sid] else LIVE, ex=ttl, nx=True)
        for sub in missing_users:
            if users[sub] is not None:
                pipe.set(_user_state_key(sub), users[sub].encode(), ex=USER_STATE_TTL, nx=True)
        pipe.execute()
    except redis.RedisError:
        log.warning("event=token_state_cache_failed")


def is_revoked(claims: dict) -> bool:
    ((revoked, state),) = token_states([claims])
    if has_request_context():
        request.environ[STATE_KEY] = state  # read with the revocation; used by _principal
    return revoked


def revoked_sessions(claims_list: list[dict]) -> list[bool]:
    """Whether each token is dead (revoked, its user deactivated, gone or inactive), in a few round
    trips: the websocket process re-checks all of its sockets at once instead of one read each."""
    return [revoked or state is None or not state.active for revoked, state in token_states(claims_list)]


def _principal(claims: dict) -> Principal | None:
    """The caller if the user still exists and is active, else None."""
    if STATE_KEY in request.environ:
        state = request.environ.pop(STATE_KEY)
    else:
        ((_, state),) = token_states([claims])
    if state is None or not state.active:
        return None
    return Principal(uuid.UUID(claims["sub"]), state.role)


def user_from_token(token: str) -> User | None:
    """The active user behind an access token, or None (bad, expired or revoked): for WebSocket auth."""
    try:
        claims = decode_token(token)
    except (PyJWTError, Exception):  # flask-jwt-extended raises its own and PyJWT's errors
        return None
    if claims.get("type") != "access" or revoked_sessions([claims])[0]:
        return None
    user = db.session.get(User, uuid.UUID(claims["sub"]))
    return user if user is not None and user.active else None


def login_required(write: bool = False, refresh: bool = False, roles: set[str] | None = None, any_token: bool = False):
    """Guard a route: a valid, unrevoked token of an active user; `write` refuses viewers. The token
    is an access token, a refresh token with `refresh`, either with `any_token`."""

    def decorator(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            verify_jwt_in_request(refresh=refresh, verify_type=not any_token)
            user = request.environ[PRINCIPAL_KEY] = _principal(get_jwt())
            if user is None:
                raise APIError(401, "unauthorized", "the token's user no longer exists or is inactive")
            if write and user.role not in WRITE_ROLES:
                raise APIError(403, "forbidden", "your role is read-only")
            if roles and user.role not in roles:
                raise APIError(403, "forbidden", "not allowed for your role")
            with logs.bind(user_id=user.id):  # the request's lines name their user from here on
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
    def _revoked(_header, payload):
        if not well_formed(payload):  # signed by us, but not a token we issue
            return _auth_error("invalid token: malformed claims")
        return _auth_error("token has been revoked")

    @jwt.needs_fresh_token_loader
    def _not_fresh(_header, _payload):
        return _auth_error("fresh token required")

    @jwt.token_verification_failed_loader
    def _claims_failed(_header, _payload):
        return _auth_error("token failed verification")


def _auth_error(message: str):
    return jsonify(error_body("unauthorized", message)), 401
