"""The paper exchange's book: its rows, its journal, and sending the journal's events.

Every change to an order is one transaction that updates its `paper_orders` row and appends the
events it causes to the order's journal (`paper_events`). Only after the commit are they
published, preceded by the order's earlier events not yet known to be out (a crash between commit
and publish, or another process still publishing). So the consumer gets each order's events in
journal order: accepted before the fills, a modification before the fills it allows, the fills
before a cancel. Event ids are deterministic per fact and every event keeps the time of its fact,
so a re-send is the same message and the consumer drops it.

Concurrency: every ORM update of a row checks and bumps its `version` (SQLAlchemy's version
counter), so of two writers working from the same state one fails with StaleDataError and is
retried from fresh state; on Postgres the rows are also locked (SELECT ... FOR UPDATE) up front.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tradingapp import events as ev
from tradingapp.brokers.paper import matching as mt
from tradingapp.brokers.paper.models import PaperEvent, PaperOrder
from tradingapp.domain.session_end import last_session_end, session_end_after
from tradingapp.extensions import db
from tradingapp.messaging import get_publisher

log = logging.getLogger("tradingapp.brokers.paper")

BROKER = "paper"
PRICE_QUANTUM = Decimal("0.0001")  # the book's NUMERIC(18, 4): a re-sent event prints the same price
ATTEMPTS = 5
FINAL_EVENT = {mt.CANCELLED: ev.CANCELLED, mt.REJECTED: ev.REJECTED, mt.EXPIRED: ev.EXPIRED}
T = TypeVar("T")


# -- sessions and transactions ---------------------------------------------------------------
def book_session() -> Session:
    # The exchange's own session: its commits never carry, or get caught in, the caller's work.
    return Session(db.engine, expire_on_commit=False)


def locked(stmt: sa.Select, book: Session, skip_locked: bool = False) -> sa.Select:
    """Lock the selected rows on Postgres (SQLite has one writer at a time and the version check)."""
    if book.get_bind().dialect.name == "postgresql":
        return stmt.with_for_update(skip_locked=skip_locked)
    return stmt


def lock_row(book: Session, order_id: uuid.UUID) -> PaperOrder | None:
    stmt = sa.select(PaperOrder).where(PaperOrder.order_id == order_id).execution_options(populate_existing=True)
    return book.scalars(locked(stmt, book)).first()


def retrying(work: Callable[[], T]) -> T:
    """Run a book transaction again when a concurrent writer changed its rows first."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return work()
        except (StaleDataError, IntegrityError) as exc:
            if attempt == ATTEMPTS:
                raise
            log.info("event=paper_retry attempt=%d error=%s", attempt, type(exc).__name__)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class SessionClock:
    """The exchange's daily session end (PAPER_SESSION_END in PAPER_SESSION_TZ)."""

    end: time
    zone: ZoneInfo

    def expires_at(self, created_at: datetime) -> datetime:
        return session_end_after(created_at, self.end, self.zone)

    def cutoff(self, now: datetime) -> datetime:
        """Orders created before this are past their session end at `now`."""
        return last_session_end(now, self.end, self.zone)


def session_clock() -> SessionClock:
    config = current_app.config
    return SessionClock(config["PAPER_SESSION_END"], ZoneInfo(config["PAPER_SESSION_TZ"]))


# -- rows ------------------------------------------------------------------------------------
def working(row: PaperOrder, clock: SessionClock) -> mt.Working:
    return mt.Working(
        key=row.order_id,
        side=row.side,
        order_type=row.order_type,
        quantity=row.quantity,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
        time_in_force=row.time_in_force,
        filled=row.filled_quantity,
        triggered=row.triggered_at is not None,
        since=row.effective_at,
        after=row.matched_through,
        expires_at=clock.expires_at(row.created_at),
    )


def event_id(order_id: uuid.UUID, type_: str, n: int | None = None) -> str:
    suffix = type_.split(".", 1)[1]
    return f"paper:{order_id}:{suffix}" if n is None else f"paper:{order_id}:{suffix}:{n}"


def append(book: Session, row: PaperOrder, type_: str, ts: datetime, n: int | None = None, **fields) -> None:
    """Add an event to the order's journal (sent after the commit)."""
    row.event_count += 1
    book.add(PaperEvent(order_id=row.order_id, pos=row.event_count, event_id=event_id(row.order_id, type_, n),
                        type=type_, ts=ts, n=n, **fields))  # fmt: skip


def add_fill(book: Session, row: PaperOrder, fill: mt.Fill) -> None:
    price = fill.price.quantize(PRICE_QUANTUM)
    paid = (row.fill_price or Decimal(0)) * row.filled_quantity + price * fill.quantity
    row.filled_quantity += fill.quantity
    row.fill_count += 1
    row.fill_price = (paid / row.filled_quantity).quantize(PRICE_QUANTUM)
    append(book, row, ev.FILL, fill.ts, n=row.fill_count, quantity=fill.quantity, price=price)
    if row.filled_quantity >= row.quantity:
        row.status = mt.FILLED
    log.info("event=paper_fill order_id=%s broker_order_id=%s n=%d quantity=%d price=%s filled=%d/%d",
             row.order_id, row.broker_order_id, row.fill_count, fill.quantity, price, row.filled_quantity,
             row.quantity)  # fmt: skip


def close(book: Session, row: PaperOrder, status: str, reason: str | None, ts: datetime) -> None:
    """End a working order: cancelled, rejected or expired."""
    row.status, row.reason = status, reason
    append(book, row, FINAL_EVENT[status], ts, reason=reason)
    log.info("event=paper_%s order_id=%s broker_order_id=%s reason=%r", status, row.order_id, row.broker_order_id,
             reason)  # fmt: skip


def apply_outcome(book: Session, row: PaperOrder, outcome: mt.Outcome, now: datetime) -> None:
    if outcome.triggered_at is not None:
        row.triggered_at = outcome.triggered_at
    for fill in outcome.fills:
        add_fill(book, row, fill)
    if outcome.end is not None and row.status == mt.OPEN:
        close(book, row, outcome.end, outcome.reason, outcome.ended_at or now)
    row.updated_at = now


def expire_due(book: Session, row: PaperOrder, clock: SessionClock, now: datetime) -> bool:
    """Expire a working order past the session end that followed its creation, as of that end."""
    if row.status != mt.OPEN or row.created_at >= clock.cutoff(now):
        return False
    close(book, row, mt.EXPIRED, mt.SESSION_ENDED, clock.expires_at(row.created_at))
    row.updated_at = now
    return True


SAVED_COLUMNS = (
    "quantity", "filled_quantity", "fill_price", "status", "reason", "limit_price", "stop_price", "triggered_at",
    "effective_at", "matched_through", "modify_seq", "fill_count", "event_count", "updated_at",
)  # fmt: skip


def save_rows(book: Session, rows: list[PaperOrder]) -> None:
    """Write the state of rows detached from the session (book.expunge) in one version-checked
    executemany UPDATE: the ORM's own version check issues one UPDATE per row. Raises
    StaleDataError (retried) when a concurrent writer changed one of them first."""
    if not rows:
        return
    table = PaperOrder.__table__
    stmt = (
        table.update()
        .where(table.c.order_id == sa.bindparam("k_id"), table.c.version == sa.bindparam("k_version"))
        .values({**{name: sa.bindparam(f"v_{name}") for name in SAVED_COLUMNS}, "version": table.c.version + 1})
    )
    params = [
        {"k_id": row.order_id, "k_version": row.version, **{f"v_{name}": getattr(row, name) for name in SAVED_COLUMNS}}
        for row in sorted(rows, key=lambda r: r.order_id)
    ]
    if book.execute(stmt, params).rowcount != len(params):
        raise StaleDataError(f"paper_orders: {len(params)} rows to update, a concurrent writer changed some first")


# -- sending ---------------------------------------------------------------------------------
@dataclass
class Outbox:
    """Events to publish after the commit, and per order the journal pos they reach."""

    bodies: list[dict] = field(default_factory=list)
    marks: dict[uuid.UUID, int] = field(default_factory=dict)


def body(entry: PaperEvent, broker_order_id: str | None) -> dict:
    extra: dict = {}
    if entry.type == ev.FILL:
        extra = {"execution_id": f"P-{entry.order_id.hex}-{entry.n}", "quantity": entry.quantity,
                 "price": entry.price.quantize(PRICE_QUANTUM)}  # fmt: skip
    elif entry.type == ev.MODIFIED:
        extra = {"seq": entry.n, "quantity": entry.quantity, "limit_price": _quantized(entry.limit_price),
                 "stop_price": _quantized(entry.stop_price)}  # fmt: skip
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
