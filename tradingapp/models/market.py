"""Tick history (a TimescaleDB hypertable where the extension exists)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from tradingapp.extensions import db
from tradingapp.models.types import Price, UTCDateTime


class Tick(db.Model):
    __tablename__ = "ticks"

    # (instrument_id, ts, seq) is the natural key: a redelivered tick is a no-op.
    instrument_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    seq: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    ltp: Mapped[Decimal] = mapped_column(Price(18, 4))
    ltq: Mapped[int] = mapped_column(sa.Integer, default=0)
    bid: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    ask: Mapped[Decimal | None] = mapped_column(Price(18, 4), nullable=True)
    bid_qty: Mapped[int] = mapped_column(sa.Integer, default=0)
    ask_qty: Mapped[int] = mapped_column(sa.Integer, default=0)
    volume: Mapped[int] = mapped_column(sa.BigInteger, default=0)
