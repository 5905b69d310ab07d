"""The paper exchange's matching rules (tradingapp/brokers/paper/matching.py): pure, no services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingapp.brokers.paper import matching as mt

T0 = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
D = Decimal


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def market(ltp="100", bid=None, ask=None, bid_qty=None, ask_qty=None, ltq=None, ts=0, seq=0) -> mt.Market:
    dec = lambda v: None if v is None else D(v)  # noqa: E731
    return mt.Market(at(ts), D(ltp), dec(bid), dec(ask), bid_qty, ask_qty, ltq, seq)


def order(order_type="LIMIT", side="BUY", quantity=10, limit=None, stop=None, tif="DAY", key="o1", **kw) -> mt.Working:
    return mt.Working(key, side, order_type, quantity, None if limit is None else D(limit),
                      None if stop is None else D(stop), tif, **kw)  # fmt: skip


def fills(outcome: mt.Outcome) -> list[tuple[int, Decimal]]:
    return [(f.quantity, f.price) for f in outcome.fills]


def by_key(outcomes: list[mt.Outcome]) -> dict:
    return {o.key: o for o in outcomes}


# -- reading the market ----------------------------------------------------------------------
def test_quote_of_strings_parses_with_sizes():
    quote = {"ltp": "100.05", "bid": "100", "ask": "100.10", "bid_qty": "40", "ask_qty": "7", "ltq": "3",
             "ts": "2026-11-24T06:00:00.000000Z"}  # fmt: skip
    assert mt.parse_market(quote) == mt.Market(T0, D("100.05"), D("100"), D("100.10"), 40, 7, 3)


def test_tick_with_int_sizes_and_seq_parses():
    tick = {"ltp": "99.5", "ask": "99.55", "ask_qty": 12, "seq": 42, "ts": T0.isoformat()}
    assert mt.parse_market(tick) == mt.Market(T0, D("99.5"), ask=D("99.55"), ask_qty=12, seq=42)


def test_market_without_last_price_or_time_is_unusable():
    assert mt.parse_market({"ts": T0.isoformat()}) is None
    assert mt.parse_market({"ltp": "100"}) is None
    assert mt.parse_market({"ltp": "100", "ts": "yesterday"}) is None
    assert mt.parse_market("not a dict") is None


def test_float_or_over_precise_or_non_positive_prices_are_not_prices():
    for bad in (100.5, "100.00001", "0", "-1", "nan", "inf", True):
        assert mt.parse_market({"ltp": bad, "ts": T0.isoformat()}) is None


def test_malformed_optional_fields_count_as_absent():
    tick = mt.parse_market({"ltp": "100", "ts": T0.isoformat(), "bid": "x", "ask_qty": -3, "bid_qty": "0"})
    assert (tick.bid, tick.ask_qty, tick.bid_qty) == (None, None, None)


def test_naive_time_is_read_as_utc():
    assert mt.parse_market({"ltp": "1", "ts": "2026-11-24T06:00:00"}).ts == T0


def test_buy_takes_the_ask_and_sell_the_bid():
    m = market(bid="99.9", ask="100.1", bid_qty=5, ask_qty=6)
    assert mt.touch(m, "BUY") == mt.Touch(D("100.1"), 6)
    assert mt.touch(m, "SELL") == mt.Touch(D("99.9"), 5)


def test_missing_side_falls_back_to_last_price_and_last_traded_size():
    assert mt.touch(market("100", ltq=9), "BUY") == mt.Touch(D("100"), 9)
    assert mt.touch(market("100"), "SELL") == mt.Touch(D("100"), None)


def test_quote_older_than_max_age_is_not_fresh():
    m = market(ts=0)
    assert mt.fresh(m, 60, at(60)) is m
    assert mt.fresh(m, 60, at(61)) is None
    assert mt.fresh(None, 60, at(0)) is None


# -- terms -----------------------------------------------------------------------------------
def test_terms_refusals_name_what_is_missing():
    assert mt.terms_refusal("LIMIT", "DAY", 1, None, None) == "a LIMIT order needs a positive limit price"
    assert mt.terms_refusal("STOP", "DAY", 1, None, None) == "a STOP order needs a positive stop price"
    assert mt.terms_refusal("STOP_LIMIT", "DAY", 1, D(1), None) == "a STOP_LIMIT order needs a positive stop price"
    assert mt.terms_refusal("ICEBERG", "DAY", 1, None, None).startswith("order type ICEBERG not supported")
    assert mt.terms_refusal("MARKET", "GTC", 1, None, None).startswith("time in force GTC not supported")
    assert mt.terms_refusal("MARKET", "DAY", 0, None, None) == "quantity must be positive"
    assert mt.terms_refusal("STOP_LIMIT", "IOC", 5, D(1), D(2)) is None


def test_prices_an_order_type_does_not_use_are_dropped():
    assert mt.relevant_prices("MARKET", D(1), D(2)) == (None, None)
    assert mt.relevant_prices("LIMIT", D(1), D(2)) == (D(1), None)
    assert mt.relevant_prices("STOP", D(1), D(2)) == (None, D(2))
    assert mt.relevant_prices("STOP_LIMIT", D(1), D(2)) == (D(1), D(2))


def test_modify_refusals():
    assert mt.modify_refusal("filled", 10, 0, 1, 20) == "order already filled"
    assert mt.modify_refusal("cancelled", 0, 0, 1, 20) == "order is cancelled"
    assert mt.modify_refusal("expired", 0, 0, 1, 20) == "order expired"
    assert mt.modify_refusal("rejected", 0, 0, 1, 20) == "order was rejected"
    assert mt.modify_refusal("open", 4, 0, 1, 4) == "quantity 4 is not above the filled quantity 4"
    assert mt.modify_refusal("open", 0, 2, 1, 9) == "modification 1 superseded by modification 2"
    assert mt.modify_refusal("open", 4, 1, 2, 5) is None


# -- arrival ---------------------------------------------------------------------------------
def test_market_buy_fills_at_the_ask_up_to_the_displayed_size():
    outcome = mt.arrive(order("MARKET"), market(bid="99.95", ask="100.05", ask_qty=4), at(1))
    assert fills(outcome) == [(4, D("100.05"))]
    assert outcome.end is None and outcome.fills[0].ts == at(1)


def test_market_sell_fills_at_the_bid():
    outcome = mt.arrive(order("MARKET", "SELL"), market(bid="99.95", ask="100.05", bid_qty=50), at(1))
    assert fills(outcome) == [(10, D("99.95"))]


def test_ioc_market_remainder_is_cancelled_after_its_fill():
    outcome = mt.arrive(order("MARKET", tif="IOC"), market(ask="100.05", ask_qty=4), at(1))
    assert fills(outcome) == [(4, D("100.05"))]
    assert (outcome.end, outcome.reason, outcome.ended_at) == (mt.CANCELLED, mt.IOC_REMAINDER, at(1))


def test_market_without_a_fresh_quote_is_rejected_on_arrival():
    outcome = mt.arrive(order("MARKET"), None, at(1))
    assert (outcome.end, outcome.reason, outcome.fills) == (mt.REJECTED, mt.NO_PRICE, ())


def test_working_market_remainder_re_priced_without_a_quote_just_rests():
    assert not mt.arrive(order("MARKET", filled=4), None, at(1), first=False).changed


def test_marketable_limit_fills_at_the_touch_not_at_its_limit():
    outcome = mt.arrive(order(limit="101"), market(ask="100.05", ask_qty=100), at(1))
    assert fills(outcome) == [(10, D("100.05"))]


def test_marketable_sell_limit_fills_at_the_bid():
    outcome = mt.arrive(order(side="SELL", limit="99"), market(bid="99.5", bid_qty=3), at(1))
    assert fills(outcome) == [(3, D("99.5"))]


def test_limit_away_from_the_touch_rests():
    assert not mt.arrive(order(limit="100"), market(ask="100.05"), at(1)).changed


def test_ioc_limit_that_cannot_fill_is_cancelled():
    outcome = mt.arrive(order(limit="100", tif="IOC"), market(ask="100.05"), at(1))
    assert (outcome.end, outcome.reason, outcome.fills) == (mt.CANCELLED, mt.IOC_NO_FILL, ())


def test_ioc_limit_without_a_quote_is_cancelled_not_rejected():
    assert mt.arrive(order(limit="100", tif="IOC"), None, at(1)).end == mt.CANCELLED


def test_stop_not_reached_rests_untriggered():
    outcome = mt.arrive(order("STOP", stop="101"), market("100.95", ask="101"), at(1))
    assert not outcome.changed


def test_stop_already_through_on_arrival_triggers_and_fills_as_market():
    outcome = mt.arrive(order("STOP", stop="101"), market("101", ask="101.05", ask_qty=6), at(1))
    assert outcome.triggered_at == at(1) and fills(outcome) == [(6, D("101.05"))]


def test_sell_stop_triggers_when_the_last_price_falls_to_it():
    outcome = mt.arrive(order("STOP", "SELL", stop="99"), market("99", bid="98.95"), at(1))
    assert fills(outcome) == [(10, D("98.95"))]


def test_triggered_stop_limit_rests_when_its_limit_is_not_marketable():
    outcome = mt.arrive(order("STOP_LIMIT", stop="101", limit="101"), market("101", ask="101.10"), at(1))
    assert outcome.triggered_at == at(1) and outcome.fills == ()


def test_untriggered_ioc_stop_rests_until_triggered():
    assert not mt.arrive(order("STOP", stop="101", tif="IOC"), market("100"), at(1)).changed


# -- the tape --------------------------------------------------------------------------------
def test_resting_buy_limit_fills_at_its_limit_when_the_ask_crosses_it():
    [outcome] = mt.match_tape([order(limit="100")], [market("99.9", ask="99.95", ask_qty=50, ts=1)])
    assert fills(outcome) == [(10, D("100"))]


def test_resting_sell_limit_fills_when_the_bid_reaches_it():
    [outcome] = mt.match_tape([order(side="SELL", limit="100")], [market("100", bid="100", bid_qty=50, ts=1)])
    assert fills(outcome) == [(10, D("100"))]


def test_tick_that_does_not_cross_leaves_the_limit_resting():
    assert mt.match_tape([order(limit="100")], [market("99.9", bid="99.9", ask="100.05", ts=1)]) == []


def test_tick_without_bid_or_ask_crosses_on_the_last_price():
    [outcome] = mt.match_tape([order(limit="100")], [market("99.95", ltq=4, ts=1)])
    assert fills(outcome) == [(4, D("100"))]


def test_partial_fills_across_ticks_each_limited_by_the_displayed_size():
    ticks = [market(ask="99", ask_qty=3, ts=1), market(ask="100", ask_qty=4, ts=2), market(ask="98", ask_qty=9, ts=3)]
    [outcome] = mt.match_tape([order(limit="100")], ticks)
    assert [(f.quantity, f.ts) for f in outcome.fills] == [(3, at(1)), (4, at(2)), (3, at(3))]


def test_ticks_are_applied_oldest_first_whatever_their_order_in_the_batch():
    ticks = [market(ask="99", ask_qty=3, ts=2), market(ask="99", ask_qty=1, ts=1)]
    [outcome] = mt.match_tape([order(limit="100")], ticks)
    assert [f.quantity for f in outcome.fills] == [1, 3]


def test_tick_older_than_the_order_terms_never_fills_it():
    assert mt.match_tape([order(limit="100", since=at(5))], [market(ask="99", ts=4)]) == []


def test_tick_already_applied_never_fills_again():
    assert mt.match_tape([order(limit="100", after=at(5))], [market(ask="99", ts=5)]) == []


def test_tick_at_or_after_the_session_end_never_fills():
    assert mt.match_tape([order(limit="100", expires_at=at(5))], [market(ask="99", ts=5)]) == []


def test_displayed_size_is_shared_in_price_then_time_priority():
    orders = [
        order(limit="100", key="late", since=at(2)),
        order(limit="101", key="best"),
        order(limit="100", key="early", since=at(1)),
    ]
    result = by_key(mt.match_tape(orders, [market(ask="99", ask_qty=14, ts=3)]))
    assert {k: o.filled for k, o in result.items()} == {"best": 10, "early": 4}


def test_market_remainder_fills_at_the_then_touch_ahead_of_limits():
    orders = [order(limit="200", key="limit"), order("MARKET", key="market", filled=4)]
    result = by_key(mt.match_tape(orders, [market(ask="100.5", ask_qty=7, ts=1)]))
    assert fills(result["market"]) == [(6, D("100.5"))]
    assert fills(result["limit"]) == [(1, D("200"))]


def test_buy_and_sell_sides_draw_on_their_own_sizes():
    orders = [order(limit="101", key="buy"), order(side="SELL", limit="99", key="sell")]
    result = by_key(mt.match_tape(orders, [market(bid="100", ask="100.1", bid_qty=2, ask_qty=3, ts=1)]))
    assert (result["buy"].filled, result["sell"].filled) == (3, 2)


def test_stop_triggers_on_the_last_price_then_fills_at_the_touch():
    ticks = [market("100.9", ask="101.5", ts=1), market("101", ask="101.05", ask_qty=4, ts=2)]
    [outcome] = mt.match_tape([order("STOP", stop="101")], ticks)
    assert outcome.triggered_at == at(2) and fills(outcome) == [(4, D("101.05"))]


def test_triggered_stop_fills_its_remainder_on_later_ticks():
    ticks = [market("101", ask="101.05", ask_qty=4, ts=1), market("102", ask="102.05", ask_qty=40, ts=2)]
    [outcome] = mt.match_tape([order("STOP", stop="101")], ticks)
    assert fills(outcome) == [(4, D("101.05")), (6, D("102.05"))]


def test_stop_limit_takes_the_touch_when_triggered_then_rests_at_its_limit():
    ticks = [market("101", ask="101.05", ask_qty=4, ts=1), market("101.2", ask="101.15", ts=2)]
    [outcome] = mt.match_tape([order("STOP_LIMIT", stop="101", limit="101.20")], ticks)
    assert fills(outcome) == [(4, D("101.05")), (6, D("101.20"))]


def test_ioc_stop_triggered_by_a_tick_cancels_what_that_tick_did_not_fill():
    [outcome] = mt.match_tape([order("STOP", stop="101", tif="IOC")], [market("101", ask="101.05", ask_qty=4, ts=1)])
    assert fills(outcome) == [(4, D("101.05"))]
    assert (outcome.end, outcome.reason, outcome.ended_at) == (mt.CANCELLED, mt.IOC_REMAINDER, at(1))


def test_sell_stop_below_the_market_never_triggers_on_a_rising_tape():
    ticks = [market("100", ts=1), market("100.5", ts=2)]
    assert mt.match_tape([order("STOP", "SELL", stop="99")], ticks) == []


# -- properties ------------------------------------------------------------------------------
prices = st.integers(9_000, 11_000).map(lambda cents: D(cents) / 100)
sizes = st.none() | st.integers(1, 60)
order_types = st.sampled_from(mt.ORDER_TYPES)


@st.composite
def working_orders(draw, key="o"):
    order_type = draw(order_types)
    quantity = draw(st.integers(1, 100))
    return mt.Working(
        key=key,
        side=draw(st.sampled_from(["BUY", "SELL"])),
        order_type=order_type,
        quantity=quantity,
        limit_price=draw(prices) if mt.uses_limit(order_type) else None,
        stop_price=draw(prices) if mt.uses_stop(order_type) else None,
        time_in_force=draw(st.sampled_from(["DAY", "IOC"])),
        filled=draw(st.integers(0, quantity - 1)),
        since=at(draw(st.integers(0, 5))),
    )


@st.composite
def ticks(draw):
    ltp = draw(prices)
    has_book = draw(st.booleans())
    return mt.Market(
        ts=at(draw(st.integers(0, 10))),
        ltp=ltp,
        bid=ltp - D("0.05") if has_book else None,
        ask=ltp + draw(st.integers(0, 5)) * D("0.05") if has_book else None,
        bid_qty=draw(sizes),
        ask_qty=draw(sizes),
        ltq=draw(sizes),
        seq=draw(st.integers(0, 3)),
    )


def _never_worse_than_limit(o: mt.Working, price: Decimal) -> bool:
    if o.limit_price is None:
        return True
    return price <= o.limit_price if o.side == "BUY" else price >= o.limit_price


@given(o=working_orders(), m=ticks())
def test_arrival_fill_never_exceeds_remaining_or_displayed_size_nor_beats_the_limit(o, m):
    outcome = mt.arrive(o, m, at(20))
    shown = mt.touch(m, o.side)
    assert len(outcome.fills) <= 1
    for f in outcome.fills:
        assert 0 < f.quantity <= o.remaining
        assert shown.size is None or f.quantity <= shown.size
        assert f.price == shown.price and _never_worse_than_limit(o, f.price)
    if o.time_in_force == "IOC" and (o.armed or outcome.triggered_at):
        assert outcome.filled == o.remaining or outcome.end == mt.CANCELLED


@settings(max_examples=300)
@given(orders=st.lists(working_orders(), min_size=1, max_size=6), tape=st.lists(ticks(), min_size=1, max_size=6))
def test_tape_fills_respect_quantity_size_limit_time_and_stop(orders, tape):
    orders = [mt.Working(**{**o.__dict__, "key": i}) for i, o in enumerate(orders)]
    outcomes = by_key(mt.match_tape(orders, tape))
    for o in orders:
        outcome = outcomes.get(o.key)
        if outcome is None:
            continue
        assert outcome.filled <= o.remaining
        for f in outcome.fills:
            assert f.quantity > 0 and f.ts >= o.since and _never_worse_than_limit(o, f.price)
            if not o.armed:
                assert outcome.triggered_at is not None and f.ts >= outcome.triggered_at
    for tick_ts in {m.ts for m in tape}:
        same_time = [m for m in tape if m.ts == tick_ts]
        for side in ("BUY", "SELL"):
            shown = [mt.touch(m, side).size for m in same_time]
            taken = sum(f.quantity for o in orders if o.side == side and o.key in outcomes
                        for f in outcomes[o.key].fills if f.ts == tick_ts)  # fmt: skip
            if None not in shown:
                assert taken <= sum(shown)
