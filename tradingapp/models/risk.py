"""Risk: each user's account (cash, trading state, limit overrides, today's order count), the
global risk settings (one row), and the record of every admin change."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import BigIntPK, Price, UTCDateTime, iso, utcnow

GLOBAL_SETTINGS_ID = 1


class Account(db.Model):
    """Created on demand; the risk engine locks this row to serialise one user's orders."""

    __tablename__ = "accounts"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), primary_key=True)
    cash: Mapped[Decimal] = mapped_column(Price(20, 4))
    trading_state: Mapped[str] = mapped_column(sa.String(10), default="ACTIVE")
    state_reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    limit_overrides: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    day: Mapped[date | None] = mapped_column(sa.Date, nullable=True)  # session day of orders_today
    orders_today: Mapped[int] = mapped_column(sa.Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RiskSettings(db.Model):
    """The global defaults an admin set (over the built-in ones) and the global trading state."""

    __tablename__ = "risk_settings"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    trading_state: Mapped[str] = mapped_column(sa.String(10), default="ACTIVE")
    state_reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    limits: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"), nullable=True)


class AdminAction(db.Model):
    """Who changed what, when, and the value before and after."""

    __tablename__ = "admin_actions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    admin_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(32))
    target: Mapped[str] = mapped_column(sa.String(64))  # a user id, or "global"
    before: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)
    after: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "ts": iso(self.ts),
            "admin_id": str(self.admin_id),
            "action": self.action,
            "target": self.target,
            "before": self.before,
            "after": self.after,
        }
