"""Fills and the positions they build, plus the consumer's dedupe table."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tradingapp.extensions import db
from tradingapp.models.instruments import Instrument
from tradingapp.models.types import Price, UTCDateTime, dec, iso, utcnow


class Trade(db.Model):
    __tablename__ = "trades"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "execution_id", name="uq_trades_order_execution"),
        sa.Index("ix_trades_user_traded", "user_id", "traded_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    order_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("orders.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    side: Mapped[str] = mapped_column(sa.String(4))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    price: Mapped[Decimal] = mapped_column(Price(18, 4))
    execution_id: Mapped[str] = mapped_column(sa.String(64))
    traded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def to_dict(self) -> dict:
        return {
            "id": str(self.id),
            "order_id": str(self.order_id),
            "instrument_id": self.instrument_id,
            "side": self.side,
            "quantity": self.quantity,
            "price": dec(self.price),
            "traded_at": iso(self.traded_at),
        }


def _opening_basis(context) -> Decimal:
    """A row inserted with a quantity and an average price but no basis opens at quantity x average."""
    params = context.get_current_parameters()
    return (params.get("quantity") or 0) * Decimal(params.get("average_price") or 0)


class Position(db.Model):
    __tablename__ = "positions"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "instrument_id", "product", name="uq_positions_user_instrument_product"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    instrument_id: Mapped[int] = mapped_column(sa.ForeignKey("instruments.id"))
    product: Mapped[str] = mapped_column(sa.String(8))
    quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    # Derived for display: cost_basis / quantity to 4 places (domain.positions.average_price).
    average_price: Mapped[Decimal] = mapped_column(Price(18, 4), default=Decimal(0))
    # Exact cost of the open quantity, signed like it (migration 0005); P&L is computed from it.
    cost_basis: Mapped[Decimal] = mapped_column(Price(24, 4), default=_opening_basis)
    realized_pnl: Mapped[Decimal] = mapped_column(Price(20, 4), default=Decimal(0))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Today's activity (session day `day`), reset by the first fill of a new day.
    day: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    day_buy_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    day_buy_value: Mapped[Decimal] = mapped_column(Price(20, 4), default=Decimal(0))
    day_sell_quantity: Mapped[int] = mapped_column(sa.Integer, default=0)
    day_sell_value: Mapped[Decimal] = mapped_column(Price(20, 4), default=Decimal(0))
    day_realized_pnl: Mapped[Decimal] = mapped_column(Price(20, 4), default=Decimal(0))

    instrument: Mapped[Instrument] = relationship(lazy="joined")

    def to_dict(self, last_price: Decimal | None = None) -> dict:
        unrealized = None
        if last_price is not None:
            unrealized = last_price * self.quantity - self.cost_basis
        return {
            "instrument_id": self.instrument_id,
            "symbol": self.instrument.symbol,
            "product": self.product,
            "quantity": self.quantity,
            "average_price": dec(self.average_price),
            "last_price": dec(last_price),
            "realized_pnl": dec(self.realized_pnl),
            "unrealized_pnl": dec(unrealized),
        }


class ProcessedEvent(db.Model):
    """Event ids the consumer has applied; the insert shares the transaction of the change."""

    __tablename__ = "processed_events"

    event_id: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
