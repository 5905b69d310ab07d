"""The quote cache on real Redis: the conditional write script, publishing, staleness (REST,
WebSocket snapshot, /ready) and the broker REST fallback hook."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa

from tradingapp.brokers import BrokerError
from tradingapp.domain.feed import format_ts
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Tick
from tradingapp.realtime import quotes_channel, read_quotes, store_quotes
from tradingapp.services.market.ticks import ingest_ticks
from tradingapp.ws.hub import Hub
from tradingapp.ws.protocol import Command
from tradingapp.ws.routes import _subscribe

NOW = datetime.now(UTC)


def quote(iid: int = 1, ltp: str = "2900.00", age: float = 0.0, **extra) -> dict:
    ts = datetime.now(UTC) - timedelta(seconds=age)
    return {"instrument_id": iid, "ltp": ltp, "ltq": 5, "volume": 100, "ts": format_ts(ts), **extra}


def write(*quotes: dict) -> list[dict]:
    return store_quotes(get_redis(), list(quotes), ttl=60)


@pytest.fixture
def channel(db):
    pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(quotes_channel())
    yield pubsub
    pubsub.close()


def published(pubsub, wait: float = 0.3) -> list[dict]:
    """Quotes received within `wait` seconds (get_message also answers None for a subscribe reply)."""
    messages, deadline = [], time.monotonic() + wait
    while time.monotonic() < deadline:
        if (message := pubsub.get_message(timeout=0.05)) is not None:
            messages.append(orjson.loads(message["data"]))
    return messages


def test_an_older_quote_after_a_newer_one_keeps_the_newer(db):
    write(quote(ltp="2950.00", ts=format_ts(NOW)))
    assert write(quote(ltp="2800.00", ts=format_ts(NOW - timedelta(microseconds=1)))) == []
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2950.00"


def test_a_lower_seq_with_the_same_time_keeps_the_cached_quote(db):
    # XTS times are whole seconds: the tick's seq orders the quotes of one second.
    ts = format_ts(NOW)
    assert store_quotes(get_redis(), [quote(ltp="2950.00", ts=ts)], ttl=60, seqs=[7]) != []
    assert store_quotes(get_redis(), [quote(ltp="2800.00", ts=ts)], ttl=60, seqs=[6]) == []
    assert store_quotes(get_redis(), [quote(ltp="2800.00", ts=ts)], ttl=60, seqs=[7]) == []  # the same tick
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2950.00"
    assert store_quotes(get_redis(), [quote(ltp="2960.00", ts=ts)], ttl=60, seqs=[8]) != []
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2960.00"


def test_seqs_past_two_to_the_53_are_compared_exactly(db):
    ts, big = format_ts(NOW), 2**62  # 2**62 + 1 and + 2 are one double
    store_quotes(get_redis(), [quote(ltp="2950.00", ts=ts)], ttl=60, seqs=[big + 2])
    assert store_quotes(get_redis(), [quote(ltp="2800.00", ts=ts)], ttl=60, seqs=[big + 1]) == []
    assert store_quotes(get_redis(), [quote(ltp="2970.00", ts=ts)], ttl=60, seqs=[2**63 - 1]) != []
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "2970.00"


def test_a_quote_without_a_seq_wins_a_tie_in_time(db):
    ts = format_ts(NOW)
    store_quotes(get_redis(), [quote(ltp="2950.00", ts=ts)], ttl=60, seqs=[7])
    assert write(quote(ltp="2800.00", ts=ts)) != []
    assert "seq_key" not in read_quotes(get_redis(), [1])[1]


def test_a_tick_of_a_lower_seq_in_a_later_batch_leaves_the_quote(db):
    ts = NOW.replace(microsecond=0).isoformat()
    ingest_ticks([{"instrument_id": 1, "seq": 2, "ts": ts, "ltp": "101.00"}])
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": ts, "ltp": "100.00"}])
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "101.00"


def test_a_tick_key_twice_in_a_batch_quotes_the_first_the_one_stored(db):
    ts = NOW.replace(microsecond=0).isoformat()
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": ts, "ltp": "100.00"},
                  {"instrument_id": 1, "seq": 1, "ts": ts, "ltp": "200.00"}])  # fmt: skip
    stored = _db.session.scalar(sa.select(Tick.ltp))
    _db.session.rollback()
    assert (stored, read_quotes(get_redis(), [1])[1]["ltp"]) == (100, "100.00")


def test_two_writers_racing_leave_the_newest_quote(app, db):
    quotes = [quote(ltp=f"{1000 + i}.00", ts=format_ts(NOW + timedelta(milliseconds=i))) for i in range(400)]
    random.Random(7).shuffle(quotes)

    def writer(part: list[dict]) -> None:
        with app.app_context():
            for item in part:
                write(item)

    threads = [threading.Thread(target=writer, args=(quotes[i::2],)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_quotes(get_redis(), [1])[1]["ltp"] == "1399.00"


def test_only_written_quotes_are_published(channel):
    write(quote(1, "2950.00", ts=format_ts(NOW)))
    published(channel)
    written = write(quote(1, "2800.00", ts=format_ts(NOW - timedelta(seconds=1))), quote(2, "4100.00"))
    assert [q["instrument_id"] for q in written] == [2]
    assert [(q["instrument_id"], q["ltp"]) for q in published(channel)] == [(2, "4100.00")]


def test_a_written_quote_replaces_the_whole_hash(db):
    write(quote(bid="2899.95", ts=format_ts(NOW)))
    write(quote(ts=format_ts(NOW + timedelta(seconds=1))))
    cached = read_quotes(get_redis(), [1])[1]
    assert "bid" not in cached and "ts_us" not in cached


def test_quotes_younger_than_the_threshold_are_not_stale(client, trader_headers):
    write(quote(age=1))
    [item] = client.get("/api/v1/quotes?instrument_ids=1", headers=trader_headers).get_json()["items"]
    assert item["stale"] is False


def test_quotes_older_than_the_threshold_are_stale(client, trader_headers):
    write(quote(age=11))
    [item] = client.get("/api/v1/quotes?instrument_ids=1", headers=trader_headers).get_json()["items"]
    assert item["stale"] is True


def test_ready_lists_stale_instruments_and_stays_ready(client):
    write(quote(1, age=30), quote(2, age=1), quote(3, age=20))
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json()["stale_quotes"] == {"count": 2, "instrument_ids": [1, 3]}


def test_websocket_snapshot_carries_the_stale_flag(app, db):
    write(quote(1, age=30), quote(2, age=1))
    conn = (hub := Hub(max_sockets_per_user=3, max_instruments=4, max_events=5)).register("u1")
    _subscribe(conn, hub, Command("subscribe", (1, 2), "full"))
    messages = [orjson.loads(data) for data in conn.take(0)]  # the hub queues encoded messages
    snapshot = {m["instrument_id"]: m["stale"] for m in messages if m["type"] == "quote"}
    assert snapshot == {1: True, 2: False}


class QuotingBroker:
    """A broker double with the optional REST quote hook (the paper broker has none)."""

    name = "quoting"

    def __init__(self, fail: bool = False):
        self.fail = fail
        self.asked: list[int] = []

    def quote(self, instrument) -> dict | None:
        self.asked.append(instrument.id)
        if self.fail:
            raise BrokerError("broker down")
        return {"ltp": "3000.00", "ltq": 1, "volume": 7, "ts": format_ts(datetime.now(UTC))}


def test_a_stale_quote_is_replaced_by_the_brokers_rest_quote(app, client, trader_headers, monkeypatch):
    broker = QuotingBroker()
    monkeypatch.setitem(app.extensions, "tradingapp.broker", broker)
    write(quote(1, age=30), quote(2, age=1))
    body = client.get("/api/v1/quotes?instrument_ids=1,2", headers=trader_headers).get_json()
    assert [(q["ltp"], q["stale"]) for q in body["items"]] == [("3000.00", False), ("2900.00", False)]
    assert broker.asked == [1]


def test_a_missing_quote_comes_from_the_brokers_rest_quote(app, client, trader_headers, monkeypatch):
    monkeypatch.setitem(app.extensions, "tradingapp.broker", QuotingBroker())
    body = client.get("/api/v1/quotes?instrument_ids=1,999", headers=trader_headers).get_json()
    assert [(q["instrument_id"], q["ltp"]) for q in body["items"]] == [(1, "3000.00")]
    assert body["missing"] == [999]


def test_an_unreachable_broker_leaves_the_stale_cached_quote(app, client, trader_headers, monkeypatch):
    monkeypatch.setitem(app.extensions, "tradingapp.broker", QuotingBroker(fail=True))
    write(quote(1, age=30))
    [item] = client.get("/api/v1/quotes?instrument_ids=1", headers=trader_headers).get_json()["items"]
    assert (item["ltp"], item["stale"]) == ("2900.00", True)
