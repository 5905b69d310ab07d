"""The Price column type keeps decimals exact, and SQL comparisons numeric, on SQLite too."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tradingapp.models.types import Price

metadata = sa.MetaData()
prices = sa.Table("prices", metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("p", Price(18, 4)))


@pytest.fixture
def sqlite_engine():
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def test_values_round_trip_exactly(sqlite_engine):
    values = [Decimal("950.05"), Decimal("1900.0500"), Decimal("0.0001"), Decimal("-12.5"), Decimal("99999999.9999")]
    with sqlite_engine.begin() as conn:
        conn.execute(prices.insert(), [{"p": v} for v in values])
        stored = conn.execute(sa.select(prices.c.p).order_by(prices.c.id)).scalars().all()
    assert stored == values


def test_comparisons_are_numeric_not_textual(sqlite_engine):
    with sqlite_engine.begin() as conn:
        conn.execute(prices.insert(), [{"p": Decimal("950.00")}, {"p": Decimal("1900.05")}])
        above = conn.execute(sa.select(prices.c.p).where(prices.c.p >= Decimal("1000"))).scalars().all()
        ordered = conn.execute(sa.select(prices.c.p).order_by(prices.c.p)).scalars().all()
    assert above == [Decimal("1900.05")]
    assert ordered == [Decimal("950.00"), Decimal("1900.05")]


def test_more_decimals_than_the_scale_are_refused(sqlite_engine):
    with sqlite_engine.begin() as conn, pytest.raises(sa.exc.StatementError):
        conn.execute(prices.insert(), [{"p": Decimal("1.00001")}])
