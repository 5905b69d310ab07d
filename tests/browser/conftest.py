"""Browser tests of the terminal: Debian's chromium driven by Playwright's library against the real
stack (gunicorn backend serving frontend/dist, websocket, RQ worker, consumer, feed) on free ports.

Fixtures:
- `stack` (this package): the processes, on a database truncated and seeded with the demo users,
  the demo instruments and three hours of one-minute candles; the feed ticks every 250 ms.
- `admin`: an API session of the demo admin. `trader`: a new trader per test (registered over the
  API, so risk limits or a halt set for one test touch no other), with a watchlist of every demo
  instrument.
- `browser` (this package): chromium. `page`: a fresh context (1280x720) per test; its console is kept,
  and a failed test leaves `<test>.png` and `<test>.console.txt` in the artifacts folder
  ($TEST_ARTIFACTS, else tests/browser/artifacts/).
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.api import ApiUser
from tests.support.frontend_build import built_dist
from tests.support.net import free_port
from tests.support.stack import Stack, reset_to_demo_data, started
from tradingapp.cli import DEMO_INSTRUMENTS
from tradingapp.extensions import db

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).parent / "artifacts")
DESKTOP = {"width": 1280, "height": 720}
PHONE = {"width": 390, "height": 844}
DEMO_ADMIN = {"email": "admin@tradingapp.local", "password": "admin-password-123"}
PASSWORD = "browser-test-password-1"
CANDLE_MINUTES = 180
CANDLE_INSTRUMENT = 1  # RELIANCE
# Waits for the app to reach a state (never an assertion on how long it took).
expect.set_options(timeout=20_000)


# -- failure artifacts -------------------------------------------------------------------------
REPORTS = pytest.StashKey[dict]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


def _failed(item) -> bool:
    return any(r.failed for r in item.stash.get(REPORTS, {}).values())


def _artifact_name(item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid.split("::", 1)[-1])[:150]


# -- the stack ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    return built_dist()


def _seed_candles(instrument_id: int, minutes: int) -> None:
    """Closed one-minute candles ending two minutes ago: what the chart loads first."""
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    price = Decimal("2500.00")
    rows = []
    for n in range(minutes, 0, -1):
        bucket = end - timedelta(minutes=n)
        step = Decimal((n * 37) % 11 - 5) / 2
        open_, close = price, price + step
        high, low = max(open_, close) + Decimal("1.5"), min(open_, close) - Decimal("1.5")
        rows.append({"instrument_id": instrument_id, "bucket": bucket, "open": open_, "high": high, "low": low,
                     "close": close, "volume": 1000 + n * 7, "first_ts": bucket,
                     "last_ts": bucket + timedelta(seconds=59)})  # fmt: skip
        price = close
    columns = ", ".join(rows[0])
    values = ", ".join(f":{name}" for name in rows[0])
    db.session.execute(sa.text(f"INSERT INTO candles_1m ({columns}) VALUES ({values})"), rows)


@pytest.fixture(scope="package")
def stack(app, env, frontend_dist):
    reset_to_demo_data(app, lambda: _seed_candles(CANDLE_INSTRUMENT, CANDLE_MINUTES))
    ws_port = free_port()
    running = Stack(
        # Every test registers its trader from 127.0.0.1: past the per-address registration throttle.
        {
            **env,
            "FEED_INTERVAL_MS": "250",
            "FRONTEND_DIST": str(frontend_dist),
            "WEBSOCKET_PORT": str(ws_port),
            "REGISTER_MAX_PER_ADDRESS": "100000",
        },
        ws_port=ws_port,
    )
    with started(running):
        yield running


def restart_websocket(stack: Stack) -> None:
    """Start the websocket process again on its port (after stack.kill('websocket'))."""
    argv, extra = stack.commands()["websocket"]
    stack.start_one("websocket", argv, extra)
    stack.wait_http(f"http://127.0.0.1:{stack.ws_port}/health", "websocket")


@pytest.fixture(scope="package")
def admin(stack) -> ApiUser:
    return ApiUser(stack.base_url, **DEMO_ADMIN).login()


@pytest.fixture
def trader(stack) -> ApiUser:
    """A new trader with one watchlist holding every demo instrument (ids 1..6, RELIANCE first)."""
    email = f"trader-{uuid.uuid4().hex[:10]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Browser Trader"}
    response = requests.post(f"{stack.base_url}/api/v1/auth/register", json=body, timeout=10)
    assert response.status_code == 202, response.text  # the same for a taken email (docs/security.md)
    user = ApiUser(stack.base_url, email, PASSWORD).login()
    watchlist = user.post("/watchlists", {"name": "Watchlist 1"})
    for instrument_id in range(1, len(DEMO_INSTRUMENTS) + 1):
        user.put(f"/watchlists/{watchlist['id']}/instruments/{instrument_id}")
    return user


# -- the browser -------------------------------------------------------------------------------
@pytest.fixture(scope="package")
def playwright_driver():
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver) -> Browser:
    launched = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield launched
    launched.close()


@pytest.fixture
def page(browser, request) -> Page:
    yield from _page_with_artifacts(browser, request, DESKTOP)


@pytest.fixture
def phone_page(browser, request) -> Page:
    yield from _page_with_artifacts(browser, request, PHONE)


def _page_with_artifacts(browser, request, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(20_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
    page.on("pageerror", lambda e: console.append(f"[pageerror] {e}"))
    page.on("requestfailed", lambda r: console.append(f"[requestfailed] {r.method} {r.url} {r.failure}"))
    try:
        yield page
    finally:
        if _failed(request.node):
            save_artifacts(request.node, page, console)
        context.close()


def save_artifacts(item, page: Page, console: list[str]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = _artifact_name(item)
    try:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    except Exception as exc:  # a crashed page still gets its console saved
        console.append(f"[screenshot failed] {exc}")
    (ARTIFACTS / f"{name}.console.txt").write_text(f"url: {page.url}\n" + "\n".join(console) + "\n")
