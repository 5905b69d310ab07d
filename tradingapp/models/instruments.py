from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import Price


class Instrument(db.Model):
    __tablename__ = "instruments"
    __table_args__ = (sa.UniqueConstraint("exchange_segment", "exchange_instrument_id"),)

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    exchange_segment: Mapped[str] = mapped_column(sa.String(16))
    exchange_instrument_id: Mapped[int] = mapped_column(sa.BigInteger)
    symbol: Mapped[str] = mapped_column(sa.String(64), index=True)
    name: Mapped[str] = mapped_column(sa.String(128), default="")
    series: Mapped[str] = mapped_column(sa.String(16), default="")
    lot_size: Mapped[int] = mapped_column(sa.Integer, default=1)
    tick_size: Mapped[Decimal] = mapped_column(Price(18, 4))
    expiry: Mapped[date | None] = mapped_column(sa.Date, nullable=True)
    strike: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    option_type: Mapped[str | None] = mapped_column(sa.String(2), nullable=True)
    freeze_quantity: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    # False once the broker's instrument master no longer lists it (`flask instruments sync`): kept
    # for the orders, trades and candles that refer to it, but no new order is accepted on it.
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True, server_default=sa.true())

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "exchange_segment": self.exchange_segment,
            "exchange_instrument_id": self.exchange_instrument_id,
            "symbol": self.symbol,
            "name": self.name,
            "series": self.series,
            "lot_size": self.lot_size,
            "tick_size": str(self.tick_size),
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "strike": str(self.strike) if self.strike is not None else None,
            "option_type": self.option_type,
            "freeze_quantity": self.freeze_quantity,
            "active": self.active,
        }
