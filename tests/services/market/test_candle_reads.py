"""The candle read path on Postgres (services/candles.query_candles): bucket starts come from SQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tradingapp.services.market.candles import query_candles
from tradingapp.services.market.ticks import ingest_ticks

DAY = datetime(2026, 11, 23, 3, 45, tzinfo=UTC)  # 09:15 in Asia/Kolkata


@pytest.mark.parametrize(
    ("interval", "starts"),
    [
        ("1m", [DAY, DAY + timedelta(minutes=50)]),
        ("15m", [DAY, DAY + timedelta(minutes=45)]),
        ("1h", [DAY - timedelta(minutes=15), DAY + timedelta(minutes=45)]),  # 09:00 and 10:00 local
        ("1d", [datetime(2026, 11, 22, 18, 30, tzinfo=UTC)]),  # local midnight
    ],
)
def test_bucket_starts_are_utc_whatever_the_sessions_time_zone(db, interval, starts):
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": DAY.isoformat(), "ltp": "100", "ltq": 1},
                  {"instrument_id": 1, "seq": 2, "ts": (DAY + timedelta(minutes=50)).isoformat(), "ltp": "101",
                   "ltq": 1}])  # fmt: skip
    db.session.execute(sa.text("SET TimeZone = 'America/New_York'"))
    try:
        candles = query_candles(1, interval, DAY - timedelta(days=1), DAY + timedelta(days=1), "Asia/Kolkata")
    finally:
        db.session.execute(sa.text("RESET TimeZone"))
    assert [c["ts"] for c in candles] == starts
    assert all(c["ts"].tzinfo is UTC for c in candles)
    assert (candles[0]["open"], candles[-1]["close"], sum(c["volume"] for c in candles)) == (100, 101, 2)
