"""The bridge's publishing side: one thread, one RabbitMQ connection, publisher confirms. Order
events wait, in order and bounded, until RabbitMQ confirms them; ticks are batched and dropped
when they cannot go. docs/xts.md, "Publishing", has the rules and the reconcile they ask for.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Callable

from tradingapp import metrics
from tradingapp.brokers.xts.stream import Backoff

log = logging.getLogger("xts.outbox")

MAX_EVENTS = 100_000
MAX_CONFIRMED = 100_000  # event ids remembered as confirmed (a periodic reconcile skips them)
MAX_TICKS = 50_000
DRAIN_SECONDS = 5.0  # on stop, how long order events still waiting may take to go out


class Outbox:
    def __init__(
        self,
        make_publisher: Callable[[], object],
        flush_interval: float,
        on_recovered: Callable[[str], None] | None = None,
        max_events: int = MAX_EVENTS,
        max_ticks: int = MAX_TICKS,
        backoff: Backoff | None = None,
    ):
        self.make_publisher = make_publisher
        self.flush_interval = flush_interval
        self.on_recovered = on_recovered
        self.max_events, self.max_ticks = max_events, max_ticks
        self.backoff = backoff or Backoff(base=0.5, cap=10.0)
        self.events: deque[dict] = deque()
        self.queued: Counter[str] = Counter()  # ids of the events waiting in `events`
        self.confirmed: OrderedDict[str, None] = OrderedDict()  # ids RabbitMQ confirmed, oldest first
        self.ticks: list[dict] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.publisher = None
        self.failing = False  # the last publish failed: the next success is a recovery
        self.stats = {
            "events": 0,
            "tick_messages": 0,
            "ticks": 0,
            "events_dropped": 0,
            "ticks_dropped": 0,
            "failures": 0,
        }

    # -- producers (socket threads, the reconciler) ----------------------------------------------
    def add_event(self, body: dict, unless_queued: bool = False, unless_confirmed: bool = False) -> bool:
        """Queue an order event; with `unless_queued`, not one whose id is waiting already; with
        `unless_confirmed`, not one RabbitMQ already confirmed from this process (a periodic
        reconcile re-reads facts it has mostly published). True if queued."""
        with self.cond:
            event_id = body["event_id"]
            if unless_queued and self.queued[event_id]:
                return False
            if unless_confirmed and event_id in self.confirmed:
                return False
            if len(self.events) >= self.max_events:
                lost = self.events.popleft()
                self._dequeued(lost)
                self.stats["events_dropped"] += 1
                self.failing = True  # make sure a reconcile follows the recovery
                log.error(
                    "event=xts_outbox_overflow dropped_event_id=%s type=%s order_id=%s (recovered by the "
                    "reconcile after RabbitMQ is back)",
                    lost.get("event_id"),
                    lost.get("type"),
                    lost.get("order_id"),
                )
            self.events.append(body)
            self.queued[event_id] += 1
            self.cond.notify()
            return True

    def add_ticks(self, ticks: list[dict]) -> None:
        with self.cond:
            self.ticks.extend(ticks)
            over = len(self.ticks) - self.max_ticks
            if over > 0:
                del self.ticks[:over]
                self.stats["ticks_dropped"] += over
                metrics.TICKS_SKIPPED.labels("outbox_full").inc(over)

    def _dequeued(self, body: dict) -> None:
        event_id = body["event_id"]
        self.queued[event_id] -= 1
        if self.queued[event_id] <= 0:
            del self.queued[event_id]

    def pending_events(self) -> int:
        with self.cond:
            return len(self.events)

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify()

    # -- the publishing thread --------------------------------------------------------------------
    def run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        drain_until = None
        try:
            while True:
                with self.cond:
                    if self.stopping and drain_until is None:
                        drain_until = time.monotonic() + DRAIN_SECONDS
                    if drain_until is not None and (not self.events or time.monotonic() >= drain_until):
                        break
                    if not self.events:
                        self.cond.wait(max(next_flush - time.monotonic(), 0))
                if not self._publish_events():
                    self._pause(drain_until)
                    continue
                if time.monotonic() >= next_flush:
                    next_flush = time.monotonic() + self.flush_interval
                    self._flush_ticks()
        finally:
            left = self.pending_events()
            if left:
                log.error(
                    "event=xts_outbox_stopped_with_events pending=%d (the reconcile at the next start "
                    "publishes them again)",
                    left,
                )
            self._close()
            log.info("event=xts_outbox_stopped %s", " ".join(f"{k}={v}" for k, v in self.stats.items()))

    def _publish_events(self) -> bool:
        """Publish waiting order events in order; False when RabbitMQ failed (they stay queued)."""
        while True:
            with self.cond:
                if not self.events:
                    return True
                body = self.events[0]
            try:
                self._publish("broker_events", body["type"], body, body["event_id"])
            except Exception as exc:
                self._failed(exc, "event")
                return False
            with self.cond:
                if self.events and self.events[0] is body:
                    self._dequeued(self.events.popleft())
                self.confirmed[body["event_id"]] = None
                if len(self.confirmed) > MAX_CONFIRMED:
                    self.confirmed.popitem(last=False)
            self.stats["events"] += 1
            self._succeeded()

    def _flush_ticks(self) -> None:
        with self.cond:
            ticks, self.ticks = self.ticks, []
        if not ticks:
            return
        by_segment: dict[str, list[dict]] = defaultdict(list)
        for tick in ticks:
            by_segment[tick["exchange_segment"]].append(tick)
        for segment, batch in by_segment.items():
            try:
                self._publish("market_ticks", f"ticks.{segment}", {"ticks": batch}, uuid.uuid4().hex)
            except Exception as exc:  # live data: this flush is lost, the next one is current again
                self.stats["ticks_dropped"] += len(batch)
                metrics.TICKS_SKIPPED.labels("publish_failed").inc(len(batch))
                self._failed(exc, "ticks")
                return
            self.stats["tick_messages"] += 1
            self.stats["ticks"] += len(batch)
            metrics.FEED_TICKS.inc(len(batch))
            self._succeeded()

    def _publish(self, exchange: str, routing_key: str, body: dict, message_id: str) -> None:
        if self.publisher is None:
            self.publisher = self.make_publisher()
        self.publisher.publish(exchange, routing_key, body, message_id=message_id)

    def _failed(self, exc: Exception, what: str) -> None:
        self.stats["failures"] += 1
        self.failing = True
        log.error(
            "event=xts_publish_failed what=%s pending_events=%d error=%s: %s",
            what,
            self.pending_events(),
            type(exc).__name__,
            exc,
        )
        self._close()

    def _succeeded(self) -> None:
        if not self.failing:
            return
        self.failing = False
        self.backoff.reset()
        log.warning("event=xts_publish_recovered pending_events=%d", self.pending_events())
        if self.on_recovered is not None:
            self.on_recovered("publish_recovered")

    def _pause(self, drain_until: float | None) -> None:
        delay = self.backoff.next()
        if drain_until is not None:
            delay = min(delay, max(drain_until - time.monotonic(), 0))
        with self.cond:
            self.cond.wait(delay)

    def _close(self) -> None:
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            try:
                publisher.close()
            except Exception:  # the connection is already broken
                log.debug("publisher close failed", exc_info=True)
