"""The daily session end (tradingapp/domain/session_end.py): pure, no services."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from tradingapp.domain.session_end import last_session_end, session_end_after

IST = ZoneInfo("Asia/Kolkata")
CLOSE = time(15, 30)


def test_session_end_after_a_morning_order_is_that_afternoon():
    created = datetime(2026, 11, 24, 4, 0, tzinfo=UTC)  # 09:30 IST
    assert session_end_after(created, CLOSE, IST) == datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_session_end_after_an_evening_order_is_the_next_day():
    created = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)  # 15:30 IST exactly: that session is over
    assert session_end_after(created, CLOSE, IST) == datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def test_last_session_end_is_today_after_the_close_and_yesterday_before_it():
    assert last_session_end(datetime(2026, 11, 24, 10, 0, tzinfo=UTC), CLOSE, IST) == datetime(
        2026, 11, 24, 10, 0, tzinfo=UTC
    )
    assert last_session_end(datetime(2026, 11, 24, 9, 59, tzinfo=UTC), CLOSE, IST) == datetime(
        2026, 11, 23, 10, 0, tzinfo=UTC
    )


moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC))
zones = st.sampled_from(["Asia/Kolkata", "UTC", "America/New_York", "Europe/London", "Australia/Sydney"])


@given(created=moments, later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
       end=st.times(), zone=zones)  # fmt: skip
def test_past_the_last_session_end_exactly_when_the_session_after_creation_ended(created, later, end, zone):
    tz = ZoneInfo(zone)
    now = created + later
    assert (created < last_session_end(now, end, tz)) == (session_end_after(created, end, tz) <= now)
