"""XTS's order and trade books as the book reconcile reads them (services/orders/reconcile.py): each
account's two books once per round (XTS allows one request a second to each), rows of our orders
grouped by orderUniqueIdentifier, what they say of each order (`standing`), and the events they
state published again under their deterministic ids (mapping.py). README: Reconciliation with XTS.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from flask import current_app

from config import ConfigError
from tradingapp.brokers.xts import mapping as xm
from tradingapp.brokers.xts.accounts import XtsCredentials, account_of
from tradingapp.brokers.xts.errors import XtsError, XtsResponseError
from tradingapp.brokers.xts.interactive import Interactive
from tradingapp.brokers.xts.session import XtsAccount
from tradingapp.domain.order_lifecycle import Status

log = logging.getLogger(__name__)

# A request the broker shows in progress, as our order's status while it waits for it.
PENDING = {xm.PENDING_CANCEL: Status.CANCEL_PENDING, xm.PENDING_REPLACE: Status.MODIFY_PENDING}


@dataclass(frozen=True)
class Standing:
    """One of our orders as the books show it."""

    status: str  # BrokerOrder.status word: pending | open | filled | cancelled | rejected | expired
    filled_quantity: int
    replaced_terms: tuple[int, Decimal | None, Decimal | None] | None  # the latest row's, if a replacement
    pending: Status | None  # the cancel or modification the latest row shows in progress
    row_status: str  # the latest row's status in XTS's words (logged)


@dataclass
class XtsBooks:
    """Rows of our orders from the books read, by our order id and AppOrderID."""

    publish: Callable[[list[dict]], None]
    accounts: int = 0
    failed_accounts: int = 0
    read_users: set[uuid.UUID] = field(default_factory=set)  # users whose account's books were read
    orders: dict[uuid.UUID, dict[int, list[xm.OrderRow]]] = field(default_factory=lambda: defaultdict(dict))
    trades: dict[int, list[xm.TradeRow]] = field(default_factory=lambda: defaultdict(list))
    unreadable: set[uuid.UUID] = field(default_factory=set)  # ours with a row we could not read

    def read(self, api: Interactive) -> None:
        """One order book and one trade book request; rows of other clients' orders are left out, an
        unreadable row of ours marks its order (never a guess from half its rows)."""
        for raw in api.order_book():
            row = self._parsed(xm.parse_order_row, raw)
            if row is not None and row.order_id is not None:
                self.orders[row.order_id].setdefault(row.app_order_id, []).append(row)
        for raw in api.trade_book():
            trade = self._parsed(xm.parse_trade_row, raw)
            if trade is not None and trade.order.order_id is not None:
                self.trades[trade.order.app_order_id].append(trade)
                self.orders[trade.order.order_id].setdefault(trade.order.app_order_id, [])

    def _parsed(self, parse, raw: object):
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
            self.unreadable.add(order_id)
            log.error("event=reconcile_row_unreadable order_id=%s error=%s", order_id, exc)
            return None

    # -- what the reconcile asks -----------------------------------------------------------------
    def order_ids(self) -> list[uuid.UUID]:
        """Our orders (by id) that some book lists."""
        return list(self.orders)

    def standing(self, order_id: uuid.UUID) -> Standing | None:
        """What the rows say of one of our orders; None when no book lists it."""
        by_app = self.orders.get(order_id)
        if not by_app:
            return None
        if len(by_app) > 1:
            log.error("event=xts_duplicate_at_broker order_id=%s app_order_ids=%s", order_id, sorted(by_app))
        trades = self._trades(by_app)
        rows = [row for app_rows in by_app.values() for row in app_rows] or [t.order for t in trades]
        summary = xm.summarize(rows, trades)
        latest = summary.latest
        replaced = latest.terms if latest.status == xm.REPLACED else None
        return Standing(summary.status, summary.filled_quantity, replaced, PENDING.get(latest.status), latest.status)

    def traded(self, order_id: uuid.UUID) -> int:
        """The quantity the trade book shows filled (each execution once)."""
        return sum({t.execution_id: t.quantity for t in self._trades(self.orders[order_id])}.values())

    def republish(self, order_id: uuid.UUID) -> int:
        """Publish every event the order's rows state again; how many."""
        events = []
        for app_order_id, rows in sorted(self.orders[order_id].items()):
            trades = self.trades.get(app_order_id, [])
            events += xm.order_events(rows or [t.order for t in trades], trades)
        self.publish(events)
        return len(events)

    def _trades(self, by_app: dict[int, list]) -> list[xm.TradeRow]:
        return [trade for app_order_id in by_app for trade in self.trades.get(app_order_id, [])]


def read_books(
    interactive_for: Callable[[XtsAccount], Interactive],
    credentials: dict[uuid.UUID, XtsCredentials],
    publish: Callable[[list[dict]], None],
) -> XtsBooks:
    """The books of the accounts of the users' credentials, each account read once (users who share
    one share its read) through `interactive_for` (the broker's client of the account); a user whose
    account's books could not be read is left out of `read_users`."""
    accounts: dict[XtsAccount, set[uuid.UUID]] = defaultdict(set)
    for user_id, user_credentials in credentials.items():
        try:
            accounts[account_of(current_app.config, user_credentials)].add(user_id)
        except ConfigError as exc:  # the deployment's keys without its URL: nothing can be asked
            log.warning("event=reconcile_no_account user_id=%s error=%s", user_id, exc)
    books = XtsBooks(publish, accounts=len(accounts))
    for account, account_users in accounts.items():
        try:
            books.read(interactive_for(account))
        except XtsError as exc:  # nothing is concluded about these users' orders this round
            books.failed_accounts += 1
            log.warning(
                "event=reconcile_books_failed app_key=****%s users=%d error=%s: %s",
                account.app_key[-4:],
                len(account_users),
                type(exc).__name__,
                exc,
            )
            continue
        books.read_users |= account_users
    return books
