"""Market-data gauges filled when scraped: how many instruments have gone stale, and whether the
session is open. The feed (or, with BROKER=xts, the XTS bridge) serves them: one process of each
deployment, beside the ticks it publishes.

- tradingapp_stale_instruments: instruments whose cached quote is older than QUOTE_STALE_AFTER, the
  threshold GET /quotes falls back to the broker's quote at and /ready reports. One ZCOUNT on the
  staleness index the quote script keeps (realtime.stale_instruments), so a scrape costs one round
  trip whatever the number of instruments.
- tradingapp_market_session_open: 1 from PAPER_SESSION_START to PAPER_SESSION_END (PAPER_SESSION_TZ)
  on weekdays, the market hours GET /api/v1/meta reports (domain/market_hours.py; no holiday
  calendar). The stale-data alert only means something while it is 1.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import Flask

from tradingapp import metrics
from tradingapp.domain.market_hours import market_session
from tradingapp.extensions import get_redis
from tradingapp.realtime import stale_instruments


def market_open(config, now: datetime | None = None) -> bool:
    """Whether the trading session is under way (the market hours of GET /api/v1/meta)."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo(config["PAPER_SESSION_TZ"])
    return market_session(now, config["PAPER_SESSION_START"], config["PAPER_SESSION_END"], zone).open


def collector(app: Flask) -> Callable[[], None]:
    """A refresher for metrics.serve(collectors=...): sets both gauges at each scrape. The session
    gauge is set first: Redis away leaves the stale count as it was (the scrape still answers)."""

    def refresh() -> None:
        config = app.config
        now = datetime.now(UTC)
        metrics.MARKET_OPEN.set(1 if market_open(config, now) else 0)
        with app.app_context():
            count, _ = stale_instruments(get_redis(), now, config["QUOTE_STALE_AFTER"], 0)
        metrics.STALE_INSTRUMENTS.set(count)

    return refresh
