"""Logging in through the terminal's login page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.steps import login

pytestmark = pytest.mark.e2e


def test_a_trader_logs_in_and_stays_logged_in_across_a_reload(stack, trader, page):
    login(page, stack.base_url, trader)

    expect(page).not_to_have_url(f"{stack.base_url}/login")
    expect(page.get_by_test_id("terminal-page")).to_be_visible()
    page.get_by_test_id("user-menu").click()
    expect(page.get_by_test_id("user-email")).to_have_text(trader.email)

    page.reload()
    expect(page.get_by_test_id("app-shell")).to_be_visible()
    expect(page.get_by_test_id("login-form")).to_have_count(0)


def test_a_wrong_password_is_refused_on_the_login_page(stack, trader, page):
    page.goto(f"{stack.base_url}/login")
    page.get_by_test_id("login-email").fill(trader.email)
    page.get_by_test_id("login-password").fill("not-the-password-123")
    page.get_by_test_id("login-submit").click()

    expect(page.get_by_test_id("login-error")).to_have_text("Wrong email or password.")
    expect(page.get_by_test_id("app-shell")).to_have_count(0)
