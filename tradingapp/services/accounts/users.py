"""Users: registration (the rules of an email, a password, a name) and logging in (credentials
checked in constant time, failed logins throttled per account and address pair and per address:
tradingapp/security/throttle.py, docs/security.md)."""

from __future__ import annotations

import logging
import re
import uuid

import sqlalchemy as sa
from flask import current_app

from tradingapp.domain.errors import Invalid, Refused
from tradingapp.extensions import db, upsert_insert
from tradingapp.models import User
from tradingapp.models.types import utcnow
from tradingapp.security.passwords import burn_verification, hash_password, needs_rehash, verify_password
from tradingapp.security.throttle import LoginThrottle, check_registration

log = logging.getLogger(__name__)

REGISTER_FIELDS = frozenset({"email", "password", "name"})
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
MAX_EMAIL = 254
MIN_PASSWORD, MAX_PASSWORD = 10, 128
MAX_NAME = 100


def register(body: dict, remote_addr: str | None) -> None:
    """A new trader from {email, password, name?} (committed), unless the email already has an
    account: then nothing happens. Both ways cost one hash and end the same, so the answer tells
    no one whether an email is registered (the owner of a taken email simply cannot log in with
    the new password). Valid requests are throttled per client address."""
    if not current_app.config["ALLOW_REGISTRATION"]:
        raise Refused("registration is disabled", code="forbidden")
    unknown = sorted(set(body) - REGISTER_FIELDS)
    if unknown:
        raise Invalid(f"unknown fields: {', '.join(unknown)}", {"fields": unknown})
    email = parse_email(body.get("email"))
    password = parse_password(body.get("password"))
    name = parse_name(body.get("name"))
    check_registration(remote_addr)
    password_hash = hash_password(password)  # first, whatever follows: a taken email costs the same
    # One statement: a known email (or one registered by a request racing this one) inserts nothing.
    row = {"email": email, "password_hash": password_hash, "name": name, "role": "trader", "active": True}
    inserted = db.session.scalar(
        upsert_insert(User)
        .values(id=uuid.uuid4(), created_at=utcnow(), token_generation=0, **row)
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    db.session.commit()
    if inserted is None:
        log.info("event=register_email_taken")
    else:
        log.info("event=user_registered user_id=%s", inserted)


def authenticate(email: str, password: str, remote_addr: str | None) -> User | None:
    """The user these credentials belong to, or None (unknown user, wrong password and inactive
    account alike: no account enumeration). Refused (rate_limited) while this email and address,
    or this address, waits out a backoff of failed logins."""
    email = normalise_email(email)
    throttle = LoginThrottle(email, remote_addr)
    throttle.check()
    user = db.session.scalar(sa.select(User).where(User.email == email))
    if not credentials_match(user, password):
        throttle.record_failure()
        log.info("event=login_failed user_id=%s ip=%s", user.id if user else "-", throttle.address)
        return None
    throttle.record_success()
    upgrade_hash(user, password)
    log.info("event=login user_id=%s ip=%s", user.id, throttle.address)
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
