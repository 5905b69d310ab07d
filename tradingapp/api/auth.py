"""Auth: register, log in (throttled), refresh, log out, and who am I."""

from __future__ import annotations

import hashlib
import logging
import re

import redis
import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from tradingapp.errors import APIError, conflict, forbidden, validation_error
from tradingapp.extensions import db, get_redis
from tradingapp.http import json_body
from tradingapp.models import User
from tradingapp.security.auth import (
    current_claims,
    current_principal,
    current_user,
    issue_access_token,
    issue_tokens,
    login_required,
    revoke_session,
)
from tradingapp.security.passwords import burn_verification, hash_password, needs_rehash, verify_password

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")

REGISTER_FIELDS = frozenset({"email", "password", "name"})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 10, 128
MAX_NAME = 100
# One message for unknown user, wrong password and inactive account: no account enumeration.
BAD_CREDENTIALS = "invalid email or password"
# Many people can share one address (office NAT), so an IP gets more room than one account.
IP_FAILURE_FACTOR = 4


@bp.post("/register")
def register():
    if not current_app.config["ALLOW_REGISTRATION"]:
        raise forbidden("registration is disabled")
    body = json_body()
    unknown = sorted(set(body) - REGISTER_FIELDS)
    if unknown:
        raise validation_error(f"unknown fields: {', '.join(unknown)}", fields=unknown)
    email = parse_email(body.get("email"))
    password = parse_password(body.get("password"))
    name = parse_name(body.get("name"))
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise conflict("an account with this email already exists", field="email")
    user = User(email=email, password_hash=hash_password(password), name=name, role="trader", active=True)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request registered the same email between our check and our insert.
        db.session.rollback()
        raise conflict("an account with this email already exists", field="email") from None
    log.info("event=user_registered user_id=%s", user.id)
    return jsonify(user.to_dict()), 201


@bp.post("/login")
def login():
    body = json_body()
    email, password = body.get("email"), body.get("password")
    if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
        raise validation_error("email and password are required strings", fields=["email", "password"])
    email = normalise_email(email)
    throttle = LoginThrottle(email, request.remote_addr or "unknown")
    throttle.refuse_if_locked()
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if not credentials_match(user, password):
        throttle.record_failure()
        log.info("event=login_failed user_id=%s ip=%s", user.id if user else "-", throttle.ip)
        raise APIError(401, "unauthorized", BAD_CREDENTIALS)
    throttle.clear_email()
    upgrade_hash(user, password)
    log.info("event=login user_id=%s ip=%s", user.id, throttle.ip)
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


# -- credentials -----------------------------------------------------------------------


def credentials_match(user: User | None, password: str) -> bool:
    """Always verify one hash, known user or not, so the answer takes the same time."""
    if user is None:
        burn_verification(password)
        return False
    return verify_password(user.password_hash, password) and user.active


def upgrade_hash(user: User, password: str) -> None:
    """Re-hash with today's parameters while we hold the plain password (only right after a login)."""
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        db.session.commit()
        log.info("event=password_rehashed user_id=%s", user.id)


# -- validation ------------------------------------------------------------------------


def normalise_email(email: str) -> str:
    return email.strip().lower()


def parse_email(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise validation_error("email is required", field="email")
    email = normalise_email(value)
    if len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
        raise validation_error("email is not a valid address", field="email")
    return email


def parse_password(value) -> str:
    if not isinstance(value, str):
        raise validation_error("password is required", field="password")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise validation_error(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            field="password",
            min_length=MIN_PASSWORD,
            max_length=MAX_PASSWORD,
        )
    return value


def parse_name(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise validation_error("name must be a string", field="name")
    name = value.strip()
    if len(name) > MAX_NAME:
        raise validation_error(f"name must be at most {MAX_NAME} characters", field="name", max_length=MAX_NAME)
    return name


# -- throttling ------------------------------------------------------------------------


class LoginThrottle:
    """Failed logins counted per email and per client IP in fixed Redis windows of LOGIN_LOCKOUT."""

    def __init__(self, email: str, ip: str):
        config = current_app.config
        self.ip = ip
        self.window = config["LOGIN_LOCKOUT"]
        # Emails are hashed: the key length stays bounded whatever the client sends.
        digest = hashlib.sha256(email.encode()).hexdigest()[:32]
        self.email_key = f"auth:login_failures:email:{digest}"
        self.limits = {
            self.email_key: config["LOGIN_MAX_FAILURES"],
            f"auth:login_failures:ip:{ip}": config["LOGIN_MAX_FAILURES"] * IP_FAILURE_FACTOR,
        }

    def refuse_if_locked(self) -> None:
        keys = list(self.limits)
        pipe = get_redis().pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
            pipe.ttl(key)
        replies = self._run(pipe)
        waits = [
            ttl if ttl > 0 else self.window
            for key, count, ttl in zip(keys, replies[::2], replies[1::2], strict=True)
            if count is not None and int(count) >= self.limits[key]
        ]
        if waits:
            log.info("event=login_throttled ip=%s retry_after=%s", self.ip, max(waits))
            raise APIError(
                429,
                "rate_limited",
                "too many failed logins, try again later",
                {"retry_after": max(waits)},
                headers={"Retry-After": str(max(waits))},
            )

    def record_failure(self) -> None:
        pipe = get_redis().pipeline()
        for key in self.limits:
            # The window starts at the first failure; later failures do not extend it.
            pipe.set(key, 0, ex=self.window, nx=True)
            pipe.incr(key)
        self._run(pipe)

    def clear_email(self) -> None:
        # The IP counter stays: one good account must not reset an attacker's budget.
        self._run(get_redis().pipeline().delete(self.email_key))

    @staticmethod
    def _run(pipe) -> list:
        try:
            return pipe.execute()
        except redis.RedisError:
            log.warning("event=login_throttle_unavailable")
            raise APIError(503, "unavailable", "login is temporarily unavailable") from None
