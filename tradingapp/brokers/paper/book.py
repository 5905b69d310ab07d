"""The paper exchange's book: its orders (`paper_orders`), each change one transaction that
updates the row and appends the events it causes to the journal (journal.py).

Concurrency: every ORM update of a row checks and bumps its `version` (SQLAlchemy's version
counter), so of two writers working from the same state one fails with StaleDataError and is
retried from fresh state; on Postgres the rows are also locked (SELECT ... FOR UPDATE) up front.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from tradingapp import events as ev
from tradingapp.brokers.paper import matching as mt
from tradingapp.brokers.paper.journal import PRICE_QUANTUM, append
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.domain.session_end import last_session_end, session_end_after
from tradingapp.extensions import db

log = logging.getLogger("tradingapp.brokers.paper")

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


def add_fill(book: Session, row: PaperOrder, fill: mt.Fill) -> None:
    price = fill.price.quantize(PRICE_QUANTUM)
    paid = (row.fill_price or Decimal(0)) * row.filled_quantity + price * fill.quantity
    row.filled_quantity += fill.quantity
    row.fill_count += 1
    row.fill_price = (paid / row.filled_quantity).quantize(PRICE_QUANTUM)
    append(book, row, ev.FILL, fill.ts, n=row.fill_count, quantity=fill.quantity, price=price)
    if row.filled_quantity >= row.quantity:
        row.status = mt.FILLED
    log.info(
        "event=paper_fill order_id=%s broker_order_id=%s n=%d quantity=%d price=%s filled=%d/%d",
        row.order_id,
        row.broker_order_id,
        row.fill_count,
        fill.quantity,
        price,
        row.filled_quantity,
        row.quantity,
    )


def close(book: Session, row: PaperOrder, status: str, reason: str | None, ts: datetime) -> None:
    """End a working order: cancelled, rejected or expired."""
    row.status, row.reason = status, reason
    append(book, row, FINAL_EVENT[status], ts, reason=reason)
    log.info(
        "event=paper_%s order_id=%s broker_order_id=%s reason=%r", status, row.order_id, row.broker_order_id, reason
    )


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
    "quantity",
    "filled_quantity",
    "fill_price",
    "status",
    "reason",
    "limit_price",
    "stop_price",
    "triggered_at",
    "effective_at",
    "matched_through",
    "modify_seq",
    "fill_count",
    "event_count",
    "updated_at",
)


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
