"""XTS touchlines -> our ticks (tradingapp/brokers/xts/ticks.py): pure, no services."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tradingapp.brokers.xts import ticks as xt
from tradingapp.domain.feed import format_ts
from tradingapp.services.market.ticks import parse_tick
from tradingapp.simulators.xts.instruments import default_universe
from tradingapp.simulators.xts.market import Market

NOW = datetime(2026, 3, 2, 5, 0, 7, tzinfo=UTC)  # 10:30:07 IST
PRICES = ("ltp", "bid", "ask", "open", "high", "low", "close")


def touchline_payload(**touch) -> str:
    base = {
        "BidInfo": {"Size": 300, "Price": 2899.9},
        "AskInfo": {"Size": 120, "Price": 2900.05},
        "LastTradedPrice": 2900.0,
        "LastTradedQunatity": 10,
        "TotalTradedQuantity": 5000,
        "LastTradedTime": int(NOW.timestamp()) - xt.XTS_EPOCH_OFFSET - 5,
        "LastUpdateTime": int(NOW.timestamp()) - xt.XTS_EPOCH_OFFSET,
        "Open": 2890,
        "High": 2910.5,
        "Low": 2880.25,
        "Close": 2895.0,
    }
    return json.dumps({"MessageCode": 1501, "ExchangeSegment": 1, "ExchangeInstrumentID": 2885,
                       "Touchline": base | touch})  # fmt: skip


def maker() -> xt.TickMaker:
    return xt.TickMaker(clock=NOW.timestamp)


def test_full_touchline_becomes_a_valid_tick_with_our_instrument_id():
    touch = xt.parse_full(touchline_payload())
    assert (touch.segment, touch.exchange_instrument_id) == ("NSECM", 2885)
    tick = maker().tick(touch, instrument_id=7)
    assert tick["instrument_id"] == 7 and tick["exchange_segment"] == "NSECM"
    assert (tick["ltp"], tick["bid"], tick["ask"]) == ("2900.0", "2899.9", "2900.05")
    assert (tick["open"], tick["high"], tick["low"], tick["close"]) == ("2890", "2910.5", "2880.25", "2895.0")
    assert (tick["bid_qty"], tick["ask_qty"], tick["volume"]) == (300, 120, 5000)
    parsed = parse_tick(tick)
    assert parsed["ts"] == NOW  # LastUpdateTime, XTS seconds from 1980-01-01 IST


def test_xts_time_counts_from_1980_in_ist():
    assert xt.from_xts_time(0, "NSECM") == datetime(1979, 12, 31, 18, 30, tzinfo=UTC)


def test_only_segments_one_to_three_count_from_1980():
    """BSE and MCX exchange times are taken as Unix seconds (the 1980 epoch is NSE's segments')."""
    unix = int(NOW.timestamp())
    assert xt.from_xts_time(unix - xt.XTS_EPOCH_OFFSET, "NSEFO") == NOW
    assert xt.from_xts_time(unix, "BSECM") == NOW and xt.from_xts_time(unix, "MCXFO") == NOW
    bse = json.loads(touchline_payload(LastUpdateTime=unix))
    bse["ExchangeSegment"] = 11
    tick = maker().tick(xt.parse_full(json.dumps(bse)), 7)
    assert parse_tick(tick)["ts"] == NOW


@pytest.mark.parametrize(("segment", "seconds"), [(1, -315513000), (2, -315513000), (11, 0), (51, 0)])
def test_a_rest_quote_takes_its_segments_epoch(segment, seconds):
    from tradingapp.brokers.xts.marketdata import cache_quote

    now = datetime.now(UTC).replace(microsecond=0)
    quote = json.loads(touchline_payload(LastUpdateTime=int(now.timestamp()) + seconds))
    quote["ExchangeSegment"] = segment
    assert cache_quote(quote)["ts"] == format_ts(now)
    wrong = quote | {"ExchangeSegment": 12 if segment < 11 else 1}  # read with the other epoch: not believed
    assert abs(datetime.fromisoformat(cache_quote(wrong)["ts"]) - datetime.now(UTC)) < timedelta(seconds=5)


def test_ltq_is_the_growth_of_the_day_volume_and_zero_for_a_touch_only_update():
    make = maker()
    first = make.tick(xt.parse_full(touchline_payload(TotalTradedQuantity=5000)), 1)
    same = make.tick(xt.parse_full(touchline_payload(TotalTradedQuantity=5000, BidInfo={"Size": 1, "Price": 2899})), 1)
    traded = make.tick(xt.parse_full(touchline_payload(TotalTradedQuantity=5075)), 1)
    assert (first["ltq"], same["ltq"], traded["ltq"]) == (0, 0, 75)
    assert first["seq"] < same["seq"] < traded["seq"]  # strictly increasing even on one clock reading


def test_a_new_session_volume_starts_again():
    make = maker()
    make.tick(xt.parse_full(touchline_payload(TotalTradedQuantity=5000)), 1)
    assert make.tick(xt.parse_full(touchline_payload(TotalTradedQuantity=40)), 1)["ltq"] == 40


def test_no_trade_yet_gives_no_tick_and_zero_prices_are_absent():
    make = maker()
    assert make.tick(xt.parse_full(touchline_payload(LastTradedPrice=0)), 1) is None
    tick = make.tick(xt.parse_full(touchline_payload(BidInfo={"Size": 0, "Price": 0})), 1)
    assert tick["bid"] is None and tick["bid_qty"] == 0
    parse_tick(tick)


def test_an_exchange_time_far_from_our_clock_is_replaced_by_the_receive_time():
    tick = maker().tick(xt.parse_full(touchline_payload(LastUpdateTime=1, LastTradedTime=1)), 1)
    assert parse_tick(tick)["ts"] == NOW


def test_prices_past_four_places_are_rounded():
    tick = maker().tick(xt.parse_full(touchline_payload(LastTradedPrice="2900.123456")), 1)
    assert tick["ltp"] == "2900.1235"
    parse_tick(tick)


def test_partial_touchline():
    text = ("t:1_2885,ltp:2900.05,ltq:10,tb:2100,ts:840,v:5075,ap:2899.5,ltt:1,"
            f"lut:{int(NOW.timestamp()) - xt.XTS_EPOCH_OFFSET},pc:0.17,o:2890,h:2910.5,l:2880.25,c:2895,"
            "ai:0|120|2900.1|4,bi:0|300|2899.95|3")  # fmt: skip
    touch = xt.parse_partial(text)
    tick = maker().tick(touch, 3)
    assert (tick["ltp"], tick["bid"], tick["ask"], tick["bid_qty"], tick["ask_qty"]) == (
        "2900.05", "2899.95", "2900.1", 300, 120)  # fmt: skip
    assert tick["volume"] == 5075 and parse_tick(tick)["ts"] == NOW


@pytest.mark.parametrize("payload", ["not json", "{}", '{"ExchangeSegment": 99, "ExchangeInstrumentID": 1, '
                                     '"Touchline": {}}', '{"ExchangeSegment": 1, "Touchline": {}}'])  # fmt: skip
def test_unreadable_full_payloads_raise_bad_quote(payload):
    with pytest.raises(xt.BadQuote):
        xt.parse_full(payload)


@pytest.mark.parametrize("payload", ["", "ltp:1", "t:1_x,ltp:1", "t:1_2885,ltp:abc", "t:1_2885,ai:1|2"])
def test_unreadable_partial_payloads_raise_bad_quote(payload):
    with pytest.raises(xt.BadQuote):
        xt.parse_partial(payload)


@pytest.mark.parametrize("code", ["NSECM", 1, "1"])
def test_segment_names(code):
    assert xt.segment_name(code) == "NSECM"


def test_the_simulator_payloads_in_both_modes_give_the_same_valid_tick():
    """The simulator's own 1501 builders (the shapes the bridge meets over the socket)."""
    market = Market(default_universe(), random.Random(1), lambda: NOW)
    for book in market.books.values():
        market.trade(book, book.ltp, book.instrument.lot_size)
        full = maker().tick(xt.parse_full(market.quote_json(book, 1501)), 1)
        partial = maker().tick(xt.parse_partial(market.partial(book, 1501)), 1)
        as_values = [
            {k: Decimal(v) if k in PRICES and v else v for k, v in parse_tick(t).items()} for t in (full, partial)
        ]
        assert as_values[0] == as_values[1]
        assert Decimal(full["ltp"]) == book.ltp and full["volume"] == book.volume
