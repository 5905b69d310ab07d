"""The book reconcile: our working orders (and today's final ones) against the broker's books, a
round at the worker's start and every RECONCILE_INTERVAL (brokers/xts/upkeep.py). The broker reads
its books (brokers/xts/books.py); this module compares them with ours and acts: events published
again where the broker's standing differs (fills on a final order of ours too), a waiting cancel or
modification sent again, an acknowledged order no book lists audited. README: Reconciliation with XTS.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from tradingapp import metrics
from tradingapp.domain.order_lifecycle import FINAL, Status
from tradingapp.extensions import db, get_redis
from tradingapp.models import Order, OrderEvent
from tradingapp.models.types import utcnow
from tradingapp.services.accounts.broker_accounts import CredentialsUnavailable, credentials_for
from tradingapp.services.orders import jobqueue

log = logging.getLogger(__name__)

WORKING = (Status.SUBMITTED, Status.OPEN, Status.PARTIALLY_FILLED, Status.CANCEL_PENDING, Status.MODIFY_PENDING)
MISSING_EVENT = "reconcile_missing_at_broker"
MISSING_REASON = "not in the broker's order book"
BROKER_FINAL = {"filled", "cancelled", "rejected", "expired"}
BUSY = (Status.CANCEL_PENDING, Status.MODIFY_PENDING)


class Standing(Protocol):
    """One of our orders as the broker's books show it."""

    status: str  # BrokerOrder.status word: pending | open | filled | cancelled | rejected | expired
    filled_quantity: int
    replaced_terms: tuple[int, Decimal | None, Decimal | None] | None  # the latest row's, if a replacement
    pending: Status | None  # the cancel or modification the broker shows in progress
    row_status: str  # the latest row's status in the broker's words (logged)


class Books(Protocol):
    """What a broker's `read_books` gives (brokers/xts/books.py)."""

    accounts: int
    failed_accounts: int
    read_users: set[uuid.UUID]  # users whose account's books were read
    unreadable: set[uuid.UUID]  # our orders with a row that could not be read: nothing concluded

    def order_ids(self) -> list[uuid.UUID]: ...
    def standing(self, order_id: uuid.UUID) -> Standing | None: ...
    def traded(self, order_id: uuid.UUID) -> int: ...
    def republish(self, order_id: uuid.UUID) -> int: ...


class BookBroker(Protocol):
    name: str

    def read_books(self, credentials: dict) -> Books: ...  # {user id: the user's credentials}


@dataclass(frozen=True)
class Ours:
    """Our order as the round read it."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    broker_order_id: str | None
    quantity: int
    filled_quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None
    pending_quantity: int | None
    pending_limit_price: Decimal | None
    pending_stop_price: Decimal | None
    modify_seq: int
    updated_at: datetime


COLUMNS = tuple(getattr(Order, name) for name in Ours.__dataclass_fields__)


@dataclass
class ReconcileReport:
    accounts: int = 0
    failed_accounts: int = 0
    orders: int = 0  # our working orders looked at
    found: int = 0  # of those, in a book
    differences: int = 0  # orders whose events were published again
    events_published: int = 0
    late_fills: int = 0  # final orders of ours with fills we lacked
    missing: int = 0  # acknowledged working orders no book lists
    unsent: int = 0  # SUBMITTED, never at the broker: the sweeper's resend
    requests_resent: int = 0  # waiting cancels and modifications sent again
    foreign: int = 0  # rows naming an order id we do not have

    def line(self) -> str:
        return " ".join(f"{name}={value}" for name, value in vars(self).items())


# RECONCILE_DIFFERENCES' kinds, from the report's counts.
DIFFERENCE_KINDS = {
    "standing": lambda r: r.differences - r.late_fills,  # a working order the broker shows otherwise
    "late_fill": lambda r: r.late_fills,
    "missing": lambda r: r.missing,
    "unsent": lambda r: r.unsent,
    "request_resent": lambda r: r.requests_resent,
    "foreign": lambda r: r.foreign,
}


def reconcile_books(broker: BookBroker) -> ReconcileReport:
    """One round, counted by outcome (ok; partial: an account's books could not be read; failed)."""
    try:
        report = _reconcile(broker)
    except Exception:
        metrics.RECONCILE_ROUNDS.labels("failed").inc()
        raise
    metrics.RECONCILE_ROUNDS.labels("partial" if report.failed_accounts else "ok").inc()
    for kind, count in DIFFERENCE_KINDS.items():  # every kind, 0 too: its series exists from the first round
        metrics.RECONCILE_DIFFERENCES.labels(kind).inc(count(report))
    return report


def _reconcile(broker: BookBroker) -> ReconcileReport:
    started = time.monotonic()
    report = ReconcileReport()
    ours = working_orders(broker.name)
    books = broker.read_books(_credentials({o.user_id for o in ours} | _users_trading_today(broker.name)))
    report.accounts, report.failed_accounts = books.accounts, books.failed_accounts
    checked = [o for o in ours if o.user_id in books.read_users]
    report.orders = len(checked)
    for order in checked:
        if order.id in books.unreadable:
            continue
        standing = books.standing(order.id)
        if standing is not None:
            report.found += 1
            _settle(order, standing, books, report)
        else:
            _not_at_broker(order, len(books.read_users), report)
    _late_fills(books, {o.id for o in ours}, report)
    log.info("event=reconcile_done %s elapsed_ms=%.0f", report.line(), (time.monotonic() - started) * 1000)
    return report


# -- reading ours --------------------------------------------------------------------------------
def working_orders(broker: str) -> list[Ours]:
    rows = db.session.execute(
        sa.select(*COLUMNS).where(Order.broker == broker, Order.status.in_([s.value for s in WORKING]))
    ).all()
    db.session.rollback()
    return [Ours(*row) for row in rows]


def _users_trading_today(broker: str) -> set[uuid.UUID]:
    """Users with orders created this session day: a final one may still have fills we lack."""
    zone = ZoneInfo(current_app.config["SESSION_TIMEZONE"])
    midnight = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    users = db.session.scalars(
        sa.select(Order.user_id).where(Order.broker == broker, Order.created_at >= midnight).distinct()
    ).all()
    db.session.rollback()
    return set(users)


def _credentials(users: set[uuid.UUID]) -> dict:
    """Each user's broker credentials (their linked account, else the deployment's); a user without
    any is left out: their orders cannot be asked about."""
    found = {}
    for user_id in sorted(users):
        try:
            found[user_id] = credentials_for(user_id)
        except CredentialsUnavailable as exc:
            log.warning("event=reconcile_no_account user_id=%s error=%s", user_id, exc)
    db.session.rollback()  # the reads end before any broker call
    return found


# -- deciding ------------------------------------------------------------------------------------
def differs(order: Ours, standing: Standing) -> bool:
    """Whether the broker's standing of a working order is news to us."""
    if order.status == Status.SUBMITTED or standing.status in BROKER_FINAL:
        return True
    if standing.filled_quantity != order.filled_quantity:
        return True
    terms = standing.replaced_terms
    if terms is None:
        return False
    if order.status == Status.MODIFY_PENDING:
        return terms == (order.pending_quantity, order.pending_limit_price, order.pending_stop_price)
    return terms != (order.quantity, order.limit_price, order.stop_price)


def _settle(order: Ours, standing: Standing, books: Books, report: ReconcileReport) -> None:
    if differs(order, standing):
        _publish(order.id, books, report)
        log.info(
            "event=reconcile_difference order_id=%s user_id=%s status=%s filled=%d broker_status=%s "
            "broker_row=%s broker_filled=%d",
            order.id,
            order.user_id,
            order.status,
            order.filled_quantity,
            standing.status,
            standing.row_status,
            standing.filled_quantity,
        )
    elif order.status in BUSY and standing.pending != order.status:
        _resend(order, report)


def _publish(order_id: uuid.UUID, books: Books, report: ReconcileReport) -> None:
    report.events_published += books.republish(order_id)
    report.differences += 1


def _resend(order: Ours, report: ReconcileReport) -> None:
    """A cancel or modification the broker shows no sign of: send it again, if it has waited past
    SWEEP_PENDING_AFTER and was not sent again within SWEEP_RECONCILE_EVERY."""
    config = current_app.config
    if order.updated_at > utcnow() - timedelta(seconds=config["SWEEP_PENDING_AFTER"]):
        return
    if not get_redis().set(_key(f"reconciled:{order.id}"), "1", nx=True, ex=config["SWEEP_RECONCILE_EVERY"]):
        return
    if order.status == Status.CANCEL_PENDING:
        jobqueue.enqueue_cancel(order.id)
    else:
        jobqueue.enqueue_modify(order.id, order.modify_seq)
    report.requests_resent += 1
    log.info("event=reconcile_resend order_id=%s user_id=%s status=%s", order.id, order.user_id, order.status)


def _not_at_broker(order: Ours, accounts_read: int, report: ReconcileReport) -> None:
    if order.broker_order_id is None:
        if order.status == Status.CANCEL_PENDING:
            _resend(order, report)  # the cancel of an order never placed: the broker's tombstone
        else:
            report.unsent += 1  # the sweeper's resend looks it up first, then sends it
        return
    report.missing += 1
    if _audit_missing(order, accounts_read):
        log.error(
            "event=reconcile_missing_at_broker order_id=%s user_id=%s status=%s broker_order_id=%s",
            order.id,
            order.user_id,
            order.status,
            order.broker_order_id,
        )


def _audit_missing(order: Ours, accounts_read: int) -> bool:
    """One audit row per order and change of it: True when written now."""
    seen = db.session.scalar(
        sa.select(OrderEvent.id)
        .where(OrderEvent.order_id == order.id, OrderEvent.event == MISSING_EVENT, OrderEvent.ts >= order.updated_at)
        .limit(1)
    )
    if seen is None:
        db.session.add(
            OrderEvent(
                order_id=order.id,
                actor="system",
                actor_id="reconcile",
                event=MISSING_EVENT,
                from_status=order.status,
                to_status=order.status,
                reason=MISSING_REASON,
                details={"broker_order_id": order.broker_order_id, "accounts_read": accounts_read},
            )
        )
    db.session.commit()
    return seen is None


def _late_fills(books: Books, working: set[uuid.UUID], report: ReconcileReport) -> None:
    """Final orders of ours the books list with more fills than we booked."""
    others = [order_id for order_id in books.order_ids() if order_id not in working]
    known: dict[uuid.UUID, tuple[str, int]] = {}
    for start in range(0, len(others), 1000):
        chunk = others[start : start + 1000]
        query = sa.select(Order.id, Order.status, Order.filled_quantity).where(Order.id.in_(chunk))
        known.update({row.id: (row.status, row.filled_quantity) for row in db.session.execute(query)})
    db.session.rollback()
    for order_id in others:
        if order_id not in known:
            report.foreign += 1
            continue
        status, filled = known[order_id]
        traded = books.traded(order_id)
        if status in FINAL and traded > filled and order_id not in books.unreadable:
            report.late_fills += 1
            _publish(order_id, books, report)
            log.warning(
                "event=reconcile_late_fills order_id=%s status=%s filled=%d broker_filled=%d",
                order_id,
                status,
                filled,
                traded,
            )


def _key(suffix: str) -> str:
    namespace = current_app.config.get("NAMESPACE", "")
    return f"{namespace}:orders:{suffix}" if namespace else f"orders:{suffix}"
