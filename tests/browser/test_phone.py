"""The terminal on a phone (390x844): the watchlist, the order ticket and the orders book as full
screens behind the bottom tab bar, none wider than the screen."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE
from tests.browser.steps import (
    NUMBER,
    expect_status,
    fill_ticket,
    live_ltp,
    login,
    order_row,
    send_order,
    the_only_order,
    watchlist_row,
)
from tradingapp.cli import DEMO_INSTRUMENTS

pytestmark = pytest.mark.e2e
TCS = 2


def assert_fits_the_screen(page: Page, testid: str) -> None:
    box = page.get_by_test_id(testid).bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, f"{testid}: {box}"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on {testid}"


def test_a_phone_shows_the_watchlist_the_ticket_and_the_orders(stack, trader, phone_page):
    page = phone_page
    login(page, stack.base_url, trader)
    expect(page.get_by_test_id("bottom-tabs")).to_be_visible()
    expect(page.get_by_test_id("desktop-nav")).to_have_count(0)

    # the watchlist is the first screen
    expect(page.get_by_test_id("watchlist")).to_be_visible()
    for instrument_id in range(1, len(DEMO_INSTRUMENTS) + 1):
        expect(watchlist_row(page, instrument_id).get_by_test_id("watchlist-ltp")).to_have_text(NUMBER)
    assert_fits_the_screen(page, "watchlist")

    # a tap selects the row and shows its actions; B opens the ticket over the whole screen
    live_ltp(page, TCS)
    row = watchlist_row(page, TCS)
    row.click()
    row.get_by_test_id("watchlist-buy").click()
    ticket = page.get_by_test_id("ticket")
    expect(ticket).to_be_visible()
    expect(ticket.get_by_test_id("ticket-submit")).to_be_in_viewport()
    assert_fits_the_screen(page, "ticket-dialog")
    fill_ticket(ticket, lots=1, order_type="MARKET")
    send_order(page, ticket)
    order = the_only_order(trader)

    page.get_by_test_id("tab-orders").click()
    expect(page.get_by_test_id("orders-page")).to_be_visible()
    expect_status(order_row(page, order["id"], "completed"), "FILLED", trader, order["id"])
    assert_fits_the_screen(page, "orders-page")
