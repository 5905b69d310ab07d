"""The paper exchange against the tape: resting orders meet each batch of ticks (match_ticks), and
working orders expire at the session end (expire_session). Both run in the consumer.

match_ticks costs a constant number of queries per batch: one SELECT of the orders the batch can
touch (prefiltered in SQL by the batch's price range), and only when something trades one UPDATE
(executemany), one journal INSERT, one SELECT of the events to send and, after publishing, one
UPDATE marking them sent.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa

from tradingapp.brokers.paper import matching as mt
from tradingapp.brokers.paper.book import (
    SessionClock,
    apply_outcome,
    book_session,
    expire_due,
    locked,
    retrying,
    save_rows,
    session_clock,
    working,
)
from tradingapp.brokers.paper.journal import Outbox, outbox, send
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.models.types import utcnow

log = logging.getLogger("tradingapp.brokers.paper")

EXPIRE_BATCH = 500


# -- ticks -----------------------------------------------------------------------------------
def tapes(ticks: list) -> dict[int, list[mt.Market]]:
    """The batch's ticks per instrument; malformed ticks are skipped."""
    by_instrument: dict[int, list[mt.Market]] = defaultdict(list)
    for tick in ticks:
        market = mt.parse_market(tick)
        iid = tick.get("instrument_id") if isinstance(tick, dict) else None
        if market is None or not isinstance(iid, int) or isinstance(iid, bool):
            continue
        by_instrument[iid].append(market)
    return dict(by_instrument)


def match_ticks(ticks: list) -> int:
    """Run the resting orders of the ticks' instruments through the batch: fills, stop triggers,
    IOC remainders of triggered stops. Returns the number of fills. Two consumers never fill an
    order twice: rows are locked on Postgres and every update is version-checked; a redelivered
    batch finds the orders already matched through its ticks."""
    by_instrument = tapes(ticks)
    if not by_instrument:
        return 0
    box, fills = retrying(lambda: _match(by_instrument))
    send(box)
    return fills


def _match(by_instrument: dict[int, list[mt.Market]]) -> tuple[Outbox, int]:
    now, clock = utcnow(), session_clock()
    with book_session() as book:
        rows = book.scalars(locked(_candidates(by_instrument, clock.cutoff(now)), book)).all()
        if not rows:
            return Outbox(), 0
        outcomes = _outcomes(rows, by_instrument, clock)
        if not outcomes:
            book.rollback()
            return Outbox(), 0
        book.expunge_all()  # the rows are written by save_rows, in one statement
        by_id = {row.order_id: row for row in rows}
        changed = []
        for outcome in outcomes:
            row = by_id[outcome.key]
            apply_outcome(book, row, outcome, now)
            row.matched_through = max(m.ts for m in by_instrument[row.instrument_id])
            changed.append(row)
        save_rows(book, changed)
        book.flush()  # the journal rows
        box = outbox(book, [row.order_id for row in changed])
        book.commit()
    return box, sum(len(o.fills) for o in outcomes)


def _outcomes(rows: list[PaperOrder], by_instrument: dict[int, list[mt.Market]], clock: SessionClock) -> list:
    resting: dict[int, list[mt.Working]] = defaultdict(list)
    for row in rows:
        resting[row.instrument_id].append(working(row, clock))
    return [outcome for iid, orders in resting.items() for outcome in mt.match_tape(orders, by_instrument[iid])]


def _candidates(by_instrument: dict[int, list[mt.Market]], cutoff: datetime) -> sa.Select:
    """Working orders the batch may trade or trigger: a superset, matched exactly in Python."""
    o = PaperOrder
    armed_market = sa.or_(o.order_type == mt.MARKET, sa.and_(o.order_type == mt.STOP, o.triggered_at.is_not(None)))
    armed_limit = sa.or_(o.order_type == mt.LIMIT, sa.and_(o.order_type == mt.STOP_LIMIT, o.triggered_at.is_not(None)))
    waiting = sa.and_(o.order_type.in_((mt.STOP, mt.STOP_LIMIT)), o.triggered_at.is_(None))
    per_instrument = []
    for iid, tape in by_instrument.items():
        newest = max(m.ts for m in tape)
        lowest_ask = min(mt.touch(m, mt.BUY).price for m in tape)
        highest_bid = max(mt.touch(m, mt.SELL).price for m in tape)
        low, high = min(m.ltp for m in tape), max(m.ltp for m in tape)
        per_instrument.append(
            sa.and_(
                o.instrument_id == iid,
                o.effective_at <= newest,
                sa.or_(o.matched_through.is_(None), o.matched_through < newest),
                sa.or_(
                    armed_market,
                    sa.and_(armed_limit, o.side == mt.BUY, o.limit_price >= lowest_ask),
                    sa.and_(armed_limit, o.side == mt.SELL, o.limit_price <= highest_bid),
                    sa.and_(waiting, o.side == mt.BUY, o.stop_price <= high),
                    sa.and_(waiting, o.side == mt.SELL, o.stop_price >= low),
                ),
            )
        )
    return (
        sa.select(o)
        .where(o.status == mt.OPEN, o.instrument_id.in_(list(by_instrument)), o.created_at >= cutoff)
        .where(sa.or_(*per_instrument))
        .order_by(o.order_id)  # one lock order for every process: no deadlock
        .execution_options(populate_existing=True)
    )


# -- the session end -------------------------------------------------------------------------
def expire_session(now: datetime | None = None) -> int:
    """Expire every working order past the session end that followed its creation (as of that
    end). Idempotent, and safe with several consumers: rows are claimed with SKIP LOCKED on
    Postgres and version-checked everywhere. Returns how many expired."""
    now = now or utcnow()
    clock = session_clock()
    total = 0
    while True:
        box, count = retrying(lambda: _expire_batch(now, clock))
        send(box)
        total += count
        if count < EXPIRE_BATCH:
            return total


def _expire_batch(now: datetime, clock: SessionClock) -> tuple[Outbox, int]:
    with book_session() as book:
        stmt = (
            sa.select(PaperOrder)
            .where(PaperOrder.status == mt.OPEN, PaperOrder.created_at < clock.cutoff(now))
            .order_by(PaperOrder.order_id)
            .limit(EXPIRE_BATCH)
            .execution_options(populate_existing=True)
        )
        rows = book.scalars(locked(stmt, book, skip_locked=True)).all()
        book.expunge_all()  # the rows are written by save_rows, in one statement
        expired = [row for row in rows if expire_due(book, row, clock, now)]
        if not expired:
            return Outbox(), 0
        save_rows(book, expired)
        book.flush()  # the journal rows
        box = outbox(book, [row.order_id for row in expired])
        book.commit()
    log.info("event=paper_session_expired orders=%d", len(expired))
    return box, len(expired)
