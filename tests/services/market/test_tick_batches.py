"""Tick batches in the consumer (real RabbitMQ, Postgres, Redis; SQLite for the zero-config path):
many messages per transaction, acked only after the commit, a bad message parked alone."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import timedelta

import pytest
import redis
import sqlalchemy as sa
from flask_migrate import upgrade
from kombu import Connection

import config
from jobs.consumer import Consumer
from tests.services.market.conftest import STORES, on_each_store
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
from tests.support.net import TcpProxy, free_port
from tradingapp import create_app
from tradingapp import events as ev
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Candle1m, Tick
from tradingapp.realtime import read_quotes
from tradingapp.services.market import tick_batches
from tradingapp.services.market.ticks import ingest_rows, parse_ticks, store_ticks


@pytest.fixture(scope="module", params=STORES)
def app(request, app, plain_app):
    """Every test of this module that uses the database runs on TimescaleDB and on plain PostgreSQL."""
    return on_each_store(request, app, plain_app)


# Batches written only when full (3 messages) or after 30 s: what a test sees is never a linger.
HELD = {"max_messages": 3, "linger": 30.0, "max_wait": 30.0}


def run_consumer(app, **tick_batch):
    """The consumer class in a thread of its own (stopped by the caller)."""
    consumer = Consumer(app, Connection(app.config["AMQP_URL"]), paper_exchange=False, retry_delay=0.05,
                        tick_batch=tick_batch)  # fmt: skip
    thread = threading.Thread(target=consumer.run, kwargs={"safety_interval": 0.1}, daemon=True)
    thread.start()
    assert consumer.ready.wait(10)
    return consumer, thread


def stop(consumer, thread) -> None:
    consumer.should_stop = True
    thread.join(10)
    consumer.connection.release()


def queued(app, topology) -> int:  # noqa: F811
    """Messages in the ticks queue (ready, or unacked by a consumer that is gone)."""
    with Connection(app.config["AMQP_URL"]) as conn:
        return topology.q_ticks(conn.default_channel).queue_declare(passive=True).message_count


def transactions() -> int:
    """How many transactions wrote the ticks stored."""
    count = _db.session.scalar(sa.text("SELECT count(DISTINCT xmin::text) FROM ticks"))
    _db.session.rollback()
    return count


def volume(instrument_id: int = 1) -> int:
    value = _db.session.scalar(sa.select(sa.func.sum(Candle1m.volume)).filter_by(instrument_id=instrument_id))
    _db.session.rollback()
    return value or 0


@pytest.fixture
def held(app, db, topology):  # noqa: F811
    consumer, thread = run_consumer(app, **HELD)
    yield consumer
    stop(consumer, thread)


def test_ticks_of_several_messages_are_written_in_one_transaction_once_the_batch_is_full(held, publisher):  # noqa: F811
    publish_ticks(publisher, [tick(1, seq=1), tick(2, seq=1)])
    publish_ticks(publisher, [tick(3, seq=1)])
    wait_for(lambda: len(held.ticks.filling.parts) == 2)
    assert tick_count() == 0 and held.handled == 0  # buffered: neither written nor acked
    publish_ticks(publisher, [tick(4, seq=1)])
    wait_for(lambda: held.handled == 3)
    assert tick_count() == 4 and transactions() == 1


def test_a_redelivered_message_in_a_batch_adds_no_candle_volume(held, publisher):  # noqa: F811
    first = [tick(1, seq=1, ltq=5), tick(1, seq=2, ts=TS + timedelta(seconds=1), ltq=6)]
    for body in (first, [tick(2, seq=1)], [tick(3, seq=1)]):
        publish_ticks(publisher, body)
    wait_for(lambda: held.handled == 3)
    # The same message again, beside new ticks of the same candle: only the new ones count.
    for body in (first, [tick(1, seq=3, ts=TS + timedelta(seconds=2), ltq=7)], [tick(4, seq=1)]):
        publish_ticks(publisher, body)
    wait_for(lambda: held.handled == 6)
    assert volume(1) == 5 + 6 + 7 and tick_count(instrument_id=1) == 3 and tick_count() == 6


def test_a_malformed_message_in_a_batch_is_dead_lettered_alone(app, held, topology, publisher):  # noqa: F811
    publish_ticks(publisher, [tick(1, seq=1)])
    publisher.publish("market_ticks", "ticks.NSECM", {"tick": tick(2)}, message_id="no-ticks-list")
    publish_raw(app, topology, "market_ticks", b"{not json", "application/json")
    publish_ticks(publisher, [tick(3, seq=1)])
    publish_ticks(publisher, [tick(4, seq=1)])
    wait_for(lambda: tick_count() == 3)
    dead = dead_letters(app, topology, 2)
    assert {m.properties.get("message_id") for m in dead} == {"no-ticks-list", None}
    wait_for(lambda: queued(app, topology) == 0)


def test_a_batch_failing_for_one_message_is_written_message_by_message(app, db, topology, publisher, monkeypatch):  # noqa: F811
    def ingest_unless_instrument_2(rows):
        if any(row["instrument_id"] == 2 for row in rows):
            raise RuntimeError("a bug met by one message only")
        return ingest_rows(rows)

    monkeypatch.setattr(tick_batches, "ingest_rows", ingest_unless_instrument_2)
    consumer, thread = run_consumer(app, **HELD)
    try:
        for iid in (1, 2, 3):
            publish_ticks(publisher, [tick(iid, seq=1)], message_id=f"m{iid}")
        [dead] = dead_letters(app, topology, 1)
        assert dead.properties["message_id"] == "m2"
        wait_for(lambda: consumer.handled == 3)
        assert tick_count() == 2 and tick_count(instrument_id=2) == 0
    finally:
        stop(consumer, thread)


def test_a_transient_failure_retries_the_batch_then_requeues_all_of_it(app, db, topology, publisher, monkeypatch):  # noqa: F811
    calls = []

    def down_three_times(rows):
        calls.append(len(rows))
        if len(calls) <= 3:  # every in-place retry of the first delivery fails
            raise sa.exc.OperationalError("COPY tick_stage", {}, Exception("server closed the connection"))
        return ingest_rows(rows)

    monkeypatch.setattr(tick_batches, "ingest_rows", down_three_times)
    consumer, thread = run_consumer(app, **HELD)
    try:
        for iid in (1, 2, 3):
            publish_ticks(publisher, [tick(iid, seq=1)])
        wait_for(lambda: tick_count() == 3)
        wait_for(lambda: consumer.handled == 3)
        assert calls[:3] == [3, 3, 3] and sum(calls[3:]) == 3  # requeued: read again, written once
        wait_for(lambda: queued(app, topology) == 0)
    finally:
        stop(consumer, thread)


def test_a_requeued_batch_written_after_the_next_keeps_close_and_quote_by_seq(app, db, topology, publisher,  # noqa: F811
                                                                                 monkeypatch):  # fmt: skip
    calls = []

    def down_for_the_first_batch(rows):
        calls.append(len(rows))
        if len(calls) <= 3:  # every in-place retry of the first batch: it is requeued
            raise sa.exc.OperationalError("COPY tick_stage", {}, Exception("server closed the connection"))
        return ingest_rows(rows)

    monkeypatch.setattr(tick_batches, "ingest_rows", down_for_the_first_batch)
    # Queued before the consumer starts: the second batch (seq 2, the same second) fills behind the
    # first and is written before the first comes back.
    at = TS.replace(second=10)
    for body in ([tick(1, seq=1, ltp="100.00", ts=at, ltq=1)], [tick(2, seq=1)], [tick(3, seq=1)],
                 [tick(1, seq=2, ltp="101.00", ts=at, ltq=1)], [tick(4, seq=1)], [tick(5, seq=1)]):  # fmt: skip
        publish_ticks(publisher, body)
    consumer, thread = run_consumer(app, **HELD)
    try:
        wait_for(lambda: consumer.handled == 6)
        row = _db.session.execute(sa.select(Candle1m).filter_by(instrument_id=1)).scalar_one()
        _db.session.rollback()
        assert (row.open, row.close, row.volume) == (100, 101, 2)
        assert read_quotes(get_redis(), [1])[1]["ltp"] == "101.00"
    finally:
        stop(consumer, thread)


def test_a_batch_is_acked_only_after_commit_and_cache_while_redis_is_down(app, env, db, topology, publisher, tmp_path):  # noqa: F811
    port = free_port()
    flaky_app = create_app(config.TestConfig({**env, "DB_NAME": app.config["DB_NAME"], "REDIS_PORT": str(port)}))
    server = None
    consumer, thread = run_consumer(flaky_app, **HELD)
    try:
        for iid in (1, 2, 3):
            publish_ticks(publisher, [tick(iid, seq=1, ltp="100.05")])
        wait_for(lambda: tick_count() == 3)  # committed, then Redis refused
        time.sleep(0.3)
        assert consumer.handled == 0  # not acked while the quote cache is behind
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        cache = redis.Redis(port=port, db=int(env["REDIS_DB"]))
        wait_for(lambda: all(cache.hget(f"{env['NAMESPACE']}:quote:{i}", "ltp") == b"100.05" for i in (1, 2, 3)))
        cache.close()
        wait_for(lambda: consumer.handled == 3)
        assert tick_count() == 3 and volume(1) == 10
    finally:
        stop(consumer, thread)
        if server is not None:
            server.terminate()
            server.wait(10)
        with flaky_app.app_context():
            _db.engine.dispose()
        flaky_app.extensions["redis"].close()


def test_a_stop_while_rabbitmq_is_out_of_reach_ends_the_loop_unacked(app, db, topology, publisher):  # noqa: F811
    proxy = TcpProxy(free_port())
    proxy.start()
    url = app.config["AMQP_URL"].replace(":5672", f":{proxy.port}")
    consumer = Consumer(app, Connection(url, connect_timeout=2), paper_exchange=False, tick_batch=HELD)
    thread = threading.Thread(target=consumer.run, kwargs={"safety_interval": 0.1}, daemon=True)
    thread.start()
    try:
        assert consumer.ready.wait(10)
        publish_ticks(publisher, [tick(1, seq=1)])
        publish_ticks(publisher, [tick(2, seq=1)])
        wait_for(lambda: len(consumer.ticks.filling.parts) == 2)
        proxy.cut()  # and RabbitMQ stays out of reach: kombu retries the connection for ever
        time.sleep(1)
        consumer.should_stop = True  # SIGTERM
        thread.join(5)
        assert not thread.is_alive()
        assert tick_count() == 0
        wait_for(lambda: queued(app, topology) == 2)  # unacked: RabbitMQ has them again
    finally:
        consumer.should_stop = True
        proxy.cut()
        thread.join(10)


def test_stopping_writes_and_acks_a_part_filled_batch(app, db, topology, publisher):  # noqa: F811
    consumer, thread = run_consumer(app, **HELD)
    publish_ticks(publisher, [tick(1, seq=1)])
    publish_ticks(publisher, [tick(2, seq=1)])
    wait_for(lambda: len(consumer.ticks.filling.parts) == 2)
    stop(consumer, thread)
    assert not thread.is_alive()
    assert tick_count() == 2 and consumer.handled == 2
    assert queued(app, topology) == 0  # acked, not left for redelivery


def test_while_the_writer_is_busy_the_next_batch_keeps_filling_past_its_linger(app, db, topology, publisher,  # noqa: F811
                                                                                 monkeypatch):  # fmt: skip
    release = threading.Event()

    def first_write_waits(rows):
        if any(row["instrument_id"] == 1 for row in rows):
            release.wait(10)
        return ingest_rows(rows)

    monkeypatch.setattr(tick_batches, "ingest_rows", first_write_waits)
    consumer, thread = run_consumer(app, linger=0.01, max_wait=0.01)
    try:
        publish_ticks(publisher, [tick(1, seq=1)])
        wait_for(lambda: consumer.ticks.writing is not None)
        for iid in (2, 3, 4):  # each past the linger and the cap of the one before
            publish_ticks(publisher, [tick(iid, seq=1)])
            time.sleep(0.05)
        release.set()
        wait_for(lambda: consumer.handled == 4)
        xmins = _db.session.execute(sa.text("SELECT instrument_id, xmin::text FROM ticks")).all()
        _db.session.rollback()
        by_instrument = dict(xmins)
        assert by_instrument[2] == by_instrument[3] == by_instrument[4] != by_instrument[1]
    finally:
        release.set()
        stop(consumer, thread)


def test_a_broker_event_is_applied_while_a_tick_batch_is_being_written(app, db, topology, publisher, trader,  # noqa: F811
                                                                         monkeypatch):  # fmt: skip
    writing, release = threading.Event(), threading.Event()

    def slow_ingest(rows):
        writing.set()
        release.wait(10)
        return ingest_rows(rows)

    monkeypatch.setattr(tick_batches, "ingest_rows", slow_ingest)
    order = make_order(trader, status="SUBMITTED")
    consumer, thread = run_consumer(app, max_messages=1)
    try:
        publish_ticks(publisher, [tick(1, seq=1)])
        assert writing.wait(10)
        publish_event(publisher, event(ev.ACCEPTED, order, broker_order_id="P1"))
        wait_for_status(order.id, "OPEN")
        assert tick_count() == 0  # the tick batch is still being written
        release.set()
        wait_for(lambda: tick_count() == 1)
    finally:
        release.set()
        stop(consumer, thread)


def test_two_consumers_storing_the_same_ticks_in_opposite_orders_never_deadlock(app, db):
    # Each batch is inserted in key order, so two transactions wait on each other's keys in one
    # order (inserted in the order they came, every round deadlocked: one batch retried).
    errors, rounds, barrier = [], 3, threading.Barrier(2)

    def writer(reverse: bool) -> None:
        with app.app_context():
            for r in range(rounds):
                rows = [tick(1 + i % 50, seq=r * 10_000 + i, ts=TS + timedelta(milliseconds=i), ltq=1)
                        for i in range(3000)]  # fmt: skip
                rows = parse_ticks(rows[::-1] if reverse else rows)
                barrier.wait(30)
                try:
                    store_ticks(rows)
                except sa.exc.DBAPIError as exc:
                    errors.append(str(exc.orig).splitlines()[0])
                finally:
                    _db.session.remove()

    threads = [threading.Thread(target=writer, args=(reverse,)) for reverse in (False, True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert tick_count() == rounds * 3000 and volume(1) == rounds * 60


def test_the_consumer_batches_ticks_on_sqlite(env, topology, publisher, tmp_path):  # noqa: F811
    sqlite_app = create_app(config.TestConfig({**env, "DB_HOST": "", "SQLITE_PATH": str(tmp_path / "t.db")}))
    with sqlite_app.app_context():
        upgrade(revision="heads")
    consumer, thread = run_consumer(sqlite_app, **HELD)
    try:
        batch = [tick(1, seq=1, ltq=5), tick(1, seq=2, ts=TS + timedelta(seconds=1), ltq=6)]
        for body in (batch, batch, [tick(2, seq=1)]):  # the second: a redelivery
            publish_ticks(publisher, body)
        wait_for(lambda: consumer.handled == 3)
        with sqlite_app.app_context():
            assert _db.session.scalar(sa.select(sa.func.count()).select_from(Tick)) == 3
            assert _db.session.scalar(sa.select(Candle1m.volume).filter_by(instrument_id=1)) == 11
            _db.session.remove()
    finally:
        stop(consumer, thread)
        with sqlite_app.app_context():
            _db.engine.dispose()
