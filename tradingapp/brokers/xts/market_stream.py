"""The event bridge's market-data side: the XTS market-data socket.io stream (JSON, full broadcast),
the touchline subscriptions of our instruments, and 1501 touchlines -> our ticks in the outbox.

Instruments are subscribed through the REST subscription call, SUBSCRIBE_BATCH per request, after
every (re)connect and whenever the instrument list grows. XTS answers "already subscribed"
(e-session-0002) for a whole request when any of its instruments is, so a batch refused that way
is sent again one instrument at a time. A subscription answers each instrument's current touchline:
it is published too, so a quote is current right after a (re)connect.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from tradingapp.brokers.xts import ticks as xts_ticks
from tradingapp.brokers.xts.errors import XtsRejected
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
        code = xts_ticks.TOUCHLINE
        self.stream = SocketStream(
            "marketdata", session.account.url, f"{session.account.md_prefix}/socket.io", eio,
            query=self._query,
            handlers={f"{code}-json-full": self.on_touchline, f"{code}-json-partial": self.on_touchline_partial},
            stop=halt,
            on_connected=lambda: self.subscribe(self.instrument_keys()),
            check_session=lambda: session.call("GET", PROBE),
        )  # fmt: skip

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
        items = [{"exchangeSegment": xts_ticks.SEGMENT_CODES[s], "exchangeInstrumentID": i}
                 for s, i in keys if s in xts_ticks.SEGMENT_CODES]  # fmt: skip
        subscribed = 0
        for start in range(0, len(items), SUBSCRIBE_BATCH):
            batch = items[start : start + SUBSCRIBE_BATCH]
            if self._subscribe(batch):
                subscribed += len(batch)
            elif len(batch) > 1:
                subscribed += sum(self._subscribe([item]) for item in batch)
        log.info("event=xts_subscribed instruments=%d newly_subscribed=%d", len(items), subscribed)

    def _subscribe(self, batch: list[dict]) -> bool:
        """True when subscribed now, False when (some were) already subscribed."""
        body = {"instruments": batch, "xtsMessageCode": xts_ticks.TOUCHLINE}
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
