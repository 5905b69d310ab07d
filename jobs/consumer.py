"""The RabbitMQ consumer (`python -m jobs.consumer`): broker events, market ticks and, with the
paper broker, the ticks the exchange trades against (handed to the broker's on_ticks). Each
message is acked only after its commit; poison goes to the dead-letter queue, a transient failure
is requeued. docs/messages.md has the messages and these rules.
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

from tradingapp.brokers import get_broker
from tradingapp.events import MalformedEvent
from tradingapp.extensions import db
from tradingapp.messaging import Topology
from tradingapp.process import on_stop_signals
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
        self._dead_letter(message, f"undecodable: {type(exc).__name__}: {exc}")

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

    # -- handlers ---------------------------------------------------------------------------
    def on_broker_event(self, body, message):
        self._handle(message, lambda: _apply_broker_event(_object(body)))

    def on_tick_message(self, message: Message) -> None:
        """Parse the message's ticks into the batch (a malformed message is dead-lettered alone, as
        is one whose every tick is invalid: an operator sees it)."""
        try:
            parsed = check_ticks(_tick_list(_decode(message)))
        except Exception as exc:  # undecodable (orjson's or kombu's error), a body without a ticks list
            self._dead_letter(message, f"undecodable or malformed: {type(exc).__name__}: {exc}")
            return
        if parsed.rows:
            self.ticks.add(message, parsed.rows)
        elif parsed.bad:
            self._dead_letter(message, f"no valid tick: {parsed.bad} invalid, {parsed.expired} past the retention")
        else:  # nothing to store: an empty list, or ticks past the retention (skipped, logged)
            message.ack()
            self.handled += 1

    def on_paper_ticks(self, body, message):
        self._handle(message, lambda: get_broker(self.app).on_ticks(_tick_list(body)))

    def _handle(self, message, work) -> None:
        """Run one message's work; settle the message by what happened."""
        queue = message.delivery_info.get("routing_key", "")
        try:
            self._retrying(work, queue)
        except (MalformedEvent, BadMessage) as exc:
            self._dead_letter(message, str(exc))
        except TRANSIENT_ERRORS as exc:
            # Still failing after the in-place retries (a service is down): back to the queue.
            log.warning("event=message_requeue routing_key=%s error=%s", queue, type(exc).__name__)
            _rollback()
            message.requeue()
        except Exception:
            # A bug must not spin forever on redelivery: park the message where an operator sees it.
            log.exception("event=message_failed routing_key=%s", queue)
            _rollback()
            self._dead_letter(message, "handler error")
        else:
            message.ack()
            self.handled += 1
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
        self.handled += messages

    def _dead_letter(self, message, reason: str) -> None:
        log.error(
            "event=message_dead_lettered routing_key=%s message_id=%s reason=%s",
            message.delivery_info.get("routing_key", ""),
            message.properties.get("message_id"),
            reason,
        )
        message.reject(requeue=False)
        self.handled += 1


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
def _apply_broker_event(body: dict) -> None:
    from tradingapp.services.orders.broker_events import apply_broker_event

    apply_broker_event(body)


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

    app = create_app()
    with Connection(app.config["AMQP_URL"], heartbeat=30, connect_timeout=5) as connection:
        # Two loops, each on a connection of its own (ConsumerMixin clones it): broker events (and
        # the paper exchange's feed) here, market ticks in a thread.
        events = Consumer(app, connection, queues={EVENTS, PAPER_TICKS})
        ticks = Consumer(app, connection, queues={TICKS})
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
    log.info("event=consumer_stopped")
    if failed.is_set():
        raise SystemExit(1)


if __name__ == "__main__":
    main()
