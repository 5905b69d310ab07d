"""Placing an order: validation, the checks against the market, the risk engine and the duplicate
guard, then the row and its submission. (Changes to placed orders: services/orders/actions.py; the
worker's side: services/orders/submission.py.)

The rule everywhere: the order row is committed before anything else happens to it; jobs are
enqueued after the commit, and an enqueue that fails leaves a PENDING row the sweeper finds.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from tradingapp import logs
from tradingapp.domain import order_lifecycle as sm
from tradingapp.domain.errors import Conflict, Invalid
from tradingapp.domain.positions import session_day
from tradingapp.domain.validation import (
    InstrumentSpec,
    NewOrder,
    OrderValidationError,
    check_against_market,
    parse_instrument_id,
    validate_new_order,
)
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument, Order, User
from tradingapp.models.types import utcnow
from tradingapp.realtime import last_price, publish_user_event, read_quotes
from tradingapp.services.accounts.broker_accounts import require_trading_account
from tradingapp.services.orders import risk, telemetry
from tradingapp.services.orders import state as order_state

log = logging.getLogger(__name__)


def invalid_order(errors: dict[str, str]) -> Invalid:
    return Invalid("invalid order", errors)


def parse_order(body: dict, idempotency_key: str | None = None) -> tuple[Instrument, NewOrder]:
    """The instrument and the valid new order of a POST /orders body, or Invalid (the 400)."""
    try:
        instrument_id = parse_instrument_id(body)
    except OrderValidationError as exc:
        raise invalid_order(exc.errors) from None
    instrument = db.session.get(Instrument, instrument_id)
    if instrument is None:
        raise invalid_order({"instrument_id": f"unknown instrument {instrument_id}"})
    try:
        return instrument, validate_new_order(body, instrument_spec(instrument), idempotency_key)
    except OrderValidationError as exc:
        raise invalid_order(exc.errors) from None


def place_order(user: User, body: dict, idempotency_key: str | None) -> tuple[Order, bool]:
    """(order, created). An earlier order under the same client id comes back with created=False."""
    instrument, new = parse_order(body, idempotency_key)
    if new.client_order_id:
        existing = _existing_order(user, new)
        if existing is not None:
            return existing, False
    return place_validated(user, instrument, new)


def instrument_spec(instrument: Instrument) -> InstrumentSpec:
    return InstrumentSpec(instrument.id, instrument.lot_size, instrument.tick_size, instrument.freeze_quantity)


def untradable(instrument: Instrument) -> str | None:
    """Why no new order may be placed on the instrument (None: it may): it left the broker's
    instrument master (`flask instruments sync`), or its contract expired before today's session."""
    if not instrument.active:
        return f"{instrument.symbol} is no longer in the broker's instrument master and cannot be traded"
    if instrument.expiry is None:  # cash instruments: no session clock on the order path
        return None
    if instrument.expiry < session_day(utcnow(), current_app.config["SESSION_TIMEZONE"]):
        return f"{instrument.symbol} expired on {instrument.expiry.isoformat()} and cannot be traded"
    return None


def market_price(instrument_id: int) -> Decimal | None:
    """The cached last price, for the price band and the risk engine; None when there is none."""
    try:
        return last_price(read_quotes(get_redis(), [instrument_id]).get(instrument_id))
    except (ArithmeticError, ValueError):
        return None


def check_against_the_market(instrument: Instrument, new: NewOrder) -> Decimal | None:
    """The last price, once the instrument is tradable and the order's prices sit within the band
    around it; else the 400 POST /orders answers (placement and the estimate alike)."""
    if reason := untradable(instrument):
        raise invalid_order({"instrument_id": reason})
    last = market_price(instrument.id)
    band = Decimal(current_app.config["PRICE_BAND_PCT"])
    errors = check_against_market(new.side, new.order_type, new.limit_price, new.stop_price, last, band)
    if errors:
        raise invalid_order(errors)
    return last


def place_validated(
    user: User, instrument: Instrument, new: NewOrder, duplicate_guard: bool = True, close_only: bool = False
) -> tuple[Order, bool]:
    """Check a valid request against the market, the duplicate guard and the risk engine, then write
    the order and queue its submission."""
    if not close_only:
        require_trading_account(user.id)
    last = check_against_the_market(instrument, new)
    try:
        risk.check_order(user, instrument, new, last, close_only=close_only)
    except risk.RiskRejected as exc:
        _refuse(user, new, instrument, exc)
    if duplicate_guard and not new.client_order_id:
        _refuse_duplicate(user, new)
    order = _new_order_row(user, new, instrument)
    existing = _flush_new(order, user, new)
    if existing is not None:
        return existing, False
    order_state.record(order, "user", "created", actor_id=str(user.id), details={"request": _summary(new)})
    payload = order.to_dict()
    db.session.commit()
    with logs.bind(order_id=order.id, client_order_id=order.client_order_id, user_id=user.id):
        log.info(
            "event=order_accepted order_id=%s user_id=%s type=%s side=%s qty=%s",
            order.id,
            user.id,
            new.order_type,
            new.side,
            new.quantity,
        )
        _after_commit(order, payload)
    return order, True


def _flush_new(order: Order, user: User, new: NewOrder) -> Order | None:
    """Insert the row; when another request with the same client_order_id won the race, that
    order comes back (answered as a repeat) and nothing is written."""
    db.session.add(order)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        existing = _existing_order(user, new)
        if existing is None:
            raise
        return existing
    return None


def _refuse(user: User, new: NewOrder, instrument: Instrument, exc: risk.RiskRejected) -> None:
    """A risk refusal is kept as a REJECTED order with its audit rows (who asked, which rule, the
    numbers), then answered as a refusal. A rate-limit refusal writes nothing: a flood must not fill
    the database."""
    if exc.code == "rate_limited":
        db.session.rollback()
        raise exc
    order = _new_order_row(user, new, instrument)
    order.status = sm.Status.REJECTED.value
    order.reject_reason = f"risk: {exc.message}"[:255]
    existing = _flush_new(order, user, new)
    if existing is not None:
        raise exc
    order_state.record(order, "user", "created", actor_id=str(user.id), details={"request": _summary(new)})
    order_state.record(
        order,
        "system",
        "risk_rejected",
        actor_id="risk",
        reason=exc.message[:255],
        details={"rule": exc.rule, **exc.details},
    )
    payload = order.to_dict()
    telemetry.final_on_commit(order.status, exc.rule)
    db.session.commit()
    with logs.bind(order_id=order.id, client_order_id=order.client_order_id, user_id=user.id):
        log.info("event=order_refused_by_risk order_id=%s user_id=%s rule=%s", order.id, user.id, exc.rule)
    notify_order(order, payload)
    exc.details = {**exc.details, "order_id": str(order.id)}
    raise exc


def _refuse_duplicate(user: User, new: NewOrder) -> None:
    """A double click, a retried request without a client id: the same order, still working,
    placed moments ago, is refused. A new client_order_id says the second one is meant."""
    window = current_app.config["DUPLICATE_ORDER_WINDOW"]
    if window <= 0:
        return
    duplicate = db.session.scalar(
        sa.select(Order.id)
        .where(
            Order.user_id == user.id,
            Order.instrument_id == new.instrument_id,
            Order.side == new.side,
            Order.quantity == new.quantity,
            Order.order_type == new.order_type,
            Order.limit_price.is_not_distinct_from(new.limit_price),
            Order.stop_price.is_not_distinct_from(new.stop_price),
            Order.status.not_in([s.value for s in sm.FINAL]),
            Order.created_at >= utcnow() - timedelta(seconds=window),
        )
        .limit(1)
    )
    if duplicate is not None:
        db.session.rollback()
        raise Conflict(
            f"an identical order is still working (placed within {window} s); send a new client_order_id to place"
            " another",
            {"duplicate_of": str(duplicate), "window_seconds": window},
        )


def _existing_order(user: User, new: NewOrder) -> Order | None:
    existing = db.session.scalar(
        sa.select(Order).where(Order.user_id == user.id, Order.client_order_id == new.client_order_id)
    )
    if existing is not None and existing.request_hash != new.fingerprint():
        raise Conflict(
            "client_order_id was already used for a different order",
            {"client_order_id": new.client_order_id, "order_id": str(existing.id)},
        )
    return existing


def _new_order_row(user: User, new: NewOrder, instrument: Instrument) -> Order:
    now = utcnow()
    return Order(
        id=uuid.uuid4(),
        instrument=instrument,  # set, not lazy-loaded: the order's JSON names its symbol
        user_id=user.id,
        client_order_id=new.client_order_id,
        # The id of the HTTP request that placed it (X-Request-ID, bound by tradingapp/http.py): the
        # worker and the consumer put it on their lines about the order (README "Tracing an order").
        request_id=logs.current().get("request_id"),
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


def _after_commit(order: Order, payload: dict) -> None:
    """Side effects that must follow the commit; a failure here loses nothing (the sweeper retries)."""
    from tradingapp.services.orders import jobqueue

    try:
        jobqueue.enqueue_submit(order.id)
    except Exception:
        log.exception("event=enqueue_failed job=submit order_id=%s retry=sweeper", order.id)
    notify_order(order, payload)


def notify_order(order: Order, payload: dict | None = None) -> None:
    """Push the order to its owner's sockets (`payload`: the order as built inside its transaction)."""
    try:
        publish_user_event(get_redis(), str(order.user_id), "order", payload or order.to_dict())
    except Exception:  # the WebSocket push is best effort; the REST API is the record
        log.warning("order notification failed order_id=%s", order.id)
