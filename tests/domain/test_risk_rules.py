"""Pre-trade risk rules and the margin model, on plain values (no services)."""

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingapp.domain import margin
from tradingapp.domain import risk_limits as rl
from tradingapp.domain.margin import Book, Holding, Working
from tradingapp.domain.risk import (
    Amendment,
    OrderIntent,
    RiskViolation,
    check_amendment,
    check_new,
    daily_loss,
    stricter,
    valuation_price,
)

D = Decimal
LIMITS = rl.DEFAULT_LIMITS
CASH = D(1_000_000)


def buy(qty=10, price="100", product="MIS", instrument=1, segment="NSECM", side="BUY"):
    return OrderIntent(instrument, segment, product, side, qty, D(price))


def sell(qty=10, price="100", **kw):
    return buy(qty, price, side="SELL", **kw)


def refused(book, intent, state="ACTIVE", limits=LIMITS) -> RiskViolation:
    with pytest.raises(RiskViolation) as info:
        check_new(book, limits, state, intent)
    return info.value


def long_book(qty=100, avg="100", product="MIS", **kw) -> Book:
    return Book(CASH, (Holding(1, product, qty, D(avg)),), **kw)


# -- limits ----------------------------------------------------------------------------------
def test_a_user_override_beats_the_global_value_which_beats_the_default():
    limits = rl.effective({"max_order_quantity": 5, "max_open_orders": 7}, {"max_order_quantity": 20})
    assert (limits.max_order_quantity, limits.max_open_orders, limits.max_orders_per_day) == (
        20, 7, LIMITS.max_orders_per_day,
    )  # fmt: skip


def test_limit_changes_are_validated_field_by_field():
    with pytest.raises(rl.LimitsError) as info:
        rl.parse_changes({"max_order_quantity": 0, "max_order_notional": "abc", "allowed_products": ["XYZ"],
                          "margin_mis_percent": "101", "nope": 1, "max_daily_loss": None}, "global.")  # fmt: skip
    assert set(info.value.errors) == {
        "global.max_order_quantity", "global.max_order_notional", "global.allowed_products",
        "global.margin_mis_percent", "global.nope",
    }  # fmt: skip


def test_limit_changes_parse_to_typed_values_and_null_removes():
    changes = rl.parse_changes({"max_order_notional": "1000.5", "allowed_products": ["cnc", "MIS"],
                                "max_open_orders": None})  # fmt: skip
    assert changes == {"max_order_notional": D("1000.5"), "allowed_products": ("MIS", "CNC"), "max_open_orders": None}
    merged = rl.merge({"max_open_orders": 3, "order_burst": 9}, changes)
    assert merged == {"order_burst": 9, "max_order_notional": "1000.5", "allowed_products": ["MIS", "CNC"]}


def test_a_boolean_is_not_a_quantity_limit():
    with pytest.raises(rl.LimitsError):
        rl.parse_changes({"max_open_orders": True})


# -- trading states --------------------------------------------------------------------------
def test_the_stricter_state_wins():
    assert stricter("ACTIVE", "REDUCING") == "REDUCING"
    assert stricter("HALTED", "REDUCING") == "HALTED"
    assert stricter("ACTIVE", "ACTIVE") == "ACTIVE"


def test_halted_refuses_a_new_order_as_trading_halted():
    violation = refused(Book(CASH), buy(), state="HALTED")
    assert (violation.rule, violation.halted) == ("trading_halted", True)


def test_halted_refuses_even_an_order_that_would_close_a_position():
    assert refused(long_book(), sell(10), state="HALTED").rule == "trading_halted"


def test_reducing_passes_an_opposite_order_within_the_position():
    check_new(long_book(100), LIMITS, "REDUCING", sell(100))


def test_reducing_refuses_an_order_on_the_side_of_the_position():
    assert refused(long_book(100), buy(10), state="REDUCING").rule == "reducing_only"


def test_reducing_refuses_an_order_beyond_the_position():
    assert refused(long_book(100), sell(101), state="REDUCING").rule == "reducing_only"


def test_reducing_counts_other_open_closing_orders():
    book = long_book(100, working=(Working(1, "MIS", "SELL", 1, 60, D(6000)),))
    check_new(book, LIMITS, "REDUCING", sell(40))
    assert refused(book, sell(41), state="REDUCING").rule == "reducing_only"


def test_reducing_compares_with_the_position_of_the_same_product():
    assert refused(long_book(100, product="NRML"), sell(10), state="REDUCING").rule == "reducing_only"


def test_reducing_refuses_everything_without_a_position():
    assert refused(Book(CASH), sell(1), state="REDUCING").rule == "reducing_only"


# -- size and permission limits --------------------------------------------------------------
def test_max_order_quantity_names_limit_and_requested():
    violation = refused(Book(CASH), buy(11), limits=replace(LIMITS, max_order_quantity=10))
    assert violation.rule == "max_order_quantity"
    assert (violation.details["limit"], violation.details["requested"]) == (10, 11)


def test_max_order_notional_uses_quantity_times_price():
    limits = replace(LIMITS, max_order_notional=D(1000))
    check_new(Book(CASH), limits, "ACTIVE", buy(10, "100"))
    violation = refused(Book(CASH), buy(10, "100.05"), limits=limits)
    assert violation.rule == "max_order_notional"
    assert violation.details["requested"] == "1000.5"


def test_an_order_without_any_price_is_refused():
    assert refused(Book(CASH), replace(buy(), price=None)).rule == "price_unavailable"


def test_a_product_not_allowed_is_refused():
    violation = refused(Book(CASH), buy(product="NRML"), limits=replace(LIMITS, allowed_products=("MIS",)))
    assert (violation.rule, violation.details["requested"]) == ("allowed_products", "NRML")


def test_a_segment_not_allowed_is_refused():
    violation = refused(Book(CASH), buy(segment="NSEFO"), limits=replace(LIMITS, allowed_segments=("NSECM",)))
    assert violation.rule == "allowed_segments"


def test_max_open_orders_counts_working_orders():
    book = Book(CASH, working=(Working(2, "MIS", "BUY", 3, 30, D(3000)),))
    violation = refused(book, buy(), limits=replace(LIMITS, max_open_orders=3))
    assert (violation.rule, violation.details["current"]) == ("max_open_orders", 3)


def test_max_orders_per_day_counts_todays_orders():
    violation = refused(Book(CASH, orders_today=5), buy(), limits=replace(LIMITS, max_orders_per_day=5))
    assert (violation.rule, violation.details["current"]) == ("max_orders_per_day", 5)


def test_max_position_counts_open_orders_on_the_same_side():
    book = long_book(40, working=(Working(1, "NRML", "BUY", 1, 5, D(500)),))
    violation = refused(book, buy(10), limits=replace(LIMITS, max_position_quantity=50))
    assert violation.rule == "max_position_quantity"
    assert (violation.details["current"], violation.details["resulting"]) == (45, 55)


def test_max_position_lets_an_order_shrink_an_oversized_position():
    check_new(long_book(100), replace(LIMITS, max_position_quantity=50), "ACTIVE", sell(10))


def test_max_position_applies_to_a_short():
    violation = refused(Book(CASH), sell(60), limits=replace(LIMITS, max_position_quantity=50))
    assert violation.rule == "max_position_quantity"


# -- daily loss -------------------------------------------------------------------------------
def losing_book(day_realized="-600", avg="100", mark="95", qty=100) -> Book:
    holding = Holding(1, "MIS", qty, D(avg), D(day_realized), D(day_realized))
    return Book(CASH, (holding,), marks={1: D(mark)})


def test_daily_loss_is_realized_today_plus_unrealized():
    assert daily_loss(losing_book()) == D(1100)


def test_a_breached_daily_loss_refuses_an_order_that_adds_exposure_and_says_reducing():
    violation = refused(losing_book(), buy(1), limits=replace(LIMITS, max_daily_loss=D(1000)))
    assert violation.rule == "max_daily_loss"
    assert violation.details["trading_state"] == "REDUCING"
    assert (violation.details["limit"], violation.details["current"]) == ("1000", "1100")
    assert "REDUCING" in violation.message


def test_a_breached_daily_loss_still_passes_an_order_that_closes():
    check_new(losing_book(), replace(LIMITS, max_daily_loss=D(1000)), "ACTIVE", sell(100))


def test_a_loss_under_the_limit_passes():
    check_new(losing_book(), replace(LIMITS, max_daily_loss=D(1101)), "ACTIVE", buy(1))


# -- funds --------------------------------------------------------------------------------------
def test_an_order_needing_more_margin_than_available_is_refused():
    book = Book(D(1000))
    check_new(book, LIMITS, "ACTIVE", buy(10, "100", product="CNC"))  # 1000 at 100% fits exactly
    violation = refused(book, buy(11, "100", product="CNC"))
    assert violation.rule == "available_funds"
    assert (violation.details["limit"], violation.details["requested"]) == ("1000", "1100")


def test_mis_needs_its_margin_percent_only():
    check_new(Book(D(1000)), LIMITS, "ACTIVE", buy(50, "100", product="MIS"))  # 5000 x 20% = 1000


def test_a_closing_order_needs_no_margin():
    book = Book(D(0), (Holding(1, "CNC", 100, D(100)),))
    check_new(book, LIMITS, "ACTIVE", sell(100, "100", product="CNC"))


# -- modifications -------------------------------------------------------------------------------
def amend(old=10, new=10, price="100", new_price="100", side="BUY", product="MIS", filled=0, changed=None):
    return Amendment(1, product, side, old - filled, D(price), new, new - filled, D(new_price),
                     changed if changed is not None else price != new_price)  # fmt: skip


def working_book(side="BUY", qty=10, holdings=()) -> Book:
    return Book(CASH, holdings, (Working(1, "MIS", side, 1, qty, D(qty * 100)),))


def test_halted_passes_a_modification_that_only_shrinks_quantity():
    check_amendment(working_book(), LIMITS, "HALTED", amend(10, 5))


def test_halted_refuses_a_modification_that_grows_quantity():
    with pytest.raises(RiskViolation) as info:
        check_amendment(working_book(), LIMITS, "HALTED", amend(10, 20))
    assert (info.value.rule, info.value.halted) == ("trading_halted", True)


def test_halted_refuses_a_price_change_of_an_order_adding_exposure():
    with pytest.raises(RiskViolation):
        check_amendment(working_book(), LIMITS, "HALTED", amend(10, 10, new_price="101"))


def test_reducing_passes_a_price_change_of_a_closing_order():
    book = working_book("SELL", 10, holdings=(Holding(1, "MIS", 10, D(100)),))
    check_amendment(book, LIMITS, "REDUCING", amend(10, 10, side="SELL", new_price="99"))


def test_a_modification_is_held_to_the_order_quantity_limit():
    with pytest.raises(RiskViolation) as info:
        check_amendment(working_book(), replace(LIMITS, max_order_quantity=15), "ACTIVE", amend(10, 16))
    assert info.value.rule == "max_order_quantity"


def test_a_modification_growing_past_the_funds_is_refused():
    book = Book(D(1000), (), (Working(1, "CNC", "BUY", 1, 10, D(1000)),))
    with pytest.raises(RiskViolation) as info:
        check_amendment(book, LIMITS, "ACTIVE", amend(10, 11, product="CNC"))
    assert info.value.rule == "available_funds"


def test_a_modification_lowering_the_price_frees_margin():
    book = Book(D(1000), (), (Working(1, "CNC", "BUY", 1, 10, D(1000)),))
    check_amendment(book, LIMITS, "ACTIVE", amend(10, 10, product="CNC", new_price="90"))


# -- valuation ------------------------------------------------------------------------------------
def test_limit_orders_are_valued_at_their_limit_price():
    assert valuation_price("LIMIT", D(101), None, D(99)) == D(101)


def test_market_orders_are_valued_at_the_last_price():
    assert valuation_price("MARKET", None, None, D(99)) == D(99)


def test_a_stop_is_valued_at_its_stop_price_as_the_book_values_it():
    # A BUY stop trades above the market once triggered: valuing it at the last price let an order
    # through the funds check that then blocked more margin than there was (review finding).
    assert valuation_price("STOP", None, D(105), D(99)) == D(105)
    assert valuation_price("STOP", None, D(105), None) == D(105)


# -- margin model properties -----------------------------------------------------------------
PRICES = st.integers(1, 400_000).map(lambda c: D(c) / 20)
HOLDINGS = st.lists(
    st.builds(Holding, st.integers(1, 4), st.sampled_from(["MIS", "NRML", "CNC"]), st.integers(-500, 500), PRICES,
              PRICES.map(lambda p: p - 5000)),
    max_size=6, unique_by=lambda h: (h.instrument_id, h.product),
)  # fmt: skip


@given(HOLDINGS, st.dictionaries(st.integers(1, 4), PRICES))
def test_funds_identity(holdings, marks):
    book = Book(CASH, tuple(holdings), marks=marks)
    f = margin.funds(book, LIMITS)
    assert f.cash == CASH + sum((h.realized_pnl for h in holdings), D(0))
    assert f.available == f.cash + min(f.unrealized_pnl, 0) - f.used_margin
    assert f.used_margin == sum(
        (abs(h.quantity) * h.average_price * margin.margin_rate(LIMITS, h.product) for h in holdings), D(0)
    )


@given(HOLDINGS, st.integers(1, 4), st.sampled_from(["MIS", "NRML", "CNC"]), st.integers(1, 500), PRICES)
def test_an_order_within_the_opposite_position_adds_no_margin(holdings, iid, product, qty, price):
    book = Book(CASH, tuple(holdings))
    held = book.position(iid, product)
    side = "SELL" if held > 0 else "BUY"
    qty = min(qty, abs(held))
    after = book.with_working(iid, product, side, 1, qty, qty * price)
    assert margin.used_margin(after, LIMITS) == margin.used_margin(book, LIMITS)


@given(HOLDINGS, st.integers(1, 4), st.sampled_from(["MIS", "NRML", "CNC"]), st.sampled_from(["BUY", "SELL"]),
       st.integers(1, 500), PRICES)  # fmt: skip
def test_margin_of_an_order_is_never_negative_nor_more_than_its_full_margin(holdings, iid, product, side, qty, price):
    book = Book(CASH, tuple(holdings))
    after = book.with_working(iid, product, side, 1, qty, qty * price)
    added = margin.used_margin(after, LIMITS) - margin.used_margin(book, LIMITS)
    assert 0 <= added <= qty * price * margin.margin_rate(LIMITS, product)


# -- the day's P&L (daily loss limit) -------------------------------------------------------------
def day_book(holding, mark, close):
    return margin.Book(D(10_000_000), (holding,), (), {1: D(mark)}, 0, {1: D(close)} if close else {})


def test_a_loss_on_an_overnight_position_counts_from_yesterdays_close():
    # Bought at 100 long ago, closed yesterday at 300, 150 now: today lost 150 a share, not gained 50.
    held = margin.Holding(1, "NRML", 10_000, D(100), cost_basis=D(1_000_000))
    assert margin.day_pnl(day_book(held, "150", "300")) == D(-1_500_000)


def test_an_old_loss_is_not_todays_loss():
    # Bought at 300, closed yesterday at 200, still 200: nothing happened today.
    held = margin.Holding(1, "NRML", 10_000, D(300), cost_basis=D(3_000_000))
    assert margin.day_pnl(day_book(held, "200", "200")) == 0


def test_todays_trades_count_at_their_prices_and_overnight_quantity_at_the_close():
    # 10 held overnight (close 100); today bought 5 at 104 and sold 8 at 106; 102 now.
    held = margin.Holding(1, "MIS", 7, D(100), cost_basis=D(700), day_bought=5, day_sold=8,
                          day_cash_flow=D(8 * 106 - 5 * 104))  # fmt: skip
    # cash flow 328 + 7 x 102 - 10 x 100 = 42
    assert margin.day_pnl(day_book(held, "102", "100")) == D(42)


def test_without_a_previous_close_the_since_open_view_stands_in():
    held = margin.Holding(1, "MIS", 10, D(100), day_realized_pnl=D(5), cost_basis=D(1000))
    assert margin.day_pnl(day_book(held, "90", None)) == D(5) + D(-100)
