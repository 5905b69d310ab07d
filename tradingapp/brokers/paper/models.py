"""The paper exchange's own book. It is the broker's state, not ours: our orders table is never
read by the exchange, exactly as a real broker never sees our database.

`paper_orders` holds each order's working state; `paper_events` is the exchange's journal: every
event it ever sent about an order (accepted, each fill, each modify answer, the final cancel,
expiry or reject), numbered per order, with its deterministic id and the time of the fact. The
fills are its `order.fill` rows (n, quantity, price, ts). Re-sending an order's events is reading
its journal in order.
"""

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
    __table_args__ = (
        sa.Index("ix_paper_orders_instrument_status", "instrument_id", "status"),
        sa.Index("ix_paper_orders_status_created", "status", "created_at"),  # session expiry
    )

    # Our order id is the exchange's unique client identifier: a second place is a no-op.
    order_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    broker_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    instrument_id: Mapped[int] = mapped_column(sa.Integer)
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[int] = mapped_column(sa.Integer)  # 0 only for a tombstone (cancelled before arrival)
    filled_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    order_type: Mapped[str] = mapped_column(sa.String(16))
    time_in_force: Mapped[str] = mapped_column(sa.String(8), default="DAY")
    limit_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    stop_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    fill_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)  # average of the fills
    status: Mapped[str] = mapped_column(sa.String(16))  # open | filled | cancelled | rejected | expired
    reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
    # When a STOP / STOP_LIMIT order's stop was reached (None: still waiting).
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # When the current terms took effect (arrival or last modification): no older tick fills it.
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The newest tick already applied to it: a redelivered tick batch never fills it twice.
    matched_through: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    modify_seq: Mapped[int] = mapped_column(sa.Integer, default=0)  # highest modification answered
    fill_count: Mapped[int] = mapped_column(sa.Integer, default=0)  # n of the last fill
    event_count: Mapped[int] = mapped_column(sa.Integer, default=0)  # pos of the last journal row
    # Every journal row up to this pos is known to be published; later ones are re-sent, in
    # order, before any newer event of the order.
    published_pos: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Optimistic lock: every ORM update checks and bumps it, so two writers never both apply.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __mapper_args__ = {"version_id_col": version}


class PaperEvent(db.Model):
    """One event the exchange sent about an order, kept so it can be sent again unchanged."""

    __tablename__ = "paper_events"

    order_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("paper_orders.order_id", ondelete="CASCADE"), primary_key=True
    )
    pos: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 1, 2, ... per order
    event_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)  # the time of the fact, not of a send
    n: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)  # fill number or modification seq
    quantity: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    limit_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    stop_price: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    reason: Mapped[str | None] = mapped_column(sa.String(255), nullable=True)
