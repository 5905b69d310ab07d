"""The simulated market: the random walk (pure) and the `python -m jobs.feed` process."""

import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu import Connection, Queue

from tests.support import wait_until
from tests.support.net import TcpProxy, free_port
from tests.support.stack import scrape
from tradingapp.domain.feed import FeedInstrument, new_walk, start_price, step, walk_from_quote
from tradingapp.extensions import get_redis
from tradingapp.messaging import Topology
from tradingapp.realtime import store_quote

NOW = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
TICK_SIZES = st.sampled_from(
    [Decimal("0.05"), Decimal("0.0500"), Decimal("0.10"), Decimal("1"), Decimal("5"), Decimal("0.0025")]
)
START = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("50000"), places=2)


def instrument(tick_size=Decimal("0.05"), symbol="RELIANCE", iid=1) -> FeedInstrument:
    return FeedInstrument(iid, "NSECM", 2885, symbol, tick_size)


def run_walk(tick_size, start, seed, steps=60) -> list[dict]:
    walk, rng = new_walk(instrument(tick_size), start), random.Random(seed)
    return [step(walk, rng, NOW + timedelta(seconds=i)) for i in range(steps)]


def is_multiple(value: str, tick_size: Decimal) -> bool:
    return Decimal(value) % tick_size == 0


@settings(max_examples=60, deadline=None)
@given(tick_size=TICK_SIZES, start=START, seed=st.integers(0, 2**32))
def test_every_price_is_a_positive_multiple_of_the_tick_size(tick_size, start, seed):
    for tick in run_walk(tick_size, start, seed):
        for name in ("ltp", "bid", "ask", "open", "high", "low", "close"):
            assert Decimal(tick[name]) > 0 and is_multiple(tick[name], tick_size), (name, tick[name])


@settings(max_examples=60, deadline=None)
@given(tick_size=TICK_SIZES, start=START, seed=st.integers(0, 2**32))
def test_bid_is_below_ask_with_the_last_price_between(tick_size, start, seed):
    for tick in run_walk(tick_size, start, seed):
        assert Decimal(tick["bid"]) <= Decimal(tick["ltp"]) < Decimal(tick["ask"])


@settings(max_examples=60, deadline=None)
@given(tick_size=TICK_SIZES, start=START, seed=st.integers(0, 2**32))
def test_day_high_and_low_bound_the_open_and_every_last_price(tick_size, start, seed):
    ticks = run_walk(tick_size, start, seed)
    last = ticks[-1]
    assert Decimal(last["low"]) == min(Decimal(t["ltp"]) for t in ticks + [{"ltp": last["open"]}])
    assert Decimal(last["high"]) == max(Decimal(t["ltp"]) for t in ticks + [{"ltp": last["open"]}])
    assert all(t["open"] == last["open"] and t["close"] == last["close"] for t in ticks)


def test_volume_is_the_sum_of_trade_quantities():
    ticks = run_walk(Decimal("0.05"), Decimal("2900"), seed=7)
    assert [t["volume"] for t in ticks] == [sum(t["ltq"] for t in ticks[: i + 1]) for i in range(len(ticks))]


def test_seq_strictly_increases_even_when_the_clock_stands_still():
    walk, rng = new_walk(instrument()), random.Random(1)
    seqs = [step(walk, rng, NOW)["seq"] for _ in range(5)]
    assert seqs == sorted(set(seqs)) and len(seqs) == 5


def test_same_seed_replays_the_same_walk():
    assert run_walk(Decimal("0.05"), Decimal("1900"), seed=42) == run_walk(Decimal("0.05"), Decimal("1900"), seed=42)


def test_a_walk_at_one_tick_never_goes_to_zero():
    ticks = run_walk(Decimal("0.05"), Decimal("0.05"), seed=3, steps=300)
    assert min(Decimal(t["bid"]) for t in ticks) == Decimal("0.05")


def test_prices_print_without_exponents():
    tick = run_walk(Decimal("0.0500"), Decimal("2900"), seed=1, steps=1)[0]
    assert "E" not in tick["ltp"] + tick["open"] and tick["open"] == "2900.00"


@pytest.mark.parametrize(
    "symbol, expected",
    [
        ("RELIANCE", "2900"),
        ("TCS", "4100"),
        ("INFY", "1900"),
        ("HDFCBANK", "1700"),
        ("SBIN", "800"),
        ("NIFTY-FUT", "24000"),
        ("UNKNOWN", "100"),
    ],
)
def test_start_prices_are_seeded_by_symbol(symbol, expected):
    assert start_price(symbol, Decimal("0.05")) == Decimal(expected)


def cached(ltp="1234.50", ts=NOW, **extra) -> dict:
    return {
        "ltp": ltp,
        "open": "1200.00",
        "high": "1250.00",
        "low": "1190.00",
        "close": "1195.00",
        "volume": "5000",
        "ts": ts.isoformat(),
        **extra,
    }


def test_walk_resumes_todays_session_from_the_cached_quote():
    walk = walk_from_quote(instrument(), cached(), NOW + timedelta(minutes=5))
    assert (walk.ltp, walk.open, walk.high, walk.low, walk.close, walk.volume) == (
        Decimal("1234.50"),
        Decimal("1200.00"),
        Decimal("1250.00"),
        Decimal("1190.00"),
        Decimal("1195.00"),
        5000,
    )


def test_walk_from_yesterdays_quote_opens_a_new_day_at_the_last_price():
    walk = walk_from_quote(instrument(), cached(ts=NOW - timedelta(days=1)), NOW)
    assert (walk.ltp, walk.open, walk.close, walk.volume) == (Decimal("1234.50"),) * 3 + (0,)


def test_a_walk_running_through_midnight_opens_a_new_day_at_yesterdays_last_price():
    walk, rng = new_walk(instrument(), Decimal("1000")), random.Random(7)
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    evening = [step(walk, rng, midnight - timedelta(seconds=10 - i)) for i in range(10)]
    first = step(walk, rng, midnight + timedelta(seconds=1))
    assert first["close"] == evening[-1]["ltp"]
    assert first["open"] == evening[-1]["ltp"] and first["volume"] == first["ltq"]
    assert Decimal(first["low"]) <= Decimal(first["ltp"]) <= Decimal(first["high"])
    later = step(walk, rng, midnight + timedelta(seconds=2))
    assert later["close"] == first["close"] and later["open"] == first["open"]


def test_unreadable_cached_quote_starts_from_the_seeded_price():
    walk = walk_from_quote(instrument(), cached(ltp="-3"), NOW)
    assert walk.ltp == Decimal("2900.00")


# -- the feed process --------------------------------------------------------------------------


@pytest.fixture
def tick_queue(app, db):
    """A private queue bound to market.ticks, declared before the feed starts publishing."""
    topology = Topology(app.config["NAMESPACE"])
    with Connection(app.config["AMQP_URL"]) as conn:
        topology.declare(conn)
        queue = Queue(
            f"{app.config['NAMESPACE']}.test-feed-{uuid.uuid4().hex[:6]}",
            topology.market_ticks,
            routing_key="ticks.#",
            exclusive=True,
        )(conn.default_channel)
        queue.declare()
        yield queue


@pytest.fixture
def feed_process(env):
    processes = []

    def start():
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.feed"],
            env={**env, "FEED_INTERVAL_MS": "100"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        processes.append(proc)
        return proc

    yield start
    for proc in processes:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        print(proc.stderr.read().decode()[-3000:])
        proc.stderr.close()


def receive(queue, count: int, timeout: float = 15) -> list:
    messages, deadline = [], time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        message = queue.get(no_ack=True)
        if message is None:
            time.sleep(0.05)
        else:
            messages.append(message)
    assert len(messages) == count, f"got {len(messages)} of {count} messages"
    return messages


def test_feed_publishes_one_batch_per_segment_with_every_instrument(tick_queue, feed_process):
    feed_process()
    messages = receive(tick_queue, 6)
    by_key = {}
    for message in messages:
        by_key.setdefault(message.delivery_info["routing_key"], []).append(message.payload["ticks"])
    assert set(by_key) == {"ticks.NSECM", "ticks.NSEFO"}
    assert {t["instrument_id"] for t in by_key["ticks.NSECM"][0]} == {1, 2, 3, 4, 5}
    assert [t["instrument_id"] for t in by_key["ticks.NSEFO"][0]] == [6]


def test_feed_messages_are_persistent_json_with_unique_ids(tick_queue, feed_process):
    feed_process()
    messages = receive(tick_queue, 4)
    assert {m.content_type for m in messages} == {"application/json"}
    assert {m.properties["delivery_mode"] for m in messages} == {2}
    assert len({m.properties["message_id"] for m in messages}) == 4


def test_feed_starts_from_the_cached_quote(app, tick_queue, feed_process):
    pipe = get_redis().pipeline()
    store_quote(
        pipe,
        {
            "instrument_id": 1,
            "ltp": "1234.50",
            "open": "1200.00",
            "high": "1250.00",
            "low": "1190.00",
            "close": "1195.00",
            "volume": 5000,
            "ts": datetime.now(UTC).isoformat(),
        },
        60,
    )
    pipe.execute()
    feed_process()
    message = next(m for m in receive(tick_queue, 2) if m.delivery_info["routing_key"] == "ticks.NSECM")
    tick = next(t for t in message.payload["ticks"] if t["instrument_id"] == 1)
    assert abs(Decimal(tick["ltp"]) - Decimal("1234.50")) < 10
    assert (tick["open"], tick["close"]) == ("1200.00", "1195.00")


def test_feed_exits_cleanly_on_sigterm(tick_queue, feed_process):
    proc = feed_process()
    receive(tick_queue, 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_feed_keeps_publishing_after_a_rabbitmq_outage(env, tick_queue):
    proxy = TcpProxy(free_port())
    proxy.start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.feed"],
        env={**env, "FEED_INTERVAL_MS": "100", "RABBITMQ_PORT": str(proxy.port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        receive(tick_queue, 2)
        proxy.cut()
        time.sleep(1)
        tick_queue.purge()
        proxy.start()
        receive(tick_queue, 2, timeout=20)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proxy.cut()


def test_feed_serves_its_metrics_beats_and_clears_its_heartbeat_at_a_clean_stop(env, tick_queue, tmp_path):
    port, beat = free_port(), tmp_path / "heartbeats" / "feed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.feed"],
        env={**env, "FEED_INTERVAL_MS": "100", "FEED_METRICS_PORT": str(port), "HEARTBEAT_DIR": str(beat.parent)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        receive(tick_queue, 2)
        url = f"http://127.0.0.1:{port}/metrics"
        seen = wait_until(lambda: (m := scrape(url)).value("tradingapp_feed_ticks_published_total") >= 6 and m)
        assert seen.labels("tradingapp_process_start_time_seconds", "process") == {"feed"}
        assert beat.exists()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not beat.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        proc.stderr.close()
