"""The README's screenshots of the terminal, taken from the real stack: `make screenshots`.

Not collected by the suite (the file name is not test_*.py): it writes docs/screenshots/*.png.
Each capture first waits for what the screen is for (live prices, candles, a filled order), so a
broken screen fails here instead of being pictured.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import DEMO_ADMIN, DESKTOP, PHONE
from tests.browser.steps import NUMBER, fill_ticket, live_ltp, login, on_tick, open_ticket, send_order, watchlist_row
from tests.support import wait_until

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shoot(page, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(600)  # let the last price flash settle, for a calm picture
    page.screenshot(path=str(OUT / f"{name}.png"))


def test_capture_the_main_screens(browser, stack, trader, admin):
    context = browser.new_context(viewport=DESKTOP, color_scheme="dark")
    page = context.new_page()
    login(page, stack.base_url, trader)
    expect(watchlist_row(page, 1).get_by_test_id("watchlist-ltp")).to_have_text(NUMBER)
    expect(page.get_by_test_id("chart-legend")).to_have_text(NUMBER)

    ticket = open_ticket(page, 1, "BUY")
    fill_ticket(ticket, lots=5)
    expect(page.get_by_test_id("ticket-margin-required")).to_have_text(NUMBER)
    shoot(page, "ticket")
    send_order(page, ticket)
    wait_until(lambda: any(o["status"] == "FILLED" for o in trader.get("/orders")["items"]), timeout=30)
    rest_at = on_tick(live_ltp(page, 2) * Decimal("0.9"))  # rests: a BUY 10% under the market
    limit = open_ticket(page, 2, "BUY")
    fill_ticket(limit, lots=3, order_type="LIMIT", price=str(rest_at))
    send_order(page, limit)
    expect(page.locator("[data-testid^=orders-row-][data-status=OPEN]").first).to_be_visible()
    watchlist_row(page, 1).click()  # RELIANCE: the instrument with seeded history
    expect(page.get_by_test_id("chart-symbol")).to_have_text("RELIANCE")
    shoot(page, "terminal")

    page.get_by_test_id("nav-positions").click()
    expect(page.get_by_test_id("positions-total-pnl")).to_have_text(NUMBER)
    shoot(page, "positions")
    context.close()

    light = browser.new_context(viewport=DESKTOP, color_scheme="light")
    page = light.new_page()
    login(page, stack.base_url, admin)
    page.get_by_test_id("nav-admin").click()
    page.get_by_test_id("admin-tabs-kill").click()
    expect(page.get_by_test_id("admin-kill-form")).to_be_visible()
    shoot(page, "admin")
    light.close()

    phone = browser.new_context(viewport=PHONE, color_scheme="dark")
    page = phone.new_page()
    login(page, stack.base_url, trader)
    expect(watchlist_row(page, 1).get_by_test_id("watchlist-ltp")).to_have_text(NUMBER)
    shoot(page, "phone-watchlist")
    phone.close()
    assert DEMO_ADMIN["email"] == admin.email
