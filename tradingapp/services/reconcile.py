"""Our orders against XTS's books (BROKER=xts): the worker runs a round at its start and every
RECONCILE_INTERVAL (jobs/worker.py). Paper keeps the sweeper's per-order lookups instead.

A round reads our non-final orders first, then each account's order book and trade book once (XTS
allows one request a second to each; a round makes one of each per account, whatever the number of
orders), and matches rows to our orders by orderUniqueIdentifier:

- an order whose standing differs from the broker's (status, filled quantity, new terms of a
  modification) gets every event its rows state published again (mapping.py, deterministic ids):
  the consumer applies what it lacks through the state machine, which writes the audit rows, and
  drops what it already has. A final order of ours with fills we lack (we say CANCELLED, the broker
  Filled) is one too: fills are facts, the state machine books them after a final status;
- a cancel or modification still waiting, with nothing to publish, is sent again (at most once per
  SWEEP_RECONCILE_EVERY, not while the broker shows it pending);
- SUBMITTED without a broker id and not in the book was never placed, or its place is in flight:
  the sweeper's resend (which looks it up first) sends it; a CANCEL_PENDING one gets its cancel
  again (the broker's tombstone answers it);
- a working order the broker acknowledged but no book lists is logged and audited
  (`reconcile_missing_at_broker`, actor system), its status left as it is: nothing is guessed.
A book that cannot be read concludes nothing about its account's orders.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from config import ConfigError
from tradingapp.brokers.xts import mapping as xm
from tradingapp.brokers.xts.broker import XtsBroker, publish
from tradingapp.brokers.xts.errors import XtsError, XtsResponseError
from tradingapp.brokers.xts.interactive import Interactive
from tradingapp.brokers.xts.session import XtsAccount
from tradingapp.domain.order_lifecycle import FINAL, Status
from tradingapp.extensions import db, get_redis
from tradingapp.models import Order, OrderEvent
from tradingapp.models.types import utcnow
from tradingapp.services.orders import jobqueue

log = logging.getLogger(__name__)

WORKING = (Status.SUBMITTED, Status.OPEN, Status.PARTIALLY_FILLED, Status.CANCEL_PENDING, Status.MODIFY_PENDING)
MISSING_EVENT = "reconcile_missing_at_broker"
MISSING_REASON = "not in the broker's order book"
BROKER_FINAL = {"filled", "cancelled", "rejected", "expired"}
BUSY = {xm.PENDING_CANCEL: Status.CANCEL_PENDING, xm.PENDING_REPLACE: Status.MODIFY_PENDING}


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
class Books:
    """Rows of our orders from the books read, by our order id and AppOrderID."""

    orders: dict[uuid.UUID, dict[int, list[xm.OrderRow]]] = field(default_factory=lambda: defaultdict(dict))
    trades: dict[int, list[xm.TradeRow]] = field(default_factory=lambda: defaultdict(list))
    unreadable: set[uuid.UUID] = field(default_factory=set)  # ours with a row we could not read

    def add_order(self, row: xm.OrderRow) -> None:
        self.orders[row.order_id].setdefault(row.app_order_id, []).append(row)

    def add_trade(self, trade: xm.TradeRow) -> None:
        self.trades[trade.order.app_order_id].append(trade)
        self.orders[trade.order.order_id].setdefault(trade.order.app_order_id, [])


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


def reconcile_books(broker: XtsBroker) -> ReconcileReport:
    started = time.monotonic()
    report = ReconcileReport()
    ours = working_orders()
    accounts, unresolved = _accounts(broker, {o.user_id for o in ours} | _users_trading_today())
    report.accounts = len(accounts)
    books, read_users = Books(), set()
    for account, users in accounts.items():
        try:
            read_books(broker.client_for(account).interactive, books)
        except XtsError as exc:  # nothing is concluded about these users' orders this round
            report.failed_accounts += 1
            log.warning("event=reconcile_books_failed app_key=****%s users=%d error=%s: %s", account.app_key[-4:],
                        len(users), type(exc).__name__, exc)  # fmt: skip
            continue
        read_users |= users
    checked = [o for o in ours if o.user_id in read_users and o.user_id not in unresolved]
    report.orders = len(checked)
    for order in checked:
        if order.id in books.unreadable:
            continue
        if books.orders.get(order.id):
            report.found += 1
            _settle(order, books, report)
        else:
            _not_at_broker(order, len(read_users), report)
    _late_fills(books, {o.id for o in ours}, report)
    log.info("event=reconcile_done %s elapsed_ms=%.0f", report.line(), (time.monotonic() - started) * 1000)
    return report


# -- reading -------------------------------------------------------------------------------------
def working_orders() -> list[Ours]:
    rows = db.session.execute(
        sa.select(*COLUMNS).where(Order.broker == xm.BROKER, Order.status.in_([s.value for s in WORKING]))
    ).all()
    db.session.rollback()
    return [Ours(*row) for row in rows]


def _users_trading_today() -> set[uuid.UUID]:
    """Users with orders created this session day: a final one may still have fills we lack."""
    zone = ZoneInfo(current_app.config["SESSION_TIMEZONE"])
    midnight = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    users = db.session.scalars(
        sa.select(Order.user_id).where(Order.broker == xm.BROKER, Order.created_at >= midnight).distinct()
    ).all()
    db.session.rollback()
    return set(users)


def _accounts(broker: XtsBroker, users: set[uuid.UUID]) -> tuple[dict[XtsAccount, set[uuid.UUID]], set[uuid.UUID]]:
    """The accounts the users' orders go through ({account: users}), and the users without one."""
    accounts: dict[XtsAccount, set[uuid.UUID]] = defaultdict(set)
    unresolved = set()
    for user_id in sorted(users):
        try:
            accounts[broker.accounts(user_id)].add(user_id)
        except (XtsError, ConfigError) as exc:  # no credentials: its orders cannot be asked about
            unresolved.add(user_id)
            log.warning("event=reconcile_no_account user_id=%s error=%s", user_id, exc)
    return accounts, unresolved


def read_books(api: Interactive, books: Books) -> None:
    """One order book and one trade book request; rows of other clients' orders are left out, an
    unreadable row of ours marks its order (never a guess from half its rows)."""
    for raw in api.order_book():
        row = _parsed(xm.parse_order_row, raw, books)
        if row is not None and row.order_id is not None:
            books.add_order(row)
    for raw in api.trade_book():
        trade = _parsed(xm.parse_trade_row, raw, books)
        if trade is not None and trade.order.order_id is not None:
            books.add_trade(trade)


def _parsed(parse, raw: object, books: Books):
    """The row parsed; None for someone else's (never parsed) or an unreadable one (ours marked)."""
    try:
        order_id = xm.row_order_id(raw)
    except XtsResponseError:
        return None  # not even an object: nobody's order can be told from it
    if order_id is None:
        return None
    try:
        return parse(raw)
    except XtsResponseError as exc:
        books.unreadable.add(order_id)
        log.error("event=reconcile_row_unreadable order_id=%s error=%s", order_id, exc)
        return None


# -- deciding ------------------------------------------------------------------------------------
def differs(order: Ours, summary: xm.Summary) -> bool:
    """Whether the broker's standing of a working order is news to us."""
    if order.status == Status.SUBMITTED or summary.status in BROKER_FINAL:
        return True
    if summary.filled_quantity != order.filled_quantity:
        return True
    latest = summary.latest
    if latest.status != xm.REPLACED:
        return False
    if order.status == Status.MODIFY_PENDING:
        return latest.terms == (order.pending_quantity, order.pending_limit_price, order.pending_stop_price)
    return latest.terms != (order.quantity, order.limit_price, order.stop_price)


def _settle(order: Ours, books: Books, report: ReconcileReport) -> None:
    by_app = books.orders[order.id]
    if len(by_app) > 1:
        log.error("event=xts_duplicate_at_broker order_id=%s app_order_ids=%s", order.id, sorted(by_app))
    rows = [row for app_rows in by_app.values() for row in app_rows] or [t.order for t in _trades(books, by_app)]
    summary = xm.summarize(rows, _trades(books, by_app))
    if differs(order, summary):
        _publish(order.id, books, by_app, report)
        log.info("event=reconcile_difference order_id=%s user_id=%s status=%s filled=%d broker_status=%s "
                 "broker_row=%s broker_filled=%d", order.id, order.user_id, order.status, order.filled_quantity,
                 summary.status, summary.latest.status, summary.filled_quantity)  # fmt: skip
    elif order.status in BUSY.values() and BUSY.get(summary.latest.status) != order.status:
        _resend(order, report)


def _trades(books: Books, by_app: dict[int, list]) -> list[xm.TradeRow]:
    return [trade for app_order_id in by_app for trade in books.trades.get(app_order_id, [])]


def _publish(order_id: uuid.UUID, books: Books, by_app: dict[int, list], report: ReconcileReport) -> None:
    events = []
    for app_order_id, rows in sorted(by_app.items()):
        trades = books.trades.get(app_order_id, [])
        events += xm.order_events(rows or [t.order for t in trades], trades)
    publish(events)
    report.differences += 1
    report.events_published += len(events)


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
        log.error("event=reconcile_missing_at_broker order_id=%s user_id=%s status=%s broker_order_id=%s",
                  order.id, order.user_id, order.status, order.broker_order_id)  # fmt: skip


def _audit_missing(order: Ours, accounts_read: int) -> bool:
    """One audit row per order and change of it: True when written now."""
    seen = db.session.scalar(
        sa.select(OrderEvent.id)
        .where(OrderEvent.order_id == order.id, OrderEvent.event == MISSING_EVENT, OrderEvent.ts >= order.updated_at)
        .limit(1)  # fmt: skip
    )
    if seen is None:
        db.session.add(OrderEvent(order_id=order.id, actor="system", actor_id="reconcile", event=MISSING_EVENT,
                                  from_status=order.status, to_status=order.status, reason=MISSING_REASON,
                                  details={"broker_order_id": order.broker_order_id,
                                           "accounts_read": accounts_read}))  # fmt: skip
    db.session.commit()
    return seen is None


def _late_fills(books: Books, working: set[uuid.UUID], report: ReconcileReport) -> None:
    """Final orders of ours the books list with more fills than we booked."""
    others = [order_id for order_id in books.orders if order_id not in working]
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
        by_app = books.orders[order_id]
        traded = sum({t.execution_id: t.quantity for t in _trades(books, by_app)}.values())
        if status in FINAL and traded > filled and order_id not in books.unreadable:
            report.late_fills += 1
            _publish(order_id, books, by_app, report)
            log.warning("event=reconcile_late_fills order_id=%s status=%s filled=%d broker_filled=%d", order_id,
                        status, filled, traded)  # fmt: skip


def _key(suffix: str) -> str:
    namespace = current_app.config.get("NAMESPACE", "")
    return f"{namespace}:orders:{suffix}" if namespace else f"orders:{suffix}"
