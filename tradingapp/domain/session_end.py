"""The daily session end (a wall-clock time in the session's time zone): when the session that
followed a moment ends, and the latest end before now. A DAY order lives within one session: the
paper exchange expires it at that end, and the worker never sends one whose session is over.
Plain values, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, tzinfo


def session_end_after(moment: datetime, end: time, zone: tzinfo) -> datetime:
    """The first session end strictly after `moment` (UTC)."""
    local = moment.astimezone(zone)
    close = datetime.combine(local.date(), end, tzinfo=zone)
    if close <= local:
        close = datetime.combine(local.date() + timedelta(days=1), end, tzinfo=zone)
    return close.astimezone(UTC)


def last_session_end(now: datetime, end: time, zone: tzinfo) -> datetime:
    """The latest session end at or before `now` (UTC). An order created before it is past the
    session end that followed its creation."""
    local = now.astimezone(zone)
    close = datetime.combine(local.date(), end, tzinfo=zone)
    if close > local:
        close = datetime.combine(local.date() - timedelta(days=1), end, tzinfo=zone)
    return close.astimezone(UTC)
