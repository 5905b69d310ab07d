"""The API's refusals shown where they belong in the ticket: a field's error beside the field (the
ticket's own check and the server's 400), a risk refusal with its rule and numbers (422), the
halted state as a banner (423). Nothing is placed in any of them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.steps import fill_ticket, live_ltp, login, number, on_tick, open_ticket, submit_ticket

pytestmark = pytest.mark.e2e
TCS, INFY, SBIN = 2, 3, 5


def assert_nothing_placed(trader) -> None:
    """A refusal by the risk rules is kept as a REJECTED order (its audit trail); nothing else."""
    assert [o["status"] for o in trader.orders()] in ([], ["REJECTED"]), trader.orders()


def test_a_limit_price_off_the_tick_size_is_shown_beside_the_price(stack, trader, page):
    login(page, stack.base_url, trader)
    ltp = live_ltp(page, INFY)
    ticket = open_ticket(page, INFY, "BUY")
    fill_ticket(ticket, order_type="LIMIT", price=str(on_tick(ltp) + Decimal("0.03")))
    ticket.get_by_test_id("ticket-submit").click()

    error = ticket.get_by_test_id("ticket-price-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("tick")
    expect(ticket.get_by_test_id("ticket-price")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_test_id("ticket-dialog")).to_be_visible()
    assert trader.orders() == []


def test_the_servers_field_error_is_shown_beside_its_field(stack, trader, page):
    """A price outside the 20% band passes the ticket's own checks; the API's 400 names
    limit_price, and the ticket puts the message under the price."""
    login(page, stack.base_url, trader)
    ltp = live_ltp(page, INFY)
    ticket = open_ticket(page, INFY, "BUY")
    fill_ticket(ticket, order_type="LIMIT", price=str(on_tick(ltp / 2)))
    submit_ticket(ticket)

    error = ticket.get_by_test_id("ticket-price-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("price band")
    expect(page.get_by_test_id("ticket-dialog")).to_be_visible()
    assert trader.orders() == []


def test_a_risk_refusal_shows_its_rule_and_numbers(stack, admin, trader, page):
    admin.put("/admin/risk-limits", {"users": {trader.user_id: {"max_order_notional": "1000"}}})
    login(page, stack.base_url, trader)
    live_ltp(page, TCS)
    ticket = open_ticket(page, TCS, "BUY")
    fill_ticket(ticket, lots=1, order_type="MARKET")
    submit_ticket(ticket)

    refusal = ticket.get_by_test_id("ticket-risk-error")
    expect(refusal).to_be_visible()
    expect(refusal).to_have_attribute("data-rule", "max_order_notional")
    expect(refusal.get_by_test_id("ticket-risk-rule")).to_have_text("max_order_notional")
    numbers = dict(zip(refusal.locator("dt").all_inner_texts(), refusal.locator("dd").all_inner_texts(), strict=True))
    assert number(numbers["Limit"]) == 1000, numbers
    assert number(numbers["Requested"]) > 1000, numbers
    assert_nothing_placed(trader)


def test_an_admin_halt_shows_the_halted_banner_in_the_traders_ticket(stack, admin, trader, page):
    login(page, stack.base_url, trader)
    live_ltp(page, SBIN)
    ticket = open_ticket(page, SBIN, "BUY")
    fill_ticket(ticket, lots=1, order_type="MARKET")
    expect(ticket.get_by_test_id("ticket-halted")).to_have_count(0)

    admin.post("/admin/kill-switch", {"state": "HALTED", "reason": "browser test: market halt"})
    try:
        submit = ticket.get_by_test_id("ticket-submit")
        if submit.is_enabled():  # the ticket may know already (its account read), else the 423 tells it
            submit_ticket(ticket)
        banner = ticket.get_by_test_id("ticket-halted")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("halted")
        expect(submit).to_be_disabled()
        expect(page.get_by_test_id("trading-state")).to_have_attribute("data-state", "HALTED")
        state_banner = page.get_by_test_id("trading-state-banner")
        expect(state_banner).to_have_attribute("data-state", "HALTED")
        expect(state_banner).to_contain_text("browser test: market halt")
        assert_nothing_placed(trader)
    finally:
        admin.post("/admin/kill-switch", {"state": "ACTIVE", "reason": "browser test over"})
