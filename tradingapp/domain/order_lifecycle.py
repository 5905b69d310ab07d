"""The order state machine: every status change of an order goes through `apply`.

Plain values in, plain values out: no Flask, no database. User commands that are not allowed
raise `InvalidTransition` (the API answers 409); broker events never raise: an event that cannot
move the order (a late ack, anything after a final state) comes back as `applied=False` with the
reason, so the audit records it and the consumer still acknowledges the message.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"  # saved, not yet at the broker
    SUBMITTED = "SUBMITTED"  # sent, not acknowledged
    OPEN = "OPEN"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_PENDING = "CANCEL_PENDING"
    CANCELLED = "CANCELLED"
    MODIFY_PENDING = "MODIFY_PENDING"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


FINAL = frozenset({Status.FILLED, Status.CANCELLED, Status.REJECTED, Status.EXPIRED})
PRICE_QUANTUM = Decimal("0.0001")


class InvalidTransition(Exception):
    def __init__(self, status: Status, action: str, message: str):
        super().__init__(message)
        self.status = status
        self.action = action


@dataclass(frozen=True)
class OrderState:
    status: Status
    quantity: int
    filled_quantity: int = 0
    average_price: Decimal | None = None
    acknowledged: bool = False  # the broker has confirmed it holds the order
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    pending_quantity: int | None = None  # the quantity a modification in flight asks for
    filled_value: Decimal = Decimal(0)  # sum of quantity x price of the fills: exact, the average derives from it

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity


# -- events -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Submit:
    """The worker is about to send the order to the broker."""


@dataclass(frozen=True)
class Accept:
    broker_order_id: str | None = None


@dataclass(frozen=True)
class Reject:
    reason: str


@dataclass(frozen=True)
class Fill:
    quantity: int
    price: Decimal


@dataclass(frozen=True)
class RequestCancel:
    """The user asks to cancel."""


@dataclass(frozen=True)
class Cancelled:
    reason: str | None = None


@dataclass(frozen=True)
class CancelRejected:
    reason: str


@dataclass(frozen=True)
class Expire:
    reason: str | None = None


@dataclass(frozen=True)
class RequestModify:
    """The user asks for new terms; `quantity` is the new total (the filled part included)."""

    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None


@dataclass(frozen=True)
class Modified:
    """The broker confirms the order's terms are now these."""

    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None


@dataclass(frozen=True)
class ModifyRejected:
    reason: str


Event = (
    Submit
    | Accept
    | Reject
    | Fill
    | RequestCancel
    | Cancelled
    | CancelRejected
    | Expire
    | RequestModify
    | Modified
    | ModifyRejected
)


@dataclass(frozen=True)
class Outcome:
    state: OrderState
    applied: bool
    reason: str | None = None


def _ignored(state: OrderState, reason: str) -> Outcome:
    return Outcome(state, applied=False, reason=reason)


def _working_status(state: OrderState) -> Status:
    """Where a live order sits when no cancel or modify is in flight."""
    if state.filled_quantity > 0:
        return Status.PARTIALLY_FILLED
    return Status.OPEN if state.acknowledged else Status.SUBMITTED


def average_of(filled_value: Decimal, filled_quantity: int) -> Decimal | None:
    """The volume-weighted average of the fills, rounded for display from their exact value."""
    if filled_quantity <= 0:
        return None
    return (filled_value / filled_quantity).quantize(PRICE_QUANTUM, rounding=ROUND_HALF_EVEN)


def apply(state: OrderState, event: Event) -> Outcome:
    handler = _HANDLERS[type(event)]
    return handler(state, event)


def _submit(state: OrderState, _event: Submit) -> Outcome:
    if state.status != Status.PENDING:
        raise InvalidTransition(state.status, "submit", f"cannot submit an order that is {state.status}")
    return Outcome(replace(state, status=Status.SUBMITTED), applied=True)


def _accept(state: OrderState, _event: Accept) -> Outcome:
    if state.is_final:
        return _ignored(state, f"acknowledgement after final state {state.status}")
    if state.acknowledged:
        return _ignored(state, "duplicate acknowledgement")
    acked = replace(state, acknowledged=True)
    if state.status in (Status.PENDING, Status.SUBMITTED):
        return Outcome(replace(acked, status=_working_status(acked)), applied=True)
    # A late ack (after a fill, or while a cancel is in flight) changes no status.
    return Outcome(acked, applied=True, reason=f"late acknowledgement while {state.status}")


def _reject(state: OrderState, event: Reject) -> Outcome:
    if state.is_final:
        return _ignored(state, f"reject after final state {state.status}")
    if state.filled_quantity > 0:
        # The filled part stands; the rest will never trade.
        return Outcome(replace(state, status=Status.CANCELLED), applied=True, reason=event.reason)
    return Outcome(replace(state, status=Status.REJECTED), applied=True, reason=event.reason)


def _fill(state: OrderState, event: Fill) -> Outcome:
    """A fill is a fact: it is booked whenever it fits the order, even after a final status (a
    fill that crossed a cancel or expiry on the way), and only a fill beyond the quantity the
    order can have is refused."""
    if event.quantity <= 0 or event.price <= 0:
        return _ignored(state, "fill with non-positive quantity or price")
    cap = state.quantity
    if state.status == Status.MODIFY_PENDING and state.pending_quantity:
        cap = max(cap, state.pending_quantity)  # the broker may already trade on the new quantity
    if state.filled_quantity + event.quantity > cap:
        return _ignored(state, f"overfill: {event.quantity} > remaining {cap - state.filled_quantity}")
    filled = state.filled_quantity + event.quantity
    value = state.filled_value + event.price * event.quantity
    average = average_of(value, filled)
    # A fill beyond the old quantity proves the modification took effect at the broker.
    quantity = state.quantity if filled <= state.quantity else cap
    new = replace(
        state, filled_quantity=filled, filled_value=value, average_price=average, acknowledged=True, quantity=quantity
    )
    if state.is_final:
        # Its status stays (a final order never moves); the trade and position are booked.
        return Outcome(new, applied=True, reason=f"late fill after {state.status}")
    if filled == new.quantity:
        return Outcome(replace(new, status=Status.FILLED), applied=True)
    if state.status in (Status.CANCEL_PENDING, Status.MODIFY_PENDING):
        return Outcome(new, applied=True)  # the pending request is still in flight
    return Outcome(replace(new, status=Status.PARTIALLY_FILLED), applied=True)


def _request_cancel(state: OrderState, _event: RequestCancel) -> Outcome:
    if state.is_final:
        raise InvalidTransition(state.status, "cancel", f"order is already {state.status}")
    if state.status == Status.CANCEL_PENDING:
        return _ignored(state, "cancel already requested")
    # A cancel may overtake a modification in flight (MODIFY_PENDING): the cancel wins.
    if state.status == Status.PENDING:
        # Never reached the broker (the caller holds the row lock the worker needs): done here.
        return Outcome(replace(state, status=Status.CANCELLED), applied=True, reason="cancelled before submission")
    return Outcome(replace(state, status=Status.CANCEL_PENDING), applied=True)


def _cancelled(state: OrderState, event: Cancelled) -> Outcome:
    if state.is_final:
        return _ignored(state, f"cancel confirmation after final state {state.status}")
    return Outcome(replace(state, status=Status.CANCELLED), applied=True, reason=event.reason)


def _cancel_rejected(state: OrderState, event: CancelRejected) -> Outcome:
    if state.is_final:
        # The usual race: the fill won. The order stays FILLED; the reason is kept for the user.
        return _ignored(state, f"cancel rejected ({event.reason}); order is {state.status}")
    if state.status != Status.CANCEL_PENDING:
        return _ignored(state, f"cancel rejection while {state.status}")
    return Outcome(replace(state, status=_working_status(state)), applied=True, reason=event.reason)


def _expire(state: OrderState, event: Expire) -> Outcome:
    if state.is_final:
        return _ignored(state, f"expiry after final state {state.status}")
    return Outcome(replace(state, status=Status.EXPIRED), applied=True, reason=event.reason)


def _request_modify(state: OrderState, event: RequestModify) -> Outcome:
    if state.is_final:
        raise InvalidTransition(state.status, "modify", f"order is already {state.status}")
    if state.status in (Status.CANCEL_PENDING, Status.MODIFY_PENDING):
        raise InvalidTransition(state.status, "modify", f"order is {state.status}; wait for the broker's answer")
    if state.status == Status.SUBMITTED:
        raise InvalidTransition(state.status, "modify", "order is not yet acknowledged by the broker; try again")
    if event.quantity <= state.filled_quantity:
        raise InvalidTransition(
            state.status, "modify", f"quantity must exceed the filled quantity {state.filled_quantity}"
        )
    terms = replace(state, quantity=event.quantity, limit_price=event.limit_price, stop_price=event.stop_price)
    if state.status == Status.PENDING:
        # Not at the broker yet (the caller holds the row lock the worker needs): the new terms
        # are simply the order's terms.
        return Outcome(terms, applied=True, reason="modified before submission")
    return Outcome(replace(state, status=Status.MODIFY_PENDING), applied=True)


def _modified(state: OrderState, event: Modified) -> Outcome:
    if state.is_final:
        return _ignored(state, f"modification after final state {state.status}")
    if event.quantity < state.filled_quantity:
        return _ignored(state, f"modified quantity {event.quantity} below filled {state.filled_quantity}")
    new = replace(
        state, quantity=event.quantity, limit_price=event.limit_price, stop_price=event.stop_price, acknowledged=True
    )
    if new.filled_quantity == new.quantity:
        return Outcome(replace(new, status=Status.FILLED), applied=True, reason="quantity reduced to the filled part")
    if state.status == Status.CANCEL_PENDING:
        return Outcome(new, applied=True)  # the cancel is still in flight
    return Outcome(replace(new, status=_working_status(new)), applied=True)


def _modify_rejected(state: OrderState, event: ModifyRejected) -> Outcome:
    if state.is_final:
        return _ignored(state, f"modify rejected ({event.reason}); order is {state.status}")
    if state.status != Status.MODIFY_PENDING:
        return _ignored(state, f"modify rejection while {state.status}")
    return Outcome(replace(state, status=_working_status(state)), applied=True, reason=event.reason)


_HANDLERS = {
    Submit: _submit,
    Accept: _accept,
    Reject: _reject,
    Fill: _fill,
    RequestCancel: _request_cancel,
    Cancelled: _cancelled,
    CancelRejected: _cancel_rejected,
    Expire: _expire,
    RequestModify: _request_modify,
    Modified: _modified,
    ModifyRejected: _modify_rejected,
}
