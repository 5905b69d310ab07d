"""What a user does to orders already placed: cancel one or all, modify one, flatten positions.

Each change runs under the order's row lock through the state machine, commits with its audit
row, and only then queues the broker job, like a new order does.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from tradingapp import logs
from tradingapp.domain import order_lifecycle as sm
from tradingapp.domain.errors import Conflict, DomainError, NotFound
from tradingapp.domain.validation import (
    ModifyTerms,
    NewOrder,
    OrderValidationError,
    check_against_market,
    validate_modify,
)
from tradingapp.extensions import db
from tradingapp.models import Instrument, Order, Position, User
from tradingapp.services.orders import jobqueue, risk
from tradingapp.services.orders import state as order_state
from tradingapp.services.orders.placement import (
    instrument_spec,
    invalid_order,
    market_price,
    notify_order,
    place_validated,
)

log = logging.getLogger(__name__)

WORKING = [s.value for s in sm.Status if s not in sm.FINAL]


def _locked_own_order(user: User, order_id: uuid.UUID) -> Order:
    order = order_state.lock_order(order_id)
    if order is None or order.user_id != user.id:
        db.session.rollback()
        raise NotFound("order not found")
    return order


# -- cancel ----------------------------------------------------------------------------------
def cancel_order(user: User, order_id: uuid.UUID) -> Order:
    order = _locked_own_order(user, order_id)
    requeue = _request_cancel(user, order)
    payload = order.to_dict()
    db.session.commit()
    with logs.bind(order_id=order.id, client_order_id=order.client_order_id, broker_order_id=order.broker_order_id):
        log.info("event=cancel_requested order_id=%s user_id=%s status=%s", order.id, user.id, order.status)
    _after_cancel(order, payload, requeue)
    return order


def _request_cancel(user: User, order: Order) -> bool:
    """Apply the cancel request; True when a broker cancel job is wanted."""
    try:
        order_state.transition(order, sm.RequestCancel(), "user", actor_id=str(user.id))
    except sm.InvalidTransition as exc:
        db.session.rollback()
        raise Conflict(str(exc), {"status": order.status}) from None
    # Asking again while CANCEL_PENDING sends the cancel again: its first job may have been lost.
    return order.status == sm.Status.CANCEL_PENDING


def _after_cancel(order: Order, payload: dict, send: bool) -> None:
    if send:
        try:
            jobqueue.enqueue_cancel(order.id)
        except Exception:
            log.exception("event=enqueue_failed job=cancel order_id=%s retry=sweeper", order.id)
    notify_order(order, payload)


def cancel_all(user: User, instrument_id: int | None = None) -> list[uuid.UUID]:
    """Cancel every working order of the user (optionally of one instrument); returns the ids asked
    to cancel. Orders already CANCEL_PENDING are asked again; final ones are left alone."""
    query = (
        sa.select(Order)
        .where(Order.user_id == user.id, Order.status.in_(WORKING))
        .order_by(Order.created_at)
        .with_for_update(of=Order)
    )
    if instrument_id is not None:
        query = query.where(Order.instrument_id == instrument_id)
    orders = db.session.scalars(query.execution_options(populate_existing=True)).all()
    sends = [_request_cancel(user, order) for order in orders]
    payloads = [order.to_dict() for order in orders]
    db.session.commit()
    log.info("event=cancel_all_requested user_id=%s orders=%s", user.id, len(orders))
    for order, payload, send in zip(orders, payloads, sends, strict=True):
        _after_cancel(order, payload, send)
    return [order.id for order in orders]


# -- modify ----------------------------------------------------------------------------------
def modify_order(user: User, order_id: uuid.UUID, body: dict) -> Order:
    """New terms for a working order: MODIFY_PENDING until the broker answers (a PENDING order,
    not yet at the broker, takes them at once)."""
    seen = db.session.get(Order, order_id)  # usually in the session already: the price is read before any lock
    last = market_price(seen.instrument_id) if seen is not None else None
    order = _locked_own_order(user, order_id)
    current = ModifyTerms(order.quantity, order.limit_price, order.stop_price)
    try:
        terms = validate_modify(
            body, instrument_spec(order.instrument), order.side, order.order_type, current, order.filled_quantity
        )
    except OrderValidationError as exc:
        db.session.rollback()
        raise invalid_order(exc.errors) from None
    band = Decimal(current_app.config["PRICE_BAND_PCT"])
    errors = check_against_market(
        order.side,
        order.order_type,
        terms.limit_price if "limit_price" in body else None,
        terms.stop_price if "stop_price" in body else None,
        last,
        band,
    )
    if errors:
        db.session.rollback()
        raise invalid_order(errors)
    request = sm.RequestModify(terms.quantity, terms.limit_price, terms.stop_price)
    details = {"quantity": terms.quantity, "limit_price": _str(terms.limit_price), "stop_price": _str(terms.stop_price)}
    try:
        sm.apply(order_state.state_of(order), request)  # the state's verdict (409) comes before the risk engine's
    except sm.InvalidTransition as exc:
        db.session.rollback()
        raise Conflict(str(exc), {"status": order.status}) from None
    _check_modify_risk(user, order, terms, details, last)
    order_state.transition(order, request, "user", actor_id=str(user.id), details=details)
    send = order.status == sm.Status.MODIFY_PENDING
    if send:
        order.modify_seq += 1
        order.pending_quantity = terms.quantity
        order.pending_limit_price = terms.limit_price
        order.pending_stop_price = terms.stop_price
    payload, seq = order.to_dict(), order.modify_seq
    db.session.commit()
    log.info(
        "event=modify_requested order_id=%s user_id=%s seq=%s status=%s quantity=%s limit_price=%s stop_price=%s",
        order.id,
        user.id,
        seq,
        order.status,
        terms.quantity,
        terms.limit_price,
        terms.stop_price,
    )
    if send:
        try:
            jobqueue.enqueue_modify(order.id, seq)
        except Exception:
            log.exception("event=enqueue_failed job=modify order_id=%s retry=sweeper", order.id)
    notify_order(order, payload)
    return order


def _check_modify_risk(user: User, order: Order, terms: ModifyTerms, details: dict, last: Decimal | None) -> None:
    """The risk engine sees every modification; a refusal is audited on the order, which keeps its terms."""
    try:
        risk.check_modify(user, order, terms.quantity, terms.limit_price, terms.stop_price, last)
    except risk.RiskRejected as exc:
        if exc.code == "rate_limited":
            db.session.rollback()
            raise
        # The order keeps its terms (nothing was applied); the refusal is audited, and whatever the
        # risk engine noted on the account (a daily-loss breach puts it in REDUCING) is kept.
        order_state.record(
            order,
            "system",
            "modify_risk_rejected",
            actor_id="risk",
            reason=exc.message[:255],
            details={"rule": exc.rule, "requested": details, **exc.details},
        )
        db.session.commit()
        log.info("event=modify_refused_by_risk order_id=%s user_id=%s rule=%s", order.id, user.id, exc.rule)
        exc.details = {**exc.details, "order_id": str(order.id)}
        raise


def _str(value) -> str | None:
    return None if value is None else str(value)


# -- flatten ---------------------------------------------------------------------------------
def close_all_positions(user: User) -> tuple[list[Order], list[dict]]:
    """Market orders that flatten every open position of the user, sliced by the instrument's
    freeze quantity. Exit orders already working count: only the rest is sent, so a resting exit
    and this one never together flip the position. Returns (orders placed, positions skipped with
    the reason)."""
    positions = db.session.scalars(
        sa.select(Position).where(Position.user_id == user.id, Position.quantity != 0).order_by(Position.id)
    ).all()
    targets = [(p.instrument_id, p.product, p.quantity) for p in positions]
    working = _working_exits(user)
    db.session.rollback()
    placed: list[Order] = []
    skipped: list[dict] = []
    for instrument_id, product, quantity in targets:
        side = "SELL" if quantity > 0 else "BUY"
        covered = working.get((instrument_id, product, side), 0)
        rest = abs(quantity) - covered
        if rest <= 0:
            skipped.append(_skip(instrument_id, product, 0, "covered", f"working exit orders cover {covered}"))
            continue
        instrument = db.session.get(Instrument, instrument_id)
        for n, size in enumerate(_slices(rest, instrument.freeze_quantity)):
            new = NewOrder(instrument_id, side, size, "MARKET", None, None, product, "DAY", None)
            try:
                # Slices of one exit are alike by design; the first one alone meets the duplicate
                # guard, which stops a second close-all while the first is still working.
                # close_only: sized from a read outside the account lock, the exit is checked again
                # under it, so an exit or fill racing this one can never flip the position.
                order, _created = place_validated(user, instrument, new, duplicate_guard=n == 0, close_only=True)
            except DomainError as exc:
                db.session.rollback()
                skipped.append(_skip(instrument_id, product, size, exc.code, exc.message, exc.details))
                break  # the rest of this position's exit waits for the trader
            placed.append(order)
    log.info("event=close_all_requested user_id=%s orders=%s skipped=%s", user.id, len(placed), len(skipped))
    return placed, skipped


def _working_exits(user: User) -> dict[tuple[int, str, str], int]:
    """Unfilled quantity of the user's working orders per (instrument, product, side)."""
    rows = db.session.execute(
        sa.select(Order.instrument_id, Order.product, Order.side, sa.func.sum(Order.quantity - Order.filled_quantity))
        .where(Order.user_id == user.id, Order.status.in_(WORKING))
        .group_by(Order.instrument_id, Order.product, Order.side)
    ).all()
    return {(iid, product, side): int(rest) for iid, product, side, rest in rows}


def _skip(instrument_id: int, product: str, quantity: int, code: str, message: str, details=None) -> dict:
    error = {"code": code, "message": message, "details": details or {}}
    return {"instrument_id": instrument_id, "product": product, "quantity": quantity, "error": error}


def _slices(quantity: int, freeze_quantity: int | None) -> list[int]:
    if not freeze_quantity or quantity <= freeze_quantity:
        return [quantity]
    full, rest = divmod(quantity, freeze_quantity)
    return [freeze_quantity] * full + ([rest] if rest else [])
