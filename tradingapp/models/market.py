"""Tick history (a TimescaleDB hypertable where the extension is installed and preloaded, migration
0014; a plain table otherwise: the same queries work on both) and one-minute candles (a hypertable
too on TimescaleDB, 0015, the source of the continuous aggregates listed in candle_aggregates)."""

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


class Candle1m(db.Model):
    """One instrument's minute: kept by services/market/candles.py as ticks are stored."""

    __tablename__ = "candles_1m"

    instrument_id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)  # minute start, UTC
    open: Mapped[Decimal] = mapped_column(Price(18, 4))
    high: Mapped[Decimal] = mapped_column(Price(18, 4))
    low: Mapped[Decimal] = mapped_column(Price(18, 4))
    close: Mapped[Decimal] = mapped_column(Price(18, 4))
    volume: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # (ts, seq) of the earliest and latest tick counted: order open/close when ticks arrive late.
    first_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    last_ts: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    last_seq: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")


class CandleAggregate(db.Model):
    """A TimescaleDB continuous aggregate of candles_1m the candles route may read (migration 0015;
    none on plain PostgreSQL): its interval, view, and where its buckets start (intraday: seconds
    past a multiple of the step, UTC; 1d: the zone whose local days it buckets)."""

    __tablename__ = "candle_aggregates"

    candle_interval: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    view_name: Mapped[str] = mapped_column(sa.String(63))
    step_seconds: Mapped[int] = mapped_column(sa.Integer)
    origin_seconds: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    zone: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
