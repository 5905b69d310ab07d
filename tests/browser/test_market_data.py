"""Live market data in the terminal: the watchlist's prices from the socket, the chart's candles."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CANDLE_INSTRUMENT, CANDLE_MINUTES
from tests.browser.steps import NUMBER, live_ltp, login, watchlist_row
from tradingapp.cli import DEMO_INSTRUMENTS

pytestmark = pytest.mark.e2e

# Pixels of the chart's canvases in the theme's up or down colour (read from its CSS variables).
CANDLE_PIXELS = """(box) => {
  const css = getComputedStyle(document.documentElement);
  const rgb = (name) => {
    const probe = document.createElement('div');
    probe.style.color = css.getPropertyValue(name).trim();
    document.body.appendChild(probe);
    const m = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
    probe.remove();
    return m.slice(0, 3);
  };
  const colours = [rgb('--t-up'), rgb('--t-down')];
  let count = 0;
  for (const canvas of box.querySelectorAll('canvas')) {
    if (!canvas.width || !canvas.height) continue;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] < 200) continue;
      const near = ([r, g, b]) => Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b) < 12;
      if (colours.some(near)) count++;
    }
  }
  return count;
}"""


def test_the_watchlists_prices_change_on_their_own(stack, trader, page):
    login(page, stack.base_url, trader)
    for instrument_id in range(1, len(DEMO_INSTRUMENTS) + 1):
        expect(watchlist_row(page, instrument_id).get_by_test_id("watchlist-ltp")).to_have_text(NUMBER)

    first = watchlist_row(page, 2).get_by_test_id("watchlist-ltp").inner_text()
    live_ltp(page, 2)
    # nobody touches the page: the socket's quotes move the price
    expect(watchlist_row(page, 2).get_by_test_id("watchlist-ltp")).not_to_have_text(first)
    expect(watchlist_row(page, 2).get_by_test_id("watchlist-change")).to_have_text(NUMBER)
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-status", "open")


def test_the_chart_draws_the_instruments_candles(stack, trader, page):
    login(page, stack.base_url, trader)
    watchlist_row(page, CANDLE_INSTRUMENT).click()
    page.get_by_test_id("chart-interval-5m").click()

    chart = page.get_by_test_id("chart")
    expect(page.get_by_test_id("chart-symbol")).to_have_text("RELIANCE")
    # 180 seeded one-minute candles are 36 or 37 five-minute ones, and the live minute adds one
    expect(chart).to_have_attribute("data-bars", re.compile(r"^(3[6-9]|[4-9]\d)$"))
    legend = page.get_by_test_id("chart-legend")
    for label in ("O", "H", "L", "C", "V"):
        expect(legend).to_contain_text(label)
    expect(legend).to_have_text(NUMBER)
    canvas = page.get_by_test_id("chart-canvas")
    expect(canvas.locator("canvas").first).to_be_visible()
    # lightweight-charts paints on its next animation frames: wait for the candles' colours
    page.wait_for_function(
        f"([box, least]) => ({CANDLE_PIXELS})(box) >= least", arg=[canvas.element_handle(), 200], timeout=20_000
    )
    assert int(chart.get_attribute("data-bars")) <= CANDLE_MINUTES
