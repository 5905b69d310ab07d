"""Broker accounts a user linked (their own XTS app key and secret), and the record of every link,
secret replacement and unlink.

Secrets are held only as Fernet ciphertext (tradingapp/security/crypto.py); unlinking erases them and keeps
the row, so the record stays readable. At most one active account per user and broker.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import BigIntPK, UTCDateTime, utcnow

BROKERS = ("xts",)


class BrokerAccount(db.Model):
    __tablename__ = "broker_accounts"
    __table_args__ = (
        sa.Index(
            "uq_broker_accounts_user_broker_active",
            "user_id",
            "broker",
            unique=True,
            postgresql_where=sa.text("active"),
            sqlite_where=sa.text("active"),
        ),
        sa.CheckConstraint("broker IN ('xts')", name="broker"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    broker: Mapped[str] = mapped_column(sa.String(16))
    label: Mapped[str] = mapped_column(sa.String(64), default="")
    app_key: Mapped[str] = mapped_column(sa.String(128))  # an identifier, not a secret; shown masked
    secret_key_encrypted: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    client_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)  # dealer accounts
    md_app_key: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    md_secret_key_encrypted: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    def __repr__(self) -> str:  # never the ciphertext either
        return f"<BrokerAccount {self.id} user={self.user_id} broker={self.broker} active={self.active}>"


class BrokerAccountEvent(db.Model):
    """Who linked, replaced the secrets of, or unlinked which account, and when (no secret in it)."""

    __tablename__ = "broker_account_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    account_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("broker_accounts.id"), index=True)
    actor_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(sa.String(32))  # linked | secrets_replaced | unlinked
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
