"""What market data counts (real Postgres, Redis and RabbitMQ, the real consumer in a thread): ticks
ingested, skipped by reason, the ingest latency of the consumer's batches, the last tick's time, and
the gauges filled at a scrape (stale instruments, the session)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from tests.support import wait_until
from tests.support.consumer import publish_ticks, tick, tick_count
from tradingapp import metrics
from tradingapp.extensions import get_redis
from tradingapp.realtime import store_quotes
from tradingapp.services.market import gauges
from tradingapp.services.market.ticks import check_ticks, ingest_rows, parse_ticks


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.fixture(autouse=True)
def _metrics_on():
    metrics.configure(True)  # another test's app may have switched them off


def test_invalid_and_expired_ticks_are_counted_skipped(db):
    invalid, expired = (
        sample("tradingapp_ticks_skipped_total", reason="invalid"),
        sample("tradingapp_ticks_skipped_total", reason="expired"),
    )
    old = datetime.now(UTC) - timedelta(days=400)  # past the 365 days of tick retention
    parsed = check_ticks([tick(seq=1), tick(seq=2, ltp="-1"), {"not": "a tick"}, tick(seq=3, ts=old)])
    assert (len(parsed.rows), parsed.bad, parsed.expired) == (1, 2, 1)
    assert sample("tradingapp_ticks_skipped_total", reason="invalid") == invalid + 2
    assert sample("tradingapp_ticks_skipped_total", reason="expired") == expired + 1


def test_stored_ticks_are_ingested_a_redelivery_is_duplicate_and_the_last_tick_is_now(db):
    ingested, duplicates = (
        sample("tradingapp_ticks_ingested_total"),
        sample("tradingapp_ticks_skipped_total", reason="duplicate"),
    )
    started = time.time()
    rows = parse_ticks([tick(seq=1), tick(seq=2)])
    assert ingest_rows(rows) == 2
    assert sample("tradingapp_ticks_ingested_total") == ingested + 2
    assert started <= sample("tradingapp_last_tick_timestamp_seconds") <= time.time()
    assert ingest_rows(rows) == 0  # RabbitMQ delivered the batch again
    assert sample("tradingapp_ticks_ingested_total") == ingested + 2
    assert sample("tradingapp_ticks_skipped_total", reason="duplicate") == duplicates + 2


def test_the_consumers_batches_observe_each_messages_receipt_to_commit(publisher, start_consumer):
    observed = sample("tradingapp_tick_ingest_seconds_count")
    total = sample("tradingapp_tick_ingest_seconds_sum")
    start_consumer()
    for seq in (1, 2, 3):
        publish_ticks(publisher, [tick(seq=seq)])
    wait_until(lambda: tick_count() == 3)
    wait_until(lambda: sample("tradingapp_tick_ingest_seconds_count") == observed + 3)
    assert 0 < sample("tradingapp_tick_ingest_seconds_sum") - total < 30


def quote(instrument_id: int, age: float) -> dict:
    ts = datetime.now(UTC) - timedelta(seconds=age)
    return {"instrument_id": instrument_id, "ltp": "100.00", "ts": ts.isoformat()}


def test_a_scrape_counts_the_instruments_gone_stale(app, db):
    stale_after = app.config["QUOTE_STALE_AFTER"]
    store_quotes(get_redis(), [quote(1, 0), quote(2, stale_after + 5), quote(3, 3600)], 3600, publish=False)
    refresh = gauges.collector(app)
    refresh()
    assert sample("tradingapp_stale_instruments") == 2
    store_quotes(get_redis(), [quote(2, 0)], 3600, publish=False)  # its feed is back
    refresh()
    assert sample("tradingapp_stale_instruments") == 1
    assert sample("tradingapp_market_session_open") == gauges.market_open(app.config)


@pytest.mark.parametrize(
    "local, is_open",
    [
        ("2026-12-09T10:00", True),  # a Wednesday, in the session (09:15-15:30 IST)
        ("2026-12-09T09:14", False),  # before it opens
        ("2026-12-09T15:30", False),  # at the close
        ("2026-12-12T10:00", False),  # a Saturday
    ],
)
def test_the_session_is_open_in_the_market_hours_of_meta(app, local, is_open):
    now = datetime.fromisoformat(local + "+05:30")
    assert gauges.market_open(app.config, now) is is_open
