"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class Price(TypeDecorator):
    """Exact decimals: NUMERIC on Postgres; on SQLite (no exact decimal type) an integer count of
    10^-scale units, which keeps values exact and makes SQL comparisons and ORDER BY numeric
    (text would compare '950.00' above '1900.05')."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int = 18, scale: int = 4):
        super().__init__(precision, scale, asdecimal=True)
        self.scale = scale

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.impl.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        if dialect.name != "sqlite":
            return value
        units = value.scaleb(self.scale)
        if units != units.to_integral_value():
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return int(units)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(value).scaleb(-self.scale)
        return Decimal(value)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone on the way in)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        if value is not None and dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and a Z, as API.md shows."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def dec(value: Decimal | None) -> str | None:
    """A decimal as JSON text, the same on every backend: no trailing zeros, never an exponent
    (NUMERIC(18,4) gives 2500.0500, the client sent 2500.05)."""
    if value is None:
        return None
    return format(value.normalize(), "f") if value else "0"
