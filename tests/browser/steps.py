"""What a trader does in the terminal, as Playwright steps on the app's data-testids
(frontend/README.md lists them). Each step waits for the app to get where it goes."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from playwright.sync_api import Locator, Page, expect

from tests.browser.api import ApiUser

NUMBER = re.compile(r"-?[\d,]+(?:\.\d+)?")


def login(page: Page, base_url: str, user: ApiUser) -> None:
    """Log in through the login form and wait for the terminal's shell."""
    page.goto(f"{base_url}/login")
    page.get_by_test_id("login-email").fill(user.email)
    page.get_by_test_id("login-password").fill(user.password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("app-shell")).to_be_visible()


def number(text: str) -> Decimal:
    """A number as the terminal shows it ("2,512.35", "+1.20", "-0.5%") as a Decimal."""
    found = NUMBER.search(text.replace("\u2212", "-"))
    assert found, f"no number in {text!r}"
    return Decimal(found.group().replace(",", ""))


def has_number(text: str) -> bool:
    return bool(NUMBER.search(text))


def watchlist_row(page: Page, instrument_id: int) -> Locator:
    return page.get_by_test_id(f"watchlist-row-{instrument_id}")


def live_ltp(page: Page, instrument_id: int) -> Decimal:
    """The row's last price once the socket has delivered one."""
    ltp = watchlist_row(page, instrument_id).get_by_test_id("watchlist-ltp")
    expect(ltp).to_have_text(NUMBER)
    return number(ltp.inner_text())


def open_ticket(page: Page, instrument_id: int, side: str = "BUY") -> Locator:
    """The watchlist row's B/S button (shown on hover) opens the order ticket."""
    row = watchlist_row(page, instrument_id)
    row.hover()
    row.get_by_test_id("watchlist-buy" if side == "BUY" else "watchlist-sell").click()
    ticket = page.get_by_test_id("ticket")
    expect(ticket).to_be_visible()
    expect(ticket).to_have_attribute("data-side", side)
    return ticket


def fill_ticket(ticket: Locator, *, lots: int = 1, order_type: str = "MARKET", price: str | None = None) -> None:
    ticket.get_by_test_id(f"ticket-type-{order_type}").click()
    ticket.get_by_test_id("ticket-lots").fill(str(lots))
    if price is not None:
        ticket.get_by_test_id("ticket-price").fill(price)


def submit_ticket(ticket: Locator) -> None:
    """Send: the first press asks for confirmation (on by default), the second sends."""
    submit = ticket.get_by_test_id("ticket-submit")
    submit.click()
    confirm = ticket.get_by_test_id("ticket-confirm")
    expect(confirm.or_(ticket.get_by_role("alert").first)).to_be_visible()
    if confirm.is_visible():
        submit.click()


def send_order(page: Page, ticket: Locator) -> None:
    """Submit and wait for the ticket to close (the order was accepted by the API)."""
    submit_ticket(ticket)
    expect(page.get_by_test_id("ticket-dialog")).to_have_count(0)


def the_only_order(user: ApiUser) -> dict:
    """The one order the trader placed through the UI, as the API has it."""
    orders = user.orders()
    assert len(orders) == 1, orders
    return orders[0]


def order_row(page: Page, order_id: str, tab: str) -> Locator:
    """The order's row on the orders book's `tab` (working | completed)."""
    tab_button = page.get_by_test_id(f"orders-tabs-{tab}")
    if tab_button.get_attribute("aria-selected") != "true":
        tab_button.click()
    return page.get_by_test_id(f"orders-row-{order_id}")


def on_tick(value: Decimal, tick: Decimal = Decimal("0.05")) -> Decimal:
    return (value / tick).to_integral_value(ROUND_DOWN) * tick


def expect_status(row: Locator, status: str, user: ApiUser, order_id: str) -> None:
    """The row shows `status`; if it never does, the failure says what the API has meanwhile."""
    try:
        expect(row).to_have_attribute("data-status", status)
    except AssertionError as exc:
        api = user.get(f"/orders/{order_id}")
        raise AssertionError(f"the page never showed {status}; the API has {api['status']} "
                             f"(updated_at {api['updated_at']})\n{exc}") from None  # fmt: skip
