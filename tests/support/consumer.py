"""The Kombu consumer in a test: its topology, a publisher, the consumer on a thread, ticks to send."""

import contextlib
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from kombu import Connection

from jobs.consumer import Consumer
from tests.support import wait_until
from tradingapp.extensions import db as _db
from tradingapp.messaging import Publisher, Topology
from tradingapp.models import Order, Tick

TS = datetime.now(UTC).replace(microsecond=0)


def tick(instrument_id=1, seq=1, ltp="2900.05", ts=TS, **extra) -> dict:
    return {
        "instrument_id": instrument_id,
        "exchange_segment": "NSECM",
        "exchange_instrument_id": 2885,
        "seq": seq,
        "ts": ts if isinstance(ts, str) else ts.isoformat(),
        "ltp": ltp,
        "bid": ltp,
        "ask": str(Decimal(ltp) + Decimal("0.05")),
        "open": "2890.00",
        "high": "2910.00",
        "low": "2880.00",
        "close": "2895.00",
        "ltq": 10,
        "bid_qty": 100,
        "ask_qty": 200,
        "volume": 5000,
        **extra,
    }


def tick_count(**where) -> int:
    query = sa.select(sa.func.count()).select_from(Tick).filter_by(**where)
    count = _db.session.scalar(query)
    _db.session.rollback()  # end the read so the next poll sees the consumer's commits
    return count


@pytest.fixture
def topology(app):
    topology = Topology(app.config["NAMESPACE"])
    with Connection(app.config["AMQP_URL"]) as conn:
        topology.declare(conn)
        for queue in topology.all_queues():  # nothing left over from another test
            queue(conn.default_channel).purge()
    return topology


@pytest.fixture
def publisher(app, topology):
    pub = Publisher(app.config["AMQP_URL"], app.config["NAMESPACE"])
    yield pub
    pub.close()


@pytest.fixture
def start_consumer(app, db, topology):
    """Run the real consumer class in a thread; stopped (should_stop) after the test."""
    running = []

    def start(target_app=None, paper_exchange=False):
        target_app = target_app or app
        consumer = Consumer(
            target_app, Connection(target_app.config["AMQP_URL"]), paper_exchange=paper_exchange, retry_delay=0.2
        )
        # A short drain timeout so should_stop is seen quickly at teardown.
        thread = threading.Thread(target=consumer.run, kwargs={"safety_interval": 0.1}, daemon=True)
        thread.start()
        running.append((consumer, thread))
        assert consumer.ready.wait(10)
        return consumer

    yield start
    for consumer, thread in running:
        consumer.should_stop = True
        thread.join(10)
        consumer.connection.release()


def publish_ticks(publisher, ticks, message_id=None):
    publisher.publish("market_ticks", "ticks.NSECM", {"ticks": ticks}, message_id=message_id or uuid.uuid4().hex)


def publish_raw(app, topology, exchange, body: bytes, content_type: str):
    with Connection(app.config["AMQP_URL"]) as conn:
        conn.Producer().publish(
            body,
            exchange=getattr(topology, exchange),
            routing_key="ticks.NSECM",
            content_type=content_type,
            content_encoding="utf-8",
        )


def dead_letters(app, topology, count: int) -> list:
    messages = []
    with Connection(app.config["AMQP_URL"]) as conn:
        queue = topology.q_dead(conn.default_channel)

        def more():
            message = queue.get(no_ack=True)
            if message is not None:
                messages.append(message)
            return len(messages) >= count

        wait_until(more)
    return messages


@contextlib.contextmanager
def consumer_thread(app, queues: set[str]):
    """The real Kombu consumer of `queues` (jobs.consumer EVENTS / TICKS) in a thread of this
    process, on purged queues; stopped and its connection released on exit."""

    topology = Topology(app.config["NAMESPACE"])
    with Connection(app.config["AMQP_URL"]) as conn:
        topology.declare(conn)
        for queue in topology.all_queues():
            queue(conn.default_channel).purge()
    running = Consumer(app, Connection(app.config["AMQP_URL"]), paper_exchange=False, retry_delay=0.2, queues=queues)
    thread = threading.Thread(target=running.run, kwargs={"safety_interval": 0.1}, daemon=True)
    thread.start()
    assert running.ready.wait(10)
    try:
        yield running
    finally:
        running.should_stop = True
        thread.join(10)
        running.connection.release()


def publish_event(publisher, body: dict) -> None:
    """Publish a broker event body (tests/support/factories.event) as the bridge or the paper exchange does."""
    publisher.publish("broker_events", body["type"], body, message_id=body["event_id"])


def wait_for_status(order_id, status: str) -> None:
    """Wait until the consumer has committed `status` on the order (each poll ends its read)."""

    def reached():
        current = _db.session.scalar(sa.select(Order.status).filter_by(id=order_id))
        _db.session.rollback()
        return current == status

    wait_until(reached)
