from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import UTCDateTime, utcnow

ROLES = ("admin", "trader", "viewer")


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    role: Mapped[str] = mapped_column(sa.String(16), default="trader")
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Every token carries the generation it was issued under; raising it (deactivation) ends every
    # token the user holds, whatever second it was issued in. The authority: this row, not Redis.
    token_generation: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")

    def to_dict(self) -> dict:
        return {"id": str(self.id), "email": self.email, "name": self.name, "role": self.role}


class RevokedSession(db.Model):
    """A logged-out session (the `sid` its access and refresh tokens share), kept until its tokens
    would have expired anyway. Redis caches it (tradingapp/security/auth.py); this table decides."""

    __tablename__ = "revoked_sessions"

    sid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, sa.ForeignKey("users.id", ondelete="CASCADE"))
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
