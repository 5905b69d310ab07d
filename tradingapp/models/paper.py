"""The paper exchange's own book. It is the broker's state, not ours: our orders table is never
read by the exchange, exactly as a real broker never sees our database."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import Price, UTCDateTime, utcnow


class PaperOrder(db.Model):
    __tablename__ = "paper_orders"
    __table_args__ = (sa.Index("ix_paper_orders_instrument_status", "instrument_id", "status"),)

    # Our order id is the exchange's unique client identifier: a second place is a no-op.
    order_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    broker_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    instrument_id: Mapped[int] = mapped_column(sa.Integer)
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    filled_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    order_type: Mapped[str] = mapped_column(sa.String(16))
    limit_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    fill_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    status: Mapped[str] = mapped_column(sa.String(16))  # open | filled | cancelled | rejected
    reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
