"""The WebSocket hub: who is connected, who subscribed to what, and what each socket is owed.

Plain Python (no Flask, no Redis) so it can be tested on its own. One hub per process; the
Redis listener feeds it and a sender loop per socket drains that socket's outbox. Locks are
`threading` primitives, which gevent's monkey-patching turns cooperative.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque

MODES = ("ltp", "quote", "full")
LTP_FIELDS = ("ltp", "ts")
QUOTE_FIELDS = ("ltp", "ltq", "bid", "ask", "bid_qty", "ask_qty", "volume", "ts")
FULL_FIELDS = QUOTE_FIELDS + ("open", "high", "low", "close")
FIELDS_BY_MODE = {"ltp": LTP_FIELDS, "quote": QUOTE_FIELDS, "full": FULL_FIELDS}
# The cache holds every value as a string; the live feed sends quantities as integers.
QUANTITY_FIELDS = frozenset({"ltq", "bid_qty", "ask_qty", "volume"})
USER_EVENT_TYPES = frozenset({"order", "trade", "position"})

CLOSE_OVERFLOW = 1013  # "try again later": the client fell too far behind
OVERFLOW_REASON = "outbox overflow, reconnect"


class TooManyConnections(Exception):
    """The user already has the maximum number of sockets open."""


class TooManyInstruments(Exception):
    """A subscription would take the socket past its instrument limit."""


def _quantity(value):
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def shape_quote(quote: dict, mode: str) -> dict:
    """The quote message a socket in `mode` receives."""
    message = {"type": "quote", "instrument_id": int(quote["instrument_id"])}
    for name in FIELDS_BY_MODE[mode]:
        value = quote.get(name)
        message[name] = _quantity(value) if name in QUANTITY_FIELDS else value
    if mode == "full" and "stale" in quote:
        message["stale"] = quote["stale"]
    return message


class Connection:
    """One socket's state: its user, subscriptions and outbox.

    The outbox has two parts: control replies and user events in order (bounded), and quotes
    conflated by instrument (a newer quote replaces an unsent older one).
    """

    _ids = itertools.count(1)

    def __init__(self, user_id: str, max_events: int = 1000):
        self.id = next(self._ids)
        self.user_id = user_id
        self.max_events = max_events
        self.subscriptions: dict[int, str] = {}  # instrument_id -> mode; guarded by the hub's lock
        self._cond = threading.Condition(threading.Lock())
        self._events: deque[dict] = deque()
        self._quotes: dict[int, dict] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.sending_since: float | None = None  # monotonic time a send started; set by the sender

    def __repr__(self) -> str:
        return f"Connection(id={self.id}, user_id={self.user_id})"

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def push(self, message: dict) -> bool:
        """Queue a message in order; on overflow mark the socket for closing (False)."""
        with self._cond:
            if self.close_code is not None:
                return False
            if len(self._events) >= self.max_events:
                self._close_locked(CLOSE_OVERFLOW, OVERFLOW_REASON)
                return False
            self._events.append(message)
            self._cond.notify()
            return True

    def push_quote(self, message: dict, replace: bool = True) -> None:
        """Queue a quote, replacing an unsent one of the same instrument (unless `replace` is False)."""
        with self._cond:
            if self.close_code is not None:
                return
            iid = message["instrument_id"]
            if not replace and iid in self._quotes:
                return
            self._quotes.pop(iid, None)  # re-insert so instruments are sent in update order
            self._quotes[iid] = message
            self._cond.notify()

    def drop_quotes(self, instrument_ids) -> None:
        with self._cond:
            for iid in instrument_ids:
                self._quotes.pop(iid, None)

    def close(self, code: int, reason: str = "") -> None:
        """Ask the sender loop to close the socket with `code`; the first request wins."""
        with self._cond:
            self._close_locked(code, reason)

    def _close_locked(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self._events.clear()
            self._quotes.clear()
        self._cond.notify_all()

    def take(self, timeout: float | None = None) -> list[dict]:
        """Everything queued (events first, then the latest quotes); [] after `timeout` or on close."""
        with self._cond:
            if not self._events and not self._quotes and self.close_code is None:
                self._cond.wait(timeout)
            if self.close_code is not None:
                return []
            batch = list(self._events) + list(self._quotes.values())
            self._events.clear()
            self._quotes.clear()
            return batch

    def stalled(self, now: float, limit: float) -> bool:
        """True when one send has been blocked longer than `limit`: the client stopped reading."""
        started = self.sending_since
        return started is not None and now - started > limit

    def pending(self) -> int:
        with self._cond:
            return len(self._events) + len(self._quotes)


class Hub:
    """Registers connections and routes quotes and user events to them."""

    def __init__(self, max_sockets_per_user: int = 10, max_instruments: int = 200, max_events: int = 1000):
        self.max_sockets_per_user = max_sockets_per_user
        self.max_instruments = max_instruments
        self.max_events = max_events
        self._lock = threading.RLock()
        self._by_user: dict[str, set[Connection]] = {}
        self._by_instrument: dict[int, set[Connection]] = {}

    # -- connections -------------------------------------------------------------------
    def register(self, user_id: str) -> Connection:
        with self._lock:
            sockets = self._by_user.setdefault(user_id, set())
            if len(sockets) >= self.max_sockets_per_user:
                if not sockets:
                    del self._by_user[user_id]
                raise TooManyConnections(user_id)
            conn = Connection(user_id, self.max_events)
            sockets.add(conn)
            return conn

    def unregister(self, conn: Connection) -> None:
        with self._lock:
            self._unsubscribe_locked(conn, list(conn.subscriptions))
            sockets = self._by_user.get(conn.user_id)
            if sockets is not None:
                sockets.discard(conn)
                if not sockets:
                    del self._by_user[conn.user_id]

    def connections(self, user_id: str | None = None) -> list[Connection]:
        with self._lock:
            if user_id is not None:
                return list(self._by_user.get(user_id, ()))
            return [conn for sockets in self._by_user.values() for conn in sockets]

    def subscriber_count(self, instrument_id: int) -> int:
        with self._lock:
            return len(self._by_instrument.get(instrument_id, ()))

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(self, conn: Connection, instrument_ids: list[int], mode: str) -> None:
        """Subscribe (or change the mode of) instruments; all or nothing against the limit."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            new = set(instrument_ids) - set(conn.subscriptions)
            if len(conn.subscriptions) + len(new) > self.max_instruments:
                raise TooManyInstruments(self.max_instruments)
            for iid in instrument_ids:
                conn.subscriptions[iid] = mode
                self._by_instrument.setdefault(iid, set()).add(conn)

    def unsubscribe(self, conn: Connection, instrument_ids: list[int]) -> None:
        with self._lock:
            self._unsubscribe_locked(conn, instrument_ids)
        conn.drop_quotes(instrument_ids)

    def _unsubscribe_locked(self, conn: Connection, instrument_ids: list[int]) -> None:
        for iid in instrument_ids:
            conn.subscriptions.pop(iid, None)
            subscribers = self._by_instrument.get(iid)
            if subscribers is not None:
                subscribers.discard(conn)
                if not subscribers:
                    del self._by_instrument[iid]

    # -- routing -----------------------------------------------------------------------
    def route_quote(self, quote: dict) -> int:
        """Deliver a quote to every subscriber in its mode; returns how many sockets got it."""
        iid = int(quote["instrument_id"])
        with self._lock:
            targets = [(conn, conn.subscriptions.get(iid)) for conn in self._by_instrument.get(iid, ())]
        shaped: dict[str, dict] = {}
        for conn, mode in targets:
            if mode is None:  # unsubscribed in between
                continue
            if mode not in shaped:
                shaped[mode] = shape_quote(quote, mode)
            conn.push_quote(shaped[mode])
        return len(targets)

    def route_user_event(self, event: dict) -> int:
        """Deliver {"type": kind, kind: payload} to the event's user only."""
        kind = event.get("type")
        user_id = event.get("user_id")
        if kind not in USER_EVENT_TYPES or kind not in event or user_id is None:
            raise ValueError("malformed user event")
        message = {"type": kind, kind: event[kind]}
        targets = self.connections(str(user_id))
        for conn in targets:
            conn.push(message)
        return len(targets)
