"""The XTS broker's order calls and market data against the simulator process: the broker's
refusals mapped to our events (RMS reject via the order's rows, a place refused at once, modify and
cancel refusals), modify and cancel through our API, lookup re-publishing the order's events, the
cancel of an order the broker never got, positions and balance, quotes (GET /quotes falling back to
the broker), the instrument master and OHLC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

import config
from tests.support import wait_until as wait_for
from tests.support.env import test_env as env_for
from tests.support.factories import new_order, reload, set_quote
from tests.support.jobs import run_worker
from tests.support.xts import (
    MARKET,
    at_simulator,
    claimed,
    filled_and_settled,
    past_the_horizon,
    place_via_api,
    settle,
    wait_sim_status,
)
from tradingapp import create_app
from tradingapp import events as ev
from tradingapp.brokers import get_broker
from tradingapp.brokers.base import ModifyRequest
from tradingapp.brokers.xts.broker import XtsBroker
from tradingapp.brokers.xts.errors import XtsPlaceInFlight, XtsRejected, XtsResponseError, XtsUnavailable
from tradingapp.brokers.xts.marketdata import parse_master
from tradingapp.models import Instrument
from tradingapp.services.orders.submission import claim_for_submission

pytestmark = pytest.mark.usefixtures("close_publisher")


# -- refusals ------------------------------------------------------------------------------------


def test_rms_rejection_makes_our_order_rejected_with_the_brokers_reason(xts_app, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    xts.control("risk", {"reject_next": 1})
    order_id = place_via_api(client, trader_headers)
    run_worker(xts_app)
    [app_order_id] = at_simulator(xts, order_id)
    wait_sim_status(xts, app_order_id, "Rejected")
    get_broker(xts_app).lookup(order_id)  # the socket bridge would deliver the same row
    settle(tap)
    order = reload(order_id)
    assert order.status == "REJECTED"
    assert order.reject_reason.startswith("RMS : Margin Exceeds for Client SIMUSER1")


def test_a_place_refused_at_once_rejects_our_order_with_the_reason(broker, xts, trader, tap, db):
    instrument = Instrument(exchange_segment="NSECM", exchange_instrument_id=999999, symbol="GHOST", name="Ghost",
                            series="EQ", lot_size=1, tick_size=Decimal("0.05"))  # fmt: skip
    db.session.add(instrument)
    db.session.commit()
    set_quote(instrument.id, "100.00")
    request, _ = claim_for_submission(new_order(trader, instrument_id=instrument.id, quantity=10).id)
    assert broker.place(request) == ""
    [event] = settle(tap)
    assert event["event_id"] == f"xts:rejected:{request.order_id}:place"
    order = reload(request.order_id)
    assert order.status == "REJECTED"
    assert order.reject_reason == 'Bad Request: "exchangeInstrumentID" is not a known instrument'
    assert xts.state()["orders"] == 0


# -- modify and cancel -------------------------------------------------------------------------------
def resting_order(xts_app, xts, client, headers, tap):
    order_id = place_via_api(client, headers, order_type="LIMIT", limit_price="2800.00")
    run_worker(xts_app)
    [app_order_id] = at_simulator(xts, order_id)
    wait_sim_status(xts, app_order_id, "New")
    settle(tap)
    assert reload(order_id).status == "OPEN"
    return order_id, app_order_id


def test_modify_through_our_api_replaces_the_order_at_the_broker(xts_app, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    order_id, app_order_id = resting_order(xts_app, xts, client, trader_headers, tap)
    response = client.patch(f"/api/v1/orders/{order_id}", json={"quantity": 20, "limit_price": "2810.00"},
                            headers=trader_headers)  # fmt: skip
    assert response.status_code == 202, response.get_json()
    run_worker(xts_app)
    row = wait_sim_status(xts, app_order_id, "Replaced")
    assert (row["OrderQuantity"], row["OrderPrice"]) == (20, 2810.0)
    get_broker(xts_app).lookup(order_id)
    assert [e["type"] for e in settle(tap)] == [ev.ACCEPTED, ev.MODIFIED]
    order = reload(order_id)
    assert (order.status, order.quantity, order.limit_price) == ("OPEN", 20, Decimal("2810.00"))


def test_cancel_through_our_api_cancels_at_the_broker(xts_app, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    order_id, app_order_id = resting_order(xts_app, xts, client, trader_headers, tap)
    assert client.delete(f"/api/v1/orders/{order_id}", headers=trader_headers).status_code == 202
    run_worker(xts_app)
    wait_sim_status(xts, app_order_id, "Cancelled")
    get_broker(xts_app).lookup(order_id)
    settle(tap)
    assert reload(order_id).status == "CANCELLED"
    assert len(at_simulator(xts, order_id)) == 1


def test_modify_and_cancel_of_a_filled_order_are_refused_with_the_reason(broker, xts, trader, tap):
    request, _ = filled_and_settled(broker, xts, trader, tap)
    broker.modify(ModifyRequest(request.order_id, 1, 20, None, None))
    broker.cancel(request.order_id)
    refusals = tap.drain()
    assert [e["type"] for e in refusals] == [ev.MODIFY_REJECTED, ev.CANCEL_REJECTED]
    assert refusals[0]["event_id"] == f"xts:modify_rejected:{request.order_id}:1" and refusals[0]["seq"] == 1
    assert refusals[0]["reason"] == "Order is in Filled state, modification not allowed"
    assert refusals[1]["reason"] == "Order is in Filled state, cancellation not allowed"


def test_cancel_of_an_order_the_broker_never_got_leaves_a_tombstone(broker, xts, trader, tap):
    request = claimed(trader)
    broker.cancel(request.order_id)  # e.g. the worker died between its claim and the place
    [cancelled] = settle(tap)
    assert (cancelled["type"], cancelled["reason"]) == (ev.CANCELLED, "cancelled before the order arrived")
    assert broker.place(request) == ""  # a late place never goes out
    assert xts.state()["requests"].get("place", 0) == 0
    assert reload(request.order_id).status == "CANCELLED"


def test_a_cancel_while_a_place_may_still_land_is_retried_not_tombstoned(broker, xts, trader, tap):
    """The place timed out while the broker was still working on it: a tombstone now would call
    CANCELLED an order that is about to be live at the broker."""
    request = claimed(trader, order_type="LIMIT", limit_price="2800.00")  # rests below the market
    xts.faults(latency_ms={"place": 2500})
    with pytest.raises(XtsUnavailable):
        broker.place(request)  # the client gives up after 1 s
    xts.faults(latency_ms={"place": 0})
    with pytest.raises(XtsPlaceInFlight):
        broker.cancel(request.order_id)
    assert tap.drain() == [] and not broker._tombstoned(request.order_id)
    app_order_id = wait_for(lambda: at_simulator(xts, request.order_id), 5)[0]  # the place lands
    wait_sim_status(xts, app_order_id, "New")
    broker.cancel(request.order_id)  # the cancel's retry: found, cancelled at the broker
    wait_sim_status(xts, app_order_id, "Cancelled")
    broker.lookup(request.order_id)
    settle(tap)
    assert reload(request.order_id).status == "CANCELLED"


def test_a_cancel_past_the_horizon_of_a_place_that_never_landed_leaves_a_tombstone(xts_app, broker, xts, trader,
                                                                                   tap):  # fmt: skip
    request = claimed(trader)
    xts.faults(fail_next={"place": {"count": 1, "status": 502}})  # a gateway's answer: nothing was done
    with pytest.raises(XtsUnavailable):
        broker.place(request)
    with pytest.raises(XtsPlaceInFlight):
        broker.cancel(request.order_id)
    past_the_horizon(xts_app, request.order_id)
    broker.cancel(request.order_id)  # the book still lacks it after the horizon: it never will have it
    [cancelled] = settle(tap)
    assert (cancelled["type"], cancelled["reason"]) == (ev.CANCELLED, "cancelled before the order arrived")
    assert broker.place(request) == ""  # a late resend never goes out
    assert xts.state()["requests"]["place"] == 1 and at_simulator(xts, request.order_id) == []


def test_a_retried_cancel_whose_first_answer_was_lost_settles_cancelled(xts_app, broker, xts, client, trader_headers,
                                                                        tap):  # fmt: skip
    """The first cancel timed out but was done at the broker; its retry is refused ("already
    Cancelled"): the history's Cancelled row answers, not a cancel_rejected that reopens the order."""
    set_quote(1, MARKET)
    order_id, app_order_id = resting_order(xts_app, xts, client, trader_headers, tap)
    assert client.delete(f"/api/v1/orders/{order_id}", headers=trader_headers).status_code == 202
    xts.faults(latency_ms={"cancel": 1500})
    with pytest.raises(XtsUnavailable):
        broker.cancel(order_id)  # the job's first attempt
    wait_sim_status(xts, app_order_id, "Cancelled")
    xts.faults(latency_ms={"cancel": 0})
    broker.cancel(order_id)  # RQ's retry: refused by the broker
    assert xts.state()["requests"]["cancel"] == 2
    events = settle(tap)
    assert ev.CANCEL_REJECTED not in [e["type"] for e in events]
    assert f"xts:cancelled:{app_order_id}" in [e["event_id"] for e in events]
    assert reload(order_id).status == "CANCELLED"


def test_a_retried_modify_while_the_first_is_replacing_is_not_a_rejection(xts_app, broker, xts, client,
                                                                          trader_headers, tap):  # fmt: skip
    set_quote(1, MARKET)
    order_id, app_order_id = resting_order(xts_app, xts, client, trader_headers, tap)
    body = {"quantity": 20, "limit_price": "2810.00"}
    assert client.patch(f"/api/v1/orders/{order_id}", json=body, headers=trader_headers).status_code == 202
    request = ModifyRequest(order_id, 1, 20, Decimal("2810.00"), None)
    xts.faults(latency_ms={"modify": 1500}, ack_delay_ms=2500)
    with pytest.raises(XtsUnavailable):
        broker.modify(request)  # the job's first attempt: timed out, the replace under way
    wait_sim_status(xts, app_order_id, "PendingReplace")
    xts.faults(latency_ms={"modify": 0})
    broker.modify(request)  # the retry: refused while PendingReplace
    assert xts.state()["requests"]["modify"] == 2
    assert ev.MODIFY_REJECTED not in [e["type"] for e in settle(tap)]
    assert reload(order_id).status == "MODIFY_PENDING"
    wait_sim_status(xts, app_order_id, "Replaced")
    broker.lookup(order_id)
    settle(tap)
    order = reload(order_id)
    assert (order.status, order.quantity, order.limit_price) == ("OPEN", 20, Decimal("2810.00"))


# -- lookup --------------------------------------------------------------------------------------
def test_lookup_republishes_the_same_events_each_time(broker, xts, trader, tap):
    xts.control("market", {"display_lots": 4})  # fills of 4 at a time: partial fills
    request = claimed(trader)
    app_order_id = int(broker.place(request))
    wait_sim_status(xts, app_order_id, "PartiallyFilled", "Filled")
    tap.drain()
    first = broker.lookup(request.order_id)
    events = tap.drain()
    second = broker.lookup(request.order_id)
    assert [e["event_id"] for e in tap.drain()] == [e["event_id"] for e in events]
    assert first == second and first.broker_order_id == str(app_order_id)
    fills = [e for e in events if e["type"] == ev.FILL]
    assert sum(e["quantity"] for e in fills) == first.filled_quantity > 0
    assert len({e["execution_id"] for e in fills}) == len(fills)


def test_lookup_under_the_brokers_book_rate_limit_backs_off_and_answers(broker, xts, trader, tap):
    xts.faults(rate_limit=True, book_rate=1)  # order book and order history: 1 request/s together
    request = claimed(trader)
    app_order_id = int(broker.place(request))
    wait_sim_status(xts, app_order_id, "Filled")
    known = broker.lookup(request.order_id)  # the book (to find it), then its history: a 429 between
    assert (known.broker_order_id, known.status) == (str(app_order_id), "filled")
    assert xts.state()["requests"]["orders"] >= 3


def test_lookup_of_an_order_never_placed_is_none(broker, xts, trader, tap):
    assert broker.lookup(claimed(trader).order_id) is None
    assert tap.drain() == []


def test_a_stale_order_book_never_regresses_the_lookup(broker, xts, trader, tap):
    request, _ = filled_and_settled(broker, xts, trader, tap)
    xts.faults(stale_order_book=5)  # the book shows each order's previous row
    known = broker.lookup(request.order_id)
    assert (known.status, known.filled_quantity) == ("filled", 10)
    settle(tap)
    assert (reload(request.order_id).status, reload(request.order_id).filled_quantity) == ("FILLED", 10)


# -- portfolio -----------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", ["positionList", "flat"])
def test_positions_in_both_shapes(broker, xts, trader, tap, shape):
    xts.control("style", {"positions_shape": shape})
    app_order_id = int(broker.place(claimed(trader)))
    wait_sim_status(xts, app_order_id, "Filled")
    [position] = broker.positions()
    assert (position["exchange_segment"], position["exchange_instrument_id"]) == ("NSECM", 2885)
    assert (position["quantity"], position["product"]) == (10, "MIS")
    assert position["buy_average_price"] > 0 and isinstance(position["mtm"], Decimal)


def test_balance(broker, xts):
    balance = broker.balance()
    assert balance["cash_available"] == Decimal("10000000.00")


# -- market data ---------------------------------------------------------------------------------
def test_quote_is_shaped_like_the_cache(broker, xts):
    xts.price("NSECM", 2885, "2901.50")
    instrument = Instrument(exchange_segment="NSECM", exchange_instrument_id=2885)
    quote = broker.quote(instrument)
    assert quote["ltp"] == "2901.5" and Decimal(quote["bid"]) < Decimal(quote["ask"])
    assert isinstance(quote["bid_qty"], int) and isinstance(quote["volume"], int)
    assert datetime.fromisoformat(quote["ts"]) > datetime.now(UTC) - timedelta(minutes=1)
    assert broker.quote(Instrument(exchange_segment="NSECM", exchange_instrument_id=424242)) is None


def test_get_quotes_falls_back_to_the_brokers_quote(xts_app, xts, client, trader_headers):
    xts.price("NSECM", 2885, "2902.00")
    response = client.get("/api/v1/quotes?instrument_ids=1", headers=trader_headers)
    assert response.status_code == 200
    [item] = response.get_json()["items"]
    assert (item["instrument_id"], item["ltp"], item["stale"]) == (1, "2902.0", False)


def test_quotes_are_asked_fifty_at_a_time(broker, xts):
    keys = [("NSECM", 2885)] * 120
    assert len(broker.market_data().quotes(keys)) == 120
    assert xts.state()["requests"]["quotes"] == 3


def test_instrument_master_parses_every_line_of_the_simulator(broker, xts):
    result = broker.market_data().instrument_master(["NSECM", "NSEFO"])
    assert result.skipped == 0
    by_id = {i.exchange_instrument_id: i for i in result.instruments}
    assert set(by_id) == {2885, 11536, 1594, 1333, 3045, 35001, 35002}
    reliance, future, option = by_id[2885], by_id[35001], by_id[35002]
    assert (reliance.symbol, reliance.lot_size, reliance.tick_size, reliance.isin) == (
        "RELIANCE-EQ", 1, Decimal("0.05"), "INE002A01018")  # fmt: skip
    assert (future.lot_size, future.expiry is not None, future.option_type) == (75, True, None)
    assert (option.strike, option.option_type, option.underlying_instrument_id) == (Decimal("24000"), "CE", 26000)


def test_instrument_master_skips_and_counts_bad_lines():
    good = "NSECM|2885|8|RELIANCE|RELIANCE-EQ|EQ|RELIANCE-EQ|1100100002885|3480|2320|100000|0.05|1|1"  # old server
    text = "\n".join([
        good,
        "NSECM|2885|8|RELIANCE",  # too short
        good.replace("|0.05|", "|zero|"),  # tick size
        "NSEFO|35002|2|NIFTY|X|OPTIDX|X|1|1|1|1800|0.05|75|1|26000|Nifty 50|2026-01-29T14:30:00|24000|9|X",  # type 9
        "XXX|1|8|A|A|EQ|A|1|1|1|1|0.05|1|1",  # segment
        "NSECM|1|4|SPREAD|S|EQ|S|1|1|1|1|0.05|1|1",  # a type we do not trade
        "",
    ])  # fmt: skip
    result = parse_master(text)
    assert ([i.exchange_instrument_id for i in result.instruments], result.skipped) == ([2885], 5)
    with pytest.raises(XtsResponseError):
        parse_master({"not": "text"})


def test_ohlc_bars_in_utc(broker, xts):
    start = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)  # Monday 09:15 IST
    bars = broker.market_data().ohlc("NSECM", 2885, start, start + timedelta(minutes=5), 60)
    assert [b.ts for b in bars] == [start + timedelta(minutes=m) for m in range(5)]
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high and b.volume > 0 for b in bars)


def test_market_data_errors_are_clear(broker, xts):
    with pytest.raises(XtsRejected, match="compressionValue"):
        broker.market_data().ohlc("NSECM", 2885, datetime.now(UTC), datetime.now(UTC), 7)
    xts.faults(malformed={"quotes": {"count": 1, "kind": "wrong_shape"}})
    with pytest.raises(XtsResponseError):
        broker.market_data().quotes([("NSECM", 2885)])


# -- wiring --------------------------------------------------------------------------------------
def test_get_broker_builds_the_xts_broker(xts_app):
    assert isinstance(get_broker(xts_app), XtsBroker)


def test_get_broker_refuses_xts_without_its_credentials():
    app = create_app(config.TestConfig(env_for(BROKER="xts", XTS_API_URL="http://xts.example")))
    with pytest.raises(config.ConfigError, match="XTS_API_KEY, XTS_API_SECRET"):
        get_broker(app)
