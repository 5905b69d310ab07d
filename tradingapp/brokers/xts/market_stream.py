"""The event bridge's market-data side: the XTS market-data socket.io stream (JSON, full broadcast),
the touchline subscriptions of our instruments, and 1501 touchlines -> our ticks in the outbox.
How subscriptions survive reconnects and "already subscribed": docs/xts.md, "Touchline
subscriptions".
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from tradingapp.brokers.xts import ticks as xts_ticks
from tradingapp.brokers.xts.errors import XtsError, XtsRejected
from tradingapp.brokers.xts.marketdata import MarketData
from tradingapp.brokers.xts.outbox import Outbox
from tradingapp.brokers.xts.session import XtsSession
from tradingapp.brokers.xts.stream import SocketStream

log = logging.getLogger("xts.marketdata")

SUBSCRIBE_BATCH = 50  # instruments per request (XTS's quotes limit; subscriptions are sent alike)
ALREADY_SUBSCRIBED = "e-session-0002"
PROBE = "/config/clientConfig"

Key = tuple[str, int]  # (exchange segment, exchange instrument id)


class MarketStream:
    def __init__(
        self,
        session: XtsSession,
        outbox: Outbox,
        eio: int,
        halt: threading.Event,
        instrument_id: Callable[[str, int], int | None],
        instrument_keys: Callable[[], list[Key]],
    ):
        self.session, self.outbox = session, outbox
        self.instrument_id, self.instrument_keys = instrument_id, instrument_keys
        self.maker = xts_ticks.TickMaker()
        self.lock = threading.Lock()  # the tick maker's per-instrument state
        self.counts: dict[str, int] = defaultdict(int)
        self.md = MarketData(session)
        self._token: str | None = None  # the session the instruments in _subscribed were subscribed under
        self._subscribed: set[Key] = set()
        code = xts_ticks.TOUCHLINE
        self.stream = SocketStream(
            "marketdata",
            session.account.url,
            f"{session.account.md_prefix}/socket.io",
            eio,
            query=self._query,
            handlers={f"{code}-json-full": self.on_touchline, f"{code}-json-partial": self.on_touchline_partial},
            stop=halt,
            on_connected=lambda: self.subscribe(self.instrument_keys()),
            check_session=lambda: session.call("GET", PROBE),
        )

    def threads(self) -> list[threading.Thread]:
        return [threading.Thread(target=self.stream.run, name="xts-marketdata")]

    def _query(self) -> dict:
        login = self.session.login()
        return {"token": login.token, "userID": login.user_id, "publishFormat": "JSON", "broadcastMode": "Full"}

    def added(self, keys: list[Key]) -> None:
        """New instruments: subscribed now if the stream is up (else at its next connect)."""
        if keys and self.stream.connected.is_set():
            self.subscribe(keys)

    # -- subscriptions --------------------------------------------------------------------------
    def subscribe(self, keys: list[Key]) -> None:
        keys = [(s, i) for s, i in keys if s in xts_ticks.SEGMENT_CODES]
        token = self.session.login().token
        if token != self._token:  # a new session: what the old one subscribed proves nothing
            self._token, self._subscribed = token, set()
        newly = already = 0
        for start in range(0, len(keys), SUBSCRIBE_BATCH):
            batch = keys[start : start + SUBSCRIBE_BATCH]
            if self._subscribe(batch):
                newly += len(batch)
            elif set(batch) <= self._subscribed:  # ours, this session: a reconnect
                already += len(batch)
                self._snapshot(batch)
            else:
                added = self._subscribe_again(batch)
                newly, already = newly + added, already + len(batch) - added
            self._subscribed |= set(batch)
        log.info(
            "event=xts_subscribed instruments=%d newly_subscribed=%d already_subscribed=%d", len(keys), newly, already
        )

    def _subscribe(self, batch: list[Key]) -> bool:
        """True when subscribed now, False when (some were) already subscribed."""
        body = {"instruments": _items(batch), "xtsMessageCode": xts_ticks.TOUCHLINE}
        try:
            result = self.session.call("POST", "/instruments/subscription", body)
        except XtsRejected as exc:
            if exc.code == ALREADY_SUBSCRIBED:
                return False
            raise
        quotes = result.get("listQuotes") if isinstance(result, dict) else None
        for quote in quotes if isinstance(quotes, list) else []:
            self.on_touchline(quote)
        return True

    def _subscribe_again(self, batch: list[Key]) -> int:
        """A batch some other session subscribed (in part): unsubscribe and subscribe it in one go,
        else one instrument at a time (a refused one is subscribed: its touchline is fetched).
        Returns how many were subscribed now."""
        body = {"instruments": _items(batch), "xtsMessageCode": xts_ticks.TOUCHLINE}
        try:
            self.session.call("PUT", "/instruments/subscription", body)
            if self._subscribe(batch):
                return len(batch)
        except XtsRejected as exc:
            log.info("event=xts_resubscribe_refused instruments=%d code=%s", len(batch), exc.code)
        refused = [key for key in batch if not self._subscribe([key])]
        self._snapshot(refused)
        return len(batch) - len(refused)

    def _snapshot(self, keys: list[Key]) -> None:
        """Touchlines of instruments subscribed already, through the quotes call: current quotes
        right after a reconnect. A failure is logged (the stream carries the next touchlines)."""
        if not keys:
            return
        try:
            quotes = self.md.quotes(keys, xts_ticks.TOUCHLINE)
        except XtsError as exc:
            log.warning("event=xts_snapshot_failed instruments=%d error=%s: %s", len(keys), type(exc).__name__, exc)
            return
        for quote in quotes:
            self.on_touchline(quote)

    # -- touchlines -----------------------------------------------------------------------------
    def on_touchline(self, payload) -> None:
        self._touchline(payload, xts_ticks.parse_full)

    def on_touchline_partial(self, payload) -> None:
        self._touchline(payload, xts_ticks.parse_partial)

    def _touchline(self, payload, parse) -> None:
        try:
            touch = parse(payload)
        except xts_ticks.BadQuote as exc:
            self.counts["touchline_unreadable"] += 1
            log.warning("event=xts_touchline_unreadable error=%s", exc)
            return
        instrument_id = self.instrument_id(touch.segment, touch.exchange_instrument_id)
        if instrument_id is None:
            self.counts["touchline_unknown_instrument"] += 1
            return
        with self.lock:
            tick = self.maker.tick(touch, instrument_id)
        if tick is not None:
            self.counts["touchlines"] += 1
            self.outbox.add_ticks([tick])


def _items(keys: list[Key]) -> list[dict]:
    return [{"exchangeSegment": xts_ticks.SEGMENT_CODES[s], "exchangeInstrumentID": i} for s, i in keys]
