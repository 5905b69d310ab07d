"""The simulated market feed (`python -m jobs.feed`). With BROKER=xts the same command runs the XTS
event bridge instead (jobs/xts_bridge.py): the broker's touchlines and order events.

Every FEED_INTERVAL_MS it steps each instrument's random walk and publishes the ticks to
`market.ticks`, one message per exchange segment (routing key `ticks.<segment>`), with publisher
confirms. Walks resume from the cached Redis quotes, so a restart does not jump prices. It keeps
going through a RabbitMQ, Postgres or Redis outage (that interval's ticks are dropped: a live
feed does not replay the past) and stops cleanly on SIGTERM/SIGINT.

It serves its metrics on FEED_METRICS_PORT (ticks published and dropped, the market-data gauges of
services/market/gauges.py) and beats its heartbeat (HEARTBEAT_DIR/feed) from its loop.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import sqlalchemy as sa
from flask import Flask

from tradingapp import logs, metrics
from tradingapp.domain.feed import FeedInstrument, Walk, step, walk_from_quote
from tradingapp.extensions import db, get_redis
from tradingapp.heartbeat import Heartbeat
from tradingapp.messaging import Publisher
from tradingapp.models import Instrument
from tradingapp.process import StopFlag
from tradingapp.realtime import read_quotes
from tradingapp.services.market import gauges

log = logging.getLogger("jobs.feed")

REFRESH_SECONDS = 60  # how often new or removed instruments are picked up
LOG_SECONDS = 30
RETRY_SECONDS = 2


class Feed:
    def __init__(self, app: Flask, stop: StopFlag, rng: random.Random | None = None):
        self.app = app
        self.stop = stop
        self.rng = rng or random.Random()
        self.interval = max(app.config["FEED_INTERVAL_MS"], 1) / 1000
        self.publisher = Publisher(app.config["AMQP_URL"], app.config.get("NAMESPACE", ""))
        self.walks: dict[int, Walk] = {}
        self.next_refresh = 0.0
        self.published = 0
        self.failed = 0
        self.heartbeat = Heartbeat(app.config["HEARTBEAT_DIR"], "feed")

    def run(self) -> None:
        log.info("event=feed_started interval_ms=%d", self.interval * 1000)
        logged_at = time.monotonic()
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                self.heartbeat.beat()
                if time.monotonic() >= self.next_refresh:
                    self.refresh_instruments()
                self.publish_once()
                if time.monotonic() - logged_at >= LOG_SECONDS:
                    logged_at = time.monotonic()
                    log.info(
                        "event=feed_progress instruments=%d published=%d failed=%d",
                        len(self.walks),
                        self.published,
                        self.failed,
                    )
                next_at = max(next_at + self.interval, time.monotonic())
                self.sleep(next_at - time.monotonic())
        finally:
            self.publisher.close()
            log.info("event=feed_stopped published=%d failed=%d", self.published, self.failed)
        self.heartbeat.clear()  # a clean stop (a crash leaves the file to go stale)

    def refresh_instruments(self) -> None:
        """Pick up added and removed instruments; new ones start from their cached quote."""
        try:
            instruments = load_instruments()
            new = [i for i in instruments if i.instrument_id not in self.walks]
            cached = _cached_quotes([i.instrument_id for i in new])
        except Exception as exc:  # keep the old list and try again soon
            log.warning("event=feed_refresh_failed error=%s", type(exc).__name__)
            self.next_refresh = time.monotonic() + RETRY_SECONDS
            return
        now = datetime.now(UTC)
        current = {i.instrument_id for i in instruments}
        self.walks = {iid: w for iid, w in self.walks.items() if iid in current}
        for inst in new:
            self.walks[inst.instrument_id] = walk_from_quote(inst, cached.get(inst.instrument_id), now)
        self.next_refresh = time.monotonic() + REFRESH_SECONDS

    def publish_once(self) -> None:
        now = datetime.now(UTC)
        by_segment: dict[str, list[dict]] = defaultdict(list)
        for walk in self.walks.values():
            by_segment[walk.instrument.exchange_segment].append(step(walk, self.rng, now))
        for segment, ticks in by_segment.items():
            try:
                self.publisher.publish(
                    "market_ticks", f"ticks.{segment}", {"ticks": ticks}, message_id=uuid.uuid4().hex
                )
                self.published += 1
                metrics.FEED_TICKS.inc(len(ticks))
            except Exception as exc:  # RabbitMQ down: drop this interval, reconnect on the next
                self.failed += 1
                metrics.TICKS_SKIPPED.labels("publish_failed").inc(len(ticks))
                log.warning("event=feed_publish_failed segment=%s error=%s", segment, type(exc).__name__)
                self._reset_publisher()
                self.sleep(RETRY_SECONDS)
                return

    def sleep(self, seconds: float) -> None:
        """Sleep in short slices so a stop request is seen within ~50 ms."""
        until = time.monotonic() + seconds
        while not self.stop.is_set() and (left := until - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def _reset_publisher(self) -> None:
        try:
            self.publisher.close()
        except Exception:  # the old connection is already broken
            log.debug("publisher close failed", exc_info=True)
        self.publisher = Publisher(self.app.config["AMQP_URL"], self.app.config.get("NAMESPACE", ""))


def load_instruments() -> list[FeedInstrument]:
    try:
        rows = db.session.execute(
            sa.select(
                Instrument.id,
                Instrument.exchange_segment,
                Instrument.exchange_instrument_id,
                Instrument.symbol,
                Instrument.tick_size,
            ).order_by(Instrument.id)
        ).all()
        return [FeedInstrument(*row) for row in rows]
    finally:
        db.session.remove()  # no connection held between refreshes


def _cached_quotes(instrument_ids: list[int]) -> dict[int, dict]:
    if not instrument_ids:
        return {}
    try:
        return read_quotes(get_redis(), instrument_ids)
    except Exception as exc:  # no cache: start from the seeded prices
        log.warning("event=feed_quote_cache_unavailable error=%s", type(exc).__name__)
        return {}


def main() -> None:
    from tradingapp import create_app

    logs.set_process("feed")
    app = create_app()
    if app.config["BROKER"] == "xts":
        # The broker's own market data, not a simulation: the XTS event bridge is the market feed
        # (and carries the broker's order events too). One process holds XTS's sockets; it serves
        # its metrics and beats its heartbeat as the bridge (XTS_BRIDGE_METRICS_PORT, xts_bridge).
        from jobs.xts_bridge import serve

        serve(app)
        return
    config = app.extensions["tradingapp.config"]
    metrics.serve("feed", config.METRICS_HOST, config.FEED_METRICS_PORT, config.METRICS_TOKEN, [gauges.collector(app)])
    stop = StopFlag.on_signals()
    with app.app_context():
        Feed(app, stop).run()


if __name__ == "__main__":
    main()
