"""Applying broker events (acks, fills, rejects, cancels) to orders, trades and positions.

Each event is applied once: its id goes into processed_events in the same transaction as the
change, so a redelivered message finds its id and changes nothing. Fills are also unique by
(order, execution id), the broker's natural key. Notifications go out only after the commit.

The lines about an event carry its id and its order's ids, the request id among them read from
the order row (XTS events carry none of ours); the order's stages (acknowledged, filled) are timed
once the change commits, so a duplicate observes nothing (services/orders/telemetry.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlalchemy as sa

from tradingapp import events as ev
from tradingapp import logs
from tradingapp.domain import order_lifecycle as sm
from tradingapp.extensions import db, get_redis, upsert_insert
from tradingapp.models import Order, Position, ProcessedEvent, Trade
from tradingapp.models.types import utcnow
from tradingapp.realtime import last_price, publish_user_event, read_quotes
from tradingapp.services.accounts.positions import apply_fill_to_position
from tradingapp.services.orders import state as order_state
from tradingapp.services.orders import telemetry
from tradingapp.services.orders.placement import notify_order

log = logging.getLogger(__name__)


@dataclass
class Applied:
    order: Order
    trade: Trade | None = None
    position: Position | None = None
    retry_later: bool = False  # refused for now (e.g. ahead of the modification that allows it)


def _claim_event_id(event_id: str) -> bool:
    """True when this transaction is the first to apply the event."""
    stmt = (
        upsert_insert(ProcessedEvent)
        .values(event_id=event_id, processed_at=utcnow())
        .on_conflict_do_nothing()
        .returning(ProcessedEvent.event_id)
    )
    return db.session.execute(stmt).scalar() is not None


def apply_broker_event(body: object) -> bool:
    """Apply one event; True when it changed something, False for a duplicate.
    Raises MalformedEvent for a message that can never apply (it belongs in the dead-letter queue)."""
    event = ev.parse_event(body)
    with logs.bind(event_id=event.event_id, order_id=event.order_id):
        return _apply_once(event)


def _apply_once(event: ev.BrokerEvent) -> bool:
    if not _claim_event_id(event.event_id):
        db.session.rollback()
        log.info("event=broker_event_duplicate event_id=%s type=%s", event.event_id, event.type)
        return False
    order = order_state.lock_order(event.order_id)
    if order is None:
        db.session.rollback()
        raise ev.MalformedEvent(f"event {event.event_id} names unknown order {event.order_id}")
    with logs.bind(
        request_id=order.request_id,
        user_id=order.user_id,
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id or event.broker_order_id,
    ):
        try:
            result = _apply(order, event)
        except ev.MalformedEvent:
            db.session.rollback()
            raise
        if result.retry_later:
            # Not "processed": the broker's re-send of the same event (a reconcile) gets another chance.
            db.session.execute(sa.delete(ProcessedEvent).where(ProcessedEvent.event_id == event.event_id))
        db.session.commit()
        log.info(
            "event=broker_event_applied type=%s event_id=%s order_id=%s user_id=%s status=%s",
            event.type,
            event.event_id,
            order.id,
            order.user_id,
            order.status,
        )
        _notify(result)
    return True


def _apply(order: Order, event: ev.BrokerEvent) -> Applied:
    result = Applied(order)
    domain_event = _domain_event(event)
    details = {"broker_order_id": event.broker_order_id}
    if event.type == ev.MODIFIED:
        details.update(quantity=event.quantity, limit_price=_str(event.limit_price), stop_price=_str(event.stop_price))
    if event.type == ev.FILL:
        details.update(execution_id=event.execution_id, quantity=event.quantity, price=str(event.price))
        if _fill_seen(order, event.execution_id):
            order_state.record(order, "broker", "fill_duplicate", actor_id=event.broker, details=details)
            return result
    if event.type in (ev.MODIFIED, ev.MODIFY_REJECTED) and event.seq is not None and event.seq != order.modify_seq:
        # An answer to an older modification than the latest one asked: the latest one's answer
        # decides the terms. Kept in the audit trail, out of the order's state.
        details.update(seq=event.seq, latest_seq=order.modify_seq)
        order_state.record(order, "broker", "modify_answer_stale", actor_id=event.broker, details=details)
        return result
    outcome = order_state.transition(
        order, domain_event, "broker", actor_id=event.broker, source_event_id=event.event_id, details=details
    )
    # Recorded after the transition: the machine reads "acknowledged" from the id's absence.
    if event.broker_order_id and order.broker_order_id is None and event.type in (ev.ACCEPTED, ev.FILL):
        order.broker_order_id = event.broker_order_id
        telemetry.stage_on_commit(telemetry.ACKNOWLEDGED, order.created_at)
    if event.type == ev.FILL and outcome.applied:
        result.trade = _record_trade(order, event)
        result.position = apply_fill_to_position(order, event.quantity, event.price, event.ts)
    elif event.type == ev.FILL:
        log.warning(
            "event=fill_refused order_id=%s user_id=%s execution_id=%s reason=%r",
            order.id,
            order.user_id,
            event.execution_id,
            outcome.reason,
        )
        result.retry_later = True
    return result


def _domain_event(event: ev.BrokerEvent) -> sm.Event:
    if event.type == ev.ACCEPTED:
        return sm.Accept(event.broker_order_id)
    if event.type == ev.REJECTED:
        return sm.Reject(event.reason or "rejected by the broker")
    if event.type == ev.FILL:
        return sm.Fill(event.quantity, event.price)
    if event.type == ev.CANCELLED:
        return sm.Cancelled(event.reason)
    if event.type == ev.CANCEL_REJECTED:
        return sm.CancelRejected(event.reason or "cancel rejected by the broker")
    if event.type == ev.EXPIRED:
        return sm.Expire(event.reason)
    if event.type == ev.MODIFIED:
        return sm.Modified(event.quantity, event.limit_price, event.stop_price)
    if event.type == ev.MODIFY_REJECTED:
        return sm.ModifyRejected(event.reason or "modification rejected by the broker")
    # A type the schema knows but no handler applies: never guess.
    raise ev.MalformedEvent(f"no handler for event type {event.type}")


def _str(value) -> str | None:
    return None if value is None else str(value)


def _fill_seen(order: Order, execution_id: str) -> bool:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Trade)
            .where(Trade.order_id == order.id, Trade.execution_id == execution_id)
        )
        > 0
    )


def _record_trade(order: Order, event: ev.BrokerEvent) -> Trade:
    trade = Trade(
        order_id=order.id,
        user_id=order.user_id,
        instrument_id=order.instrument_id,
        side=order.side,
        quantity=event.quantity,
        price=event.price,
        execution_id=event.execution_id,
        traded_at=event.ts,
    )
    db.session.add(trade)
    return trade


def _notify(result: Applied) -> None:
    notify_order(result.order)
    if result.trade is None:
        return
    try:
        redis = get_redis()
        user_id = str(result.order.user_id)
        publish_user_event(redis, user_id, "trade", result.trade.to_dict())
        last = read_quotes(redis, [result.position.instrument_id]).get(result.position.instrument_id)
        publish_user_event(redis, user_id, "position", result.position.to_dict(last_price(last)))
    except Exception:  # the WebSocket push is best effort; the database is the record
        log.warning("trade notification failed order_id=%s", result.order.id)
