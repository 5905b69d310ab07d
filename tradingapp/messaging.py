"""RabbitMQ topology and publishing (Kombu). Names carry the configured NAMESPACE prefix.

Every connection is made with the app's AMQP_SSL (Config.amqp_ssl: with RABBITMQ_SSL, amqps with the
server's certificate and host name checked against RABBITMQ_SSL_CA; docs/encryption.md).

Every message published here carries the header PRODUCED_AT (seconds since the epoch, a float,
stamped at publish): the consumer's lag is its receipt minus that stamp (CONSUMER_LAG).
"""

from __future__ import annotations

import threading
import time

from flask import current_app, has_app_context
from kombu import Connection, Exchange, Queue

_lock = threading.Lock()
PRODUCED_AT = "produced_at"  # the message header of its publish time
# A publish reconnects at most this often (~3.5 s in all) before it raises.
RETRY_POLICY = {"max_retries": 3, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 1.5}


def names(namespace: str) -> dict[str, str]:
    p = f"{namespace}." if namespace else ""
    return {
        "broker_events": f"{p}broker.events",
        "market_ticks": f"{p}market.ticks",
        "dead_letter": f"{p}tradingapp.dlx",
        "q_broker_events": f"{p}tradingapp.broker-events",
        "q_ticks": f"{p}tradingapp.ticks",
        "q_paper_ticks": f"{p}tradingapp.paper-exchange.ticks",
        "q_dead": f"{p}tradingapp.dead-letter",
    }


class Topology:
    """Durable topic exchanges, durable queues, and a dead-letter queue for poison messages."""

    def __init__(self, namespace: str = ""):
        n = names(namespace)
        self.names = n
        self.broker_events = Exchange(n["broker_events"], type="topic", durable=True)
        self.market_ticks = Exchange(n["market_ticks"], type="topic", durable=True)
        self.dead_letter = Exchange(n["dead_letter"], type="fanout", durable=True)
        dlx = {"x-dead-letter-exchange": n["dead_letter"]}
        self.q_broker_events = Queue(
            n["q_broker_events"], self.broker_events, routing_key="#", durable=True, queue_arguments=dlx
        )
        self.q_ticks = Queue(n["q_ticks"], self.market_ticks, routing_key="#", durable=True, queue_arguments=dlx)
        self.q_paper_ticks = Queue(
            n["q_paper_ticks"],
            self.market_ticks,
            routing_key="#",
            durable=True,
            # Matching resting paper orders only needs recent prices; a backlog is useless.
            queue_arguments={**dlx, "x-max-length": 10000, "x-overflow": "drop-head"},
        )
        self.q_dead = Queue(n["q_dead"], self.dead_letter, durable=True)

    def all_queues(self) -> list[Queue]:
        return [self.q_broker_events, self.q_ticks, self.q_paper_ticks, self.q_dead]

    def declare(self, connection: Connection) -> None:
        channel = connection.default_channel
        for exchange in (self.broker_events, self.market_ticks, self.dead_letter):
            exchange(channel).declare()
        for queue in self.all_queues():
            queue(channel).declare()


def app_ssl() -> dict | bool:
    """The current app's AMQP_SSL (False outside an app context)."""
    return current_app.config.get("AMQP_SSL", False) if has_app_context() else False


def amqp_connection(url: str | None = None, ssl: dict | bool | None = None) -> Connection:
    """A publishing connection (publisher confirms). `ssl` None: the current app's AMQP_SSL."""
    return Connection(
        url or current_app.config["AMQP_URL"],
        ssl=app_ssl() if ssl is None else ssl,
        transport_options={"confirm_publish": True},
        connect_timeout=5,
        heartbeat=30,
    )


def topology() -> Topology:
    return Topology(current_app.config.get("NAMESPACE", ""))


class Publisher:
    """A process-wide publisher with publisher confirms; reconnects when RabbitMQ restarts.
    `ssl` None: the AMQP_SSL of the app whose context creates it."""

    def __init__(self, url: str, namespace: str, ssl: dict | bool | None = None):
        self.url = url
        self.ssl = app_ssl() if ssl is None else ssl
        self.topology = Topology(namespace)
        self._connection: Connection | None = None
        self._producer = None
        self._declared = False

    def _ensure(self):
        if self._connection is None:
            self._connection = amqp_connection(self.url, self.ssl)
        if not self._declared:
            self.topology.declare(self._connection)
            self._declared = True
        if self._producer is None:
            self._producer = self._connection.Producer(serializer="json")
        return self._producer

    def publish(self, exchange: str, routing_key: str, body: dict, message_id: str | None = None) -> None:
        ex = getattr(self.topology, exchange)
        with _lock:
            producer = self._ensure()
            publish = self._connection.ensure(producer, producer.publish, max_retries=3)
            publish(
                body,
                exchange=ex,
                routing_key=routing_key,
                delivery_mode=2,
                # No content_type here: given one, kombu skips the producer's json serializer.
                message_id=message_id,
                headers={PRODUCED_AT: time.time()},
                retry=True,
                # Bounded: kombu's default policy retries a lost connection forever, so a publish
                # during a RabbitMQ outage would hang its caller (and its shutdown) instead of failing.
                retry_policy=RETRY_POLICY,
            )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.release()
        self._connection = None
        self._producer = None


def get_publisher() -> Publisher:
    app = current_app._get_current_object()
    pub = app.extensions.get("tradingapp.publisher")
    if pub is None:
        pub = Publisher(app.config["AMQP_URL"], app.config.get("NAMESPACE", ""), app.config.get("AMQP_SSL", False))
        app.extensions["tradingapp.publisher"] = pub
    return pub
