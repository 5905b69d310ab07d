"""The paper exchange's journal: every event it sent about an order (`paper_events`), and sending
them. An event is appended in the transaction that changes the order and published only after the
commit, preceded by the order's earlier events not yet known to be out (a crash between commit and
publish, or another process still publishing). So the consumer gets each order's events in journal
order: accepted before the fills, a modification before the fills it allows, the fills before a
cancel. Event ids are deterministic per fact and every event keeps the time of its fact, so a
re-send is the same message and the consumer drops it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from tradingapp import events as ev
from tradingapp.brokers.paper.models import PaperEvent, PaperOrder
from tradingapp.extensions import db
from tradingapp.messaging import get_publisher

log = logging.getLogger("tradingapp.brokers.paper")

BROKER = "paper"
PRICE_QUANTUM = Decimal("0.0001")  # the book's NUMERIC(18, 4): a re-sent event prints the same price


# -- writing ---------------------------------------------------------------------------------
def event_id(order_id: uuid.UUID, type_: str, n: int | None = None) -> str:
    suffix = type_.split(".", 1)[1]
    return f"paper:{order_id}:{suffix}" if n is None else f"paper:{order_id}:{suffix}:{n}"


def append(book: Session, row: PaperOrder, type_: str, ts: datetime, n: int | None = None, **fields) -> None:
    """Add an event to the order's journal (sent after the commit)."""
    row.event_count += 1
    book.add(
        PaperEvent(
            order_id=row.order_id,
            pos=row.event_count,
            event_id=event_id(row.order_id, type_, n),
            type=type_,
            ts=ts,
            n=n,
            **fields,
        )
    )


# -- sending -------------------------------------------------------------------------------
@dataclass
class Outbox:
    """Events to publish after the commit, and per order the journal pos they reach."""

    bodies: list[dict] = field(default_factory=list)
    marks: dict[uuid.UUID, int] = field(default_factory=dict)


def body(entry: PaperEvent, broker_order_id: str | None) -> dict:
    extra: dict = {}
    if entry.type == ev.FILL:
        extra = {
            "execution_id": f"P-{entry.order_id.hex}-{entry.n}",
            "quantity": entry.quantity,
            "price": entry.price.quantize(PRICE_QUANTUM),
        }
    elif entry.type == ev.MODIFIED:
        extra = {
            "seq": entry.n,
            "quantity": entry.quantity,
            "limit_price": _quantized(entry.limit_price),
            "stop_price": _quantized(entry.stop_price),
        }
    elif entry.type == ev.MODIFY_REJECTED:
        extra = {"seq": entry.n, "reason": entry.reason}
    elif entry.type != ev.ACCEPTED:
        extra = {"reason": entry.reason}
    return ev.make_event(entry.type, entry.order_id, BROKER, broker_order_id, entry.event_id, ts=entry.ts, **extra)


def _quantized(price: Decimal | None) -> Decimal | None:
    return None if price is None else price.quantize(PRICE_QUANTUM)


def outbox(book: Session, order_ids: Iterable[uuid.UUID], everything: bool = False) -> Outbox:
    """The orders' journal rows not yet known to be published (everything: all of them), in
    order. Called after the flush, inside the transaction that wrote the new ones."""
    ids = list(order_ids)
    box = Outbox()
    if not ids:
        return box
    stmt = (
        sa.select(PaperEvent, PaperOrder.broker_order_id)
        .join(PaperOrder, PaperOrder.order_id == PaperEvent.order_id)
        .where(PaperEvent.order_id.in_(ids))
        .order_by(PaperEvent.order_id, PaperEvent.pos)
    )
    if not everything:
        stmt = stmt.where(PaperEvent.pos > PaperOrder.published_pos)
    for entry, broker_order_id in book.execute(stmt).all():
        box.bodies.append(body(entry, broker_order_id))
        box.marks[entry.order_id] = entry.pos
    return box


def publish(bodies: list[dict]) -> None:
    publisher = get_publisher()
    for event in bodies:
        publisher.publish("broker_events", routing_key=event["type"], body=event, message_id=event["event_id"])


def send(box: Outbox, extra: list[dict] | None = None) -> None:
    """Publish (after the commit), then record how far each order's journal is out."""
    publish(box.bodies + (extra or []))
    if box.marks:
        mark_published(box.marks)


def mark_published(marks: dict[uuid.UUID, int]) -> None:
    table = PaperOrder.__table__
    stmt = (
        table.update()
        .where(table.c.order_id == sa.bindparam("oid"), table.c.published_pos < sa.bindparam("upto"))
        .values(published_pos=sa.bindparam("upto"))
    )
    params = [{"oid": oid, "upto": pos} for oid, pos in sorted(marks.items())]  # one lock order everywhere
    try:
        with db.engine.begin() as conn:
            conn.execute(stmt, params)
    except SQLAlchemyError as exc:  # the events are out; the next send of these orders repeats them
        log.warning("event=paper_mark_published_failed orders=%d error=%s", len(params), type(exc).__name__)
