"""Instrument reference data as the API reads it: search (keyset pages by id) and one by its id."""

from __future__ import annotations

import sqlalchemy as sa

from tradingapp.domain.errors import NotFound
from tradingapp.domain.validation import MAX_ID
from tradingapp.extensions import db
from tradingapp.models import Instrument


def search_instruments(
    limit: int, text: str = "", segment: str | None = None, include_inactive: bool = False, after_id: int | None = None
) -> tuple[list[Instrument], bool]:
    """Up to `limit` instruments whose symbol or name contains `text` (any case), by id after
    `after_id`, and whether more follow. Inactive ones only when asked: they cannot be traded."""
    query = sa.select(Instrument).order_by(Instrument.id).limit(limit + 1)
    if text:
        pattern = f"%{text.lower()}%"
        query = query.where(
            sa.or_(sa.func.lower(Instrument.symbol).like(pattern), sa.func.lower(Instrument.name).like(pattern))
        )
    if not include_inactive:
        query = query.where(Instrument.active)
    if segment:
        query = query.where(Instrument.exchange_segment == segment.upper())
    if after_id is not None:
        query = query.where(Instrument.id > after_id)
    rows = db.session.scalars(query).all()
    return rows[:limit], len(rows) > limit


def get_instrument(instrument_id: int) -> Instrument:
    # An id past the column's range is never looked up: PostgreSQL would refuse the parameter.
    instrument = db.session.get(Instrument, instrument_id) if 0 < instrument_id <= MAX_ID else None
    if instrument is None:
        raise NotFound("instrument not found")
    return instrument
