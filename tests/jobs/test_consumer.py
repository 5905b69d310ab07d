"""The Kombu consumer against real RabbitMQ, Postgres and Redis, and tick ingest on its own."""

import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
import redis
import sqlalchemy as sa
from kombu import Connection
from prometheus_client import REGISTRY

import config
from jobs.consumer import Consumer, QueueSampler
from tests.support import wait_until as wait_for
from tests.support.consumer import (
    TS,
    dead_letters,
    publish_event,
    publish_raw,
    publish_ticks,
    tick,
    tick_count,
    wait_for_status,
)
from tests.support.factories import event, make_order
from tests.support.net import free_port
from tradingapp import create_app, metrics
from tradingapp import events as ev
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Tick
from tradingapp.realtime import quotes_channel, read_quotes
from tradingapp.services.market.ticks import ingest_ticks

# -- ticks ---------------------------------------------------------------------------------


def test_tick_message_is_stored_one_row_per_tick(start_consumer, publisher):
    start_consumer()
    publish_ticks(publisher, [tick(1), tick(2, ltp="4100.00")])
    wait_for(lambda: tick_count() == 2)
    row = _db.session.scalar(sa.select(Tick).filter_by(instrument_id=2))
    assert (row.ltp, row.ask, row.volume, row.ts) == (Decimal("4100.00"), Decimal("4100.05"), 5000, TS)


def test_tick_message_updates_the_quote_cache(start_consumer, publisher):
    start_consumer()
    publish_ticks(publisher, [tick(1, ltp="2901.10")])
    wait_for(lambda: 1 in read_quotes(get_redis(), [1]))
    quote = read_quotes(get_redis(), [1])[1]
    assert (quote["ltp"], quote["close"], quote["volume"]) == ("2901.10", "2895.00", "5000")


def test_tick_message_publishes_the_quote_on_the_redis_channel(start_consumer, publisher):
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(quotes_channel())
    try:
        start_consumer()
        publish_ticks(publisher, [tick(3, ltp="1900.25")])
        messages = []
        wait_for(lambda: messages.append(pubsub.get_message(timeout=0.1)) or messages[-1] is not None)
        quote = orjson.loads(messages[-1]["data"])
        assert (quote["instrument_id"], quote["ltp"], quote["ltq"]) == (3, "1900.25", 10)
    finally:
        pubsub.close()


def test_a_message_delivered_twice_stores_each_tick_once(start_consumer, publisher):
    start_consumer()
    body = [tick(1, seq=1), tick(2, seq=1)]
    publish_ticks(publisher, body, message_id="dup")
    publish_ticks(publisher, body, message_id="dup")
    publish_ticks(publisher, [tick(5, seq=9)])  # processed after both copies: the marker
    wait_for(lambda: tick_count(instrument_id=5) == 1)
    assert tick_count() == 3


# -- poison and failures -------------------------------------------------------------------


def test_undecodable_message_is_dead_lettered_and_consuming_goes_on(app, topology, start_consumer, publisher):
    start_consumer()
    publish_raw(app, topology, "market_ticks", b"{not json", "application/json")
    publish_ticks(publisher, [tick(4)])
    wait_for(lambda: tick_count(instrument_id=4) == 1)
    [dead] = dead_letters(app, topology, 1)
    assert dead.headers["x-death"][0]["queue"] == topology.q_ticks.name


def test_message_of_a_disallowed_content_type_is_dead_lettered(app, topology, start_consumer):
    start_consumer()
    publish_raw(app, topology, "market_ticks", b"\x80\x04K\x01.", "application/x-python-serialize")
    [dead] = dead_letters(app, topology, 1)
    assert dead.headers["x-death"][0]["reason"] == "rejected"


def test_ticks_message_without_a_ticks_list_is_dead_lettered(app, topology, start_consumer, publisher):
    start_consumer()
    publisher.publish("market_ticks", "ticks.NSECM", {"tick": tick(1)}, message_id="wrong-shape")
    [dead] = dead_letters(app, topology, 1)
    assert dead.properties["message_id"] == "wrong-shape"


def test_a_ticks_message_without_one_valid_tick_is_dead_lettered(app, topology, start_consumer, publisher):
    start_consumer()
    publish_ticks(publisher, [tick(1, seq=1, ltp="-1"), "tick"], message_id="all-invalid")
    publish_ticks(publisher, [tick(2, seq=1, ltp="-1"), tick(2, seq=2)], message_id="one-valid")
    [dead] = dead_letters(app, topology, 1)
    assert dead.properties["message_id"] == "all-invalid"
    wait_for(lambda: tick_count() == 1)


def test_a_ticks_message_all_past_the_retention_is_acked_not_dead_lettered(app, topology, start_consumer, publisher):
    start_consumer()
    publish_ticks(publisher, [tick(1, seq=1, ts=TS - timedelta(days=400))])
    publish_ticks(publisher, [tick(2, seq=1)])
    wait_for(lambda: tick_count() == 1)
    with Connection(app.config["AMQP_URL"]) as conn:
        for queue in (topology.q_ticks, topology.q_dead):
            wait_for(lambda q=queue: q(conn.default_channel).queue_declare(passive=True).message_count == 0)
    assert tick_count(instrument_id=1) == 0


def test_malformed_broker_event_is_dead_lettered(app, topology, start_consumer, publisher):
    start_consumer()
    publisher.publish("broker_events", "order.fill", {"event_id": "e1", "type": "order.teleported"})
    [dead] = dead_letters(app, topology, 1)
    assert dead.headers["x-death"][0]["queue"] == topology.q_broker_events.name


def test_redis_outage_retries_the_message_until_redis_is_back(env, start_consumer, publisher, tmp_path):
    port = free_port()
    flaky_app = create_app(config.TestConfig({**env, "REDIS_PORT": str(port)}))
    server = None
    try:
        consumer = start_consumer(flaky_app)
        publish_ticks(publisher, [tick(6, ltp="24000.10")])
        wait_for(lambda: tick_count(instrument_id=6) == 1)  # committed, then Redis refused
        assert consumer.handled == 0  # not acknowledged: it is being retried
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        cache = redis.Redis(port=port, db=int(env["REDIS_DB"]))
        wait_for(lambda: cache.hget(f"{env['NAMESPACE']}:quote:6", "ltp") == b"24000.10")
        cache.close()
        assert consumer.handled == 1 and tick_count() == 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
        with flaky_app.app_context():
            _db.engine.dispose()
        flaky_app.extensions["redis"].close()


# -- broker events and the paper exchange ----------------------------------------------------


def test_broker_event_is_applied_to_its_order(start_consumer, publisher, trader):
    order = make_order(trader, status="SUBMITTED")
    start_consumer()
    publish_event(publisher, event(ev.ACCEPTED, order, broker_order_id="P77"))
    wait_for_status(order.id, "OPEN")


@pytest.fixture
def paper_publisher_closed(app):
    """The paper exchange publishes its fills through the app's shared publisher: close it after."""
    yield
    shared = app.extensions.pop("tradingapp.publisher", None)
    if shared is not None:
        shared.close()


def test_paper_ticks_fill_resting_paper_orders(paper_publisher_closed, start_consumer, publisher):
    _db.session.add(
        PaperOrder(
            order_id=uuid.uuid4(),
            broker_order_id="PT1",
            instrument_id=1,
            side="BUY",
            quantity=5,
            order_type="LIMIT",
            limit_price=Decimal("2900.00"),
            status="open",
        )
    )
    _db.session.commit()
    start_consumer(paper_exchange=True)
    # A tick from after the order's arrival: the exchange never fills on an older one.
    publish_ticks(publisher, [tick(1, ltp="2899.95", ts=datetime.now(UTC))])

    def filled():
        status = _db.session.scalar(sa.select(PaperOrder.status).filter_by(broker_order_id="PT1"))
        _db.session.rollback()
        return status == "filled"

    wait_for(filled)


def test_consumer_process_stops_cleanly_on_sigterm(env, topology):
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.consumer"],
        env={**env, "LOG_LEVEL": "INFO"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = []  # two loops, each on a connection of its own: broker events, and ticks
        while len(ready) < 2:
            line = proc.stderr.readline()
            assert line, "consumer exited before it was ready"
            ready += [line.rsplit("queues=", 1)[1].strip()] if "event=consumer_ready" in line else []
        events, ticks = sorted(ready, key=lambda queues: queues == topology.q_ticks.name)
        assert ticks == topology.q_ticks.name and topology.q_broker_events.name in events.split(",")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


# -- ingest_ticks on its own ---------------------------------------------------------------


def test_bad_ticks_are_skipped_and_the_good_ones_stored(db):
    bad = [
        tick(1, seq=2, ltp="0"),
        tick(1, seq=3, ltp=2900.5),
        tick(1, seq=4, ts="yesterday"),
        {**tick(1, seq=5), "instrument_id": "1"},
        tick(1, seq=6, bid="-1"),
        tick(1, seq=7, ltq=True),
        tick(1, seq=8, ts=TS.replace(tzinfo=None).isoformat()),
        tick(1, seq=9, ltp="1.00001"),
        tick(1, seq=10, ts="0001-01-01T00:00:00+05:30"),  # before year 1 in UTC
        "tick",
    ]
    assert ingest_ticks([tick(1, seq=1), *bad]) == 1
    assert tick_count() == 1


def test_a_tick_more_than_five_minutes_ahead_of_the_clock_is_bad(db):
    ahead = datetime.now(UTC) + timedelta(minutes=5, seconds=30)
    assert ingest_ticks([tick(1, seq=1, ts="9999-12-31T00:00:00Z"), tick(1, seq=2, ts=ahead),
                         tick(1, seq=3, ts=datetime.now(UTC) + timedelta(minutes=4), ltp="2950.00")]) == 1  # fmt: skip
    assert tick_count() == 1
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2950.00"


def test_a_late_older_tick_does_not_roll_back_the_cached_quote(db):
    ingest_ticks([tick(1, seq=2, ltp="2950.00", ts=TS)])
    ingest_ticks([tick(1, seq=1, ltp="2800.00", ts=TS - timedelta(seconds=5))])
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2950.00"
    assert tick_count() == 2


def test_the_latest_tick_of_a_batch_becomes_the_quote(db):
    later = TS + timedelta(seconds=1)
    ingest_ticks([tick(1, seq=2, ltp="2950.00", ts=later), tick(1, seq=1, ltp="2800.00", ts=TS)])
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2950.00"


def test_quote_fields_a_tick_lacks_are_cleared_from_the_cache(db):
    ingest_ticks([tick(1, seq=1)])
    ingest_ticks([tick(1, seq=2, ts=TS + timedelta(seconds=1), bid=None, ask=None)])
    quote = read_quotes(get_redis(), [1])[1]
    assert "bid" not in quote and "ask" not in quote


def test_a_transient_failure_is_retried_in_place_keeping_the_message_order(app):
    """A requeued message would go behind those already prefetched: one order's fill could then
    be applied after its cancel. A blip (a deadlock, a dropped connection) is retried on the spot."""
    consumer = Consumer(app, Connection(app.config["AMQP_URL"]), retry_delay=0.01)
    calls = []

    def work():
        calls.append(len(calls))
        if len(calls) == 1:
            raise sa.exc.OperationalError("UPDATE orders", {}, Exception("deadlock detected"))
        return "applied"

    with app.app_context():
        assert consumer._retrying(work, "order.fill") == "applied"
    assert calls == [0, 1]


def test_the_queue_sampler_reads_rabbitmqs_own_counts(app, topology, publisher):
    metrics.configure(True)
    for n in range(2):  # nobody consumes: both wait in the events queue
        publish_event(publisher, {"event_id": f"sample-{n}", "type": ev.ACCEPTED, "order_id": str(uuid.uuid4())})
    publish_ticks(publisher, [tick(1)])
    sampler = QueueSampler(app.config["AMQP_URL"], topology, paper_exchange=False)
    try:
        sampler.sample()
    finally:
        sampler.close()
    counts = {q: REGISTRY.get_sample_value("tradingapp_rabbitmq_queue_messages", {"queue": q}) for q in sampler.queues}
    assert counts == {"events": 2, "ticks": 1, "dead_letter": 0}  # the paper exchange's queue: not ours to read
