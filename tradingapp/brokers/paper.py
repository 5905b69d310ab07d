"""The paper exchange: a broker that trades against the cached market quotes.

Its book is the `paper_orders` table, reached through a session of its own: the exchange never
reads our `orders` table, exactly as a real broker never sees our database. Every state change
is committed before its events are published, and every event id is deterministic per fact, so
a crash in between is repaired by the next place() or lookup(): they re-publish the row's events
under the same ids and the consumer drops the duplicates.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tradingapp import events as ev
from tradingapp.brokers.base import BrokerOrder, OrderRequest
from tradingapp.extensions import db, get_redis
from tradingapp.messaging import get_publisher
from tradingapp.models import PaperOrder
from tradingapp.models.types import utcnow
from tradingapp.realtime import last_price, read_quotes

log = logging.getLogger(__name__)

BROKER = "paper"
OPEN, FILLED, CANCELLED, REJECTED = "open", "filled", "cancelled", "rejected"
NO_PRICE = "no recent market price"
UNSUPPORTED = "order type not supported by the paper exchange yet"
IOC_NO_FILL = "IOC: no immediate fill"
ALREADY_FILLED = "order already filled"
WAS_REJECTED = "order was rejected"
CANCEL_REQUESTED = "cancelled on request"
TOMBSTONE = "cancelled before the order arrived"
PRICE_QUANTUM = Decimal("0.0001")  # the book's NUMERIC(18, 4): a re-sent fill prints the same price


# -- matching rules (pure) -----------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """What the exchange does with a new order: rest it, fill it whole, cancel or reject it."""

    status: str
    fill_price: Decimal | None = None
    reason: str | None = None


def crosses(side: str, limit: Decimal, price: Decimal) -> bool:
    return price <= limit if side == "BUY" else price >= limit


def decide(request: OrderRequest, price: Decimal | None) -> Decision:
    """`price` is the last traded price when it is recent enough to trade on, else None."""
    if request.order_type == "MARKET":
        return Decision(FILLED, fill_price=price) if price is not None else Decision(REJECTED, reason=NO_PRICE)
    if request.order_type != "LIMIT" or request.limit_price is None:
        return Decision(REJECTED, reason=UNSUPPORTED)
    if price is not None and crosses(request.side, request.limit_price, price):
        return Decision(FILLED, fill_price=price)
    if request.time_in_force == "IOC":
        return Decision(CANCELLED, reason=IOC_NO_FILL)
    return Decision(OPEN)


def fresh_price(quote: dict | None, max_age: int, now: datetime) -> Decimal | None:
    """The quote's last price, or None when there is none or it is older than max_age seconds."""
    try:
        price = last_price(quote)
        stamp = datetime.fromisoformat(quote["ts"]) if price is not None else None
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return None
    if stamp is None or not price.is_finite() or price <= 0:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return price if (now - stamp).total_seconds() <= max_age else None


# -- events of a book row --------------------------------------------------------------------
def _event(type_: str, row, suffix: str, **extra) -> dict:
    return ev.make_event(type_, row.order_id, BROKER, row.broker_order_id, f"paper:{row.order_id}:{suffix}",
                         **extra)  # fmt: skip


def fill_event(row, n: int = 1) -> dict:
    """The paper exchange fills an order whole, so an order has at most fill n=1."""
    return _event(ev.FILL, row, f"fill:{n}", execution_id=f"P-{row.order_id.hex}-{n}",
                  quantity=row.filled_quantity, price=row.fill_price.quantize(PRICE_QUANTUM))  # fmt: skip


def row_events(row) -> list[dict]:
    """Every event the exchange has sent for this row's current state, oldest first."""
    if row.status == REJECTED:
        return [_event(ev.REJECTED, row, "rejected", reason=row.reason)]
    if row.quantity == 0:  # a tombstone: cancelled before it ever arrived, never accepted
        return [_event(ev.CANCELLED, row, "cancelled", reason=row.reason)]
    events = [_event(ev.ACCEPTED, row, "accepted")]
    if row.filled_quantity:
        events.append(fill_event(row))
    if row.status == CANCELLED:
        events.append(_event(ev.CANCELLED, row, "cancelled", reason=row.reason))
    return events


def publish(events: list[dict]) -> None:
    publisher = get_publisher()
    for event in events:
        publisher.publish("broker_events", routing_key=event["type"], body=event, message_id=event["event_id"])


def _book() -> Session:
    # The exchange's own session: its commits never carry, or get caught in, the caller's work.
    return Session(db.engine, expire_on_commit=False)


# -- the broker ----------------------------------------------------------------------------
class PaperBroker:
    name = BROKER

    def __init__(self, max_quote_age: int):
        self.max_quote_age = max_quote_age

    def place(self, request: OrderRequest) -> str:
        with _book() as book:
            existing = book.get(PaperOrder, request.order_id)
            if existing is None:
                row = self._new_row(request)
                book.add(row)
                try:
                    book.commit()
                except IntegrityError:  # a concurrent place() of the same order won
                    book.rollback()
                    existing = book.get(PaperOrder, request.order_id)
                    if existing is None:
                        raise
        if existing is not None:
            log.info("event=paper_place_repeat order_id=%s broker_order_id=%s status=%s", request.order_id,
                     existing.broker_order_id, existing.status)  # fmt: skip
            publish(row_events(existing))
            return existing.broker_order_id
        log.info("event=paper_place order_id=%s user_id=%s broker_order_id=%s type=%s status=%s fill_price=%s",
                 request.order_id, request.user_id, row.broker_order_id, request.order_type, row.status,
                 row.fill_price)  # fmt: skip
        publish(row_events(row))
        return row.broker_order_id

    def _new_row(self, request: OrderRequest) -> PaperOrder:
        now = utcnow()
        quote = read_quotes(get_redis(), [request.instrument_id]).get(request.instrument_id)
        decision = decide(request, fresh_price(quote, self.max_quote_age, now))
        return PaperOrder(
            order_id=request.order_id,
            broker_order_id="P" + uuid.uuid4().hex[:12].upper(),
            instrument_id=request.instrument_id,
            side=request.side,
            quantity=request.quantity,
            filled_quantity=request.quantity if decision.status == FILLED else 0,
            order_type=request.order_type,
            limit_price=request.limit_price,
            fill_price=None if decision.fill_price is None else decision.fill_price.quantize(PRICE_QUANTUM),
            status=decision.status,
            reason=decision.reason,
            created_at=now,
            updated_at=now,
        )

    def cancel(self, order_id: uuid.UUID) -> None:
        with _book() as book:
            cancelled = book.scalars(
                sa.update(PaperOrder)
                .where(PaperOrder.order_id == order_id, PaperOrder.status == OPEN)
                .values(status=CANCELLED, reason=CANCEL_REQUESTED, updated_at=utcnow())
                .returning(PaperOrder)
            ).first()
            book.commit()
            if cancelled is not None:
                log.info("event=paper_cancel order_id=%s outcome=cancelled", order_id)
                publish([_event(ev.CANCELLED, cancelled, "cancelled", reason=CANCEL_REQUESTED)])
                return
            row = book.get(PaperOrder, order_id)
            if row is None:
                row = self._tombstone(book, order_id)
        log.info("event=paper_cancel order_id=%s outcome=%s", order_id, row.status)
        publish(row_events(row) + _cancel_refusal(row))

    def _tombstone(self, book: Session, order_id: uuid.UUID) -> PaperOrder:
        """Remember the cancel of an order not seen yet, so a late place() of it never trades."""
        now = utcnow()
        row = PaperOrder(order_id=order_id, broker_order_id="P" + uuid.uuid4().hex[:12].upper(), instrument_id=0,
                         side="", quantity=0, filled_quantity=0, order_type="", status=CANCELLED, reason=TOMBSTONE,
                         created_at=now, updated_at=now)  # fmt: skip
        book.add(row)
        try:
            book.commit()
            return row
        except IntegrityError:  # place() got there first: answer from its row
            book.rollback()
            return book.get(PaperOrder, order_id)

    def lookup(self, order_id: uuid.UUID) -> BrokerOrder | None:
        """The exchange's record of the order. Like an order-book query at a real broker, it also
        re-sends the order's events, repairing any lost in a crash (same ids, so no duplicates)."""
        with _book() as book:
            row = book.get(PaperOrder, order_id)
        if row is None:
            return None
        publish(row_events(row))
        return BrokerOrder(order_id=row.order_id, broker_order_id=row.broker_order_id, status=row.status,
                           filled_quantity=row.filled_quantity)  # fmt: skip


def _cancel_refusal(row: PaperOrder) -> list[dict]:
    if row.status == FILLED:
        # Deterministic per fill level: a retried cancel job re-sends the same refusal.
        return [_event(ev.CANCEL_REJECTED, row, f"cancel_rejected:{row.filled_quantity}", reason=ALREADY_FILLED)]
    if row.status == REJECTED:
        return [_event(ev.CANCEL_REJECTED, row, "cancel_rejected:0", reason=WAS_REJECTED)]
    return []  # an open row was cancelled above; a cancelled one just re-sends its cancel


# -- resting orders against the tape ---------------------------------------------------------
def _price_ranges(ticks: list[dict]) -> dict[int, tuple[Decimal, Decimal]]:
    """(lowest, highest) last price per instrument in the batch; malformed ticks are skipped."""
    ranges: dict[int, tuple[Decimal, Decimal]] = {}
    for tick in ticks:
        try:
            iid, price = int(tick["instrument_id"]), Decimal(str(tick["ltp"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            continue
        if not price.is_finite() or price <= 0:
            continue
        low, high = ranges.get(iid, (price, price))
        ranges[iid] = (min(low, price), max(high, price))
    return ranges


def match_ticks(ticks: list[dict]) -> int:
    """Fill the resting LIMIT orders a batch of ticks crosses, each at its own limit price (the
    resting order is the passive side). One atomic UPDATE ... WHERE status='open' claims them, so
    two consumers never fill one order twice. Returns the number of fills."""
    ranges = _price_ranges(ticks)
    if not ranges:
        return 0
    crossing = sa.or_(*(
        sa.and_(PaperOrder.instrument_id == iid, sa.or_(
            sa.and_(PaperOrder.side == "BUY", PaperOrder.limit_price >= low),
            sa.and_(PaperOrder.side == "SELL", PaperOrder.limit_price <= high),
        ))
        for iid, (low, high) in ranges.items()
    ))  # fmt: skip
    stmt = (
        sa.update(PaperOrder)
        .where(PaperOrder.instrument_id.in_(list(ranges)), PaperOrder.status == OPEN, PaperOrder.order_type == "LIMIT")
        .where(crossing)
        .values(status=FILLED, filled_quantity=PaperOrder.quantity, fill_price=PaperOrder.limit_price)
        .values(updated_at=utcnow())
        .returning(PaperOrder.order_id, PaperOrder.broker_order_id, PaperOrder.filled_quantity, PaperOrder.fill_price)
    )
    with db.engine.begin() as conn:
        filled = conn.execute(stmt).all()
    for row in filled:
        log.info("event=paper_fill order_id=%s broker_order_id=%s quantity=%s price=%s", row.order_id,
                 row.broker_order_id, row.filled_quantity, row.fill_price)  # fmt: skip
    publish([fill_event(row) for row in filled])
    return len(filled)
