"""Order use cases: place and cancel for the API, claim and look up for the worker.

The rule everywhere: the order row is committed before anything else happens to it; jobs are
enqueued after the commit, and an enqueue that fails leaves a PENDING row the sweeper finds.
"""

from __future__ import annotations

import logging
import uuid

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from tradingapp.domain import orders as sm
from tradingapp.domain.validation import (
    InstrumentSpec,
    NewOrder,
    OrderValidationError,
    parse_instrument_id,
    validate_new_order,
)
from tradingapp.errors import APIError, conflict, not_found
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument, Order, User
from tradingapp.models.types import utcnow
from tradingapp.realtime import publish_user_event
from tradingapp.services import order_state

log = logging.getLogger(__name__)


def _validation(errors: dict[str, str]) -> APIError:
    return APIError(400, "validation_error", "invalid order", errors)


def place_order(user: User, body: dict, idempotency_key: str | None) -> tuple[Order, bool]:
    """(order, created). An earlier order under the same client id comes back with created=False."""
    try:
        instrument_id = parse_instrument_id(body)
    except OrderValidationError as exc:
        raise _validation(exc.errors) from None
    instrument = db.session.get(Instrument, instrument_id)
    if instrument is None:
        raise _validation({"instrument_id": f"unknown instrument {instrument_id}"})
    spec = InstrumentSpec(instrument.id, instrument.lot_size, instrument.tick_size)
    try:
        new = validate_new_order(body, spec, idempotency_key)
    except OrderValidationError as exc:
        raise _validation(exc.errors) from None
    if new.client_order_id:
        existing = _existing_order(user, new)
        if existing is not None:
            return existing, False
    order = _new_order_row(user, new)
    db.session.add(order)
    try:
        db.session.flush()
    except IntegrityError:
        # Another request with the same client_order_id won the race: answer as for a repeat.
        db.session.rollback()
        existing = _existing_order(user, new)
        if existing is None:
            raise
        return existing, False
    order_state.record(order, "user", "created", actor_id=str(user.id), details={"request": _summary(new)})
    db.session.commit()
    log.info(
        "order accepted order_id=%s user_id=%s type=%s side=%s qty=%s",
        order.id,
        user.id,
        new.order_type,
        new.side,
        new.quantity,
    )
    _after_commit(order, submit=True)
    return order, True


def _existing_order(user: User, new: NewOrder) -> Order | None:
    existing = db.session.scalar(
        sa.select(Order).where(Order.user_id == user.id, Order.client_order_id == new.client_order_id)
    )
    if existing is not None and existing.request_hash != new.fingerprint():
        raise conflict(
            "client_order_id was already used for a different order",
            client_order_id=new.client_order_id,
            order_id=str(existing.id),
        )
    return existing


def _new_order_row(user: User, new: NewOrder) -> Order:
    now = utcnow()
    return Order(
        id=uuid.uuid4(),
        user_id=user.id,
        client_order_id=new.client_order_id,
        request_hash=new.fingerprint(),
        broker=current_app.config["BROKER"],
        instrument_id=new.instrument_id,
        side=new.side,
        quantity=new.quantity,
        filled_quantity=0,
        order_type=new.order_type,
        limit_price=new.limit_price,
        stop_price=new.stop_price,
        product=new.product,
        time_in_force=new.time_in_force,
        status=sm.Status.PENDING.value,
        created_at=now,
        updated_at=now,
    )


def _summary(new: NewOrder) -> dict:
    return {
        "side": new.side,
        "quantity": new.quantity,
        "order_type": new.order_type,
        "limit_price": None if new.limit_price is None else str(new.limit_price),
        "product": new.product,
        "time_in_force": new.time_in_force,
    }


def cancel_order(user: User, order_id: uuid.UUID) -> Order:
    order = order_state.lock_order(order_id)
    if order is None or order.user_id != user.id:
        db.session.rollback()
        raise not_found("order")
    try:
        outcome = order_state.transition(order, sm.RequestCancel(), "user", actor_id=str(user.id))
    except sm.InvalidTransition as exc:
        db.session.rollback()
        raise conflict(str(exc), status=order.status) from None
    db.session.commit()
    log.info("cancel requested order_id=%s user_id=%s status=%s", order.id, user.id, order.status)
    if outcome.applied:
        _after_commit(order, cancel=order.status == sm.Status.CANCEL_PENDING)
    return order


def _after_commit(order: Order, submit: bool = False, cancel: bool = False) -> None:
    """Side effects that must follow the commit; a failure here loses nothing (the sweeper retries)."""
    from tradingapp.services import jobqueue

    try:
        if submit:
            jobqueue.enqueue_submit(order.id)
        if cancel:
            jobqueue.enqueue_cancel(order.id)
    except Exception:
        log.exception("enqueue failed; the sweeper will pick the order up order_id=%s", order.id)
    notify_order(order)


def notify_order(order: Order, payload: dict | None = None) -> None:
    """Push the order to its owner's sockets. Pass `payload` (built before the commit) when the
    transaction is over, so the push never reloads the row and opens a new transaction."""
    try:
        publish_user_event(get_redis(), str(order.user_id), "order", payload or order.to_dict())
    except Exception:  # the WebSocket push is best effort; the REST API is the record
        log.warning("order notification failed order_id=%s", order.id)
