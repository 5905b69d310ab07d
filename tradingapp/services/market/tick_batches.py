"""The consumer's tick batches: many tick messages per transaction, the next batch read while a
writer thread writes the last one, and each message acked only after its batch is stored. The
consumer (jobs/consumer.py) feeds it messages and hands it its ways of settling them. README:
Market data (the batch limits and what happens on a failure)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial

from flask import Flask
from kombu.message import Message

from tradingapp import metrics
from tradingapp.extensions import db
from tradingapp.services.market.ticks import ingest_rows

log = logging.getLogger(__name__)

Work = Callable[[], object]

MAX_TICKS = 10000  # ~500 instruments a batch: the quote writes and round trips spread over more ticks
MAX_MESSAGES = 250  # the ticks queue's prefetch is twice this: one batch filling, one being written
LINGER = 0.002
MAX_WAIT = 0.05
POLL = 0.001  # while a batch fills or is written, how often the consumer looks whether it is due or done


class TickBatch:
    """Tick messages received and parsed, not yet written: each message with its valid ticks."""

    def __init__(self):
        self.parts: list[tuple[Message, list[dict]]] = []
        self.received: list[float] = []  # when each message was added (monotonic): the ingest latency
        self.ticks = 0
        self.deadline = self.due = 0.0

    def add(self, message: Message, rows: list[dict], linger: float, max_wait: float) -> None:
        now = time.monotonic()
        if not self.parts:
            self.deadline = now + max_wait
        self.due = min(now + linger, self.deadline)
        self.parts.append((message, rows))
        self.received.append(now)
        self.ticks += len(rows)


class TickBatches:
    """The batch being filled and the one being written. Every method but the writer's runs on the
    consumer's thread.

    A batch is handed to the writer once it holds `max_ticks` ticks or `max_messages` messages, once
    no message has come for `linger` seconds (none ready: a backlog fills whole batches, a live
    feed's burst is written as soon as it is read), or `max_wait` seconds after its first message (a
    steady trickle). The writer stores it in one transaction (ticks, candles, commit), then refreshes
    the quote cache; only then are its messages acked, on the consumer's thread (a channel is not
    shared between threads). One batch is written at a time, in arrival order.

    Why a writer thread: per tick the consumer's thread spends ~5.7 us decoding and checking, the
    writer ~2.1 us of Python and several more waiting on Postgres and Redis (GIL released); in line
    those add up, handed over they overlap. On the 2-core bench box, where Postgres, RabbitMQ and
    Redis share the cores, that was worth little when the box was otherwise quiet (76-87k vs 73-85k
    ticks/s, alternating runs) and most when it was busy and every reply slower (54-68k vs 27-63k);
    with Postgres on a host of its own the waits are idle time of the consumer's core. (A shorter GIL
    switch interval, 0.5 ms, so the writer gets the GIL back sooner after each reply, measured worse:
    49-70k vs 74-79k ticks/s.)"""

    def __init__(
        self,
        app: Flask,
        retrying: Callable[[Work, str], None],
        settle_alone: Callable[[Message, Work], None],
        on_acked: Callable[[int], None],
        transient: tuple[type[Exception], ...],
        max_ticks=MAX_TICKS,
        max_messages=MAX_MESSAGES,
        linger=LINGER,
        max_wait=MAX_WAIT,
    ):
        """The consumer's ways: `retrying(work, queue)` runs work with in-place retries of a transient
        failure; `settle_alone(message, work)` runs one message's work and acks, requeues or
        dead-letters it; `on_acked(n)` counts messages acked here. `transient`: the failures after
        which a batch is requeued rather than written message by message."""
        self.app, self.retrying, self.settle_alone, self.on_acked = app, retrying, settle_alone, on_acked
        self.transient = transient
        self.max_ticks, self.max_messages, self.linger, self.max_wait = max_ticks, max_messages, linger, max_wait
        self.filling = TickBatch()
        self.writing: tuple[TickBatch, Future] | None = None
        self._writer: ThreadPoolExecutor | None = None

    def add(self, message: Message, rows: list[dict]) -> None:
        self.filling.add(message, rows, self.linger, self.max_wait)
        if self.filling.ticks >= self.max_ticks or len(self.filling.parts) >= self.max_messages:
            self.flush()

    def wait_time(self, longest: float) -> float:
        """How long the consumer may wait for the next frame: POLL while a batch is filling or
        being written (poll() then looks whether it is due or done)."""
        return POLL if self.filling.parts or self.writing is not None else longest

    def poll(self) -> None:
        """Settle a batch the writer has finished; hand over the filling one if it is due and the
        writer is free (while it is busy the batch could not be written sooner: it keeps filling,
        up to its limits, and the next write carries more ticks for the same round trips)."""
        self.settle(wait=False)
        if self.filling.parts and self.writing is None and time.monotonic() >= self.filling.due:
            self.flush()

    def flush(self) -> None:
        """Hand the filling batch to the writer, once the batch before it is settled."""
        batch, self.filling = self.filling, TickBatch()
        self.settle(wait=True)
        if batch.parts:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="tick-writer")
            self.writing = (batch, self._writer.submit(self._write, batch))

    def drain(self) -> None:
        """Stopping: write what is buffered and settle it, before the channel closes."""
        self.flush()
        self.settle(wait=True)

    def discard(self) -> None:
        """The connection was lost: its messages cannot be acked, RabbitMQ redelivers them (a batch
        already committed is then a no-op). The write under way is let finish first."""
        if self.writing is not None:
            self.writing[1].exception()
        self.writing, self.filling = None, TickBatch()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _write(self, batch: TickBatch) -> None:
        """The writer thread: store the batch and refresh the quotes (a transient failure retried
        in place)."""
        rows = [row for _, part in batch.parts for row in part]
        with self.app.app_context():
            try:
                self.retrying(partial(ingest_rows, rows), "ticks")
            finally:
                db.session.remove()  # rolls back what a failure left open
        # Receipt -> committed (and cached), per message: one observation for each, not each tick.
        done, observe = time.monotonic(), metrics.TICK_INGEST_LATENCY.observe
        for received in batch.received:
            observe(done - received)

    def settle(self, wait: bool) -> None:
        """Ack the messages of a batch written; requeue them after a transient failure; after any
        other failure write them one by one, so only the message at fault is dead-lettered."""
        if self.writing is None or not (wait or self.writing[1].done()):
            return
        (batch, future), self.writing = self.writing, None
        try:
            future.result()
        except self.transient as exc:
            log.warning("event=tick_batch_requeue messages=%d error=%s", len(batch.parts), type(exc).__name__)
            for message, _ in batch.parts:
                message.requeue()
        except Exception:
            log.exception("event=tick_batch_failed messages=%d ticks=%d", len(batch.parts), batch.ticks)
            for message, part in batch.parts:
                self.settle_alone(message, partial(ingest_rows, part))
        else:
            for message, _ in batch.parts:
                message.ack()
            self.on_acked(len(batch.parts))
