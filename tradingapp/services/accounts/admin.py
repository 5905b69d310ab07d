"""Admin use cases: users (role, active), risk limits, trading states (the kill switch), and the
record of every change (admin_actions: who, when, what, before/after, also logged)."""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa

from tradingapp.domain import risk_limits
from tradingapp.domain.errors import Conflict, Invalid, NotFound
from tradingapp.domain.risk import TradingState
from tradingapp.extensions import db, upsert_insert
from tradingapp.models import ROLES, Account, AdminAction, RiskSettings, User
from tradingapp.models.risk import GLOBAL_SETTINGS_ID
from tradingapp.models.types import iso, utcnow
from tradingapp.security.auth import end_all_sessions, remember_user_state
from tradingapp.services.accounts.funds import create_account

log = logging.getLogger(__name__)

GLOBAL = "global"


def record(admin: User, action: str, target: str, before: dict | None, after: dict | None) -> None:
    action_row = AdminAction(ts=utcnow(), admin_id=admin.id, action=action, target=target, before=before, after=after)
    db.session.add(action_row)
    log.info(
        "event=admin_change admin_id=%s action=%s target=%s before=%s after=%s", admin.id, action, target, before, after
    )


def user_dict(user: User) -> dict:
    return {**user.to_dict(), "active": user.active, "created_at": iso(user.created_at)}


def parse_user_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


# -- users ---------------------------------------------------------------------------------------
def list_users() -> list[dict]:
    return [user_dict(u) for u in db.session.scalars(sa.select(User).order_by(User.created_at, User.id))]


def update_user(admin: User, raw_id: str, body: dict) -> dict:
    """Change role and/or active; deactivating ends every token the user holds (their token
    generation goes up in the same commit), so a login racing it gets a token that dies with the rest,
    and a login after a reactivation gets one that works."""
    user_id = parse_user_id(raw_id)
    user = db.session.get(User, user_id, with_for_update=True) if user_id else None
    if user is None:
        raise NotFound("user not found")
    changes = _user_changes(body)
    if user.id == admin.id and (changes.get("active") is False or changes.get("role", "admin") != "admin"):
        raise Conflict("an admin cannot deactivate or demote themself", {"user_id": str(user.id)})
    before = {"role": user.role, "active": user.active}
    for field, value in changes.items():
        setattr(user, field, value)
    after = {"role": user.role, "active": user.active}
    deactivated = before["active"] and not user.active
    if deactivated:
        end_all_sessions(user)
    if before != after:
        record(admin, "user_update", str(user.id), before, after)
    db.session.commit()
    if before != after:
        remember_user_state(user)  # the new role, active flag and generation apply to the next request
    if deactivated:
        log.info("event=user_sessions_revoked admin_id=%s user_id=%s", admin.id, user.id)
    return user_dict(user)


def _user_changes(body: dict) -> dict:
    errors = {}
    if unknown := sorted(set(body) - {"role", "active"}):
        errors["unknown_fields"] = ", ".join(unknown)
    if "role" in body and body["role"] not in ROLES:
        errors["role"] = f"must be one of {', '.join(ROLES)}"
    if "active" in body and not isinstance(body["active"], bool):
        errors["active"] = "must be true or false"
    if not body:
        errors["body"] = "give role and/or active"
    if errors:
        raise Invalid("invalid user change", errors)
    return {k: body[k] for k in ("role", "active") if k in body}


# -- risk limits ---------------------------------------------------------------------------------
def _settings(lock: bool = False) -> RiskSettings:
    db.session.execute(
        upsert_insert(RiskSettings)
        .values(id=GLOBAL_SETTINGS_ID, trading_state="ACTIVE", limits={}, updated_at=utcnow())
        .on_conflict_do_nothing()
    )
    return db.session.get(RiskSettings, GLOBAL_SETTINGS_ID, with_for_update=lock, populate_existing=True)


def _account(user_id: uuid.UUID, lock: bool = False) -> Account:
    create_account(user_id)
    return db.session.get(Account, user_id, with_for_update=lock, populate_existing=True)


def risk_limits_view() -> dict:
    settings = db.session.get(RiskSettings, GLOBAL_SETTINGS_ID)
    overrides = db.session.scalars(sa.select(Account).where(sa.cast(Account.limit_overrides, sa.Text) != "{}")).all()
    return {
        "defaults": risk_limits.DEFAULT_LIMITS.to_dict(),
        "global": risk_limits.effective(settings.limits if settings else None, None).to_dict(),
        "users": {str(a.user_id): a.limit_overrides for a in overrides if a.limit_overrides},
    }


def update_risk_limits(admin: User, body: dict) -> dict:
    """Validate the whole body first (nothing changes on any error), then apply and record."""
    global_changes, user_changes = _parse_limits_body(body)
    if global_changes:
        settings = _settings(lock=True)
        before = dict(settings.limits or {})
        settings.limits = risk_limits.merge(before, global_changes)
        settings.updated_at, settings.updated_by = utcnow(), admin.id
        record(admin, "risk_limits", GLOBAL, before, settings.limits)
    for user_id, changes in user_changes.items():
        account = _account(user_id, lock=True)
        before = dict(account.limit_overrides or {})
        account.limit_overrides = {} if changes is None else risk_limits.merge(before, changes)
        account.updated_at = utcnow()
        record(admin, "risk_limits", str(user_id), before, account.limit_overrides)
    db.session.commit()
    return risk_limits_view()


def _parse_limits_body(body: dict) -> tuple[dict, dict]:
    errors: dict[str, str] = {}
    if unknown := sorted(set(body) - {"global", "users"}):
        errors["unknown_fields"] = ", ".join(unknown)
    global_changes = {}
    if "global" in body:
        try:
            global_changes = risk_limits.parse_changes(body["global"], "global.")
        except risk_limits.LimitsError as exc:
            errors.update(exc.errors)
    user_changes = _parse_user_limits(body.get("users", {}), errors)
    if errors:
        raise Invalid("invalid risk limits; nothing was changed", errors)
    return global_changes, user_changes


def _parse_user_limits(users: object, errors: dict) -> dict:
    if not isinstance(users, dict):
        errors["users"] = "must be an object of user ids to limit overrides (or null to remove them all)"
        return {}
    parsed, known = {}, _existing_user_ids([parse_user_id(k) for k in users])
    for raw_id, changes in users.items():
        user_id = parse_user_id(raw_id)
        if user_id not in known:
            errors[f"users.{raw_id}"] = "unknown user"
            continue
        try:
            parsed[user_id] = None if changes is None else risk_limits.parse_changes(changes, f"users.{raw_id}.")
        except risk_limits.LimitsError as exc:
            errors.update(exc.errors)
    return parsed


def _existing_user_ids(ids: list[uuid.UUID | None]) -> set[uuid.UUID]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return set()
    return set(db.session.scalars(sa.select(User.id).where(User.id.in_(wanted))))


# -- trading states (kill switch) ---------------------------------------------------------------
def parse_state_body(body: dict) -> tuple[TradingState, uuid.UUID | None]:
    """{active: bool} (true halts) or {state: ACTIVE|REDUCING|HALTED}, with an optional user_id."""
    errors = {}
    if unknown := sorted(set(body) - {"active", "state", "user_id", "reason"}):
        errors["unknown_fields"] = ", ".join(unknown)
    if ("active" in body) == ("state" in body):
        errors["active"] = "give either active (true halts, false resumes) or state"
    elif "active" in body and not isinstance(body["active"], bool):
        errors["active"] = "must be true or false"
    elif "state" in body and (not isinstance(body["state"], str) or body["state"] not in TradingState.__members__):
        errors["state"] = f"must be one of {', '.join(TradingState)}"
    user_id = None
    if body.get("user_id") is not None:
        user_id = parse_user_id(body["user_id"]) if isinstance(body["user_id"], str) else None
        if user_id is None:
            errors["user_id"] = "must be a user id"
    if "reason" in body and not (isinstance(body["reason"], str) and len(body["reason"]) <= 200):
        errors["reason"] = "must be text of at most 200 characters"
    if errors:
        raise Invalid("invalid trading state change", errors)
    if "state" in body:
        return TradingState(body["state"]), user_id
    return (TradingState.HALTED if body["active"] else TradingState.ACTIVE), user_id


def set_trading_state(admin: User, state: TradingState, user_id: uuid.UUID | None, reason: str | None) -> dict:
    if user_id is not None and db.session.get(User, user_id) is None:
        raise NotFound("user not found")
    target = _account(user_id, lock=True) if user_id else _settings(lock=True)
    before = {"trading_state": target.trading_state, "reason": target.state_reason}
    target.trading_state = state.value
    # Marked as an admin's: the automatic daily-loss REDUCING, which the next day lifts, is known by
    # its exact reason text, and an admin's state must never be taken for it.
    target.state_reason = f"admin: {reason}" if reason else f"set by an admin ({admin.id})"
    target.updated_at = utcnow()
    record(
        admin,
        "trading_state",
        str(user_id) if user_id else GLOBAL,
        before,
        {"trading_state": state.value, "reason": target.state_reason},
    )
    db.session.commit()
    return {
        "user_id": str(user_id) if user_id else None,
        "trading_state": state.value,
        "previous": before["trading_state"],
        "reason": target.state_reason,
    }


def trading_states() -> dict:
    settings = db.session.get(RiskSettings, GLOBAL_SETTINGS_ID)
    accounts = db.session.scalars(sa.select(Account).where(Account.trading_state != "ACTIVE")).all()
    return {
        "global": {
            "trading_state": settings.trading_state if settings else "ACTIVE",
            "reason": settings.state_reason if settings else None,
        },
        "users": [
            {"user_id": str(a.user_id), "trading_state": a.trading_state, "reason": a.state_reason} for a in accounts
        ],
    }


def audit_log(limit: int) -> list[dict]:
    rows = db.session.scalars(sa.select(AdminAction).order_by(AdminAction.id.desc()).limit(limit))
    return [a.to_dict() for a in rows]
