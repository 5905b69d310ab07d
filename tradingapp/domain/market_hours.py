"""Market hours as the terminal shows them: a session from `start` to `end` (local wall clock of
`zone`) on weekdays. No holiday calendar. Plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

SATURDAY = 5


@dataclass(frozen=True)
class MarketSession:
    """The session now under way, else the next one: open says which; times are UTC."""

    open: bool
    opens_at: datetime
    closes_at: datetime


def market_session(now: datetime, start: time, end: time, zone: tzinfo) -> MarketSession:
    """The current session if `now` is inside one, else the next weekday session to come."""
    local = now.astimezone(zone)
    day = local.date()
    while True:
        opens = datetime.combine(day, start, tzinfo=zone)
        closes = datetime.combine(day, end, tzinfo=zone)
        if day.weekday() < SATURDAY and local < closes:
            return MarketSession(opens <= local, opens.astimezone(UTC), closes.astimezone(UTC))
        day += timedelta(days=1)
