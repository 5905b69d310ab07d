"""The socket killed mid-session: the terminal says so, reconnects by itself once the websocket
process is back, re-subscribes its quotes and re-reads the books, so an order filled while it was
away shows FILLED."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import restart_websocket
from tests.browser.steps import expect_status, live_ltp, login, order_row, watchlist_row

pytestmark = pytest.mark.e2e
HDFCBANK = 4
# The terminal's backoff grows to 30 s between attempts; the outage here is a few seconds.
RECONNECT_WAIT_MS = 45_000


def test_the_socket_killed_mid_session_reconnects_and_catches_up(stack, trader, page):
    login(page, stack.base_url, trader)
    status = page.get_by_test_id("connection-status")
    expect(status).to_have_attribute("data-status", "open")
    live_ltp(page, HDFCBANK)

    stack.kill("websocket")
    try:
        expect(status).not_to_have_attribute("data-status", "open")
        # placed and filled while the terminal has no socket (another device, say)
        order = trader.post("/orders", {"instrument_id": HDFCBANK, "side": "BUY", "quantity": 1,
                                        "order_type": "MARKET", "product": "MIS"})  # fmt: skip
        trader.wait_order(order["id"], "FILLED")
    finally:
        restart_websocket(stack)

    expect(status).to_have_attribute("data-status", "open", timeout=RECONNECT_WAIT_MS)
    row = order_row(page, order["id"], "completed")
    expect_status(row, "FILLED", trader, order["id"])
    expect(row.get_by_test_id("orders-filled")).to_have_text("1 / 1")

    page.get_by_test_id("nav-positions").click()
    expect(page.get_by_test_id(f"positions-row-{HDFCBANK}-MIS").get_by_test_id("positions-qty")).to_have_text("1")
    # quotes flow again on the new socket: the price moves without a reload
    page.get_by_test_id("nav-chart").click()
    ltp = watchlist_row(page, HDFCBANK).get_by_test_id("watchlist-ltp")
    before = ltp.inner_text()
    expect(ltp).not_to_have_text(before)
