"""GET /api/v1/meta (no auth), the market hours it reports, and the settings behind it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

import config as settings
from config import Config, ConfigError, git_version
from tradingapp import create_app
from tradingapp.domain.market_hours import market_session

IST = ZoneInfo("Asia/Kolkata")
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def meta_of(env: dict, **overrides) -> dict:
    app = create_app(settings.TestConfig({**env, **overrides}))
    response = app.test_client().get("/api/v1/meta")
    assert response.status_code == 200
    return response.get_json()


def test_meta_answers_without_auth_and_is_not_cached(client):
    before = datetime.now(UTC)
    response = client.get("/api/v1/meta")
    after = datetime.now(UTC)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert set(body) == {"server_time", "timezone", "market", "registration_open", "broker", "websocket_url",
                         "websocket_port", "version"}  # fmt: skip
    assert ISO_MS.match(body["server_time"])
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= utc(body["server_time"]) <= after
    assert (body["timezone"], body["broker"], body["websocket_url"], body["websocket_port"]) == (
        "Asia/Kolkata", "paper", None, 8081,
    )  # fmt: skip
    assert body["registration_open"] is True
    assert isinstance(body["version"], str) and body["version"]


def test_meta_market_is_the_session_under_way_or_the_next(client):
    market = client.get("/api/v1/meta").get_json()["market"]
    assert set(market) == {"open", "opens_at", "closes_at"}
    opens, closes = utc(market["opens_at"]), utc(market["closes_at"])
    assert ISO_MS.match(market["opens_at"]) and ISO_MS.match(market["closes_at"])
    assert (opens.astimezone(IST).time(), closes.astimezone(IST).time()) == (time(9, 15), time(15, 30))
    assert opens.astimezone(IST).date() == closes.astimezone(IST).date()
    assert opens.astimezone(IST).weekday() < 5
    now = datetime.now(UTC)
    assert now < closes
    assert market["open"] == (opens <= now)


def test_meta_follows_the_configuration(env):
    body = meta_of(env, ALLOW_REGISTRATION="false", BROKER="xts", WEBSOCKET_PUBLIC_URL="wss://example.com/ws",
                   WEBSOCKET_PORT="9443", APP_VERSION="1.2.3", SESSION_TIMEZONE="Europe/London",
                   PAPER_SESSION_TZ="Asia/Kolkata", PAPER_SESSION_START="10:00", PAPER_SESSION_END="11:00")  # fmt: skip
    assert body["registration_open"] is False
    assert (body["broker"], body["websocket_url"], body["websocket_port"]) == ("xts", "wss://example.com/ws", 9443)
    assert (body["version"], body["timezone"]) == ("1.2.3", "Europe/London")
    opens = utc(body["market"]["opens_at"]).astimezone(IST)
    closes = utc(body["market"]["closes_at"]).astimezone(IST)
    assert (opens.time(), closes.time()) == (time(10, 0), time(11, 0))


# -- market hours (plain values) -----------------------------------------------------------------
def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of the week of Monday 2026-11-23, IST."""
    return datetime(2026, 11, day, hour, minute, tzinfo=IST)


def session(now: datetime):
    return market_session(now, time(9, 15), time(15, 30), IST)


@pytest.mark.parametrize(
    ("now", "is_open", "opens", "closes"),
    [
        (at(23, 8), False, at(23, 9, 15), at(23, 15, 30)),  # Monday before the open
        (at(23, 9, 15), True, at(23, 9, 15), at(23, 15, 30)),  # the opening minute
        (at(23, 12), True, at(23, 9, 15), at(23, 15, 30)),
        (at(23, 15, 30), False, at(24, 9, 15), at(24, 15, 30)),  # the close: next is Tuesday
        (at(27, 16), False, at(30, 9, 15), at(30, 15, 30)),  # Friday evening: next is Monday
        (at(28, 11), False, at(30, 9, 15), at(30, 15, 30)),  # Saturday
        (at(29, 23, 59), False, at(30, 9, 15), at(30, 15, 30)),  # Sunday night
    ],
)
def test_market_session(now, is_open, opens, closes):
    result = session(now.astimezone(UTC))
    assert (result.open, result.opens_at, result.closes_at) == (is_open, opens, closes)
    assert result.opens_at.tzinfo == UTC


def test_market_session_times_are_utc():
    assert session(at(23, 12)).opens_at == datetime(2026, 11, 23, 3, 45, tzinfo=UTC)


# -- settings -----------------------------------------------------------------------------------------
def test_new_settings_default():
    config = Config({})
    assert config.WEBSOCKET_PUBLIC_URL is None
    assert config.FRONTEND_DIST.endswith("frontend/dist")
    assert config.PAPER_SESSION_START == time(9, 15)
    assert config.APP_VERSION


def test_frontend_dist_may_be_relative_to_the_repository_or_absolute(tmp_path):
    assert Config({"FRONTEND_DIST": str(tmp_path)}).FRONTEND_DIST == str(tmp_path)
    relative = Config({"FRONTEND_DIST": "build/web"}).FRONTEND_DIST
    assert relative.endswith("/build/web") and relative.startswith("/")


@pytest.mark.parametrize("url", ["ws://localhost:8081/ws", "wss://trading.example.com/ws", "wss://host"])
def test_websocket_public_url_accepts_ws_urls(url):
    assert Config({"WEBSOCKET_PUBLIC_URL": f" {url} "}).WEBSOCKET_PUBLIC_URL == url


@pytest.mark.parametrize("url", ["http://example.com/ws", "example.com/ws", "wss://", "wss://a b/ws"])
def test_websocket_public_url_refuses_other_urls(url):
    with pytest.raises(ConfigError, match="WEBSOCKET_PUBLIC_URL"):
        Config({"WEBSOCKET_PUBLIC_URL": url})


def test_session_start_must_precede_its_end():
    with pytest.raises(ConfigError, match="PAPER_SESSION_START"):
        Config({"PAPER_SESSION_START": "15:30"})
    with pytest.raises(ConfigError, match="PAPER_SESSION_START"):
        Config({"PAPER_SESSION_START": "9h"})


def test_git_version_reads_the_checkouts_commit(tmp_path):
    assert git_version(tmp_path) == "dev"
    sha = "0123456789abcdef0123456789abcdef01234567"
    (tmp_path / ".git" / "refs" / "heads").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (tmp_path / ".git" / "packed-refs").write_text(f"# pack-refs\n{sha} refs/heads/main\n")
    assert git_version(tmp_path) == sha[:12]
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text("fedcba9876543210fedcba9876543210fedcba98\n")
    assert git_version(tmp_path) == "fedcba987654"
    (tmp_path / ".git" / "HEAD").write_text(sha + "\n")  # detached
    assert git_version(tmp_path) == sha[:12]
