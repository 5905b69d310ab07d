"""A quote's `close` is the previous session's close on every path a quote takes, so the terminal's
change (ltp - close) and % change are the day's. Pure: no services."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingapp.brokers.xts import ticks as xt
from tradingapp.brokers.xts.marketdata import cache_quote
from tradingapp.domain.feed import FeedInstrument, new_walk, step, walk_from_quote
from tradingapp.simulators.xts.instruments import default_universe
from tradingapp.simulators.xts.market import Market

NOW = datetime(2026, 3, 2, 5, 0, 7, tzinfo=UTC)


def test_xts_socket_and_rest_quotes_carry_the_touchlines_close_alike():
    market = Market(default_universe(), random.Random(3), clock=lambda: NOW)
    book = next(iter(market.books.values()))
    for _ in range(20):
        market.step(book)
    touch = market.touchline(book)
    raw = {"ExchangeSegment": 1, "ExchangeInstrumentID": book.instrument.key[1], "Touchline": touch}
    streamed = xt.TickMaker(clock=NOW.timestamp).tick(xt.parse_full(json.dumps(raw)), instrument_id=1)
    fetched = cache_quote(raw)
    assert Decimal(streamed["close"]) == Decimal(fetched["close"]) == book.close
    # XTS measures its PercentChange from the same Close: the terminal's % change agrees with it.
    ltp, close = Decimal(streamed["ltp"]), Decimal(streamed["close"])
    assert abs(float((ltp - close) / close * 100) - touch["PercentChange"]) < 1e-9


def test_the_paper_feeds_close_is_the_last_price_of_the_day_before():
    instrument = FeedInstrument(1, "NSECM", 2885, "RELIANCE", Decimal("0.05"))
    rng, walk = random.Random(7), new_walk(instrument)
    ticks = [step(walk, rng, NOW + timedelta(seconds=n)) for n in range(50)]
    assert {t["close"] for t in ticks} == {ticks[0]["close"]}  # one reference all day
    next_day = walk_from_quote(instrument, ticks[-1], NOW + timedelta(days=1))
    assert next_day.close == Decimal(ticks[-1]["ltp"]) != Decimal(ticks[0]["close"])
