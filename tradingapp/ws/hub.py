"""The WebSocket hub: who is connected, who subscribed to what, and what each socket is owed.

Plain Python (no Flask app, no Redis) so it can be tested on its own; it counts what it routes in
tradingapp.metrics (deliveries by type, quotes conflated, messages dropped), once per routed
message or closed socket, never once per socket and quote. One hub per process; the
Redis listener feeds it and a sender loop per socket drains that socket's outbox. Locks are
`threading` primitives, which gevent's monkey-patching turns cooperative.

Messages are encoded once by the hub's `encode` (in the server: a complete WebSocket frame), so a
quote routed to a thousand sockets in the same mode is shaped and serialised once, not a thousand
times; a socket's outbox holds encoded bytes.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

import orjson

from tradingapp import metrics
from tradingapp.domain.quotes import OHLC_FIELDS, QUANTITY_FIELDS, QUOTE_FIELDS

try:  # the OS lock even under gevent's monkey-patching: see Connection
    from gevent.monkey import get_original

    _os_lock = get_original("_thread", "allocate_lock")
except ImportError:  # pragma: no cover - gevent is a dependency; plain threads need nothing else
    from _thread import allocate_lock as _os_lock

MODES = ("ltp", "quote", "full")
# The fields of the Quote (tradingapp/domain/quotes.py) a subscriber of each mode receives.
_QUOTE_MODE = tuple(name for name in QUOTE_FIELDS if name != "instrument_id" and name not in OHLC_FIELDS)
FIELDS_BY_MODE = {"ltp": ("ltp", "ts"), "quote": _QUOTE_MODE, "full": _QUOTE_MODE + OHLC_FIELDS}
USER_EVENT_TYPES = frozenset({"order", "trade", "position"})

CLOSE_OVERFLOW = 1013  # "try again later": the client fell too far behind
OVERFLOW_REASON = "outbox overflow, reconnect"
# A socket whose client is keeping up (no write blocked on it) may hold this many times
# `max_events` for a moment: a burst routed before the next flush pass is not a slow client.
BURST_FACTOR = 10


class TooManyConnections(Exception):
    """The user already has the maximum number of sockets open."""


class TooManyInstruments(Exception):
    """A subscription would take the socket past its instrument limit."""


def _quantity(value):
    """The cache holds every value as a string; the live feed sends quantities as integers."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def shape_quote(quote: dict, mode: str, stale: bool = False) -> dict:
    """The quote message a socket in `mode` receives; full mode also says whether it is stale."""
    message = {"type": "quote", "instrument_id": int(quote["instrument_id"])}
    for name in FIELDS_BY_MODE[mode]:
        value = quote.get(name)
        message[name] = _quantity(value) if name in QUANTITY_FIELDS else value
    if mode == "full":
        message["stale"] = stale
    return message


def stale_at(quote: dict, stale_after: float) -> float:
    """Epoch seconds after which `quote` is stale: its `ts` plus `stale_after` (no ts: already)."""
    try:
        moment = datetime.fromisoformat(quote["ts"])
    except (KeyError, TypeError, ValueError):
        return 0.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() + stale_after


class Connection:
    """One socket's state: its user, session, subscriptions and outbox.

    The outbox has two parts: control replies and user events in order (bounded), and quotes
    conflated by instrument (a newer quote replaces an unsent older one). A socket whose write is
    blocked on its client (`sending_since` set) is closed past `max_events` queued messages; one
    that keeps up only past `BURST_FACTOR` times that, since the listener can route a burst of
    buffered messages before the flusher's next pass, and closing a reader that is not behind
    would lose its events. So it never holds more than that plus one quote per instrument.

    When the outbox goes from empty to not empty, `on_ready(conn)` is called if set (the server's
    flusher writes it out with the others of the same burst), else the event `take` waits on is set.

    Its lock is the OS lock, not gevent's: it is taken for every quote to every socket, and no
    code holding it blocks or yields, so a greenlet never waits on it (gevent's costs ten times more).
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        user_id: str,
        max_events: int = 1000,
        encode: Callable[[dict], bytes] = orjson.dumps,
        session: dict | None = None,
    ):
        self.id = next(self._ids)
        self.user_id = user_id
        self.session = session or {}  # the token's claims: expiry and revocation are checked on them
        self.max_events = max_events
        self.encode = encode
        self.subscriptions: dict[int, str] = {}  # instrument_id -> mode; guarded by the hub's lock
        self._lock = _os_lock()
        self._ready = threading.Event()  # take() waits on it: set by wake() and on close
        self._woken = False  # the outbox was announced (on_ready or _ready) since the last take
        self.on_ready: Callable[[Connection], None] | None = None
        self._events: deque[bytes] = deque()
        self._quotes: dict[int, bytes] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.sending_since: float | None = None  # monotonic time a send started; set by the sender
        self.slot: str | None = None  # its lease among the user's sockets of every process (ws/slots.py)

    def __repr__(self) -> str:
        return f"Connection(id={self.id}, user_id={self.user_id})"

    @property
    def closing(self) -> bool:
        return self.close_code is not None

    def send(self, message: dict) -> bool:
        """Queue a reply (pong, subscribed, error...) in order; on overflow mark the socket for closing (False)."""
        queued = self.push(self.encode(message))
        if queued:
            metrics.WS_DELIVERIES.labels(message.get("type", "other")).inc()
        return queued

    def push(self, data: bytes) -> bool:
        """Queue encoded bytes in order; on overflow mark the socket for closing (False)."""
        with self._lock:
            if self.close_code is not None:
                return False
            queued = len(self._events) < self.max_events or (
                self.sending_since is None and len(self._events) < self.max_events * BURST_FACTOR
            )
            if queued:
                self._events.append(data)
            else:
                self._close_locked(CLOSE_OVERFLOW, OVERFLOW_REASON, "queue_full", refused=1)
        if queued:
            self._wake()
        else:
            self._woken = True
            self._ready.set()  # the sender closes the socket
        return queued

    def push_quote(self, instrument_id: int, data: bytes, replace: bool = True) -> bool:
        """Queue an encoded quote, replacing an unsent one of the same instrument (unless `replace` is
        False). True when it replaced one (conflated): the caller counts them."""
        with self._lock:
            if self.close_code is not None:
                return False
            replaced = instrument_id in self._quotes
            if replaced:
                if not replace:
                    return False
                del self._quotes[instrument_id]  # re-inserted: instruments go out in update order
            self._quotes[instrument_id] = data
        self._wake()
        return replaced

    def _wake(self) -> None:
        if not self._woken:  # announced once per batch, not once per quote
            self._woken = True
            if self.on_ready is None:
                self._ready.set()
            else:
                self.on_ready(self)

    def wake(self) -> None:
        """Let a `take` waiting for this socket return what is queued."""
        self._ready.set()

    def drop_quotes(self, instrument_ids) -> None:
        with self._lock:
            for iid in instrument_ids:
                self._quotes.pop(iid, None)

    def close(self, code: int, reason: str = "", dropped: str = "closed") -> None:
        """Ask the sender loop to close the socket with `code`; the first request wins. What was still
        queued is dropped, counted under `dropped` (the reason: closed, send_timeout...)."""
        with self._lock:
            self._close_locked(code, reason, dropped)
        self._woken = True
        self._ready.set()

    def _close_locked(self, code: int, reason: str, dropped: str, refused: int = 0) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            lost = len(self._events) + len(self._quotes) + refused
            self._events.clear()
            self._quotes.clear()
            if lost:
                metrics.WS_DROPPED.labels(dropped).inc(lost)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until woken (something to write, or the close); False after `timeout`."""
        if not self._ready.wait(timeout):
            return False
        self._ready.clear()
        return True

    def take(self, timeout: float | None = None) -> list[bytes]:
        """Everything queued (events first, then the latest quotes) once woken; [] after `timeout` or on close."""
        return self.take_now() if self.wait(timeout) else []

    def take_now(self) -> list[bytes]:
        """Everything queued, without waiting; [] on close."""
        with self._lock:
            self._woken = False
            if self.close_code is not None:
                return []
            batch = [*self._events, *self._quotes.values()]
            self._events.clear()
            self._quotes.clear()
            return batch

    def stalled(self, now: float, limit: float) -> bool:
        """True when one send has been blocked longer than `limit`: the client stopped reading."""
        started = self.sending_since
        return started is not None and now - started > limit

    def pending(self) -> int:
        with self._lock:
            return len(self._events) + len(self._quotes)


class Hub:
    """Registers connections and routes quotes and user events to them.

    It also remembers the last quote of every subscribed instrument and when it goes stale
    (`stale_after` seconds past its `ts`): `mark_stale` sends it once more with `stale: true` to
    full-mode subscribers when its feed has gone silent; the next live quote clears the flag.
    """

    def __init__(
        self,
        max_sockets_per_user: int = 10,
        max_instruments: int = 200,
        max_events: int = 1000,
        encode: Callable[[dict], bytes] = orjson.dumps,
        stale_after: float = 10.0,
    ):
        self.max_sockets_per_user = max_sockets_per_user
        self.max_instruments = max_instruments
        self.max_events = max_events
        self.encode = encode
        self.stale_after = stale_after
        self._lock = threading.RLock()
        self._by_user: dict[str, set[Connection]] = {}
        self._by_instrument: dict[int, dict[str, set[Connection]]] = {}  # iid -> mode -> sockets
        self._last: dict[int, tuple[dict, float, bool]] = {}  # iid -> (quote, stale at, marked stale)

    # -- connections -------------------------------------------------------------------
    def register(self, user_id: str, session: dict | None = None) -> Connection:
        with self._lock:
            sockets = self._by_user.setdefault(user_id, set())
            if len(sockets) >= self.max_sockets_per_user:
                if not sockets:
                    del self._by_user[user_id]
                raise TooManyConnections(user_id)
            conn = Connection(user_id, self.max_events, self.encode, session)
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
            return sum(len(conns) for conns in self._by_instrument.get(instrument_id, {}).values())

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(self, conn: Connection, instrument_ids: list[int], mode: str) -> None:
        """Subscribe (or change the mode of) instruments; all or nothing against the limit."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        moved = []
        with self._lock:
            new = set(instrument_ids) - set(conn.subscriptions)
            if len(conn.subscriptions) + len(new) > self.max_instruments:
                raise TooManyInstruments(self.max_instruments)
            for iid in instrument_ids:
                old = conn.subscriptions.get(iid)
                if old == mode:
                    continue
                groups = self._by_instrument.setdefault(iid, {})
                if old is not None:
                    self._leave(groups, old, conn)
                    moved.append(iid)
                groups.setdefault(mode, set()).add(conn)
                conn.subscriptions[iid] = mode
        # a quote still queued in the old mode would follow the confirmation in the wrong shape and
        # keep the new mode's snapshot out (a snapshot never replaces a queued quote)
        conn.drop_quotes(moved)

    def unsubscribe(self, conn: Connection, instrument_ids: list[int]) -> None:
        with self._lock:
            self._unsubscribe_locked(conn, instrument_ids)
        conn.drop_quotes(instrument_ids)

    def _unsubscribe_locked(self, conn: Connection, instrument_ids: list[int]) -> None:
        for iid in instrument_ids:
            mode = conn.subscriptions.pop(iid, None)
            groups = self._by_instrument.get(iid)
            if mode is None or groups is None:
                continue
            self._leave(groups, mode, conn)
            if not groups:
                del self._by_instrument[iid]
                self._last.pop(iid, None)

    @staticmethod
    def _leave(groups: dict[str, set[Connection]], mode: str, conn: Connection) -> None:
        conns = groups.get(mode)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del groups[mode]

    # -- routing -----------------------------------------------------------------------
    def route_quote(self, quote: dict) -> int:
        """Deliver a quote to every subscriber in its mode; returns how many sockets got it."""
        iid = int(quote["instrument_id"])
        with self._lock:
            groups = self._by_instrument.get(iid)
            if not groups:
                return 0
            targets = [(mode, list(conns)) for mode, conns in groups.items()]
            until = stale_at(quote, self.stale_after)
            stale = until < time.time()
            self._last[iid] = (quote, until, stale)
        delivered = conflated = 0
        for mode, conns in targets:
            data = self.encode(shape_quote(quote, mode, stale))  # once per mode, not per socket
            for conn in conns:
                conflated += conn.push_quote(iid, data)
            delivered += len(conns)
        count_quotes(delivered, conflated)
        return delivered

    def remember(self, quote: dict) -> dict:
        """The newer of a cached quote (a subscription's snapshot) and the last live quote routed for
        its instrument. A live quote can reach the socket while the cache is being read, and the
        snapshot must not follow it with older prices. A cached quote newer than any routed one
        becomes the instrument's last, so that it too is marked stale when nothing follows it."""
        iid = int(quote["instrument_id"])
        with self._lock:
            last = self._last.get(iid)
            if last is not None and stale_at(last[0], 0) >= stale_at(quote, 0):
                return last[0]
            if iid in self._by_instrument:
                until = stale_at(quote, self.stale_after)
                self._last[iid] = (quote, until, until < time.time())
            return quote

    def mark_stale(self, now: float | None = None) -> int:
        """Send the last quote of each instrument that went stale since with `stale: true`, once, to
        its full-mode subscribers; returns how many instruments were marked."""
        now = time.time() if now is None else now
        with self._lock:
            gone_stale = [
                (iid, quote) for iid, (quote, until, marked) in self._last.items() if not marked and until < now
            ]
            targets = []
            for iid, quote in gone_stale:
                self._last[iid] = (quote, 0.0, True)
                targets.append((iid, quote, list(self._by_instrument.get(iid, {}).get("full", ()))))
        delivered = conflated = 0
        for iid, quote, full in targets:
            if full:
                data = self.encode(shape_quote(quote, "full", stale=True))
                for conn in full:
                    conflated += conn.push_quote(iid, data)
                delivered += len(full)
        count_quotes(delivered, conflated)
        return len(targets)

    def route_user_event(self, event: dict) -> int:
        """Deliver {"type": kind, kind: payload} to the event's user only."""
        kind = event.get("type")
        user_id = event.get("user_id")
        if kind not in USER_EVENT_TYPES or kind not in event or user_id is None:
            raise ValueError("malformed user event")
        data = self.encode({"type": kind, kind: event[kind]})
        targets = self.connections(str(user_id))
        queued = sum(conn.push(data) for conn in targets)
        if queued:
            metrics.WS_DELIVERIES.labels(kind).inc(queued)
        return len(targets)


def count_quotes(queued: int, conflated: int) -> None:
    """Quotes queued to sockets: each one that replaced an unsent quote is a conflation, and the
    deliveries are what will go out (the quotes replaced never do)."""
    if queued - conflated:
        metrics.WS_DELIVERIES.labels("quote").inc(queued - conflated)
    if conflated:
        metrics.WS_CONFLATED.inc(conflated)
