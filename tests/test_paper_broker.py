"""The paper exchange on the real services: its book in Postgres, quotes from Redis, events
observed on a queue of our own bound to the namespaced `broker.events` exchange."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

import config
from tests.conftest import test_env as env_for
from tradingapp import create_app
from tradingapp import events as ev
from tradingapp.brokers import get_broker
from tradingapp.brokers.base import OrderRequest
from tradingapp.brokers.paper import PaperBroker, match_ticks
from tradingapp.extensions import get_redis
from tradingapp.models import PaperOrder
from tradingapp.realtime import store_quote

INSTRUMENT = 1


pytestmark = pytest.mark.usefixtures("close_publisher")


@pytest.fixture
def broker(db):
    return get_broker()


def set_quote(instrument_id: int, ltp: str, age_seconds: float = 0) -> None:
    ts = datetime.now(UTC) - timedelta(seconds=age_seconds)
    pipe = get_redis().pipeline()
    store_quote(pipe, {"instrument_id": instrument_id, "ltp": ltp, "ts": ts.isoformat()}, ttl=3600)
    pipe.execute()


def order_request(order_type="MARKET", side="BUY", quantity=10, limit=None, tif="DAY", order_id=None):
    return OrderRequest(
        order_id=order_id or uuid.uuid4(), user_id=uuid.uuid4(), instrument_id=INSTRUMENT, exchange_segment="NSECM",
        exchange_instrument_id=2885, side=side, quantity=quantity, order_type=order_type,
        limit_price=None if limit is None else Decimal(limit), stop_price=None, product="MIS", time_in_force=tif,
    )  # fmt: skip


def book_row(db, order_id) -> PaperOrder | None:
    db.session.rollback()
    return db.session.get(PaperOrder, order_id, populate_existing=True)


def kinds(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def test_market_order_fills_whole_quantity_at_last_price(db, broker, tap):
    set_quote(INSTRUMENT, "2901.35")
    request = order_request(quantity=7)
    broker_order_id = broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.FILL]
    fill = ev.parse_event(events[1])
    assert (fill.quantity, fill.price, fill.broker_order_id) == (7, Decimal("2901.3500"), broker_order_id)
    assert fill.event_id == f"paper:{request.order_id}:fill:1"
    row = book_row(db, request.order_id)
    assert (row.status, row.filled_quantity, row.fill_price) == ("filled", 7, Decimal("2901.35"))


def test_market_order_without_quote_is_rejected(db, broker, tap):
    request = order_request()
    broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.REJECTED]
    assert events[0]["reason"] == "no recent market price"
    assert book_row(db, request.order_id).status == "rejected"


def test_market_order_on_stale_quote_is_rejected(db, broker, tap):
    set_quote(INSTRUMENT, "2901.35", age_seconds=broker.max_quote_age + 30)
    broker.place(order_request())
    events = tap.drain()
    assert kinds(events) == [ev.REJECTED]
    assert events[0]["reason"] == "no recent market price"


def test_placing_twice_keeps_one_order_and_republishes_same_event_ids(db, broker, tap):
    set_quote(INSTRUMENT, "100.05")
    request = order_request()
    first = broker.place(request)
    first_events = tap.drain()
    set_quote(INSTRUMENT, "120.00")  # a new price must not create a second fill
    assert broker.place(request) == first
    again = tap.drain()
    assert [e["event_id"] for e in again] == [e["event_id"] for e in first_events]
    assert again[1]["price"] == "100.0500"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PaperOrder)) == 1


def test_limit_order_away_from_market_rests(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request("LIMIT", side="BUY", limit="99.00")
    broker.place(request)
    assert kinds(tap.drain()) == [ev.ACCEPTED]
    assert book_row(db, request.order_id).status == "open"


def test_marketable_limit_order_fills_at_last_price(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    broker.place(order_request("LIMIT", side="SELL", limit="99.50"))
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.FILL]
    assert events[1]["price"] == "100.0000"


def test_crossing_tick_fills_resting_limit_once_at_limit_price(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request("LIMIT", side="BUY", quantity=3, limit="99.00")
    broker.place(request)
    tap.drain()
    ticks = [{"instrument_id": INSTRUMENT, "ltp": "99.20"}, {"instrument_id": INSTRUMENT, "ltp": "98.90"}]
    assert match_ticks(ticks) == 1
    assert match_ticks(ticks) == 0
    events = tap.drain()
    assert kinds(events) == [ev.FILL]
    assert (events[0]["price"], events[0]["quantity"]) == ("99.0000", 3)
    assert book_row(db, request.order_id).status == "filled"


def test_non_crossing_tick_leaves_limit_order_resting(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request("LIMIT", side="SELL", limit="101.00")
    broker.place(request)
    tap.drain()
    ticks = [{"instrument_id": INSTRUMENT, "ltp": "100.95"}, {"instrument_id": INSTRUMENT + 1, "ltp": "500"}]
    assert match_ticks(ticks) == 0
    assert tap.drain() == []
    assert book_row(db, request.order_id).status == "open"


def test_malformed_ticks_are_skipped(db, broker):
    assert match_ticks([{"instrument_id": "x", "ltp": "1"}, {"ltp": "nan"}, "not a tick"]) == 0


def test_cancel_open_order_publishes_cancelled(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request("LIMIT", side="BUY", limit="90.00")
    broker.place(request)
    tap.drain()
    broker.cancel(request.order_id)
    events = tap.drain()
    assert kinds(events) == [ev.CANCELLED]
    assert events[0]["event_id"] == f"paper:{request.order_id}:cancelled"
    assert book_row(db, request.order_id).status == "cancelled"


def test_cancel_filled_order_publishes_cancel_rejected(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request()
    broker.place(request)
    tap.drain()
    broker.cancel(request.order_id)
    events = tap.drain()
    assert kinds(events)[-1] == ev.CANCEL_REJECTED
    assert events[-1]["reason"] == "order already filled"
    assert book_row(db, request.order_id).status == "filled"


def test_cancel_of_unknown_order_leaves_tombstone_so_late_place_never_trades(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request()
    broker.cancel(request.order_id)
    assert kinds(tap.drain()) == [ev.CANCELLED]
    broker.place(request)
    assert kinds(tap.drain()) == [ev.CANCELLED]
    row = book_row(db, request.order_id)
    assert (row.status, row.filled_quantity) == ("cancelled", 0)


def test_ioc_limit_that_cannot_fill_is_cancelled(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request("LIMIT", side="BUY", limit="95.00", tif="IOC")
    broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.CANCELLED]
    assert events[1]["reason"] == "IOC: no immediate fill"
    assert book_row(db, request.order_id).status == "cancelled"


def test_stop_order_is_rejected_as_unsupported(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    broker.place(order_request("STOP"))
    events = tap.drain()
    assert kinds(events) == [ev.REJECTED]
    assert events[0]["reason"] == "order type not supported by the paper exchange yet"


def test_lookup_returns_the_exchange_record(db, broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request("LIMIT", side="BUY", limit="90.00")
    broker_order_id = broker.place(request)
    found = broker.lookup(request.order_id)
    assert (found.broker_order_id, found.status, found.filled_quantity) == (broker_order_id, "open", 0)


def test_lookup_of_unknown_order_is_none(db, broker):
    assert broker.lookup(uuid.uuid4()) is None


def test_get_broker_builds_the_paper_broker_from_config(db):
    assert isinstance(get_broker(), PaperBroker)


def test_get_broker_refuses_xts_until_it_exists():
    app = create_app(config.TestConfig(env_for(BROKER="xts")))
    with pytest.raises(config.ConfigError, match="XTS broker is not implemented"):
        get_broker(app)
