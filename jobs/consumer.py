"""The RabbitMQ consumer (`python -m jobs.consumer`): broker events, market ticks and, with the
paper broker, the ticks the exchange trades against (handed to the broker's on_ticks). Each
message is acked only after its commit; poison goes to the dead-letter queue, a transient failure
is requeued. docs/messages.md has the messages and these rules.

What it shows an operator: its metrics on CONSUMER_METRICS_PORT (messages by queue and outcome,
the lag behind the publisher, RabbitMQ's own queue counts sampled every QUEUE_SAMPLE_INTERVAL),
and a heartbeat file beaten while both consume loops turn (`python -m tradingapp.heartbeat check
consumer`): a wedged loop, or RabbitMQ out of reach, goes quiet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection
from contextlib import contextmanager
from itertools import count

import orjson
import redis
import sqlalchemy as sa
from flask import Flask
from kombu import Connection
from kombu.message import Message
from kombu.mixins import ConsumerMixin

from tradingapp import logs, metrics
from tradingapp.brokers import get_broker
from tradingapp.events import MalformedEvent
from tradingapp.extensions import db
from tradingapp.heartbeat import Heartbeat
from tradingapp.messaging import PRODUCED_AT, Topology
from tradingapp.process import Periodic, on_stop_signals
from tradingapp.services.market.tick_batches import TickBatches
from tradingapp.services.market.ticks import check_ticks

log = logging.getLogger("jobs.consumer")

PREFETCH = 200
EVENTS, TICKS, PAPER_TICKS = "events", "ticks", "paper_ticks"
IN_PLACE_RETRIES = 3  # then the message is requeued (a service is down, not a blip)
# How long a stopping process waits for its tick loop to write and ack its batch: within the
# 10 s a container gets after SIGTERM. Whatever it has not acked by then RabbitMQ redelivers.
STOP_TIMEOUT = 8.0
# Failures worth retrying: the service comes back, the message is fine.
TRANSIENT_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, redis.ConnectionError, redis.TimeoutError)
# CONSUMER_EVENTS' outcomes.
APPLIED, DUPLICATE, DEAD_LETTERED, REQUEUED = "applied", "duplicate", "dead_lettered", "requeued"
DEAD_LETTER = "dead_letter"  # QUEUE_MESSAGES' label of the dead-letter queue
QUEUE_SAMPLE_INTERVAL = 10.0  # seconds between two looks at RabbitMQ's queue counts
LOOP_STALL = 10.0  # a consume loop that has not turned for this long stops the heartbeat


class BadMessage(ValueError):
    """A message body of the wrong shape: dead-lettered, never retried."""


class Stopped(Exception):
    """Asked to stop while RabbitMQ is out of reach: the loop ends, the messages it had not acked
    are RabbitMQ's to redeliver."""


class Consumer(ConsumerMixin):
    def __init__(
        self,
        app: Flask,
        connection: Connection,
        paper_exchange: bool | None = None,
        retry_delay: float = 1.0,
        queues: Collection[str] | None = None,
        tick_batch: dict | None = None,
    ):
        """`queues`: which of EVENTS, TICKS, PAPER_TICKS to consume (default: all; the paper
        exchange's feed only with a paper exchange). `tick_batch`: TickBatches' limits to change."""
        self.app = app
        self.connection = connection
        self.topology = Topology(app.config.get("NAMESPACE", ""))
        self.paper_exchange = app.config["BROKER"] == "paper" if paper_exchange is None else paper_exchange
        self.queues = {EVENTS, TICKS, PAPER_TICKS} if queues is None else set(queues)
        if not self.paper_exchange:
            self.queues.discard(PAPER_TICKS)
        self.retry_delay = retry_delay
        self.ticks = TickBatches(app, self._retrying, self._handle, self._acked, TRANSIENT_ERRORS, **(tick_batch or {}))
        self.handled = 0  # messages settled (acked or rejected)
        self.ready = threading.Event()  # set once consuming: lets a supervisor or a test wait for it
        self.loops: LoopBeat | None = None  # the process's heartbeat (main() sets it)
        self.loop_name = "+".join(sorted(self.queues))

    # -- wiring -----------------------------------------------------------------------------
    def get_consumers(self, Consumer, channel):  # noqa: N803 (kombu's signature)
        t = self.topology
        # The dead-letter exchange and queue must exist before a reject can route anywhere.
        for exchange in (t.broker_events, t.market_ticks, t.dead_letter):
            exchange(channel).declare()
        t.q_dead(channel).declare()
        consumers = []
        if EVENTS in self.queues:
            consumers.append(
                Consumer(
                    queues=[t.q_broker_events],
                    callbacks=[self.on_broker_event],
                    accept=["json"],
                    prefetch_count=PREFETCH,
                )
            )
        if TICKS in self.queues:
            # on_message: the body is decoded here (orjson), not by kombu's json.
            consumers.append(
                Consumer(
                    queues=[t.q_ticks],
                    on_message=self.on_tick_message,
                    accept=["json"],
                    prefetch_count=2 * self.ticks.max_messages,
                )
            )
        if PAPER_TICKS in self.queues:
            consumers.append(
                Consumer(
                    queues=[t.q_paper_ticks], callbacks=[self.on_paper_ticks], accept=["json"], prefetch_count=PREFETCH
                )
            )
        return consumers

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        log.info("event=consumer_ready queues=%s", ",".join(q.name for c in consumers for q in c.queues))
        self.ready.set()

    def on_decode_error(self, message, exc):
        queue = EVENTS if message.delivery_info.get("exchange") == self.topology.names["broker_events"] else PAPER_TICKS
        self._dead_letter(message, f"undecodable: {type(exc).__name__}: {exc}", queue)

    def on_connection_revived(self):
        self.ticks.discard()

    def on_connection_error(self, exc, interval):
        """RabbitMQ out of reach: kombu retries for ever (as wanted), unless asked to stop."""
        self._stop_if_asked()
        log.warning("event=rabbitmq_unreachable retry_in=%ss error=%s", interval, exc)

    @contextmanager
    def establish_connection(self):
        """kombu's, but its retry loop also looks at should_stop every second it sleeps."""
        with self.create_connection() as conn:
            conn.ensure_connection(self.on_connection_error, self.connect_max_retries, callback=self._stop_if_asked)
            yield conn

    def _stop_if_asked(self) -> None:
        if self.should_stop:
            raise Stopped

    def run(self, *args, **kwargs):
        """The whole message loop runs inside one app context (one per consumer thread)."""
        try:
            with self.app.app_context():
                super().run(*args, **kwargs)
        except Stopped:
            log.info("event=consumer_stopped_while_disconnected")
        finally:
            self.ticks.close()

    def consume(self, limit=None, timeout=None, safety_interval=1, **kwargs):
        """kombu's ConsumerMixin.consume, but a wait for the next frame ends when the tick batch
        is due (or to see whether the one being written is done), and on stop the ticks buffered
        are written and acked before the channel closes."""
        elapsed = 0
        with self.consumer_context(**kwargs) as (conn, _channel, _consumers):
            for _ in limit and range(limit) or count():
                if self.should_stop:
                    break
                self.on_iteration()
                wait = self.ticks.wait_time(safety_interval)
                try:
                    conn.drain_events(timeout=wait)
                except TimeoutError:  # socket.timeout
                    conn.heartbeat_check()
                    elapsed += wait
                    if timeout and elapsed >= timeout:
                        raise
                except OSError:
                    if not self.should_stop:
                        raise
                else:
                    yield
                    elapsed = 0
            self.ticks.drain()

    def on_iteration(self):
        self.ticks.poll()
        if self.loops is not None:
            self.loops.turned(self.loop_name)

    # -- handlers ---------------------------------------------------------------------------
    def on_broker_event(self, body, message):
        self._handle(message, lambda: _apply_broker_event(_object(body)), EVENTS)

    def on_tick_message(self, message: Message) -> None:
        """Parse the message's ticks into the batch (a malformed message is dead-lettered alone, as
        is one whose every tick is invalid: an operator sees it)."""
        _measure_lag(message, TICKS)  # at receipt: the batch's own wait is the tick ingest latency's
        try:
            parsed = check_ticks(_tick_list(_decode(message)))
        except Exception as exc:  # undecodable (orjson's or kombu's error), a body without a ticks list
            self._dead_letter(message, f"undecodable or malformed: {type(exc).__name__}: {exc}", TICKS)
            return
        if parsed.rows:
            self.ticks.add(message, parsed.rows)
        elif parsed.bad:
            self._dead_letter(
                message, f"no valid tick: {parsed.bad} invalid, {parsed.expired} past the retention", TICKS
            )
        else:  # nothing to store: an empty list, or ticks past the retention (skipped, logged)
            message.ack()
            self._acked(1)

    def on_paper_ticks(self, body, message):
        self._handle(message, lambda: get_broker(self.app).on_ticks(_tick_list(body)), PAPER_TICKS)

    def _handle(self, message, work, queue: str = TICKS) -> None:
        """Run one message's work; settle the message by what happened. `queue`: EVENTS, TICKS (a
        message of a tick batch settled alone) or PAPER_TICKS, for the figures."""
        routing_key = message.delivery_info.get("routing_key", "")
        try:
            changed = self._retrying(work, routing_key)
        except (MalformedEvent, BadMessage) as exc:
            self._dead_letter(message, str(exc), queue)
        except TRANSIENT_ERRORS as exc:
            # Still failing after the in-place retries (a service is down): back to the queue.
            log.warning("event=message_requeue routing_key=%s error=%s", routing_key, type(exc).__name__)
            _rollback()
            message.requeue()
            metrics.CONSUMER_EVENTS.labels(queue, REQUEUED).inc()
        except Exception:
            # A bug must not spin forever on redelivery: park the message where an operator sees it.
            log.exception("event=message_failed routing_key=%s", routing_key)
            _rollback()
            self._dead_letter(message, "handler error", queue)
        else:
            message.ack()
            self.handled += 1
            # A broker event's work says whether it changed anything (False: already applied).
            metrics.CONSUMER_EVENTS.labels(queue, DUPLICATE if changed is False else APPLIED).inc()
            metrics.CONSUMER_LAST_APPLIED.labels(queue).set_to_current_time()
            _measure_lag(message, queue)
        finally:
            db.session.remove()

    def _retrying(self, work, queue: str) -> None:
        """Retry a transient failure (a deadlock, a dropped connection) on the spot: a requeued
        message goes behind the ones already prefetched, and one order's events would then be
        applied out of order (a cancel before the fill that preceded it)."""
        for attempt in range(1, IN_PLACE_RETRIES + 1):
            try:
                return work()
            except TRANSIENT_ERRORS as exc:
                if attempt == IN_PLACE_RETRIES:
                    raise
                log.warning(
                    "event=message_retry routing_key=%s attempt=%d error=%s", queue, attempt, type(exc).__name__
                )
                _rollback()
                db.session.remove()
                time.sleep(self.retry_delay * attempt)

    def _acked(self, messages: int) -> None:
        """Tick messages acked (a batch written, or nothing in them to store)."""
        self.handled += messages
        metrics.CONSUMER_EVENTS.labels(TICKS, APPLIED).inc(messages)
        metrics.CONSUMER_LAST_APPLIED.labels(TICKS).set_to_current_time()

    def _dead_letter(self, message, reason: str, queue: str) -> None:
        log.error(
            "event=message_dead_lettered queue=%s routing_key=%s message_id=%s reason=%s",
            queue,
            message.delivery_info.get("routing_key", ""),
            message.properties.get("message_id"),
            reason,
        )
        message.reject(requeue=False)
        self.handled += 1
        metrics.CONSUMER_EVENTS.labels(queue, DEAD_LETTERED).inc()


def _measure_lag(message, queue: str) -> None:
    """CONSUMER_LAG: now minus the publisher's stamp (messaging.PRODUCED_AT; a message from a
    publisher without one is not measured)."""
    produced = (message.headers or {}).get(PRODUCED_AT)
    if isinstance(produced, int | float) and not isinstance(produced, bool):
        metrics.CONSUMER_LAG.labels(queue).set(metrics.since(produced))


class LoopBeat:
    """The process's heartbeat, beaten only while every consume loop turns: each loop wakes at
    least every second (the drain timeout), so a quiet market still beats, and one loop wedged
    (or both waiting on RabbitMQ) stops the beat."""

    def __init__(self, heartbeat: Heartbeat, loops: Collection[str], stall: float = LOOP_STALL):
        self.heartbeat = heartbeat
        self.stall = stall
        self.last = dict.fromkeys(loops, 0.0)  # none has turned yet

    def turned(self, loop: str) -> None:
        now = time.monotonic()
        self.last[loop] = now
        if all(now - then < self.stall for then in self.last.values()):
            self.heartbeat.beat()


class QueueSampler(Periodic):
    """QUEUE_MESSAGES: RabbitMQ's count of the messages ready in the events, ticks, dead-letter and
    (with the paper exchange) paper ticks queues, every QUEUE_SAMPLE_INTERVAL, by a passive declare
    on a connection of its own (a kombu connection is not for two threads)."""

    def __init__(
        self,
        url: str,
        topology: Topology,
        ready: threading.Event | None = None,
        paper_exchange: bool = True,
        interval: float = QUEUE_SAMPLE_INTERVAL,
        ssl: dict | bool = False,
    ):
        super().__init__("queue-sampler", interval)
        self.url = url
        self.ssl = ssl
        self.ready = ready
        self.queues = {
            EVENTS: topology.names["q_broker_events"],
            TICKS: topology.names["q_ticks"],
            DEAD_LETTER: topology.names["q_dead"],
        }
        if paper_exchange:  # without one nobody reads that queue (it keeps its last 10000 ticks)
            self.queues[PAPER_TICKS] = topology.names["q_paper_ticks"]
        self.connection: Connection | None = None

    def run(self) -> None:
        while self.ready is not None and not self.ready.wait(1):  # the queues are not declared yet
            if self._stop_event.is_set():
                return
        super().run()

    def duty(self) -> None:
        try:
            self.sample()
        except Exception as exc:  # RabbitMQ away: the consumer's own loop says so; try next round
            log.warning("event=queue_sample_failed error=%s", type(exc).__name__)
            self.close()  # a broken connection: a fresh one next round

    def sample(self) -> None:
        if self.connection is None:
            self.connection = Connection(self.url, ssl=self.ssl, connect_timeout=5)
        for label, name in self.queues.items():
            channel = self.connection.channel()
            try:
                _name, ready, _consumers = channel.queue_declare(queue=name, passive=True)
            except self.connection.channel_errors:  # not declared (yet): RabbitMQ closed the channel
                continue
            else:
                metrics.QUEUE_MESSAGES.labels(label).set(ready)
                channel.close()

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.release()
            except Exception:  # already broken
                pass
            self.connection = None


def _object(body) -> dict:
    if not isinstance(body, dict):
        raise BadMessage("message body is not a JSON object")
    return body


def _tick_list(body) -> list[dict]:
    ticks = _object(body).get("ticks")
    if not isinstance(ticks, list):
        raise BadMessage("message has no 'ticks' list")
    return ticks


# Imported when first used, inside the handler's error handling: the consumer starts even while
# an optional part (the paper exchange) is not importable, and reports it per message.
def _apply_broker_event(body: dict) -> bool:
    from tradingapp.services.orders.broker_events import apply_broker_event

    return apply_broker_event(body)


def _decode(message: Message) -> object:
    """The body of a tick message. Plain UTF-8 JSON is decoded with orjson (~1.5 us a tick where
    kombu's json took ~2.4); anything else the kombu way, which refuses a content type outside
    `accept` and undoes compression."""
    if (
        message.content_type == "application/json"
        and message.content_encoding == "utf-8"
        and "compression" not in message.headers
    ):
        return orjson.loads(message.body)
    return message.decode()


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # the connection may be gone; remove() in the caller discards it
        log.debug("rollback failed", exc_info=True)


def main() -> None:
    from tradingapp import create_app

    logs.set_process("consumer")
    app = create_app()
    config = app.extensions["tradingapp.config"]
    metrics.serve("consumer", config.METRICS_HOST, config.CONSUMER_METRICS_PORT, config.METRICS_TOKEN)
    heartbeat = Heartbeat(config.HEARTBEAT_DIR, "consumer")
    amqp_ssl = app.config["AMQP_SSL"]
    with Connection(app.config["AMQP_URL"], ssl=amqp_ssl, heartbeat=30, connect_timeout=5) as connection:
        # Two loops, each on a connection of its own (ConsumerMixin clones it): broker events (and
        # the paper exchange's feed) here, market ticks in a thread.
        events = Consumer(app, connection, queues={EVENTS, PAPER_TICKS})
        ticks = Consumer(app, connection, queues={TICKS})
        events.loops = ticks.loops = LoopBeat(heartbeat, [events.loop_name, ticks.loop_name])
        # "Last applied" starts at the start: a consumer wedged before its first message (a restart
        # on a backlog) still ages into ConsumerStalled, which needs the series to exist.
        for queue in events.queues | ticks.queues:
            metrics.CONSUMER_LAST_APPLIED.labels(queue).set_to_current_time()
        # Its first look once the loops have declared the queues.
        topology = Topology(app.config.get("NAMESPACE", ""))
        sampler = QueueSampler(app.config["AMQP_URL"], topology, events.ready, events.paper_exchange, ssl=amqp_ssl)
        sampler.start()
        failed = threading.Event()

        def run_ticks():
            try:
                ticks.run()
            except BaseException:
                log.exception("event=tick_consumer_failed")
                failed.set()
                events.should_stop = True  # the process exits; its supervisor restarts it

        def stop() -> None:
            events.should_stop = ticks.should_stop = True

        on_stop_signals(stop)
        thread = threading.Thread(target=run_ticks, name="ticks", daemon=True)
        thread.start()
        try:
            events.run()
        finally:
            ticks.should_stop = True  # it writes and acks its batch before it returns
            thread.join(STOP_TIMEOUT)
            if thread.is_alive():
                log.error("event=tick_consumer_stop_timeout seconds=%s unacked=redelivered", STOP_TIMEOUT)
                failed.set()
            sampler.stop()
            heartbeat.clear()
    sampler.join(timeout=5)
    sampler.close()
    log.info("event=consumer_stopped")
    if failed.is_set():
        raise SystemExit(1)


if __name__ == "__main__":
    main()
