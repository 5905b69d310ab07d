"""Position arithmetic against a reference computed from the whole fill list."""

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingapp.domain.positions import (
    DayActivity,
    PositionState,
    apply_fill,
    record_day_fill,
    session_day,
    share,
    unrealized_pnl,
)

D = Decimal


def test_buying_twice_averages_the_price():
    p = apply_fill(PositionState(), "BUY", 10, D("100"))
    p = apply_fill(p, "BUY", 10, D("110"))
    assert (p.quantity, p.cost_basis, p.average_price, p.realized_pnl) == (20, D("2100"), D("105"), 0)


def test_selling_part_realises_pnl_against_the_released_basis():
    p = apply_fill(PositionState(20, D("2100")), "SELL", 5, D("115"))
    assert (p.quantity, p.cost_basis, p.average_price, p.realized_pnl) == (15, D("1575"), D("105"), D("50"))


def test_flip_from_long_to_short_opens_at_the_fill_price():
    p = apply_fill(PositionState(10, D("1000")), "SELL", 15, D("90"))
    assert (p.quantity, p.cost_basis, p.average_price, p.realized_pnl) == (-5, D("-450"), D("90"), D("-100"))


def test_covering_a_short_at_a_lower_price_is_a_profit():
    p = apply_fill(PositionState(-10, D("-1000")), "BUY", 10, D("95"))
    assert (p.quantity, p.cost_basis, p.realized_pnl) == (0, 0, D("50"))


def test_unrealized_pnl_of_a_short():
    assert unrealized_pnl(PositionState(-10, D("-1000")), D("98")) == D("20")


def test_the_average_is_derived_from_the_exact_basis():
    """The reviewer's case: the average rounded at every fill gave 167.7616 and realized 203.6944."""
    p = PositionState()
    for qty, price in ((20, "146.55"), (38, "181.81"), (33, "164.44")):
        p = apply_fill(p, "BUY", qty, D(price))
    assert (p.cost_basis, p.average_price) == (D("15266.30"), D("167.7615"))
    assert unrealized_pnl(p, D("170")) == D("203.70")
    p = apply_fill(p, "SELL", 91, D("170"))
    assert (p.quantity, p.cost_basis, p.realized_pnl) == (0, 0, D("203.70"))


def test_a_partial_release_rounds_half_to_even_and_going_flat_releases_the_rest():
    p = apply_fill(PositionState(), "BUY", 1, D("50"))
    p = apply_fill(p, "BUY", 1, D("50.0001"))  # basis 100.0001
    p = apply_fill(p, "SELL", 1, D("50"))
    assert (p.cost_basis, p.realized_pnl) == (D("50.0001"), D("0"))  # released 50.00005 -> 50.0000
    p = apply_fill(p, "SELL", 1, D("50"))
    assert (p.cost_basis, p.realized_pnl) == (0, D("-0.0001"))  # the cash P&L: 100 - 100.0001


def test_share_rounds_exactly_beyond_the_decimal_context():
    # 28 significant digits would round the quotient onto the tie; integer arithmetic does not.
    assert share(D("9999999999999999.9999"), 1, 3) == D("3333333333333333.3333")
    assert share(D("0.0001"), 1, 2) == 0 and share(D("0.0003"), 1, 2) == D("0.0002")
    assert share(D("-0.0003"), 1, 2) == D("-0.0002")


def test_a_price_with_more_than_four_places_is_refused():
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        apply_fill(PositionState(), "BUY", 1, D("100.00001"))


PRICES = st.integers(1, 10**8).map(lambda units: Decimal(units).scaleb(-4))  # 0.0001 .. 10000.0000
FILLS = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 10**6), PRICES),
    max_size=40,
)


def cash_flow(fills) -> Fraction:
    return sum((Fraction(price) * (-n if side == "BUY" else n) for side, n, price in fills), Fraction(0))


def reference(fills):
    """Average-cost position from the whole list in Fractions: the basis of what is open (the
    closed share released rounded half to even to 4 places, all of it when going flat), the
    realized P&L and the average of the fills since the position last opened (no reduction since)."""
    qty, basis, realized, since_open = 0, Fraction(0), Fraction(0), []
    for side, n, price in fills:
        delta = n if side == "BUY" else -n
        if qty == 0:
            since_open = []  # a new position
        if qty == 0 or (qty > 0) == (delta > 0):
            basis += delta * Fraction(price)
            since_open = None if since_open is None else [*since_open, (n, Fraction(price))]
        else:
            closing = min(n, abs(qty))
            released = basis if closing == abs(qty) else Fraction(round(basis * closing / abs(qty), 4))
            realized += Fraction(price) * closing * (1 if qty > 0 else -1) - released
            opened = abs(delta) - closing
            basis = basis - released + Fraction(price) * (opened if delta > 0 else -opened)
            since_open = [(opened, Fraction(price))] if opened else None  # None: reduced
        qty += delta
    vwap = None
    if qty and since_open:
        vwap = sum(q * p for q, p in since_open) / sum(q for q, _ in since_open)
    return qty, basis, realized, vwap


def run(fills) -> PositionState:
    p = PositionState()
    for side, qty, price in fills:
        p = apply_fill(p, side, qty, price)
    return p


@given(FILLS)
def test_basis_and_realized_pnl_match_the_reference_exactly(fills):
    p = run(fills)
    qty, basis, realized, _ = reference(fills)
    assert (p.quantity, Fraction(p.cost_basis), Fraction(p.realized_pnl)) == (qty, basis, realized)
    assert p.cost_basis == p.cost_basis.quantize(D("0.0001")) and p.realized_pnl == p.realized_pnl.quantize(D("0.0001"))


@given(FILLS)
def test_a_flat_position_has_realized_exactly_its_cash_pnl(fills):
    qty = sum(n if side == "BUY" else -n for side, n, _ in fills)
    fills = fills + [("SELL" if qty > 0 else "BUY", abs(qty), D("1234.5678"))] if qty else fills
    p = run(fills)
    assert (p.quantity, p.cost_basis) == (0, 0)
    assert Fraction(p.realized_pnl) == cash_flow(fills)


@given(FILLS, PRICES)
def test_realized_plus_unrealized_is_the_mark_to_market_exactly(fills, mark):
    p = run(fills)
    assert Fraction(p.realized_pnl + unrealized_pnl(p, mark)) == cash_flow(fills) + p.quantity * Fraction(mark)


@given(FILLS)
def test_the_average_is_the_basis_per_unit_and_the_vwap_of_unreduced_fills(fills):
    p = run(fills)
    *_, vwap = reference(fills)
    if p.quantity == 0:
        assert p.average_price == 0
        return
    assert Fraction(p.average_price) == round(Fraction(p.cost_basis) / p.quantity, 4)
    if vwap is not None:  # nothing closed since it opened: the rounded exact VWAP
        assert Fraction(p.average_price) == round(vwap, 4)


# -- the day's activity ----------------------------------------------------------------------------
DAY1, DAY2 = date(2026, 3, 2), date(2026, 3, 3)


def test_a_fill_adds_to_the_days_buys_and_its_realized_pnl():
    a = record_day_fill(DayActivity(), DAY1, "BUY", 10, Decimal("100"), Decimal(0))
    a = record_day_fill(a, DAY1, "SELL", 4, Decimal("110"), Decimal("40"))
    assert (a.day, a.buy_quantity, a.buy_value, a.sell_quantity, a.sell_value, a.realized_pnl) == (
        DAY1, 10, Decimal("1000"), 4, Decimal("440"), Decimal("40"),
    )  # fmt: skip


def test_the_first_fill_of_a_new_day_starts_the_day_afresh():
    a = record_day_fill(DayActivity(), DAY1, "BUY", 10, Decimal("100"), Decimal("-5"))
    a = record_day_fill(a, DAY2, "SELL", 3, Decimal("90"), Decimal("-30"))
    assert (a.day, a.buy_quantity, a.sell_quantity, a.realized_pnl) == (DAY2, 0, 3, Decimal("-30"))


def test_a_late_fill_of_an_earlier_day_leaves_today_alone():
    today = record_day_fill(DayActivity(), DAY2, "BUY", 1, Decimal("100"), Decimal(0))
    assert record_day_fill(today, DAY1, "SELL", 5, Decimal("100"), Decimal("7")) == today


def test_the_session_day_is_the_exchange_timezones_date():
    evening_utc = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)  # 00:30 on the 3rd in Kolkata
    assert session_day(evening_utc, "Asia/Kolkata") == DAY2
    assert session_day(evening_utc, "UTC") == DAY1


@given(st.lists(st.tuples(st.sampled_from([DAY1, DAY2]), st.sampled_from(["BUY", "SELL"]), st.integers(1, 50),
                          st.integers(1, 2000).map(lambda c: Decimal(c) / 4)), max_size=40))  # fmt: skip
def test_the_day_activity_sums_the_fills_of_the_latest_day(fills):
    fills = sorted(fills, key=lambda f: f[0])  # fills arrive in time order
    position, activity, realized_by_day = PositionState(), DayActivity(), {DAY1: Decimal(0), DAY2: Decimal(0)}
    for day, side, qty, price in fills:
        after = apply_fill(position, side, qty, price)
        realized = after.realized_pnl - position.realized_pnl
        realized_by_day[day] += realized
        activity = record_day_fill(activity, day, side, qty, price, realized)
        position = after
    if not fills:
        return
    last = fills[-1][0]
    todays = [f for f in fills if f[0] == last]
    assert activity.day == last
    assert activity.buy_quantity == sum(q for _, s, q, _ in todays if s == "BUY")
    assert activity.sell_value == sum((q * p for _, s, q, p in todays if s == "SELL"), Decimal(0))
    assert activity.realized_pnl == realized_by_day[last]
