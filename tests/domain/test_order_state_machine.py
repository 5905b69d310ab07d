"""The order state machine on its own: no services needed."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingapp.domain import order_lifecycle as sm
from tradingapp.domain.order_lifecycle import FINAL, OrderState, Status


def state(status=Status.PENDING, quantity=10, filled=0, avg=None, acked=False):
    return OrderState(Status(status), quantity, filled, avg, acked, filled_value=(avg or 0) * filled)


def test_submit_moves_pending_to_submitted():
    assert sm.apply(state(), sm.Submit()).state.status == Status.SUBMITTED


def test_submit_twice_is_refused():
    with pytest.raises(sm.InvalidTransition):
        sm.apply(state(Status.SUBMITTED), sm.Submit())


def test_accept_opens_a_submitted_order():
    outcome = sm.apply(state(Status.SUBMITTED), sm.Accept("B1"))
    assert outcome.state.status == Status.OPEN and outcome.state.acknowledged


def test_full_fill_ends_filled_with_average_price():
    outcome = sm.apply(state(Status.OPEN, acked=True), sm.Fill(10, Decimal("101.25")))
    assert outcome.state.status == Status.FILLED
    assert outcome.state.average_price == Decimal("101.25")


def test_partial_fills_average_by_volume():
    s = sm.apply(state(Status.OPEN, acked=True), sm.Fill(4, Decimal("100"))).state
    s = sm.apply(s, sm.Fill(6, Decimal("110"))).state
    assert s.status == Status.FILLED
    assert s.average_price == Decimal("106.0000")


def test_fill_before_ack_is_applied():
    outcome = sm.apply(state(Status.SUBMITTED), sm.Fill(3, Decimal("50")))
    assert outcome.state.status == Status.PARTIALLY_FILLED and outcome.state.filled_quantity == 3


def test_late_ack_after_partial_fill_keeps_status():
    s = sm.apply(state(Status.SUBMITTED), sm.Fill(3, Decimal("50"))).state
    outcome = sm.apply(s, sm.Accept("B1"))
    assert outcome.state.status == Status.PARTIALLY_FILLED


def test_overfill_is_ignored():
    outcome = sm.apply(state(Status.OPEN, acked=True), sm.Fill(11, Decimal("1")))
    assert not outcome.applied and outcome.state.filled_quantity == 0


def test_cancel_of_pending_order_is_immediate():
    outcome = sm.apply(state(Status.PENDING), sm.RequestCancel())
    assert outcome.state.status == Status.CANCELLED


def test_cancel_of_open_order_waits_for_the_broker():
    outcome = sm.apply(state(Status.OPEN, acked=True), sm.RequestCancel())
    assert outcome.state.status == Status.CANCEL_PENDING


@pytest.mark.parametrize("final", sorted(FINAL))
def test_cancel_of_final_order_is_refused(final):
    with pytest.raises(sm.InvalidTransition):
        sm.apply(state(final), sm.RequestCancel())


def test_cancel_rejected_returns_to_working_status():
    s = state(Status.CANCEL_PENDING, filled=4, avg=Decimal("10"), acked=True)
    outcome = sm.apply(s, sm.CancelRejected("too late"))
    assert outcome.state.status == Status.PARTIALLY_FILLED


def test_cancel_that_races_a_fill_ends_filled():
    s = sm.apply(state(Status.CANCEL_PENDING, acked=True), sm.Fill(10, Decimal("5"))).state
    assert s.status == Status.FILLED
    outcome = sm.apply(s, sm.CancelRejected("order already filled"))
    assert outcome.state.status == Status.FILLED and not outcome.applied
    assert "already filled" in outcome.reason


def test_reject_after_partial_fill_cancels_the_rest():
    s = state(Status.PARTIALLY_FILLED, filled=4, avg=Decimal("10"), acked=True)
    assert sm.apply(s, sm.Reject("RMS")).state.status == Status.CANCELLED


EVENTS = st.one_of(
    st.builds(sm.Accept, st.just("B1")),
    st.builds(sm.Reject, st.just("no")),
    st.builds(sm.Fill, st.integers(1, 12), st.decimals("0.05", "500", places=2)),
    st.builds(sm.Cancelled),
    st.builds(sm.CancelRejected, st.just("no")),
    st.builds(sm.Expire),
    st.just(sm.RequestCancel()),
    st.just(sm.Submit()),
)


@given(st.lists(EVENTS, max_size=30))
def test_random_event_sequences_keep_the_invariants(events):
    s = state()
    fills = []
    for event in events:
        was_final = s.is_final
        try:
            outcome = sm.apply(s, event)
        except sm.InvalidTransition:
            continue
        if was_final:
            assert outcome.state.status == s.status, "a final order never moves"
            if not isinstance(event, sm.Fill):
                assert outcome.state == s, "only a late fill is booked on a final order"
        if isinstance(event, sm.Fill) and outcome.applied:
            fills.append(event)
        s = outcome.state
        assert 0 <= s.filled_quantity <= s.quantity
        assert s.filled_quantity == sum(f.quantity for f in fills)
    if fills:
        exact = sum(f.price * f.quantity for f in fills) / sum(f.quantity for f in fills)
        assert s.average_price == exact.quantize(Decimal("0.0001"))  # exact: derived from the fills' value


# -- modification ----------------------------------------------------------------------------------
def test_modify_of_an_open_order_waits_for_the_broker():
    out = sm.apply(state(Status.OPEN, acked=True), sm.RequestModify(20, Decimal("101"), None))
    assert (out.state.status, out.state.quantity) == (Status.MODIFY_PENDING, 10)


def test_modify_of_a_pending_order_takes_the_terms_at_once():
    out = sm.apply(state(), sm.RequestModify(20, Decimal("101"), None))
    assert (out.state.status, out.state.quantity, out.state.limit_price) == (Status.PENDING, 20, Decimal("101"))


@pytest.mark.parametrize("status", ["SUBMITTED", "CANCEL_PENDING", "MODIFY_PENDING", *FINAL])
def test_modify_is_refused_where_it_cannot_apply(status):
    with pytest.raises(sm.InvalidTransition):
        sm.apply(state(status, acked=status != "SUBMITTED"), sm.RequestModify(20, None, None))


def test_modify_to_no_more_than_the_filled_part_is_refused():
    s = state(Status.PARTIALLY_FILLED, filled=6, avg=Decimal("10"), acked=True)
    with pytest.raises(sm.InvalidTransition):
        sm.apply(s, sm.RequestModify(6, None, None))


def test_modified_applies_the_terms_and_restores_the_working_status():
    s = state(Status.MODIFY_PENDING, filled=4, avg=Decimal("10"), acked=True)
    out = sm.apply(s, sm.Modified(20, Decimal("9.5"), None))
    terms = (out.state.status, out.state.quantity, out.state.limit_price)
    assert terms == (Status.PARTIALLY_FILLED, 20, Decimal("9.5"))


def test_modified_down_to_the_filled_part_ends_filled():
    s = state(Status.MODIFY_PENDING, filled=4, avg=Decimal("10"), acked=True)
    assert sm.apply(s, sm.Modified(4, None, None)).state.status == Status.FILLED


def test_modified_while_a_cancel_is_in_flight_keeps_cancel_pending():
    s = state(Status.CANCEL_PENDING, acked=True)
    assert sm.apply(s, sm.Modified(20, None, None)).state.status == Status.CANCEL_PENDING


def test_modify_rejected_returns_to_working_status_with_the_reason():
    out = sm.apply(state(Status.MODIFY_PENDING, acked=True), sm.ModifyRejected("price band"))
    assert (out.state.status, out.reason) == (Status.OPEN, "price band")


def test_modify_answers_after_a_final_state_are_ignored():
    s = state(Status.FILLED, filled=10, avg=Decimal("10"), acked=True)
    assert not sm.apply(s, sm.Modified(20, None, None)).applied
    assert not sm.apply(s, sm.ModifyRejected("late")).applied


def test_cancel_overtakes_a_modification_in_flight():
    out = sm.apply(state(Status.MODIFY_PENDING, acked=True), sm.RequestCancel())
    assert out.state.status == Status.CANCEL_PENDING


# -- fills are facts -----------------------------------------------------------------------------
@pytest.mark.parametrize("final", [Status.CANCELLED, Status.EXPIRED, Status.REJECTED])
def test_a_late_fill_on_a_final_order_is_booked_and_the_status_stays(final):
    s = state(final, filled=4, avg=Decimal("10"), acked=True)
    out = sm.apply(s, sm.Fill(2, Decimal("13")))
    assert out.applied and out.reason == f"late fill after {final}"
    assert (out.state.status, out.state.filled_quantity, out.state.average_price) == (final, 6, Decimal("11"))


def test_a_fill_beyond_the_quantity_is_refused_even_when_late():
    s = state(Status.FILLED, filled=10, avg=Decimal("10"), acked=True)
    assert not sm.apply(s, sm.Fill(1, Decimal("10"))).applied


def test_a_fill_on_the_new_quantity_before_the_modified_answer_is_booked():
    s = OrderState(Status.MODIFY_PENDING, 10, 0, None, True, pending_quantity=20)
    out = sm.apply(s, sm.Fill(15, Decimal("10")))
    assert (out.state.status, out.state.quantity, out.state.filled_quantity) == (Status.MODIFY_PENDING, 20, 15)
    done = sm.apply(out.state, sm.Modified(20, None, None))
    assert (done.state.status, done.state.quantity) == (Status.PARTIALLY_FILLED, 20)
