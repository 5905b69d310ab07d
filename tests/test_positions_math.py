"""Position arithmetic against a reference computed from the whole fill list."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tradingapp.domain.positions import PositionState, apply_fill, unrealized_pnl


def test_buying_twice_averages_the_price():
    p = apply_fill(PositionState(), "BUY", 10, Decimal("100"))
    p = apply_fill(p, "BUY", 10, Decimal("110"))
    assert (p.quantity, p.average_price, p.realized_pnl) == (20, Decimal("105"), 0)


def test_selling_part_realises_pnl_at_the_average():
    p = apply_fill(PositionState(20, Decimal("105")), "SELL", 5, Decimal("115"))
    assert (p.quantity, p.average_price, p.realized_pnl) == (15, Decimal("105"), Decimal("50"))


def test_flip_from_long_to_short_opens_at_the_fill_price():
    p = apply_fill(PositionState(10, Decimal("100")), "SELL", 15, Decimal("90"))
    assert (p.quantity, p.average_price, p.realized_pnl) == (-5, Decimal("90"), Decimal("-100"))


def test_covering_a_short_at_a_lower_price_is_a_profit():
    p = apply_fill(PositionState(-10, Decimal("100")), "BUY", 10, Decimal("95"))
    assert (p.quantity, p.realized_pnl) == (0, Decimal("50"))


def test_unrealized_pnl_of_a_short():
    assert unrealized_pnl(PositionState(-10, Decimal("100")), Decimal("98")) == Decimal("20")


FILLS = st.lists(
    st.tuples(st.sampled_from(["BUY", "SELL"]), st.integers(1, 50), st.integers(1, 2000).map(lambda c: Decimal(c) / 4)),
    max_size=40,
)


@given(FILLS, st.integers(1, 2000).map(lambda c: Decimal(c) / 4))
def test_position_quantity_and_total_pnl_match_the_fills(fills, mark):
    p = PositionState()
    for side, qty, price in fills:
        p = apply_fill(p, side, qty, price)
    signed = [(qty if side == "BUY" else -qty, price) for side, qty, price in fills]
    assert p.quantity == sum(q for q, _ in signed)
    # Total P&L marked at `mark` equals cash flow + inventory value, whatever the averaging path.
    reference = sum(-q * price for q, price in signed) + p.quantity * mark
    total = p.realized_pnl + (unrealized_pnl(p, mark) or 0)
    assert abs(total - reference) <= Decimal("0.0001") * (len(fills) + 1) * 100
