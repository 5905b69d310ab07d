"""Linked broker accounts: link, list, replace secrets, unlink; the credentials a user's orders go
through (`credentials_for`); re-encryption under a new key (`rotate_secrets`).

Plaintext secrets exist only in the request being handled and in the XtsCredentials handed to the
broker client: never in a row (Fernet ciphertext), a response, a log line or an error message.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from tradingapp.brokers.xts.accounts import CredentialsUnavailable, XtsCredentials
from tradingapp.domain.errors import Conflict, Invalid, NotFound, Refused, Unavailable
from tradingapp.extensions import db
from tradingapp.models import BrokerAccount, BrokerAccountEvent
from tradingapp.models.broker_accounts import BROKERS
from tradingapp.models.types import iso, utcnow
from tradingapp.security.crypto import SecretBox, SecretsUnavailable, secret_box

log = logging.getLogger(__name__)

VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")  # no whitespace, no control characters
LENGTHS = {
    "app_key": (8, 128),
    "secret_key": (8, 256),
    "md_app_key": (8, 128),
    "md_secret_key": (8, 256),
    "client_id": (1, 64),
}
LABEL_MAX = 64
LINK_FIELDS = {"broker", "label", *LENGTHS}
REPLACE_FIELDS = {"app_key", "secret_key", "md_app_key", "md_secret_key"}
UNIQUE_ACTIVE = "uq_broker_accounts_user_broker_active"


def credentials_for(user_id: uuid.UUID | str) -> XtsCredentials:
    """The user's active linked XTS account, else the deployment's (XTS_API_KEY/XTS_API_SECRET,
    XTS_CLIENT_ID, XTS_MD_API_KEY/XTS_MD_API_SECRET). Reads through db.session; never commits."""
    user_id = user_id if isinstance(user_id, uuid.UUID) else uuid.UUID(str(user_id))
    account = db.session.scalar(
        _active(user_id, "xts").execution_options(populate_existing=True)  # a long-lived session sees a new secret
    )
    if account is not None:
        try:
            return _opened(account)
        except SecretsUnavailable as exc:
            raise CredentialsUnavailable(f"linked XTS account {account.id} of user {user_id}: {exc}") from None
    # No linked account: the deployment's own. With XTS_SHARED_ACCOUNT off no new order goes this way
    # (require_trading_account refuses it at placement), but orders already working there, from
    # before the setting or a linked account's removal, must still be cancelled, modified and read.
    config = current_app.config
    if not (config["XTS_API_KEY"] and config["XTS_API_SECRET"]):
        raise CredentialsUnavailable(
            f"user {user_id} has no linked XTS account and XTS_API_KEY/XTS_API_SECRET are not set"
        )
    return XtsCredentials(
        config["XTS_API_KEY"],
        config["XTS_API_SECRET"],
        config["XTS_CLIENT_ID"],
        config["XTS_MD_API_KEY"],
        config["XTS_MD_API_SECRET"],
        "default",
    )


def require_trading_account(user_id: uuid.UUID) -> None:
    """Refused (422 broker_account_required) when the user's new order would go through the
    deployment's own XTS account and XTS_SHARED_ACCOUNT does not allow that (production's default):
    every such user's orders and positions would mix in one broker account. Paper: nothing to check.
    Closing what is already held there is not a new exposure (placement's close_only skips this)."""
    config = current_app.config
    if config["BROKER"] != "xts" or config["XTS_SHARED_ACCOUNT"]:
        return
    if db.session.scalar(_active(user_id, "xts").with_only_columns(BrokerAccount.id)) is None:
        raise Refused(
            "link your XTS account (POST /api/v1/broker-accounts) before placing orders",
            {"broker": "xts"},
            code="broker_account_required",
        )


def linked_credentials() -> list[XtsCredentials]:
    """Every active linked XTS account's credentials (the event bridge holds one interactive stream
    per account). An account whose secret no key opens is logged and left out, never the others."""
    accounts = db.session.scalars(
        sa.select(BrokerAccount)
        .where(BrokerAccount.broker == "xts", BrokerAccount.active)
        .order_by(BrokerAccount.created_at)
        .execution_options(populate_existing=True)
    ).all()
    found = []
    for account in accounts:
        try:
            found.append(_opened(account))
        except SecretsUnavailable as exc:
            log.error("event=broker_account_unreadable account_id=%s error=%s", account.id, exc)
    return found


# -- the API's use cases --------------------------------------------------------------------------
def list_accounts(user_id: uuid.UUID) -> list[dict]:
    query = sa.select(BrokerAccount).where(BrokerAccount.user_id == user_id, BrokerAccount.active)
    return [account_dict(a) for a in db.session.scalars(query.order_by(BrokerAccount.created_at))]


def link_account(user_id: uuid.UUID, body: dict) -> dict:
    """Validate everything first (nothing is written on any error), then encrypt and store."""
    values = parse_link(body)
    box = _box()
    existing = db.session.scalar(_active(user_id, values["broker"]))
    if existing is not None:
        raise _already_linked(existing.id)
    now = utcnow()
    account = BrokerAccount(
        id=uuid.uuid4(),
        user_id=user_id,
        broker=values["broker"],
        label=values["label"],
        app_key=values["app_key"],
        secret_key_encrypted=box.encrypt(values["secret_key"]),
        client_id=values["client_id"],
        md_app_key=values["md_app_key"],
        active=True,
        created_at=now,
        updated_at=now,
        md_secret_key_encrypted=box.encrypt(values["md_secret_key"]) if values["md_secret_key"] else None,
    )
    db.session.add(account)
    try:
        db.session.flush()  # a concurrent link of the same broker fails here, on the unique index
    except IntegrityError as exc:
        db.session.rollback()
        if UNIQUE_ACTIVE not in str(exc.orig):
            raise
        raise _already_linked(None) from None
    _record(account, user_id, "linked", _summary(account))
    db.session.commit()
    return account_dict(account)


def replace_secrets(user_id: uuid.UUID, raw_id: str, body: dict) -> dict:
    """New credentials for an active account: {secret_key, app_key?} and/or {md_secret_key, md_app_key?}."""
    values = parse_replace(body)
    box = _box()
    account = _own_active(user_id, raw_id)
    if "md_secret_key" in values and not (values.get("md_app_key") or account.md_app_key):
        details = {"md_app_key": "this account has no market-data app: give md_app_key with md_secret_key"}
        raise Invalid("invalid credentials; nothing was changed", details)
    for name in ("app_key", "md_app_key"):
        if name in values:
            setattr(account, name, values[name])
    if "secret_key" in values:
        account.secret_key_encrypted = box.encrypt(values["secret_key"])
    if "md_secret_key" in values:
        account.md_secret_key_encrypted = box.encrypt(values["md_secret_key"])
    account.updated_at = utcnow()
    _record(account, user_id, "secrets_replaced", {**_summary(account), "replaced": sorted(values)})
    db.session.commit()
    return account_dict(account)


def unlink_account(user_id: uuid.UUID, raw_id: str) -> dict:
    """Deactivate the account and erase its secrets (the row stays, for the record)."""
    account = _own_active(user_id, raw_id)
    account.active = False
    account.secret_key_encrypted = account.md_secret_key_encrypted = None
    account.unlinked_at = account.updated_at = utcnow()
    _record(account, user_id, "unlinked", _summary(account))
    db.session.commit()
    return account_dict(account)


def account_dict(account: BrokerAccount) -> dict:
    return {
        "id": str(account.id),
        "broker": account.broker,
        "label": account.label,
        "app_key_masked": mask(account.app_key),
        "has_secret": account.secret_key_encrypted is not None,
        "client_id": account.client_id,
        "md_app_key_masked": mask(account.md_app_key) if account.md_app_key else None,
        "has_md_secret": account.md_secret_key_encrypted is not None,
        "active": account.active,
        "created_at": iso(account.created_at),
        "updated_at": iso(account.updated_at),
    }


def mask(key: str) -> str:
    """Enough of an app key to tell two apart: its last 4 characters."""
    return "****" + key[-4:]


def _active(user_id: uuid.UUID, broker: str) -> sa.Select:
    return sa.select(BrokerAccount).where(
        BrokerAccount.user_id == user_id, BrokerAccount.broker == broker, BrokerAccount.active
    )


def _own_active(user_id: uuid.UUID, raw_id: str) -> BrokerAccount:
    """The caller's active account, locked; another user's is not found (404, not 403)."""
    try:
        account_id = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("broker account not found") from None
    account = db.session.get(BrokerAccount, account_id, with_for_update=True, populate_existing=True)
    if account is None or account.user_id != user_id or not account.active:
        raise NotFound("broker account not found")
    return account


def _already_linked(account_id: uuid.UUID | None) -> Conflict:
    details = {"account_id": str(account_id)} if account_id else {}
    return Conflict("an account of this broker is already linked: unlink it first, or PUT new secrets to it", details)


def _box() -> SecretBox:
    try:
        return secret_box()
    except SecretsUnavailable as exc:
        log.error("event=secrets_unavailable reason=%s", exc)
        raise Unavailable(
            "linking broker accounts is not configured on this server (the operator must set SECRETS_ENCRYPTION_KEYS)"
        ) from None


def _summary(account: BrokerAccount) -> dict:
    md_key = mask(account.md_app_key) if account.md_app_key else None
    return {
        "broker": account.broker,
        "label": account.label,
        "app_key": mask(account.app_key),
        "client_id": account.client_id,
        "md_app_key": md_key,
    }


def _record(account: BrokerAccount, actor_id: uuid.UUID, action: str, details: dict) -> None:
    db.session.add(
        BrokerAccountEvent(ts=utcnow(), account_id=account.id, actor_id=actor_id, action=action, details=details)
    )
    log.info(
        "event=broker_account_%s user_id=%s account_id=%s broker=%s app_key=%s",
        action,
        account.user_id,
        account.id,
        account.broker,
        mask(account.app_key),
    )


# -- validation (messages name the field and the rule, never the value) ---------------------------
def parse_link(body: dict) -> dict:
    errors: dict[str, str] = {}
    if unknown := sorted(set(body) - LINK_FIELDS):
        errors["unknown_fields"] = ", ".join(name[:40] for name in unknown)
    broker = body.get("broker", "xts")
    if broker not in BROKERS:
        errors["broker"] = f"must be one of: {', '.join(BROKERS)}"
    values = {"broker": broker, "label": _label(body.get("label"), errors)}
    for name in LENGTHS:
        required = name in ("app_key", "secret_key")
        values[name] = _credential(name, body.get(name), errors, required)
    if bool(values["md_app_key"]) != bool(values["md_secret_key"]):
        errors.setdefault("md_secret_key", "give md_app_key and md_secret_key together")
    if errors:
        raise Invalid("invalid broker account; nothing was stored", errors)
    return values


def parse_replace(body: dict) -> dict:
    errors: dict[str, str] = {}
    if unknown := sorted(set(body) - REPLACE_FIELDS):
        errors["unknown_fields"] = ", ".join(name[:40] for name in unknown)
    values = {name: _credential(name, body[name], errors, True) for name in REPLACE_FIELDS if name in body}
    if "app_key" in values and "secret_key" not in values:
        errors["secret_key"] = "a new app_key needs its secret_key"
    if "md_app_key" in values and "md_secret_key" not in values:
        errors["md_secret_key"] = "a new md_app_key needs its md_secret_key"
    if not {"secret_key", "md_secret_key"} & set(body):
        errors.setdefault("body", "give secret_key (with app_key when it changed) and/or md_secret_key")
    if errors:
        raise Invalid("invalid credentials; nothing was changed", errors)
    return values


def _credential(name: str, value: object, errors: dict, required: bool) -> str | None:
    if value is None:
        if required:
            errors[name] = "required"
        return None
    low, high = LENGTHS[name]
    if not isinstance(value, str):
        errors[name] = "must be a string"
    elif not low <= len(value) <= high:
        errors[name] = f"must be {low} to {high} characters"
    elif not VISIBLE_ASCII.fullmatch(value):
        errors[name] = "must be printable ASCII without spaces"
    return value


def _label(value: object, errors: dict) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value.strip()) > LABEL_MAX or not value.isprintable():
        errors["label"] = f"must be printable text of at most {LABEL_MAX} characters"
        return ""
    return value.strip()


# -- key rotation ---------------------------------------------------------------------------------
@dataclass
class RotationReport:
    accounts: int = 0  # accounts holding at least one secret
    rotated: int = 0  # secrets re-encrypted under the first key
    current: int = 0  # secrets already under it
    unreadable: list[uuid.UUID] = field(default_factory=list)  # accounts no key opens


def rotate_secrets(box: SecretBox | None = None, batch: int = 200) -> RotationReport:
    """Re-encrypt every stored secret under the first key, batch by batch, each row locked (a
    secret replaced meanwhile is never overwritten by the old one). Running it again changes nothing."""
    box = box or secret_box()
    report, after = RotationReport(), None
    while True:
        query = sa.select(BrokerAccount).where(
            sa.or_(BrokerAccount.secret_key_encrypted.is_not(None), BrokerAccount.md_secret_key_encrypted.is_not(None))
        )
        if after is not None:
            query = query.where(BrokerAccount.id > after)
        query = query.order_by(BrokerAccount.id).limit(batch).with_for_update()
        accounts = db.session.scalars(query.execution_options(populate_existing=True)).all()
        if not accounts:
            return report
        for account in accounts:
            report.accounts += 1
            _rotate_account(box, account, report)
        db.session.commit()
        after = accounts[-1].id


def _rotate_account(box: SecretBox, account: BrokerAccount, report: RotationReport) -> None:
    for column in ("secret_key_encrypted", "md_secret_key_encrypted"):
        token = getattr(account, column)
        if token is None:
            continue
        if box.is_current(token):
            report.current += 1
            continue
        try:
            setattr(account, column, box.rotate(token))
        except SecretsUnavailable:
            if account.id not in report.unreadable:
                report.unreadable.append(account.id)
            continue
        report.rotated += 1


def _opened(account: BrokerAccount) -> XtsCredentials:
    """A linked account's credentials, its secrets decrypted (SecretsUnavailable when no key opens them)."""
    box = secret_box()
    md_secret = box.decrypt(account.md_secret_key_encrypted) if account.md_secret_key_encrypted else ""
    return XtsCredentials(
        account.app_key,
        box.decrypt(account.secret_key_encrypted),
        account.client_id or "",
        account.md_app_key or "",
        md_secret,
        "user",
        account.id,
    )
