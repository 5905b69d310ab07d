"""The simulator's state in one place: market, exchange, sessions, faults, streams, subscriptions,
and the timer that walks prices. Everything lives in memory: the simulator IS the broker.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import gevent

from tradingapp.simulators.xts.exchange import Exchange
from tradingapp.simulators.xts.faults import Faults, RateLimiter
from tradingapp.simulators.xts.instruments import SEGMENT_NAMES, Instrument, default_universe
from tradingapp.simulators.xts.market import SUPPORTED_CODES, Market
from tradingapp.simulators.xts.rows import RowStyle
from tradingapp.simulators.xts.sessions import Sessions, default_accounts
from tradingapp.simulators.xts.streams import Streams

log = logging.getLogger("xts_sim")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Settings:
    seed: int = 0
    tick_interval: float = 1.0  # seconds between random-walk steps; 0 = prices move only when told
    app_key: str = "sim-app-key"
    secret_key: str = "sim-secret-key"
    md_app_key: str = "sim-md-key"
    md_secret_key: str = "sim-md-secret"
    session_ttl: float = 86400.0
    faults: dict = field(default_factory=dict)  # start-up knobs, as POST /_sim/faults takes them
    style: dict = field(default_factory=dict)  # start-up RowStyle fields
    margin_available: Decimal = Decimal("10000000")


class Simulator:
    def __init__(self, settings: Settings):
        self.settings = settings
        accounts = default_accounts(settings.app_key, settings.secret_key, settings.md_app_key, settings.md_secret_key)
        self.sessions = Sessions(accounts, time.time, ttl=settings.session_ttl)
        self.limiter = RateLimiter(time.monotonic)
        self.streams = Streams(self.sessions, lambda: self.faults, random.Random(f"{settings.seed}:events"))
        self.request_counts: dict[str, int] = {}
        self._timer = None
        self.reset()

    def reset(self, sessions: bool = False) -> None:
        """Fresh books, prices (same seed), knobs and subscriptions; sessions only when asked."""
        self.generation = getattr(self, "generation", 0) + 1
        self.rng = random.Random(self.settings.seed)
        self.faults = Faults()
        self.faults.update(self.settings.faults)
        self.style = RowStyle(**self.settings.style)
        self.instruments: dict[tuple[str, int], Instrument] = {i.key: i for i in default_universe()}
        self.market = Market(list(self.instruments.values()), self.rng, utcnow)
        self.exchange = Exchange(self.market, utcnow, self.streams.publish, self.style)
        self.exchange.risk.margin_available = self.settings.margin_available
        self.subscriptions: dict[str, set[tuple[int, int, int]]] = {}  # user -> {(segment code, id, code)}
        self.request_counts.clear()
        self.limiter.windows.clear()
        self.streams.stats.update(sent=0, dropped=0, duplicated=0, reordered=0)
        if sessions:
            self.streams.log_out({s.token for s in self.sessions.expire()})

    # ---- scheduling --------------------------------------------------------------------------------
    def later(self, fn, *args) -> None:
        """Run an exchange step after the acknowledgement delay, off the request; a reset in
        between cancels it (an old order must not publish into the next test's stream)."""
        generation = self.generation

        def run():
            if generation == self.generation:
                fn(*args)

        gevent.spawn_later(self.faults.ack_delay_ms / 1000.0, run)

    def start(self) -> None:
        gevent.spawn(self.streams.run_dispatcher)
        if self.settings.tick_interval > 0:
            self._timer = gevent.spawn(self._walk)

    def _walk(self) -> None:
        while True:
            gevent.sleep(self.settings.tick_interval)
            if not self.market.frozen:
                try:
                    self.step()
                except Exception:  # a bad step must not stop the market
                    log.exception("price step failed")

    # ---- market ------------------------------------------------------------------------------------
    def step(self) -> None:
        for key, book in self.market.books.items():
            self.market.step(book)
            self.after_price(key)

    def after_price(self, key: tuple[str, int]) -> None:
        self.exchange.match(key)
        book = self.market.book(*key)
        ins = book.instrument
        for user, subs in self.subscriptions.items():
            for code in SUPPORTED_CODES:
                if (ins.segment_code, ins.exchange_instrument_id, code) in subs:
                    self.streams.publish_quote(
                        user, code, self.market.quote_json(book, code), self.market.partial(book, code)
                    )

    def instrument_by_code(self, segment, exchange_instrument_id) -> Instrument | None:
        name = SEGMENT_NAMES.get(segment, segment) if isinstance(segment, int) else segment
        if isinstance(name, str) and name.isdigit():
            name = SEGMENT_NAMES.get(int(name), name)
        try:
            return self.instruments.get((name, int(exchange_instrument_id)))
        except (TypeError, ValueError):
            return None

    def count(self, route: str) -> None:
        self.request_counts[route] = self.request_counts.get(route, 0) + 1
