"""axe-core on every page of the terminal: no serious or critical violation.

axe.min.js comes from frontend/node_modules/axe-core (an npm devDependency of the terminal) when
present, else from the axe-playwright-python wheel, which ships it."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.api import ApiUser
from tests.browser.conftest import DEMO_ADMIN
from tests.browser.steps import login
from tests.support.frontend_build import FRONTEND

pytestmark = pytest.mark.e2e
BLOCKING = {"serious", "critical"}
# (path, the page's root test id, who looks at it)
PAGES = [
    ("/", "terminal-page", "trader"),
    ("/orders", "orders-page", "trader"),
    ("/positions", "positions-page", "trader"),
    ("/trades", "trades-page", "trader"),
    ("/funds", "funds-page", "trader"),
    ("/accounts", "accounts-page", "trader"),
    ("/admin", "admin-page", "admin"),
]


def axe_source() -> str:
    candidates = [FRONTEND / "node_modules" / "axe-core" / "axe.min.js"]
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec and spec.origin:
        candidates.append(Path(spec.origin).parent / "axe.min.js")
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise AssertionError(f"axe-core is missing: none of {[str(p) for p in candidates]} exists")


def blocking_violations(page: Page) -> list[str]:
    """axe's serious and critical violations on the page as it is now, one line per rule."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())  # evaluated, not a <script>: a CSP cannot refuse it
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in result["violations"]:
        if violation["impact"] in BLOCKING:
            nodes = "; ".join(
                f"{' '.join(map(str, n['target']))}: {n.get('failureSummary', '').splitlines()[-1].strip()}"
                for n in violation["nodes"][:4]
            )
            found.append(f"{violation['impact']} {violation['id']} ({violation['help']}) x{len(violation['nodes'])}: "
                         f"{nodes}")  # fmt: skip
    return found


@pytest.fixture
def trader_with_orders(trader: ApiUser) -> ApiUser:
    """The pages have rows to show: a filled MARKET order (a position, a trade) and a resting LIMIT."""
    filled = trader.post("/orders", {"instrument_id": 2, "side": "BUY", "quantity": 1, "order_type": "MARKET"})
    trader.wait_order(filled["id"], "FILLED")
    ltp = Decimal(trader.get("/quotes?instrument_ids=3")["items"][0]["ltp"])
    price = (ltp * Decimal("0.85") / Decimal("0.05")).to_integral_value() * Decimal("0.05")
    resting = trader.post("/orders", {"instrument_id": 3, "side": "BUY", "quantity": 1, "order_type": "LIMIT",
                                      "limit_price": str(price)})  # fmt: skip
    trader.wait_order(resting["id"], "OPEN")
    return trader


@pytest.mark.parametrize(("path", "form"), [("/login", "login-form"), ("/register", "register-form")])
def test_a_page_before_login_has_no_serious_accessibility_violation(stack, page, path, form):
    page.goto(f"{stack.base_url}{path}")
    expect(page.get_by_test_id(form)).to_be_visible()
    violations = blocking_violations(page)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize(("path", "root", "who"), PAGES, ids=[p[1] for p in PAGES])
def test_a_page_has_no_serious_accessibility_violation(stack, trader_with_orders, page, path, root, who):
    user = trader_with_orders if who == "trader" else ApiUser(stack.base_url, **DEMO_ADMIN)
    login(page, stack.base_url, user)
    page.goto(f"{stack.base_url}{path}")
    expect(page.get_by_test_id(root)).to_be_visible()
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-status", "open")
    page.wait_for_load_state("networkidle")
    expect(page.get_by_text("Loading", exact=False)).to_have_count(0)
    violations = blocking_violations(page)
    assert not violations, "\n".join(violations)
