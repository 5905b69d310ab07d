"""Where the domain state machine meets the orders table: one function changes an order's state
and writes the audit row for it, whoever asked (user, worker, broker), and counts the order's
final status once the change commits (services/orders/telemetry.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from tradingapp.brokers.base import OrderRequest
from tradingapp.domain import order_lifecycle as sm
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent
from tradingapp.models.types import utcnow
from tradingapp.services.orders import telemetry

EVENT_NAMES = {
    sm.Submit: "submitted",
    sm.Accept: "accepted",
    sm.Reject: "rejected",
    sm.Fill: "fill",
    sm.RequestCancel: "cancel_requested",
    sm.Cancelled: "cancelled",
    sm.CancelRejected: "cancel_rejected",
    sm.Expire: "expired",
    sm.RequestModify: "modify_requested",
    sm.Modified: "modified",
    sm.ModifyRejected: "modify_rejected",
}
# Events that answer (or overtake) a modification in flight: its pending terms are done with.
CLEARS_PENDING_TERMS = (sm.Modified, sm.ModifyRejected)
REASON_STATUSES = {sm.Status.REJECTED, sm.Status.CANCELLED, sm.Status.EXPIRED}


def state_of(order: Order) -> sm.OrderState:
    return sm.OrderState(
        status=sm.Status(order.status),
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        acknowledged=order.broker_order_id is not None,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        pending_quantity=order.pending_quantity if order.status == sm.Status.MODIFY_PENDING else None,
        filled_value=order.filled_value or Decimal(0),
    )


def transition(
    order: Order,
    event: sm.Event,
    actor: str,
    actor_id: str | None = None,
    source_event_id: str | None = None,
    details: dict | None = None,
) -> sm.Outcome:
    """Apply `event` to the order row and record it; the caller commits. Raises InvalidTransition
    for a user command the state forbids."""
    before = order.status
    outcome = sm.apply(state_of(order), event)
    new = outcome.state
    if outcome.applied:
        order.status = new.status.value
        order.filled_quantity = new.filled_quantity
        order.filled_value = new.filled_value
        order.average_price = new.average_price
        order.quantity = new.quantity
        order.limit_price = new.limit_price
        order.stop_price = new.stop_price
        order.updated_at = utcnow()
        if new.status in REASON_STATUSES and outcome.reason and before != new.status:
            order.reject_reason = outcome.reason[:255]
        if new.is_final and before not in sm.FINAL:
            telemetry.final_on_commit(new.status.value, telemetry.final_reason(event, before, actor))
            if new.status == sm.Status.FILLED:
                telemetry.stage_on_commit(telemetry.FILLED, order.created_at)
    if isinstance(event, sm.CancelRejected) and new.status == sm.Status.FILLED and not order.reject_reason:
        # The usual race: the fill beat the cancel. The order stays FILLED; this says why.
        order.reject_reason = f"cancel rejected: {event.reason}"[:255]
    if isinstance(event, CLEARS_PENDING_TERMS) or (outcome.applied and new.is_final):
        order.pending_quantity = order.pending_limit_price = order.pending_stop_price = None
    db.session.add(
        OrderEvent(
            order_id=order.id,
            actor=actor,
            actor_id=actor_id,
            event=EVENT_NAMES[type(event)] if outcome.applied else f"{EVENT_NAMES[type(event)]}_ignored",
            from_status=before,
            to_status=order.status,
            reason=(outcome.reason or None) and outcome.reason[:255],
            details=details or {},
            source_event_id=source_event_id,
        )
    )
    return outcome


def record(
    order: Order,
    actor: str,
    event: str,
    actor_id: str | None = None,
    reason: str | None = None,
    details: dict | None = None,
) -> None:
    """An audit row for something that is not a status change (creation, a refused request)."""
    db.session.add(
        OrderEvent(
            order_id=order.id,
            actor=actor,
            actor_id=actor_id,
            event=event,
            from_status=None if event == "created" else order.status,
            to_status=order.status,
            reason=reason,
            details=details or {},
        )
    )


def order_request(order: Order) -> OrderRequest:
    instrument = order.instrument
    return OrderRequest(
        order_id=order.id,
        user_id=order.user_id,
        instrument_id=order.instrument_id,
        exchange_segment=instrument.exchange_segment,
        exchange_instrument_id=instrument.exchange_instrument_id,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        product=order.product,
        time_in_force=order.time_in_force,
    )


def lock_order(order_id: uuid.UUID) -> Order | None:
    """The order row, locked for this transaction (Postgres row lock; SQLite serialises writers)."""
    return db.session.get(Order, order_id, with_for_update={"of": Order}, populate_existing=True)
