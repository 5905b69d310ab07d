"""Watchlists: a user's named lists of instruments, in the order the user keeps them.

The rules (at most 10 lists of 250 instruments, names unique per user ignoring case) live in
tradingapp/services/accounts/watchlists.py; the case-insensitive unique index backs the name rule.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import UTCDateTime, utcnow


class Watchlist(db.Model):
    __tablename__ = "watchlists"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(40))
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


sa.Index("uq_watchlists_user_id_name", Watchlist.user_id, sa.func.lower(Watchlist.name), unique=True)


class WatchlistItem(db.Model):
    """One instrument of a list; `position` orders the list (gaps allowed)."""

    __tablename__ = "watchlist_items"

    watchlist_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("watchlists.id", ondelete="CASCADE"), primary_key=True
    )
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer)
