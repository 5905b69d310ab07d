"""The paper exchange: a broker that trades against the live market in the Redis quote cache,
through a book of its own that never reads our `orders` table. Events are published after the
commit under deterministic ids, so a crash in between is repaired by re-sending the journal.
docs/paper-exchange.md has the module map and the rules.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from tradingapp import events as ev
from tradingapp.brokers.base import BrokerOrder, ModifyRequest, OrderRequest
from tradingapp.brokers.paper import matching as mt
from tradingapp.brokers.paper.book import (
    apply_outcome,
    book_session,
    close,
    expire_due,
    lock_row,
    retrying,
    session_clock,
    working,
)
from tradingapp.brokers.paper.journal import BROKER, Outbox, append, event_id, outbox, send
from tradingapp.brokers.paper.models import PaperEvent, PaperOrder
from tradingapp.brokers.paper.tape import expire_session, match_ticks
from tradingapp.extensions import get_redis
from tradingapp.models.types import utcnow
from tradingapp.realtime import read_quotes

log = logging.getLogger("tradingapp.brokers.paper")

CANCEL_REQUESTED = "cancelled on request"
TOMBSTONE = "cancelled before the order arrived"
UNKNOWN_ORDER = "unknown order"
FRESH_COUNTERS = {"modify_seq": 0, "fill_count": 0, "event_count": 0, "published_pos": 0}
CANCEL_REFUSALS = {mt.FILLED: "order already filled", mt.REJECTED: "order was rejected"}
# Session expiry rides on the tick path (no extra process), at most this often per process.
EXPIRE_EVERY_SECONDS = 5.0


class PaperBroker:
    name = BROKER

    def __init__(self, max_quote_age: int):
        self.max_quote_age = max_quote_age
        self.next_expiry = 0.0  # time.monotonic() of the next session expiry round

    # -- ticks (the consumer's paper-exchange feed) ----------------------------------------
    def on_ticks(self, ticks: list[dict]) -> None:
        """Resting orders meet the ticks; working orders past their session end expire first (at
        most every EXPIRE_EVERY_SECONDS)."""
        if time.monotonic() >= self.next_expiry:
            expire_session()
            self.next_expiry = time.monotonic() + EXPIRE_EVERY_SECONDS
        match_ticks(ticks)

    # -- place -------------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> str:
        """Book the order and match it against the current quote; a repeat re-sends its events."""
        quote = self._quote(request.instrument_id)  # read before any transaction: none waits on Redis
        box, row, repeat = retrying(lambda: self._place(request, quote))
        send(box)
        log.info(
            "event=paper_place order_id=%s user_id=%s broker_order_id=%s type=%s tif=%s status=%s filled=%d repeat=%s",
            request.order_id,
            request.user_id,
            row.broker_order_id,
            request.order_type,
            request.time_in_force,
            row.status,
            row.filled_quantity,
            repeat,
        )
        return row.broker_order_id

    def _place(self, request: OrderRequest, quote: mt.Market | None) -> tuple[Outbox, PaperOrder, bool]:
        now = utcnow()
        with book_session() as book:
            row = book.get(PaperOrder, request.order_id)
            if row is not None:
                return outbox(book, [row.order_id], everything=True), row, True
            row = _new_row(request, now)
            book.add(row)
            book.flush()  # the row before its journal; a concurrent place fails here, retried as a repeat
            refusal = mt.terms_refusal(row.order_type, row.time_in_force, row.quantity, row.limit_price, row.stop_price)
            outcome = None if refusal else mt.arrive(working(row, session_clock()), quote, now)
            if outcome is not None and outcome.end == mt.REJECTED:
                refusal = outcome.reason
            if refusal:  # refused on arrival: never accepted
                close(book, row, mt.REJECTED, refusal, now)
            else:
                append(book, row, ev.ACCEPTED, now)
                apply_outcome(book, row, outcome, now)
            book.flush()
            box = outbox(book, [row.order_id])
            book.commit()
            return box, row, False

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self, order_id: uuid.UUID) -> None:
        """Cancel a working order. An unknown order leaves a tombstone, so a late place() never
        trades; a finished one re-sends its events and, when filled or rejected, cancel_rejected."""
        box, refusal, status = retrying(lambda: self._cancel(order_id))
        send(box, refusal)
        log.info("event=paper_cancel order_id=%s status=%s refused=%s", order_id, status, bool(refusal))

    def _cancel(self, order_id: uuid.UUID) -> tuple[Outbox, list[dict], str]:
        now = utcnow()
        with book_session() as book:
            row = lock_row(book, order_id)
            if row is None:
                row = _tombstone(order_id, now)
                book.add(row)
                book.flush()  # the row before its journal; a concurrent place fails here and is retried
                append(book, row, ev.CANCELLED, now, reason=TOMBSTONE)
            elif not expire_due(book, row, session_clock(), now):
                if row.status != mt.OPEN:  # finished: its journal says how, plus a refusal when due
                    return outbox(book, [order_id], everything=True), _cancel_refusal(row), row.status
                close(book, row, mt.CANCELLED, CANCEL_REQUESTED, now)
                row.updated_at = now
            book.flush()
            box = outbox(book, [order_id])
            book.commit()
            return box, [], row.status

    # -- modify ------------------------------------------------------------------------------
    def modify(self, request: ModifyRequest) -> None:
        """Apply new terms to a working order (quantity is the new total) and match it again, or
        refuse them; `order.modified` / `order.modify_rejected` answer, once per seq."""
        with book_session() as book:
            row = book.get(PaperOrder, request.order_id)
            instrument_id = None if row is None else row.instrument_id
        quote = None if instrument_id is None else self._quote(instrument_id)
        box, answer = retrying(lambda: self._modify(request, quote))
        send(box, answer)
        log.info(
            "event=paper_modify order_id=%s seq=%d quantity=%d limit_price=%s stop_price=%s",
            request.order_id,
            request.seq,
            request.quantity,
            request.limit_price,
            request.stop_price,
        )

    def _modify(self, request: ModifyRequest, quote: mt.Market | None) -> tuple[Outbox, list[dict]]:
        now = utcnow()
        oid, seq = request.order_id, request.seq
        with book_session() as book:
            row = lock_row(book, oid)
            if row is None:  # nothing to keep it in: the same refusal under the same id each time
                refusal = ev.make_event(
                    ev.MODIFY_REJECTED,
                    oid,
                    BROKER,
                    None,
                    event_id(oid, ev.MODIFY_REJECTED, seq),
                    seq=seq,
                    reason=UNKNOWN_ORDER,
                )
                return Outbox(), [refusal]
            if _answered(book, oid, seq):  # a repeat: the same answer again, nothing changes
                return outbox(book, [oid], everything=True), []
            expire_due(book, row, session_clock(), now)
            refusal = _modify_refusal(row, request)
            row.modify_seq = max(row.modify_seq, seq)
            row.updated_at = now
            if refusal:
                append(book, row, ev.MODIFY_REJECTED, now, n=seq, reason=refusal)
            else:
                _apply_terms(book, row, request, now)
                apply_outcome(book, row, mt.arrive(working(row, session_clock()), quote, now, first=False), now)
            book.flush()
            box = outbox(book, [oid])
            book.commit()
            return box, []

    # -- lookup ------------------------------------------------------------------------------
    def lookup(self, order_id: uuid.UUID) -> BrokerOrder | None:
        """The exchange's record of the order. Like an order-book query at a real broker, it also
        re-sends the order's events, repairing any lost in a crash (same ids, so no duplicates)."""
        found = retrying(lambda: self._lookup(order_id))
        if found is None:
            return None
        box, row = found
        send(box)
        return BrokerOrder(
            order_id=row.order_id,
            broker_order_id=row.broker_order_id,
            status=row.status,
            filled_quantity=row.filled_quantity,
        )

    def _lookup(self, order_id: uuid.UUID) -> tuple[Outbox, PaperOrder] | None:
        now = utcnow()
        with book_session() as book:
            row = book.get(PaperOrder, order_id)
            if row is None:
                return None
            if expire_due(book, row, session_clock(), now):
                book.flush()
            box = outbox(book, [order_id], everything=True)
            book.commit()
            return box, row

    # -- helpers -----------------------------------------------------------------------------
    def _quote(self, instrument_id: int) -> mt.Market | None:
        """The instrument's cached quote when it is recent enough to trade on."""
        raw = read_quotes(get_redis(), [instrument_id]).get(instrument_id)
        return mt.fresh(mt.parse_market(raw), self.max_quote_age, utcnow())


def _new_row(request: OrderRequest, now: datetime) -> PaperOrder:
    limit_price, stop_price = mt.relevant_prices(request.order_type, request.limit_price, request.stop_price)
    return PaperOrder(
        order_id=request.order_id,
        broker_order_id=_broker_order_id(),
        instrument_id=request.instrument_id,
        side=request.side,
        quantity=request.quantity,
        filled_quantity=0,
        order_type=request.order_type,
        time_in_force=request.time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        status=mt.OPEN,
        effective_at=now,
        created_at=now,
        updated_at=now,
        **FRESH_COUNTERS,
    )


def _tombstone(order_id: uuid.UUID, now: datetime) -> PaperOrder:
    """The cancel of an order not seen yet: remembered, so a late place() of it never trades."""
    return PaperOrder(
        order_id=order_id,
        broker_order_id=_broker_order_id(),
        instrument_id=0,
        side="",
        quantity=0,
        filled_quantity=0,
        order_type="",
        status=mt.CANCELLED,
        reason=TOMBSTONE,
        effective_at=now,
        created_at=now,
        updated_at=now,
        **FRESH_COUNTERS,
    )


def _broker_order_id() -> str:
    return "P" + uuid.uuid4().hex[:12].upper()


def _cancel_refusal(row: PaperOrder) -> list[dict]:
    """cancel_rejected for a filled or rejected order (a cancelled or expired one needs none).
    Deterministic per fill level: a retried cancel job re-sends the same refusal."""
    if row.status not in CANCEL_REFUSALS:
        return []
    return [
        ev.make_event(
            ev.CANCEL_REJECTED,
            row.order_id,
            BROKER,
            row.broker_order_id,
            event_id(row.order_id, ev.CANCEL_REJECTED, row.filled_quantity),
            ts=row.updated_at,
            reason=CANCEL_REFUSALS[row.status],
        )
    ]


def _answered(book: Session, order_id: uuid.UUID, seq: int) -> bool:
    ids = [event_id(order_id, ev.MODIFIED, seq), event_id(order_id, ev.MODIFY_REJECTED, seq)]
    return book.scalar(sa.select(PaperEvent.pos).where(PaperEvent.event_id.in_(ids)).limit(1)) is not None


def _modify_refusal(row: PaperOrder, request: ModifyRequest) -> str | None:
    refusal = mt.modify_refusal(row.status, row.filled_quantity, row.modify_seq, request.seq, request.quantity)
    if refusal:
        return refusal
    limit_price, stop_price = mt.relevant_prices(row.order_type, request.limit_price, request.stop_price)
    return mt.terms_refusal(row.order_type, row.time_in_force, request.quantity, limit_price, stop_price)


def _apply_terms(book: Session, row: PaperOrder, request: ModifyRequest, now: datetime) -> None:
    row.limit_price, row.stop_price = mt.relevant_prices(row.order_type, request.limit_price, request.stop_price)
    row.quantity = request.quantity
    row.effective_at = now  # no tick older than the new terms fills them
    append(
        book,
        row,
        ev.MODIFIED,
        now,
        n=request.seq,
        quantity=row.quantity,
        limit_price=row.limit_price,
        stop_price=row.stop_price,
    )
