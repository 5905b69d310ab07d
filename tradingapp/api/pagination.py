"""Opaque keyset cursors: base64 of a small JSON list."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime

import orjson

from tradingapp.domain.validation import MAX_ID
from tradingapp.errors import validation_error

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise validation_error("limit must be an integer", limit=raw) from None
    if not 1 <= limit <= MAX_LIMIT:
        raise validation_error(f"limit must be between 1 and {MAX_LIMIT}", limit=limit)
    return limit


def encode_cursor(values: list) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise validation_error("invalid cursor") from None
    if not isinstance(values, list) or len(values) != length:
        raise validation_error("invalid cursor")
    return values


def encode_time_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    """The cursor after a row of a newest-first page keyed by (time, id)."""
    return encode_cursor([moment.isoformat(), str(row_id)])


def decode_time_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """What encode_time_cursor made: an aware ISO time and a UUID, both strings; anything else is a 400."""
    moment, row_id = decode_cursor(cursor, 2)
    if not isinstance(moment, str) or not isinstance(row_id, str):
        raise validation_error("invalid cursor")
    try:
        moment, row_id = datetime.fromisoformat(moment), uuid.UUID(row_id)
        if moment.tzinfo is None:  # the time columns hold UTC and refuse a naive time
            raise ValueError(moment)
        return moment.astimezone(UTC), row_id
    except (ValueError, OverflowError):  # OverflowError: year 1 or 9999 moved to UTC
        raise validation_error("invalid cursor") from None


def decode_id_cursor(cursor: str) -> int:
    """The cursor after a row of a page keyed by an integer id: an id the column can hold."""
    (row_id,) = decode_cursor(cursor, 1)
    if isinstance(row_id, bool) or not isinstance(row_id, int) or not 0 <= row_id <= MAX_ID:
        raise validation_error("invalid cursor")
    return row_id
