"""Orders through the ticket and the orders book: a MARKET order fills and becomes a position with
live P&L; a LIMIT order rests, is modified in place and cancelled."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.steps import (
    NUMBER,
    expect_status,
    fill_ticket,
    live_ltp,
    login,
    number,
    on_tick,
    open_ticket,
    order_row,
    send_order,
    the_only_order,
)

pytestmark = pytest.mark.e2e
TCS, INFY = 2, 3


def test_a_market_order_fills_and_its_position_shows_pnl(stack, trader, page):
    login(page, stack.base_url, trader)
    live_ltp(page, TCS)
    ticket = open_ticket(page, TCS, "BUY")
    fill_ticket(ticket, lots=2, order_type="MARKET")
    expect(ticket.get_by_test_id("ticket-margin-required")).to_have_text(NUMBER)
    send_order(page, ticket)

    order = the_only_order(trader)  # the ticket closes once the API has taken the order
    assert (order["side"], order["order_type"], order["quantity"]) == ("BUY", "MARKET", 2)
    row = order_row(page, order["id"], "completed")
    expect_status(row, "FILLED", trader, order["id"])
    expect(row.get_by_test_id("orders-status")).to_have_text("FILLED")
    expect(row.get_by_test_id("orders-filled")).to_have_text("2 / 2")
    filled = trader.get(f"/orders/{order['id']}")
    expect(row.get_by_test_id("orders-avg")).to_have_text(NUMBER)
    assert number(row.get_by_test_id("orders-avg").inner_text()) == Decimal(filled["average_price"])

    page.get_by_test_id("nav-positions").click()
    position = page.get_by_test_id("positions-row-2-MIS")
    expect(position.get_by_test_id("positions-symbol")).to_have_text("TCS")
    expect(position.get_by_test_id("positions-qty")).to_have_text("2")
    expect(position.get_by_test_id("positions-ltp")).to_have_text(NUMBER)
    # P&L from the live quote: (ltp - average) x 2, shown as a number, never a dash
    expect(position.get_by_test_id("positions-pnl")).to_have_text(NUMBER)
    expect(page.get_by_test_id("positions-total-pnl")).to_have_text(NUMBER)


def test_a_limit_order_rests_is_modified_and_cancelled(stack, trader, page):
    login(page, stack.base_url, trader)
    ltp = live_ltp(page, INFY)
    # 15% under the market: inside the 20% price band, far from where the walk goes during the test
    price = on_tick(ltp * Decimal("0.85"))
    ticket = open_ticket(page, INFY, "BUY")
    fill_ticket(ticket, lots=1, order_type="LIMIT", price=str(price))
    send_order(page, ticket)

    order = the_only_order(trader)
    assert (order["order_type"], Decimal(order["limit_price"])) == ("LIMIT", price)
    row = order_row(page, order["id"], "working")
    expect_status(row, "OPEN", trader, order["id"])
    expect(row.get_by_test_id("orders-filled")).to_have_text("0 / 1")

    lower = price - Decimal("0.05")
    row.get_by_test_id("orders-modify").click()
    editor = page.get_by_test_id(f"orders-modify-{order['id']}")
    editor.get_by_test_id("modify-quantity").fill("2")
    editor.get_by_test_id("modify-price").fill(str(lower))
    editor.get_by_test_id("modify-save").click()
    expect(editor).to_have_count(0)
    expect(row.get_by_test_id("orders-filled")).to_have_text("0 / 2")
    expect(row.get_by_test_id("orders-price")).to_have_text(NUMBER)
    expect_status(row, "OPEN", trader, order["id"])
    assert number(row.get_by_test_id("orders-price").inner_text()) == lower
    modified = trader.wait_order(order["id"], "OPEN")
    assert (modified["quantity"], Decimal(modified["limit_price"])) == (2, lower)

    row.get_by_test_id("orders-cancel").click()
    expect(row).to_have_count(0)  # gone from the working tab
    cancelled = order_row(page, order["id"], "completed")
    expect_status(cancelled, "CANCELLED", trader, order["id"])
    expect(cancelled.get_by_test_id("orders-status")).to_have_text("CANCELLED")
    final = trader.wait_order(order["id"], "CANCELLED")
    assert final["filled_quantity"] == 0
    assert len(trader.orders()) == 1
