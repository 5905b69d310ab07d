from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tradingapp.extensions import db
from tradingapp.models.instruments import Instrument
from tradingapp.models.types import BigIntPK, Price, UTCDateTime, dec, iso, utcnow

OPEN_ORDERS = "status NOT IN ('FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED')"  # as in migration 0003_risk


class Order(db.Model):
    __tablename__ = "orders"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "client_order_id", name="uq_orders_user_client_order_id"),
        sa.Index("ix_orders_user_created", "user_id", "created_at"),
        sa.Index("ix_orders_status_updated", "status", "updated_at"),
        # The risk engine's "working orders of this user" (migration 0003_risk).
        sa.Index(
            "ix_orders_user_open", "user_id", postgresql_where=sa.text(OPEN_ORDERS), sqlite_where=sa.text(OPEN_ORDERS)
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    client_order_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    broker: Mapped[str] = mapped_column(sa.String(16))
    broker_order_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    filled_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    average_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    # Exact sum of quantity x price of the fills (migration 0005): the exact average's numerator.
    filled_value: Mapped[Decimal] = mapped_column(Price(24, 4), default=Decimal(0))
    order_type: Mapped[str] = mapped_column(sa.String(16))
    limit_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    stop_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    product: Mapped[str] = mapped_column(sa.String(8))
    time_in_force: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(20))
    reject_reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    pending_quantity: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    pending_limit_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    pending_stop_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    modify_seq: Mapped[int] = mapped_column(sa.Integer, default=0)
    # The X-Request-ID of the request that placed it (migration 0013): the order's trace id in the
    # logs of every process (README "Tracing an order"). None for orders from before 0013.
    request_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    instrument: Mapped[Instrument] = relationship(lazy="joined")

    def to_dict(self) -> dict:
        return {
            "id": str(self.id),
            "client_order_id": self.client_order_id,
            "broker_order_id": self.broker_order_id,
            "instrument_id": self.instrument_id,
            "symbol": self.instrument.symbol,
            "exchange_segment": self.instrument.exchange_segment,
            "side": self.side,
            "quantity": self.quantity,
            "filled_quantity": self.filled_quantity,
            "average_price": dec(self.average_price),
            "order_type": self.order_type,
            "limit_price": dec(self.limit_price),
            "stop_price": dec(self.stop_price),
            "product": self.product,
            "time_in_force": self.time_in_force,
            "status": self.status,
            "reject_reason": self.reject_reason,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class OrderEvent(db.Model):
    """Audit trail: one row per state change or refusal (who, when, what, why)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(16))  # user | system | broker
    actor_id: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    event: Mapped[str] = mapped_column(sa.String(32))
    from_status: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    to_status: Mapped[str | None] = mapped_column(sa.String(20), nullable=True)
    reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    source_event_id: Mapped[str | None] = mapped_column(sa.String(100), nullable=True)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "order_id": str(self.order_id),
            "ts": iso(self.ts),
            "actor": self.actor,
            "actor_id": self.actor_id,
            "event": self.event,
            "from_status": self.from_status,
            "to_status": self.to_status,
            "reason": self.reason,
            "details": self.details or {},
        }
