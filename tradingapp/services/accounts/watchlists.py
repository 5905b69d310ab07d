"""Watchlists: each user's named lists of instruments, kept on the server for the terminal.

Rules: at most MAX_LISTS lists per user, MAX_INSTRUMENTS instruments per list, names 1-40
characters (trimmed, no control characters) unique per user ignoring case. Another user's list is
not found (404). Every change locks the row it changes (the user's row when creating a list), so
two requests at once cannot pass a limit together; any refusal writes nothing.
"""

from __future__ import annotations

import unicodedata
import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tradingapp.domain.errors import Conflict, Invalid, NotFound, Refused
from tradingapp.domain.validation import MAX_ID, is_int
from tradingapp.extensions import db
from tradingapp.models import Instrument, User, Watchlist, WatchlistItem
from tradingapp.models.types import utcnow

MAX_LISTS = 10
MAX_INSTRUMENTS = 250
NAME_MAX = 40
CREATE_FIELDS = {"name"}
UPDATE_FIELDS = {"name", "instrument_ids"}


def invalid(errors: dict[str, str]) -> Invalid:
    return Invalid("invalid watchlist", errors)


# -- reading -------------------------------------------------------------------------------------
def list_watchlists(user_id: uuid.UUID) -> list[dict]:
    """The user's lists, ordered by position then creation; writes nothing (none: [])."""
    lists = db.session.scalars(
        sa.select(Watchlist)
        .where(Watchlist.user_id == user_id)
        .order_by(Watchlist.position, Watchlist.created_at, Watchlist.id)
    ).all()
    return _dicts(lists)


def _dicts(lists: list[Watchlist]) -> list[dict]:
    """The lists with their instruments in list order, in one query for all of them."""
    contents: dict[uuid.UUID, list[dict]] = {w.id: [] for w in lists}
    if lists:
        rows = db.session.execute(
            sa.select(WatchlistItem.watchlist_id, Instrument)
            .join(Instrument, Instrument.id == WatchlistItem.instrument_id)
            .where(WatchlistItem.watchlist_id.in_(list(contents)))
            .order_by(WatchlistItem.watchlist_id, WatchlistItem.position)
        )
        for watchlist_id, instrument in rows:
            contents[watchlist_id].append(instrument.to_dict())
    return [{"id": str(w.id), "name": w.name, "position": w.position, "instruments": contents[w.id]} for w in lists]


def _dict(watchlist: Watchlist) -> dict:
    return _dicts([watchlist])[0]


# -- changes ---------------------------------------------------------------------------------------
def create_watchlist(user_id: uuid.UUID, body: dict) -> dict:
    errors = _unknown(body, CREATE_FIELDS)
    name = _name(body, errors, required=True)
    if errors:
        raise invalid(errors)
    # The user's row serialises their list creations (FOR NO KEY UPDATE: inserts that refer to the
    # user, such as orders, do not wait for it): the count and the position hold.
    db.session.execute(sa.select(User.id).where(User.id == user_id).with_for_update(key_share=True))
    count, last = db.session.execute(
        sa.select(sa.func.count(), sa.func.max(Watchlist.position)).where(Watchlist.user_id == user_id)
    ).one()
    if count >= MAX_LISTS:
        db.session.rollback()
        raise Refused(
            f"at most {MAX_LISTS} watchlists per user", {"limit": MAX_LISTS, "current": count}, code="validation_error"
        )
    _refuse_taken_name(user_id, name)
    now = utcnow()
    watchlist = Watchlist(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        position=0 if last is None else last + 1,
        created_at=now,
        updated_at=now,
    )
    db.session.add(watchlist)
    _commit(user_id, name)
    return {"id": str(watchlist.id), "name": watchlist.name, "position": watchlist.position, "instruments": []}


def update_watchlist(user_id: uuid.UUID, watchlist_id: str, body: dict) -> dict:
    """Rename and/or replace the contents (instrument_ids in the new order)."""
    errors = _unknown(body, UPDATE_FIELDS)
    if not set(body) & UPDATE_FIELDS:
        errors["body"] = "give name and/or instrument_ids"
    name = _name(body, errors, required=False)
    ids = _instrument_ids(body, errors)
    if errors:
        raise invalid(errors)
    watchlist = _locked(user_id, watchlist_id)
    if ids is not None:
        unknown = sorted(set(ids) - _known_instruments(ids))
        if unknown:
            db.session.rollback()
            raise invalid({"instrument_ids": f"unknown instruments: {', '.join(map(str, unknown[:20]))}"})
    if name is not None and name != watchlist.name:
        _refuse_taken_name(user_id, name, watchlist.id)
        watchlist.name = name
    if ids is not None:
        db.session.execute(sa.delete(WatchlistItem).where(WatchlistItem.watchlist_id == watchlist.id))
        db.session.add_all(
            WatchlistItem(watchlist_id=watchlist.id, instrument_id=iid, position=n) for n, iid in enumerate(ids)
        )
    watchlist.updated_at = utcnow()
    _commit(user_id, watchlist.name)
    return _dict(watchlist)


def delete_watchlist(user_id: uuid.UUID, watchlist_id: str) -> None:
    watchlist = _locked(user_id, watchlist_id)
    db.session.execute(sa.delete(WatchlistItem).where(WatchlistItem.watchlist_id == watchlist.id))
    db.session.delete(watchlist)
    db.session.commit()


def add_instrument(user_id: uuid.UUID, watchlist_id: str, instrument_id: int) -> dict:
    """Append the instrument; one already in the list leaves it unchanged."""
    watchlist = _locked(user_id, watchlist_id)
    if not 0 < instrument_id <= MAX_ID or db.session.get(Instrument, instrument_id) is None:
        db.session.rollback()
        raise NotFound("instrument not found")
    items = db.session.execute(
        sa.select(WatchlistItem.instrument_id, WatchlistItem.position).where(WatchlistItem.watchlist_id == watchlist.id)
    ).all()
    if any(iid == instrument_id for iid, _ in items):
        body = _dict(watchlist)
        db.session.rollback()
        return body
    if len(items) >= MAX_INSTRUMENTS:
        db.session.rollback()
        raise Refused(
            f"the watchlist is full: at most {MAX_INSTRUMENTS} instruments",
            {"limit": MAX_INSTRUMENTS, "current": len(items)},
            code="validation_error",
        )
    position = max((p for _, p in items), default=-1) + 1
    db.session.add(WatchlistItem(watchlist_id=watchlist.id, instrument_id=instrument_id, position=position))
    watchlist.updated_at = utcnow()
    db.session.commit()
    return _dict(watchlist)


def remove_instrument(user_id: uuid.UUID, watchlist_id: str, instrument_id: int) -> dict:
    watchlist = _locked(user_id, watchlist_id)
    removed = db.session.execute(
        sa.delete(WatchlistItem).where(
            WatchlistItem.watchlist_id == watchlist.id, WatchlistItem.instrument_id == instrument_id
        )
    ).rowcount
    if not removed:
        db.session.rollback()
        raise NotFound("instrument not in this watchlist", {"instrument_id": instrument_id})
    watchlist.updated_at = utcnow()
    db.session.commit()
    return _dict(watchlist)


# -- helpers ---------------------------------------------------------------------------------------
def _locked(user_id: uuid.UUID, watchlist_id: str) -> Watchlist:
    """The caller's list, locked for the transaction; another user's (or a malformed id) is 404."""
    try:
        wid = uuid.UUID(watchlist_id)
    except ValueError:
        raise NotFound("watchlist not found") from None
    watchlist = db.session.scalar(
        sa.select(Watchlist)
        .where(Watchlist.id == wid, Watchlist.user_id == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if watchlist is None:
        db.session.rollback()
        raise NotFound("watchlist not found")
    return watchlist


def _refuse_taken_name(user_id: uuid.UUID, name: str, other_than: uuid.UUID | None = None) -> None:
    query = sa.select(Watchlist.id).where(Watchlist.user_id == user_id, sa.func.lower(Watchlist.name) == name.lower())
    if other_than is not None:
        query = query.where(Watchlist.id != other_than)
    if db.session.scalar(query.limit(1)) is not None:
        db.session.rollback()
        raise _name_conflict(name)


def _commit(user_id: uuid.UUID, name: str) -> None:
    """Commit; the unique index refusing the name (a race the check above lost) is a 409."""
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise _name_conflict(name) from None


def _name_conflict(name: str) -> Conflict:
    return Conflict("you already have a watchlist of this name", {"name": name})


def _unknown(body: dict, fields: set[str]) -> dict[str, str]:
    unknown = sorted(set(body) - fields)
    return {"unknown_fields": ", ".join(name[:40] for name in unknown)} if unknown else {}


def _name(body: dict, errors: dict, required: bool) -> str | None:
    if "name" not in body and not required:
        return None
    value = body.get("name")
    if not isinstance(value, str):
        errors["name"] = f"required, a string of 1 to {NAME_MAX} characters"
        return None
    name = value.strip()
    if not 0 < len(name) <= NAME_MAX:
        errors["name"] = f"must be 1 to {NAME_MAX} characters (after trimming spaces)"
    elif any(unicodedata.category(c) == "Cc" for c in name):
        errors["name"] = "must not contain control characters"
    else:
        return name
    return None


def _instrument_ids(body: dict, errors: dict) -> list[int] | None:
    if "instrument_ids" not in body:
        return None
    ids = body["instrument_ids"]
    if not isinstance(ids, list) or not all(is_int(i) and 0 < i <= MAX_ID for i in ids):
        errors["instrument_ids"] = "must be a list of instrument ids (positive integers)"
    elif len(ids) > MAX_INSTRUMENTS:
        errors["instrument_ids"] = f"at most {MAX_INSTRUMENTS} instruments per watchlist, got {len(ids)}"
    elif len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        errors["instrument_ids"] = f"duplicates: {', '.join(map(str, repeated[:20]))}"
    else:
        return ids
    return None


def _known_instruments(ids: list[int]) -> set[int]:
    if not ids:
        return set()
    return set(db.session.scalars(sa.select(Instrument.id).where(Instrument.id.in_(ids))))
