"""Opaque keyset cursors: base64 of a small JSON list."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime

import orjson

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
    moment, row_id = decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(moment), uuid.UUID(row_id)
    except (TypeError, ValueError):
        raise validation_error("invalid cursor") from None
