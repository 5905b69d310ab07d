"""The worker's side of orders: claim an order for submission, check a cancel is still wanted,
find the orders a crash left behind. Every function ends its transaction before it returns, so a
job never holds a database transaction open while it waits on the broker."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import sqlalchemy as sa

from tradingapp.brokers.base import ModifyRequest, OrderRequest
from tradingapp.domain import orders as sm
from tradingapp.extensions import db
from tradingapp.models import Order
from tradingapp.models.types import utcnow
from tradingapp.services import order_state
from tradingapp.services.orders import notify_order

log = logging.getLogger(__name__)


def claim_for_submission(order_id: uuid.UUID) -> tuple[OrderRequest, bool] | None:
    """PENDING -> SUBMITTED under a row lock. (request, resend): resend means an earlier attempt
    already claimed it and may have reached the broker, so look it up there before sending."""
    order = order_state.lock_order(order_id)
    if order is None:
        db.session.rollback()
        log.warning("submit for unknown order order_id=%s", order_id)
        return None
    if order.status == sm.Status.PENDING:
        order_state.transition(order, sm.Submit(), "system", actor_id="worker")
        request = order_state.order_request(order)
        payload = order.to_dict()  # built inside the transaction: nothing reloads after the commit
        db.session.commit()
        notify_order(order, payload)
        return request, False
    if order.status == sm.Status.SUBMITTED and order.broker_order_id is None:
        request = order_state.order_request(order)
        db.session.rollback()
        return request, True
    db.session.rollback()
    return None


def order_for_cancel(order_id: uuid.UUID) -> uuid.UUID | None:
    status = db.session.scalar(sa.select(Order.status).where(Order.id == order_id))
    db.session.rollback()
    return order_id if status == sm.Status.CANCEL_PENDING else None


def modify_request(order_id: uuid.UUID, seq: int) -> ModifyRequest | None:
    """The terms of modification `seq`, while the order still waits for it (MODIFY_PENDING with
    that sequence number); None when the modification was answered or superseded."""
    order = db.session.get(Order, order_id)
    request = None
    if order is not None and order.status == sm.Status.MODIFY_PENDING and order.modify_seq == seq:
        request = ModifyRequest(order.id, seq, order.pending_quantity, order.pending_limit_price,
                                order.pending_stop_price)  # fmt: skip
    db.session.rollback()
    return request


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
