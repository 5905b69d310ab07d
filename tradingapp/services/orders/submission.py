"""The worker's side of orders: claim an order for submission, check a cancel is still wanted,
find the orders a crash left behind and the working orders to reconcile with the broker. Every
function ends its transaction before it returns, so a job never holds a database transaction open
while it waits on the broker."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from tradingapp.brokers.base import ModifyRequest, OrderRequest
from tradingapp.domain import order_lifecycle as sm
from tradingapp.domain.risk import TradingState, stricter
from tradingapp.domain.session_end import last_session_end
from tradingapp.extensions import db
from tradingapp.models import Account, Order, RiskSettings
from tradingapp.models.risk import GLOBAL_SETTINGS_ID
from tradingapp.models.types import utcnow
from tradingapp.services.orders import state as order_state
from tradingapp.services.orders import telemetry
from tradingapp.services.orders.placement import notify_order

log = logging.getLogger(__name__)

UNSENT_PAST_SESSION = "not sent to the broker before its session ended"
HALTED_BEFORE_SUBMISSION = "trading halted before the order reached the broker"


class OrderFacts(NamedTuple):
    """What a job's log lines and figures need of its order (read with the order, no extra query)."""

    request_id: str | None
    client_order_id: str | None
    broker_order_id: str | None
    created_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderFacts:
        return cls(order.request_id, order.client_order_id, order.broker_order_id, order.created_at)


class Claim(tuple):
    """A claimed submission: unpacks as (request, resend), as callers always took it, and carries
    the order's facts. `resend`: an earlier attempt already claimed it and may have reached the
    broker, so look it up there before sending."""

    facts: OrderFacts

    def __new__(cls, request: OrderRequest, resend: bool, facts: OrderFacts) -> Claim:
        claim = super().__new__(cls, (request, resend))
        claim.facts = facts
        return claim

    @property
    def request(self) -> OrderRequest:
        return self[0]

    @property
    def resend(self) -> bool:
        return self[1]


def claim_for_submission(order_id: uuid.UUID) -> Claim | None:
    """PENDING -> SUBMITTED under a row lock, or a SUBMITTED order never acknowledged (a resend)."""
    order = order_state.lock_order(order_id)
    if order is None:
        db.session.rollback()
        log.warning("event=submit_unknown_order order_id=%s", order_id)
        return None
    if order.status == sm.Status.PENDING and past_its_session(order):
        _expire_unsent(order)
        return None
    if order.status == sm.Status.PENDING and halted(order.user_id):
        _reject_unsent(order, HALTED_BEFORE_SUBMISSION)
        return None
    if order.status == sm.Status.PENDING:
        order_state.transition(order, sm.Submit(), "system", actor_id="worker")
        request = order_state.order_request(order)
        payload = order.to_dict()  # built in the transaction: the push after the commit reads nothing
        telemetry.stage_on_commit(telemetry.CLAIMED, order.created_at)
        db.session.commit()
        notify_order(order, payload)
        return Claim(request, False, OrderFacts.of(order))
    if order.status == sm.Status.SUBMITTED and order.broker_order_id is None:
        request = order_state.order_request(order)
        facts = OrderFacts.of(order)
        db.session.rollback()
        return Claim(request, True, facts)
    db.session.rollback()
    return None


def past_its_session(order: Order, now: datetime | None = None) -> bool:
    """An order whose session ended before it reached the broker (the worker or Redis was down at
    the close) must not trade in a later session at a later price. DAY and IOC both live within
    one session."""
    config = current_app.config
    close = last_session_end(now or utcnow(), config["PAPER_SESSION_END"], ZoneInfo(config["PAPER_SESSION_TZ"]))
    return order.created_at < close


def halted(user_id: uuid.UUID) -> bool:
    """The kill switch (global or the user's) is on: orders accepted before it must not go out."""
    states = db.session.execute(
        sa.select(Account.trading_state, RiskSettings.trading_state)
        .outerjoin(RiskSettings, RiskSettings.id == GLOBAL_SETTINGS_ID)
        .where(Account.user_id == user_id)
    ).first()
    if states is None:
        return (
            db.session.scalar(sa.select(RiskSettings.trading_state).where(RiskSettings.id == GLOBAL_SETTINGS_ID))
            == TradingState.HALTED
        )
    return stricter(states[0], states[1] or TradingState.ACTIVE) == TradingState.HALTED


def _expire_unsent(order: Order) -> None:
    _end_unsent(order, sm.Expire(UNSENT_PAST_SESSION))


def _reject_unsent(order: Order, reason: str) -> None:
    _end_unsent(order, sm.Reject(reason))


def _end_unsent(order: Order, event: sm.Event) -> None:
    order_state.transition(order, event, "system", actor_id="worker")
    payload = order.to_dict()
    db.session.commit()
    log.warning(
        "event=ended_unsent order_id=%s user_id=%s status=%s reason=%r",
        order.id,
        order.user_id,
        order.status,
        order.reject_reason,
    )
    notify_order(order, payload)


def end_if_unsendable(order_id: uuid.UUID) -> bool:
    """For a resend the broker has never seen: expire the order instead when its session is over,
    or reject it when the kill switch went on meanwhile. True when the order was ended."""
    order = order_state.lock_order(order_id)
    if order is None or order.status not in (sm.Status.PENDING, sm.Status.SUBMITTED):
        db.session.rollback()
        return False
    if past_its_session(order):
        _expire_unsent(order)
        return True
    if halted(order.user_id):
        _reject_unsent(order, HALTED_BEFORE_SUBMISSION)
        return True
    db.session.rollback()
    return False


_FACTS = (Order.request_id, Order.client_order_id, Order.broker_order_id, Order.created_at)


def order_for_cancel(order_id: uuid.UUID) -> OrderFacts | None:
    """The order's facts while it waits for its cancel (CANCEL_PENDING), else None."""
    row = db.session.execute(sa.select(Order.status, *_FACTS).where(Order.id == order_id)).first()
    db.session.rollback()
    if row is None or row.status != sm.Status.CANCEL_PENDING:
        return None
    return OrderFacts(*row[1:])


def modify_request(order_id: uuid.UUID, seq: int) -> tuple[ModifyRequest, OrderFacts] | None:
    """The terms of modification `seq`, while the order still waits for it (MODIFY_PENDING with
    that sequence number); None when the modification was answered or superseded."""
    order = db.session.get(Order, order_id)
    found = None
    pending = order is not None and order.status == sm.Status.MODIFY_PENDING and order.pending_quantity is not None
    if pending and order.modify_seq == seq:
        request = ModifyRequest(
            order.id, seq, order.pending_quantity, order.pending_limit_price, order.pending_stop_price
        )
        found = request, OrderFacts.of(order)
    db.session.rollback()
    return found


def find_stale_orders(older_than_seconds: int) -> list[uuid.UUID]:
    """Orders a crash may have stranded: PENDING (never enqueued or job lost) or SUBMITTED with no
    broker acknowledgement, untouched for longer than the threshold."""
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    ids = db.session.scalars(
        sa.select(Order.id)
        .where(
            sa.or_(
                Order.status == sm.Status.PENDING,
                sa.and_(Order.status == sm.Status.SUBMITTED, Order.broker_order_id.is_(None)),
            ),
            Order.updated_at < cutoff,
        )
        .order_by(Order.created_at)
        .limit(1000)
    ).all()
    db.session.rollback()
    return list(ids)


# Working orders the sweeper reconciles with the broker: a fill, cancel or modification the broker
# made may have been lost between its commit and its publish, or a cancel/modify job may be lost.
RECONCILE_STATUSES = (sm.Status.OPEN, sm.Status.PARTIALLY_FILLED, sm.Status.CANCEL_PENDING, sm.Status.MODIFY_PENDING)
REQUEST_STATUSES = (sm.Status.CANCEL_PENDING, sm.Status.MODIFY_PENDING)  # a user is waiting on these


@dataclass(frozen=True)
class WorkingOrder:
    id: uuid.UUID
    status: str
    modify_seq: int
    updated_at: datetime


def _working(statuses, older_than_seconds: int):
    cutoff = utcnow() - timedelta(seconds=older_than_seconds)
    columns = (Order.id, Order.status, Order.modify_seq, Order.updated_at)
    return sa.select(*columns).where(Order.status.in_([s.value for s in statuses]), Order.updated_at < cutoff)


def find_waiting_requests(older_than_seconds: int, limit: int) -> list[WorkingOrder]:
    """CANCEL_PENDING and MODIFY_PENDING orders untouched for longer than the threshold, oldest first."""
    query = _working(REQUEST_STATUSES, older_than_seconds).order_by(Order.updated_at, Order.id).limit(limit)
    rows = db.session.execute(query).all()
    db.session.rollback()
    return [WorkingOrder(*row) for row in rows]


def find_working_orders(
    older_than_seconds: int, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[WorkingOrder]:
    """Working orders untouched for longer than the threshold, in (updated_at, id) order after the
    cursor `after`: the sweeper walks all of them a batch per round instead of the same oldest ones."""
    query = _working(RECONCILE_STATUSES, older_than_seconds)
    if after is not None:
        query = query.where(sa.tuple_(Order.updated_at, Order.id) > sa.tuple_(*after))
    rows = db.session.execute(query.order_by(Order.updated_at, Order.id).limit(limit)).all()
    db.session.rollback()
    return [WorkingOrder(*row) for row in rows]


def working_order(order_id: uuid.UUID) -> tuple[WorkingOrder, OrderFacts] | None:
    """The order when it is still one the sweeper reconciles, else None (final, or not yet at the broker)."""
    row = db.session.execute(
        sa.select(Order.id, Order.status, Order.modify_seq, Order.updated_at, *_FACTS).where(Order.id == order_id)
    ).first()
    db.session.rollback()
    if row is None or row.status not in RECONCILE_STATUSES:
        return None
    return WorkingOrder(*row[:4]), OrderFacts(*row[4:])


def unsent_orders() -> tuple[int, datetime | None]:
    """(how many, the oldest accept) of the orders accepted but not yet at the broker: PENDING, or
    SUBMITTED without the broker's acknowledgement. The sweeper's gauges (the "orders stuck" alert)."""
    count, oldest = db.session.execute(
        sa.select(sa.func.count(), sa.func.min(Order.created_at)).where(
            sa.or_(
                Order.status == sm.Status.PENDING,
                sa.and_(Order.status == sm.Status.SUBMITTED, Order.broker_order_id.is_(None)),
            )
        )
    ).one()
    db.session.rollback()
    return count, oldest
