"""The paper exchange on the real services: its book in Postgres, quotes from Redis, events
observed on a queue of our own bound to the namespaced `broker.events` exchange."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from tests.support.factories import set_quote
from tradingapp import create_app
from tradingapp import events as ev
from tradingapp.brokers import get_broker
from tradingapp.brokers.base import ModifyRequest, OrderRequest
from tradingapp.brokers.paper import journal as paper_journal
from tradingapp.brokers.paper.broker import PaperBroker
from tradingapp.brokers.paper.models import PaperEvent, PaperOrder
from tradingapp.brokers.paper.tape import expire_session, match_ticks
from tradingapp.domain import session_end
from tradingapp.extensions import db as _db

INSTRUMENT = 1
D = Decimal

pytestmark = pytest.mark.usefixtures("close_publisher")


@pytest.fixture
def broker(db):
    return get_broker()


def tick(ltp: str, seconds: float = 1.0, instrument_id: int = INSTRUMENT, **book) -> dict:
    """A tick `seconds` from now (ticks older than an order never fill it)."""
    ts = datetime.now(UTC) + timedelta(seconds=seconds)
    return {"instrument_id": instrument_id, "seq": int(ts.timestamp() * 1e6), "ts": ts.isoformat(), "ltp": ltp, **book}


def order_request(order_type="MARKET", side="BUY", quantity=10, limit=None, stop=None, tif="DAY", order_id=None):
    return OrderRequest(
        order_id=order_id or uuid.uuid4(), user_id=uuid.uuid4(), instrument_id=INSTRUMENT, exchange_segment="NSECM",
        exchange_instrument_id=2885, side=side, quantity=quantity, order_type=order_type,
        limit_price=None if limit is None else D(limit), stop_price=None if stop is None else D(stop), product="MIS",
        time_in_force=tif,
    )  # fmt: skip


def modify(order_id, seq=1, quantity=10, limit=None, stop=None) -> ModifyRequest:
    return ModifyRequest(
        order_id, seq, quantity, None if limit is None else D(limit), None if stop is None else D(stop)
    )


def book_row(order_id) -> PaperOrder | None:
    _db.session.rollback()
    return _db.session.get(PaperOrder, order_id, populate_existing=True)


def kinds(events: list[dict]) -> list[str]:
    return [e["type"] for e in events]


def fills(events: list[dict]) -> list[tuple[int, str]]:
    return [(e["quantity"], e["price"]) for e in events if e["type"] == ev.FILL]


def resting_buy(broker, tap, limit="99.00", quantity=10, tif="DAY") -> OrderRequest:
    set_quote(INSTRUMENT, "100.00", bid="99.95", ask="100.05", ask_qty="500")
    request = order_request("LIMIT", quantity=quantity, limit=limit, tif=tif)
    broker.place(request)
    assert kinds(tap.drain()) == [ev.ACCEPTED]
    return request


# -- MARKET ----------------------------------------------------------------------------------
def test_market_buy_fills_at_the_ask_up_to_the_displayed_size(broker, tap):
    set_quote(INSTRUMENT, "100.00", bid="99.95", ask="100.05", bid_qty="900", ask_qty="4")
    request = order_request(quantity=10)
    broker_order_id = broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.FILL]
    fill = ev.parse_event(events[1])
    assert (fill.quantity, fill.price, fill.broker_order_id) == (4, D("100.0500"), broker_order_id)
    assert (fill.event_id, fill.execution_id) == (f"paper:{request.order_id}:fill:1", f"P-{request.order_id.hex}-1")
    row = book_row(request.order_id)
    assert (row.status, row.filled_quantity) == ("open", 4)


def test_market_sell_fills_at_the_bid(broker, tap):
    set_quote(INSTRUMENT, "100.00", bid="99.95", ask="100.05", bid_qty="900", ask_qty="4")
    broker.place(order_request(side="SELL", quantity=10))
    assert fills(tap.drain()) == [(10, "99.9500")]


def test_day_market_remainder_fills_on_following_ticks_at_the_then_touch(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request(quantity=10)
    broker.place(request)
    tap.drain()
    assert match_ticks([tick("100.10", 1, ask="100.15", ask_qty=3)]) == 1
    assert match_ticks([tick("100.20", 2, ask="100.25", ask_qty=50)]) == 1
    events = tap.drain()
    assert fills(events) == [(3, "100.1500"), (3, "100.2500")]
    assert [e["event_id"] for e in events] == [f"paper:{request.order_id}:fill:{n}" for n in (2, 3)]
    row = book_row(request.order_id)
    assert (row.status, row.filled_quantity, row.fill_price) == ("filled", 10, D("100.1400"))


def test_ioc_market_remainder_is_cancelled_right_after_its_fill(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request(quantity=10, tif="IOC")
    broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.FILL, ev.CANCELLED]
    assert events[2]["reason"] == "IOC: unfilled remainder cancelled"
    row = book_row(request.order_id)
    assert (row.status, row.filled_quantity) == ("cancelled", 4)


def test_market_order_without_quote_is_rejected(broker, tap):
    request = order_request()
    broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.REJECTED]
    assert events[0]["reason"] == "no recent market price"
    assert book_row(request.order_id).status == "rejected"


def test_market_order_on_stale_quote_is_rejected(broker, tap):
    set_quote(INSTRUMENT, "2901.35", age_seconds=broker.max_quote_age + 30)
    broker.place(order_request())
    events = tap.drain()
    assert kinds(events) == [ev.REJECTED]
    assert events[0]["reason"] == "no recent market price"


def test_quote_with_only_a_last_price_fills_there(broker, tap):
    set_quote(INSTRUMENT, "2901.35")
    broker.place(order_request(quantity=7))
    assert fills(tap.drain()) == [(7, "2901.3500")]


# -- LIMIT -----------------------------------------------------------------------------------
def test_marketable_limit_fills_at_the_touch_never_worse_than_its_limit(broker, tap):
    set_quote(INSTRUMENT, "100.00", bid="99.95", ask="100.05", ask_qty="6")
    request = order_request("LIMIT", quantity=10, limit="101.00")
    broker.place(request)
    assert fills(tap.drain()) == [(6, "100.0500")]
    assert book_row(request.order_id).status == "open"  # the remainder rests


def test_limit_order_away_from_market_rests(broker, tap):
    request = resting_buy(broker, tap)
    assert book_row(request.order_id).status == "open"


def test_ioc_limit_that_cannot_fill_is_cancelled(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05")
    request = order_request("LIMIT", limit="95.00", tif="IOC")
    broker.place(request)
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.CANCELLED]
    assert events[1]["reason"] == "IOC: no immediate fill"


def test_crossing_ticks_fill_resting_limit_at_its_limit_within_displayed_size(broker, tap):
    request = resting_buy(broker, tap, limit="99.00")
    assert match_ticks([tick("98.90", 1, ask="98.95", ask_qty=4)]) == 1
    assert match_ticks([tick("99.00", 2, ask="99.00", ask_qty=100)]) == 1
    events = tap.drain()
    assert fills(events) == [(4, "99.0000"), (6, "99.0000")]
    assert book_row(request.order_id).status == "filled"


def test_tick_without_bid_or_ask_crosses_on_its_last_price(broker, tap):
    request = resting_buy(broker, tap, limit="99.00")
    assert match_ticks([tick("98.95", 1)]) == 1
    assert fills(tap.drain()) == [(10, "99.0000")]
    assert book_row(request.order_id).status == "filled"


def test_non_crossing_tick_leaves_limit_order_resting(broker, tap):
    request = resting_buy(broker, tap, limit="99.00")
    ticks = [tick("99.00", 1, ask="99.05", ask_qty=10), tick("50", 1, instrument_id=INSTRUMENT + 1, ask="50")]
    assert match_ticks(ticks) == 0
    assert tap.drain() == []
    assert book_row(request.order_id).status == "open"


def test_tick_older_than_the_order_never_fills_it(broker, tap):
    request = resting_buy(broker, tap, limit="99.00")
    assert match_ticks([tick("98.00", -5, ask="98.00")]) == 0
    assert book_row(request.order_id).filled_quantity == 0


def test_redelivered_tick_batch_never_fills_twice(broker, tap):
    request = resting_buy(broker, tap, limit="99.00")
    batch = [tick("98.90", 1, ask="98.95", ask_qty=4)]
    assert match_ticks(batch) == 1
    assert match_ticks(batch) == 0
    assert fills(tap.drain()) == [(4, "99.0000")]
    assert book_row(request.order_id).filled_quantity == 4


def test_malformed_ticks_are_skipped(db):
    assert match_ticks([{"instrument_id": "x", "ltp": "1"}, {"ltp": "nan"}, "not a tick", {"instrument_id": 1}]) == 0


# -- STOP and STOP_LIMIT ---------------------------------------------------------------------
def test_stop_rests_untriggered_then_triggers_on_the_last_price_and_fills_at_the_ask(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05")
    request = order_request("STOP", quantity=10, stop="101.00")
    broker.place(request)
    assert kinds(tap.drain()) == [ev.ACCEPTED]
    assert match_ticks([tick("100.95", 1, ask="101.50", ask_qty=100)]) == 0
    assert book_row(request.order_id).triggered_at is None
    assert match_ticks([tick("101.00", 2, ask="101.05", ask_qty=100)]) == 1
    assert fills(tap.drain()) == [(10, "101.0500")]
    row = book_row(request.order_id)
    assert row.status == "filled" and row.triggered_at is not None


def test_stop_already_through_on_arrival_fills_at_once(broker, tap):
    set_quote(INSTRUMENT, "98.00", bid="97.95", ask="98.05", bid_qty="3")
    broker.place(order_request("STOP", side="SELL", quantity=5, stop="99.00"))
    assert fills(tap.drain()) == [(3, "97.9500")]


def test_stop_limit_triggers_then_rests_at_its_limit_until_crossed(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05")
    request = order_request("STOP_LIMIT", quantity=10, stop="101.00", limit="101.10")
    broker.place(request)
    tap.drain()
    assert match_ticks([tick("101.00", 1, ask="101.20", ask_qty=100)]) == 0  # triggered, limit not reached
    assert book_row(request.order_id).triggered_at is not None
    assert match_ticks([tick("101.05", 2, ask="101.10", ask_qty=100)]) == 1
    assert fills(tap.drain()) == [(10, "101.1000")]


# -- the session end -------------------------------------------------------------------------
def session_end_after(created: datetime) -> datetime:
    return session_end.session_end_after(created, time(15, 30), ZoneInfo("Asia/Kolkata"))


def test_session_end_expires_working_orders_as_of_that_end_once(broker, tap):
    request = resting_buy(broker, tap)
    created = book_row(request.order_id).created_at
    assert expire_session(datetime.now(UTC)) == 0
    assert expire_session(datetime.now(UTC) + timedelta(days=1, minutes=1)) == 1
    events = tap.drain()
    assert kinds(events) == [ev.EXPIRED]
    assert events[0]["event_id"] == f"paper:{request.order_id}:expired"
    assert datetime.fromisoformat(events[0]["ts"]) == session_end_after(created)
    assert expire_session(datetime.now(UTC) + timedelta(days=1, minutes=1)) == 0
    assert tap.drain() == []
    assert broker.lookup(request.order_id).status == "expired"


def test_tick_after_the_session_end_never_fills(broker, tap):
    request = resting_buy(broker, tap)
    end = session_end_after(book_row(request.order_id).created_at)
    late = (end - datetime.now(UTC)).total_seconds() + 1
    assert match_ticks([tick("98.00", late, ask="98.00")]) == 0


def test_cancel_after_the_session_end_finds_the_order_expired(broker, tap):
    request = resting_buy(broker, tap)
    age_order(request.order_id, days=2)
    broker.cancel(request.order_id)
    events = tap.drain()
    assert kinds(events) == [ev.EXPIRED]
    assert book_row(request.order_id).status == "expired"


def age_order(order_id, days: int) -> None:
    """Move an order's creation back in time, as if it had rested that long."""
    past = datetime.now(UTC) - timedelta(days=days)
    _db.session.execute(sa.update(PaperOrder).where(PaperOrder.order_id == order_id).values(created_at=past))
    _db.session.commit()


def test_the_tick_path_expires_orders_at_most_every_few_seconds(broker, tap, monkeypatch):
    monkeypatch.setattr(broker, "next_expiry", 0.0)
    first = resting_buy(broker, tap)
    age_order(first.order_id, days=2)
    broker.on_ticks([])
    assert kinds(tap.drain()) == [ev.EXPIRED]
    second = resting_buy(broker, tap)
    age_order(second.order_id, days=2)
    broker.on_ticks([])  # within EXPIRE_EVERY_SECONDS of the last run
    assert tap.drain() == []
    assert book_row(second.order_id).status == "open"


# -- modify ----------------------------------------------------------------------------------
def test_modify_applies_new_terms_and_publishes_modified(broker, tap):
    request = resting_buy(broker, tap, limit="95.00")
    broker.modify(modify(request.order_id, seq=1, quantity=15, limit="96.00"))
    [event] = tap.drain()
    assert (event["type"], event["event_id"]) == (ev.MODIFIED, f"paper:{request.order_id}:modified:1")
    assert (event["quantity"], event["limit_price"], event["stop_price"]) == (15, "96.0000", None)
    row = book_row(request.order_id)
    assert (row.quantity, row.limit_price, row.modify_seq) == (15, D("96.00"), 1)


def test_modify_that_makes_the_order_marketable_fills_it(broker, tap):
    request = resting_buy(broker, tap, limit="95.00")
    broker.modify(modify(request.order_id, quantity=10, limit="101.00"))
    events = tap.drain()
    assert kinds(events) == [ev.MODIFIED, ev.FILL]
    assert fills(events) == [(10, "100.0500")]


def test_tick_older_than_the_modification_never_fills_the_new_terms(broker, tap):
    request = resting_buy(broker, tap, limit="95.00")
    before = tick("96.00", 0, ask="96.00")  # after the order, before its modification
    broker.modify(modify(request.order_id, quantity=10, limit="97.00"))
    tap.drain()
    assert match_ticks([before]) == 0
    assert match_ticks([tick("96.00", 1, ask="96.00")]) == 1


def test_modify_of_a_filled_order_is_rejected(broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request()
    broker.place(request)
    tap.drain()
    broker.modify(modify(request.order_id, quantity=20))
    [event] = tap.drain()
    assert (event["type"], event["event_id"]) == (ev.MODIFY_REJECTED, f"paper:{request.order_id}:modify_rejected:1")
    assert event["reason"] == "order already filled"


def test_modify_of_a_cancelled_order_is_rejected(broker, tap):
    request = resting_buy(broker, tap)
    broker.cancel(request.order_id)
    tap.drain()
    broker.modify(modify(request.order_id, quantity=20, limit="95.00"))
    assert [e["reason"] for e in tap.drain()] == ["order is cancelled"]


def test_modify_to_no_more_than_the_filled_quantity_is_rejected(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request(quantity=10)
    broker.place(request)
    tap.drain()
    broker.modify(modify(request.order_id, quantity=4))
    [event] = tap.drain()
    assert event["reason"] == "quantity 4 is not above the filled quantity 4"
    assert book_row(request.order_id).quantity == 10


def test_modify_of_an_unknown_order_is_rejected(broker, tap):
    order_id = uuid.uuid4()
    broker.modify(modify(order_id, seq=3))
    [event] = tap.drain()
    assert (event["type"], event["event_id"], event["reason"]) == (
        ev.MODIFY_REJECTED, f"paper:{order_id}:modify_rejected:3", "unknown order",
    )  # fmt: skip
    assert book_row(order_id) is None


def test_repeated_modify_seq_resends_the_same_answer_and_changes_nothing(broker, tap):
    request = resting_buy(broker, tap, limit="95.00")
    broker.modify(modify(request.order_id, seq=1, quantity=15, limit="96.00"))
    first = tap.drain()
    broker.modify(modify(request.order_id, seq=1, quantity=30, limit="90.00"))
    again = [e for e in tap.drain() if e["type"] == ev.MODIFIED]
    assert again == first
    row = book_row(request.order_id)
    assert (row.quantity, row.limit_price) == (15, D("96.00"))


def test_modify_of_a_stop_moves_its_trigger(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05")
    request = order_request("STOP", quantity=5, stop="105.00")
    broker.place(request)
    tap.drain()
    broker.modify(modify(request.order_id, quantity=5, stop="100.00"))  # already through: triggers now
    events = tap.drain()
    assert kinds(events) == [ev.MODIFIED, ev.FILL]
    assert events[0]["stop_price"] == "100.0000"


# -- cancel ----------------------------------------------------------------------------------
def test_cancel_open_order_publishes_cancelled(broker, tap):
    request = resting_buy(broker, tap)
    broker.cancel(request.order_id)
    events = tap.drain()
    assert kinds(events) == [ev.CANCELLED]
    assert events[0]["event_id"] == f"paper:{request.order_id}:cancelled"
    assert book_row(request.order_id).status == "cancelled"


def test_cancel_of_a_partly_filled_order_keeps_its_fills(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request(quantity=10)
    broker.place(request)
    tap.drain()
    broker.cancel(request.order_id)
    assert kinds(tap.drain()) == [ev.CANCELLED]
    found = broker.lookup(request.order_id)
    assert (found.status, found.filled_quantity) == ("cancelled", 4)


def test_cancel_filled_order_publishes_cancel_rejected(broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request()
    broker.place(request)
    tap.drain()
    broker.cancel(request.order_id)
    events = tap.drain()
    assert kinds(events) == [ev.ACCEPTED, ev.FILL, ev.CANCEL_REJECTED]
    assert events[-1]["reason"] == "order already filled"
    assert book_row(request.order_id).status == "filled"


def test_cancel_of_unknown_order_leaves_tombstone_so_late_place_never_trades(broker, tap):
    set_quote(INSTRUMENT, "100.00")
    request = order_request()
    broker.cancel(request.order_id)
    assert kinds(tap.drain()) == [ev.CANCELLED]
    broker.place(request)
    assert kinds(tap.drain()) == [ev.CANCELLED]
    row = book_row(request.order_id)
    assert (row.status, row.filled_quantity) == ("cancelled", 0)


# -- re-sending and lookup -------------------------------------------------------------------
def test_placing_twice_keeps_one_order_and_republishes_same_events(broker, tap):
    set_quote(INSTRUMENT, "100.05")
    request = order_request()
    first = broker.place(request)
    first_events = tap.drain()
    set_quote(INSTRUMENT, "120.00")  # a new price must not create a second fill
    assert broker.place(request) == first
    assert tap.drain() == first_events
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(PaperOrder)) == 1


def test_lookup_resends_every_event_in_order_with_the_same_ids_and_times(broker, tap):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request("LIMIT", quantity=10, limit="100.10")
    broker.place(request)
    match_ticks([tick("100.00", 1, ask="100.00", ask_qty=2)])
    broker.modify(modify(request.order_id, seq=1, quantity=12, limit="99.00"))
    broker.modify(modify(request.order_id, seq=2, quantity=6, limit="99.00"))
    broker.cancel(request.order_id)
    published = tap.drain()
    assert kinds(published) == [ev.ACCEPTED, ev.FILL, ev.FILL, ev.MODIFIED, ev.MODIFY_REJECTED, ev.CANCELLED]
    found = broker.lookup(request.order_id)
    assert tap.drain() == published
    assert (found.status, found.filled_quantity) == ("cancelled", 6)


def test_crash_between_commit_and_publish_is_repaired_by_lookup(broker, tap, monkeypatch):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request(quantity=10)

    def crash(_bodies):
        raise RuntimeError("process died before publishing")

    monkeypatch.setattr(paper_journal, "publish", crash)
    with pytest.raises(RuntimeError):
        broker.place(request)
    monkeypatch.undo()
    assert tap.drain() == []
    journal = _db.session.scalars(sa.select(PaperEvent).order_by(PaperEvent.pos)).all()
    found = broker.lookup(request.order_id)
    events = tap.drain()
    assert [e["event_id"] for e in events] == [f"paper:{request.order_id}:accepted", f"paper:{request.order_id}:fill:1"]
    assert [datetime.fromisoformat(e["ts"]) for e in events] == [entry.ts for entry in journal]
    assert (found.status, found.filled_quantity) == ("open", 4)


def test_events_left_unsent_by_a_crash_go_out_before_the_next_fill(broker, tap, monkeypatch):
    set_quote(INSTRUMENT, "100.00", ask="100.05", ask_qty="4")
    request = order_request(quantity=10)
    monkeypatch.setattr(paper_journal, "publish", lambda _bodies: (_ for _ in ()).throw(RuntimeError("died")))
    with pytest.raises(RuntimeError):
        broker.place(request)
    monkeypatch.undo()
    assert match_ticks([tick("100.10", 1, ask="100.15", ask_qty=50)]) == 1
    assert kinds(tap.drain()) == [ev.ACCEPTED, ev.FILL, ev.FILL]


def test_lookup_returns_the_exchange_record(broker, tap):
    request = resting_buy(broker, tap)
    found = broker.lookup(request.order_id)
    assert (found.broker_order_id, found.status, found.filled_quantity) == (
        book_row(request.order_id).broker_order_id, "open", 0,
    )  # fmt: skip


def test_lookup_of_unknown_order_is_none(db, broker):
    assert broker.lookup(uuid.uuid4()) is None


# -- concurrency -----------------------------------------------------------------------------
def run_together(app, *batches) -> None:
    """match_ticks on each batch in its own thread, released at the same moment."""
    barrier = threading.Barrier(len(batches))
    errors = []

    def work(batch):
        with app.app_context():
            barrier.wait()
            try:
                match_ticks(batch)
            except Exception as exc:  # surfaced below, in the test's thread
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []


def journal_fills(order_id) -> list[int]:
    _db.session.rollback()
    return list(_db.session.scalars(sa.select(PaperEvent.quantity).filter_by(order_id=order_id, type=ev.FILL)))


def test_concurrent_match_ticks_on_one_batch_fill_once(app, broker, tap):
    request = resting_buy(broker, tap, limit="99.00")
    batch = [tick("98.90", 1, ask="98.95", ask_qty=100)]
    run_together(app, batch, batch)
    assert journal_fills(request.order_id) == [10]
    assert fills(tap.drain()) == [(10, "99.0000")]


def test_concurrent_match_ticks_never_fill_beyond_the_quantity(app, broker, tap):
    for _ in range(5):
        request = resting_buy(broker, tap, limit="99.00")
        run_together(app, [tick("98.90", 1, ask="98.95", ask_qty=6)], [tick("98.90", 2, ask="98.95", ask_qty=6)])
        row = book_row(request.order_id)
        assert sum(journal_fills(request.order_id)) == row.filled_quantity <= 10
        published = [e for e in tap.drain() if e["order_id"] == str(request.order_id)]
        by_id = {e["event_id"]: e for e in published}  # a re-send of an event not yet marked out is the same body
        assert all(by_id[e["event_id"]] == e for e in published)
        assert sum(q for q, _ in fills(list(by_id.values()))) == row.filled_quantity


@pytest.fixture
def sqlite_app(env, tmp_path):
    app = create_app(config.TestConfig({**env, "DB_HOST": "", "SQLITE_PATH": str(tmp_path / "paper.db")}))
    with app.app_context():
        upgrade(revision="heads")
    yield app
    publisher = app.extensions.pop("tradingapp.publisher", None)
    if publisher is not None:
        publisher.close()
    with app.app_context():
        _db.engine.dispose()


def test_concurrent_match_ticks_on_sqlite_fill_once(sqlite_app, tap):
    with sqlite_app.app_context():
        set_quote(INSTRUMENT, "100.00", ask="100.05")
        request = order_request("LIMIT", limit="99.00")
        get_broker(sqlite_app).place(request)
        batch = [tick("98.90", 1, ask="98.95", ask_qty=100)]
        run_together(sqlite_app, batch, batch, batch)
        row = _db.session.get(PaperOrder, request.order_id)
        assert (row.status, row.fill_count) == ("filled", 1)
    assert fills(tap.drain()) == [(10, "99.0000")]


# -- wiring ----------------------------------------------------------------------------------
def test_get_broker_builds_the_paper_broker_from_config(db):
    assert isinstance(get_broker(), PaperBroker)
