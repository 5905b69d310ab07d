"""Users: registration (the rules of an email, a password, a name) and logging in (credentials
checked in constant time, failed logins throttled per email and per client IP)."""

from __future__ import annotations

import hashlib
import logging
import re

import redis
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from tradingapp.domain.errors import Conflict, Invalid, Refused, Unavailable
from tradingapp.extensions import db, get_redis
from tradingapp.models import User
from tradingapp.security.passwords import burn_verification, hash_password, needs_rehash, verify_password

log = logging.getLogger(__name__)

REGISTER_FIELDS = frozenset({"email", "password", "name"})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 10, 128
MAX_NAME = 100
# Many people can share one address (office NAT), so an IP gets more room than one account.
IP_FAILURE_FACTOR = 4


def register(body: dict) -> User:
    """A new trader from {email, password, name?} (committed)."""
    if not current_app.config["ALLOW_REGISTRATION"]:
        raise Refused("registration is disabled", code="forbidden")
    unknown = sorted(set(body) - REGISTER_FIELDS)
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)}", {"fields": unknown})
    email = parse_email(body.get("email"))
    password = parse_password(body.get("password"))
    name = parse_name(body.get("name"))
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise _email_taken()
    user = User(email=email, password_hash=hash_password(password), name=name, role="trader", active=True)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # Another request registered the same email between our check and our insert.
        db.session.rollback()
        raise _email_taken() from None
    log.info("event=user_registered user_id=%s", user.id)
    return user


def _email_taken() -> Conflict:
    return Conflict("an account with this email already exists", {"field": "email"})


def authenticate(email: str, password: str, ip: str) -> User | None:
    """The user these credentials belong to, or None (unknown user, wrong password and inactive
    account alike: no account enumeration). Refused (rate_limited) while the email or the IP is
    locked out."""
    email = normalise_email(email)
    throttle = LoginThrottle(email, ip)
    throttle.refuse_if_locked()
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if not credentials_match(user, password):
        throttle.record_failure()
        log.info("event=login_failed user_id=%s ip=%s", user.id if user else "-", ip)
        return None
    throttle.clear_email()
    upgrade_hash(user, password)
    log.info("event=login user_id=%s ip=%s", user.id, ip)
    return user


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
        raise Invalid("email is required", {"field": "email"})
    email = normalise_email(value)
    if len(email) > MAX_EMAIL or not EMAIL_RE.match(email):
        raise Invalid("email is not a valid address", {"field": "email"})
    return email


def parse_password(value) -> str:
    if not isinstance(value, str):
        raise Invalid("password is required", {"field": "password"})
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise Invalid(
            f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            {"field": "password", "min_length": MIN_PASSWORD, "max_length": MAX_PASSWORD},
        )
    return value


def parse_name(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid("name must be a string", {"field": "name"})
    name = value.strip()
    if len(name) > MAX_NAME:
        raise Invalid(f"name must be at most {MAX_NAME} characters", {"field": "name", "max_length": MAX_NAME})
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
            raise Refused(
                "too many failed logins, try again later",
                {"retry_after": max(waits)},
                code="rate_limited",
                retry_after=max(waits),
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
            raise Unavailable("login is temporarily unavailable") from None
