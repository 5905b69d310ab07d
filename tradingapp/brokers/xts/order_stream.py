"""The event bridge's interactive side for one XTS account: its socket.io stream (`order` and
`trade` events -> our broker events) and the reconcile that recovers what the stream missed.

XTS does not replay events a socket missed. After every (re)connect, after the outbox recovers from
a publish failure, after an unreadable event, and every `interval` seconds, the order book and the
trade book are read and every event they state is published again. Event ids are deterministic
(mapping.py), so the consumer applies each broker fact once however often it is published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from tradingapp.brokers.xts import mapping
from tradingapp.brokers.xts.errors import XtsError
from tradingapp.brokers.xts.interactive import Interactive
from tradingapp.brokers.xts.outbox import Outbox
from tradingapp.brokers.xts.session import XtsSession
from tradingapp.brokers.xts.stream import Backoff, SocketStream
from tradingapp.brokers.xts.untrusted import shown

log = logging.getLogger("xts.orders")

PATH = "/interactive/socket.io"
INTERVAL = "interval"


class OrderStream:
    """One account's stream and reconciler; `stop()` ends both (the account was unlinked)."""

    def __init__(self, session: XtsSession, outbox: Outbox, eio: int, interval: float, label: str = "default"):
        self.session, self.outbox, self.label = session, outbox, label
        self.api = Interactive(session)
        self.halt = threading.Event()
        self.reconciler = Reconciler(self.reconcile, interval, self.halt, label)
        self.counts: dict[str, int] = defaultdict(int)
        self.stream = SocketStream(
            f"interactive:{label}",
            session.account.url,
            PATH,
            eio,
            query=self._query,
            handlers={
                "joined": self.on_joined,
                "order": self.on_order,
                "trade": self.on_trade,
                "logout": self.on_logout,
                "error": self.on_error,
            },
            stop=self.halt,
            on_connected=lambda: self.reconciler.request("connected"),
            check_session=self.api.profile,
        )

    def start(self) -> None:
        self.threads = [
            threading.Thread(target=self.stream.run, name=f"xts-interactive-{self.label}"),
            threading.Thread(target=self.reconciler.run, name=f"xts-reconcile-{self.label}"),
        ]
        for thread in self.threads:
            thread.start()

    def stop(self, wait: float = 0) -> None:
        self.halt.set()
        for thread in getattr(self, "threads", []) if wait else []:
            thread.join(wait)

    def _query(self) -> dict:
        login = self.session.login()
        return {"token": login.token, "userID": login.user_id, "apiType": "INTERACTIVE"}

    # -- socket events --------------------------------------------------------------------------
    def on_joined(self, payload=None) -> None:
        log.info("event=xts_interactive_joined account=%s", self.label)

    def on_order(self, payload) -> None:
        self._row_event("order", payload)

    def on_trade(self, payload) -> None:
        self._row_event("trade", payload)

    def _row_event(self, name: str, payload) -> None:
        try:
            events = mapping.socket_events(name, payload)
        except XtsError as exc:  # never guessed around: the books are read again
            self.counts[f"{name}_unreadable"] += 1
            log.error("event=xts_event_unreadable account=%s name=%s error=%s", self.label, name, exc)
            self.reconciler.request("unreadable_event")
            return
        if events is None:
            self.counts[f"{name}_foreign"] += 1
            return
        self.counts[f"{name}_events"] += 1
        for event in events:
            self.outbox.add_event(event)

    def on_logout(self, payload=None) -> None:
        """The broker ended the session (expiry, a login elsewhere): check it, then reconnect."""
        log.warning("event=xts_interactive_logout account=%s payload=%s", self.label, shown(payload, 200))
        self.stream.reconnect(check_session=True)

    def on_error(self, payload=None) -> None:
        log.warning("event=xts_interactive_error account=%s payload=%s", self.label, shown(payload, 200))

    # -- reconcile ------------------------------------------------------------------------------
    def reconcile(self, reason: str = "connected") -> int:
        """Publish the events the order book and the trade book state; returns how many. None that
        still waits in the outbox; a periodic run leaves out those already confirmed from this
        process too; any other publishes them all (the consumer may have refused one for now and
        applies it at a re-send)."""
        events = book_events(self.api.order_book(), self.api.trade_book())
        periodic = reason == INTERVAL
        return sum(self.outbox.add_event(event, unless_queued=True, unless_confirmed=periodic) for event in events)


class Reconciler:
    """Runs `reconcile` when asked and every `interval` seconds (0: only when asked), retrying a
    failed one with backoff until it succeeds."""

    def __init__(self, reconcile, interval: float, halt: threading.Event, label: str = "default"):
        self.reconcile, self.interval, self.halt, self.label = reconcile, interval, halt, label
        self.wake = threading.Event()
        self.reason = "start"
        self.backoff = Backoff(base=1.0, cap=30.0)
        self.runs = 0

    def request(self, reason: str) -> None:
        self.reason = reason
        self.wake.set()

    def run(self) -> None:
        while (reason := self._wait()) is not None:
            while not self.halt.is_set():
                try:
                    count = self.reconcile(reason)
                except Exception as exc:  # the books could not be read: try again soon
                    delay = self.backoff.next()
                    log.warning(
                        "event=xts_reconcile_failed account=%s reason=%s retry_in=%.1f error=%s: %s",
                        self.label,
                        reason,
                        delay,
                        type(exc).__name__,
                        exc,
                    )
                    self.halt.wait(delay)
                    continue
                self.backoff.reset()
                self.runs += 1
                log.info(
                    "event=xts_reconciled account=%s reason=%s events=%d runs=%d", self.label, reason, count, self.runs
                )
                break

    def _wait(self) -> str | None:
        """Why to reconcile now (a request, or the interval past), or None to stop."""
        deadline = time.monotonic() + self.interval if self.interval else None
        while not self.halt.is_set():
            if self.wake.wait(0.2):
                self.wake.clear()
                return self.reason
            if deadline is not None and time.monotonic() >= deadline:
                return INTERVAL
        return None


def book_events(order_rows: list, trade_rows: list) -> list[dict]:
    """Every event of our orders that the order book (a row per order) and the trade book state.
    An unreadable row is logged and skipped: one bad row must not hold back every other order."""
    orders: dict[int, list[mapping.OrderRow]] = defaultdict(list)
    trades: dict[int, list[mapping.TradeRow]] = defaultdict(list)
    for raw in order_rows:
        if (row := _parsed(mapping.parse_order_row, raw, "orders")) is not None:
            orders[row.app_order_id].append(row)
    for raw in trade_rows:
        if (trade := _parsed(mapping.parse_trade_row, raw, "trades")) is not None:
            trades[trade.order.app_order_id].append(trade)
    events: list[dict] = []
    for app_order_id in sorted(orders.keys() | trades.keys()):
        rows = orders.get(app_order_id) or [t.order for t in trades[app_order_id]]
        events += mapping.order_events(rows, trades.get(app_order_id, []))
    return events


def _parsed(parse, raw, book: str):
    """The row parsed, or None: someone else's row (never parsed: it states no event of ours) or an
    unreadable one of ours (logged)."""
    try:
        if mapping.row_order_id(raw) is None:
            return None
        return parse(raw)
    except XtsError as exc:
        log.error("event=xts_book_row_unreadable book=%s error=%s", book, exc)
        return None
