"""Hypothesis drives one order through random user commands and broker events, in any order
(fills before acks, late acks, answers to requests never made), and checks the invariants after
every step. Pure domain code: no services."""

from dataclasses import replace
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tradingapp.domain import order_lifecycle as sm
from tradingapp.domain.order_lifecycle import FINAL, OrderState, Status
from tradingapp.domain.positions import PositionState, apply_fill

PRICES = st.decimals("0.05", "5000", places=2)
QUANTITIES = st.integers(1, 40)


class OrderLifecycle(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.side = "BUY"
        self.state = OrderState(Status.PENDING, quantity=20, limit_price=Decimal("100"))
        self.fills: list[sm.Fill] = []
        self.position = PositionState()
        self.final_state: OrderState | None = None
        self.pending: int | None = None

    def _apply(self, event: sm.Event) -> None:
        try:
            outcome = sm.apply(self.state, event)
        except sm.InvalidTransition:
            assert isinstance(event, (sm.Submit, sm.RequestCancel, sm.RequestModify)), "only commands are refused"
            return
        if self.final_state is not None:
            assert outcome.state.status == self.final_state.status, f"final order moved on {event}"
            if not isinstance(event, sm.Fill):
                assert not outcome.applied and outcome.state == self.state
        if isinstance(event, sm.Fill) and outcome.applied:
            self.fills.append(event)
            self.position = apply_fill(self.position, self.side, event.quantity, event.price)
        self.state = outcome.state
        if self.state.is_final and self.final_state is None:
            self.final_state = self.state
        if self.state.status == Status.MODIFY_PENDING:
            self.state = replace(self.state, pending_quantity=self.pending)

    # -- the user --------------------------------------------------------------------------
    @rule()
    def submit(self):
        self._apply(sm.Submit())

    @rule()
    def request_cancel(self):
        self._apply(sm.RequestCancel())

    @rule(quantity=QUANTITIES, price=PRICES)
    def request_modify(self, quantity, price):
        self.pending = quantity  # the service keeps the asked quantity beside the order
        self._apply(sm.RequestModify(quantity, price, None))

    # -- the broker ------------------------------------------------------------------------
    @rule()
    def accept(self):
        self._apply(sm.Accept("B1"))

    @rule()
    def reject(self):
        self._apply(sm.Reject("RMS"))

    @rule(quantity=QUANTITIES, price=PRICES)
    def fill(self, quantity, price):
        self._apply(sm.Fill(quantity, price))

    @precondition(lambda self: self.state.remaining > 0)
    @rule(price=PRICES, data=st.data())
    def fill_within_remaining(self, price, data):
        self._apply(sm.Fill(data.draw(st.integers(1, self.state.remaining)), price))

    @rule()
    def cancelled(self):
        self._apply(sm.Cancelled("done"))

    @rule()
    def cancel_rejected(self):
        self._apply(sm.CancelRejected("too late"))

    @rule()
    def expire(self):
        self._apply(sm.Expire("session end"))

    @rule(quantity=QUANTITIES, price=PRICES)
    def modified(self, quantity, price):
        self._apply(sm.Modified(quantity, price, None))

    @rule()
    def modify_rejected(self):
        self._apply(sm.ModifyRejected("no"))

    # -- what always holds ------------------------------------------------------------------
    @invariant()
    def filled_never_exceeds_quantity(self):
        assert 0 <= self.state.filled_quantity <= self.state.quantity

    @invariant()
    def filled_is_the_sum_of_applied_fills(self):
        assert self.state.filled_quantity == sum(f.quantity for f in self.fills)

    @invariant()
    def average_price_is_the_volume_weighted_mean(self):
        if not self.fills:
            assert self.state.average_price is None
            return
        exact = sum(f.price * f.quantity for f in self.fills) / sum(f.quantity for f in self.fills)
        # Derived from the exact value of the fills, rounded once: never drifts with their number.
        assert self.state.average_price == exact.quantize(Decimal("0.0001"))
        assert self.state.filled_value == sum(f.price * f.quantity for f in self.fills)

    @invariant()
    def position_is_the_sum_of_fills(self):
        assert self.position.quantity == sum(f.quantity for f in self.fills)

    @invariant()
    def status_agrees_with_quantities(self):
        s = self.state
        if s.status == Status.FILLED:
            assert s.filled_quantity == s.quantity
        if s.status == Status.PARTIALLY_FILLED:
            assert 0 < s.filled_quantity < s.quantity
        if s.filled_quantity == s.quantity and s.quantity > 0 and s.filled_quantity > 0:
            assert s.status in FINAL

    @invariant()
    def final_is_final(self):
        # A final status never changes; a late fill (a fact) may still add to its filled quantity.
        if self.final_state is not None:
            assert self.state.status == self.final_state.status
            assert self.state.filled_quantity >= self.final_state.filled_quantity


OrderLifecycle.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestOrderLifecycle = OrderLifecycle.TestCase
