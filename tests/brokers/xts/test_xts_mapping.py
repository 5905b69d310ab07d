"""XTS rows -> our broker events (tradingapp/brokers/xts/mapping.py): pure functions, no services.

Rows come from the simulator's own exchange (the shapes the broker sends, both date styles) and,
for the quirks, from hand-made variants."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradingapp import events as ev
from tradingapp.brokers.base import BrokerError
from tradingapp.brokers.xts import mapping as xm
from tradingapp.brokers.xts.errors import XtsResponseError
from tradingapp.simulators.xts.exchange import Exchange
from tradingapp.simulators.xts.instruments import default_universe
from tradingapp.simulators.xts.market import Market
from tradingapp.simulators.xts.rows import RowStyle

NOW = datetime(2026, 1, 5, 5, 0, 0, 123456, tzinfo=UTC)  # 10:30:00.123456 IST


def make_exchange(style: RowStyle | None = None) -> Exchange:
    market = Market(default_universe(NOW.date()), random.Random(1), lambda: NOW)
    published: list[tuple[str, dict]] = []
    ex = Exchange(market, lambda: NOW, lambda kind, login, row: published.append((kind, row)), style)
    ex.published = published
    book = market.book("NSECM", 2885)
    book.bid, book.ask, book.bid_size, book.ask_size = Decimal("2899.95"), Decimal("2900.05"), 1000, 1000
    return ex


def place(ex: Exchange, unique_id: str, **overrides):
    params = {"orderSide": "BUY", "orderType": "MARKET", "productType": "MIS", "timeInForce": "DAY",
              "orderQuantity": 10, "disclosedQuantity": 0, "limitPrice": Decimal(0), "stopPrice": Decimal(0),
              "orderUniqueIdentifier": unique_id} | overrides  # fmt: skip
    order = ex.accept("SIMUSER1", "SIMUSER1", ex.market.book("NSECM", 2885).instrument, params)
    ex.process(order)
    return order


def published(ex: Exchange, kind: str) -> list[dict]:
    return [row for k, row in ex.published if k == kind]


def test_a_filled_market_order_maps_to_accepted_and_one_fill_per_execution():
    ex = make_exchange()
    oid = uuid.uuid4()
    order = place(ex, str(oid))
    rows = [xm.parse_order_row(r) for r in order.history]
    trades = [xm.parse_trade_row(t) for t in published(ex, "trade")]
    events = xm.order_events(rows, trades)
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.FILL]
    accepted, fill = events
    assert accepted["event_id"] == f"xts:accepted:{order.app_order_id}"
    assert fill["event_id"] == f"xts:fill:{order.app_order_id}:{order.fills[0].execution_id}"
    assert (fill["quantity"], fill["price"], fill["order_id"]) == (10, "2900.05", str(oid))
    assert fill["broker_order_id"] == str(order.app_order_id)
    for event in events:
        ev.parse_event(event)  # what the consumer will accept
    summary = xm.summarize(rows, trades)
    assert (summary.status, summary.filled_quantity, summary.app_order_id) == ("filled", 10, order.app_order_id)


def test_ids_are_the_same_from_the_socket_row_and_the_lookup():
    ex = make_exchange()
    order = place(ex, str(uuid.uuid4()))
    socket = []
    for kind, row in ex.published:
        if kind in ("order", "trade"):
            socket += xm.socket_events(kind, json.dumps(row))  # the socket sends JSON strings
    rows = [xm.parse_order_row(r) for r in order.history]
    trades = [xm.parse_trade_row(t) for t in published(ex, "trade")]
    assert {e["event_id"] for e in socket} == {e["event_id"] for e in xm.order_events(rows, trades)}


def test_rms_rejection_carries_the_brokers_reason():
    ex = make_exchange()
    ex.risk.reject_next = 1
    order = place(ex, str(uuid.uuid4()))
    events = xm.order_events([xm.parse_order_row(r) for r in order.history], [])
    # PendingNew is held as the place's answer is: accepted (the id the place publishes), then rejected
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.REJECTED]
    assert events[1]["reason"].startswith("RMS : Margin Exceeds")
    assert events[1]["event_id"] == f"xts:rejected:{order.app_order_id}"


def test_replaced_maps_to_modified_with_terms_and_only_the_latest_is_republished():
    ex = make_exchange()
    order = place(ex, str(uuid.uuid4()), orderType="LIMIT", limitPrice=Decimal("2800"))
    change = {"modifiedProductType": "MIS", "modifiedOrderType": "LIMIT", "modifiedOrderQuantity": 20,
              "modifiedDisclosedQuantity": 0, "modifiedLimitPrice": Decimal("2810.5"),
              "modifiedStopPrice": Decimal(0), "modifiedTimeInForce": "DAY"}  # fmt: skip
    ex.request_modify(order, change)
    ex.complete_modify(order)
    first = xm.order_row_events(xm.parse_order_row(order.history[-1]))
    assert [e["type"] for e in first] == [ev.ACCEPTED, ev.MODIFIED]
    modified = first[1]
    assert (modified["quantity"], modified["limit_price"], modified["stop_price"]) == (20, "2810.5", None)
    ex.request_modify(order, change | {"modifiedLimitPrice": Decimal("2820")})
    ex.complete_modify(order)
    events = xm.order_events([xm.parse_order_row(r) for r in order.history], [])
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.MODIFIED]
    assert Decimal(events[1]["limit_price"]) == Decimal("2820")
    assert events[1]["event_id"] != modified["event_id"]


def test_modified_id_is_the_same_in_both_date_styles():
    ids = []
    for style in (RowStyle(date_style="iso"), RowStyle(date_style="dmy")):
        ex = make_exchange(style)
        ex._app_id = 1_100_000_000  # the same AppOrderID in both runs
        order = place(ex, str(uuid.uuid4()), orderType="LIMIT", limitPrice=Decimal("2800"))
        ex.request_modify(order, {"modifiedProductType": "MIS", "modifiedOrderType": "LIMIT",
                                  "modifiedOrderQuantity": 20, "modifiedDisclosedQuantity": 0,
                                  "modifiedLimitPrice": Decimal("2810"), "modifiedStopPrice": Decimal(0),
                                  "modifiedTimeInForce": "DAY"})  # fmt: skip
        ex.complete_modify(order)
        ids.append(xm.order_row_events(xm.parse_order_row(order.history[-1]))[1]["event_id"])
    assert ids[0] == ids[1]


def test_cancelled_ioc_remainder_and_partial_fill_in_broker_order():
    ex = make_exchange()
    book = ex.market.book("NSECM", 2885)
    book.ask_size = 4
    order = place(ex, str(uuid.uuid4()), timeInForce="IOC")
    rows = [xm.parse_order_row(r) for r in order.history]
    trades = [xm.parse_trade_row(t) for t in published(ex, "trade")]
    events = xm.order_events(rows, trades)
    assert [e["type"] for e in events] == [ev.ACCEPTED, ev.FILL, ev.CANCELLED]
    assert events[2]["reason"] == "IOC order: unfilled quantity cancelled"
    assert (xm.summarize(rows, trades).status, xm.summarize(rows, trades).filled_quantity) == ("cancelled", 4)


def test_a_stale_row_after_a_fill_regresses_nothing():
    ex = make_exchange()
    order = place(ex, str(uuid.uuid4()))
    filled = xm.parse_order_row(order.history[-1])
    stale = xm.parse_order_row(order.history[-1] | {"OrderStatus": "New", "CumulativeQuantity": 0,
                                                   "OrderAverageTradedPrice": "", "SequenceNumber": 1})  # fmt: skip
    trades = [xm.parse_trade_row(t) for t in published(ex, "trade")]
    summary = xm.summarize([filled, stale], trades)
    assert (summary.status, summary.filled_quantity) == ("filled", 10)
    assert [e["type"] for e in xm.order_row_events(stale)] == [ev.ACCEPTED]  # no fill, no regression


def test_foreign_rows_map_to_nothing():
    ex = make_exchange()
    order = place(ex, "MANUAL-123")
    assert xm.socket_events("order", json.dumps(order.history[-1])) is None
    assert xm.socket_events("trade", json.dumps(published(ex, "trade")[0])) is None
    assert xm.order_events([xm.parse_order_row(r) for r in order.history], []) == []
    bare = uuid.uuid4().hex  # not how we send our ids
    assert xm.parse_order_row(order.history[-1] | {"OrderUniqueIdentifier": bare}).order_id is None
    ours = uuid.uuid4()  # a broker that echoes it in capitals still names our order
    assert xm.parse_order_row(order.history[-1] | {"OrderUniqueIdentifier": str(ours).upper()}).order_id == ours


FOREIGN_QUIRKS = [{"OrderType": "SL"}, {"OrderStatus": "Triggered"}, {"OrderPrice": None}, {"AppOrderID": None}]


@pytest.mark.parametrize("identifier", ["", None, "MANUAL-7"])
@pytest.mark.parametrize("changes", FOREIGN_QUIRKS)
def test_a_foreign_row_is_foreign_before_it_is_unreadable(identifier, changes):
    """Someone else's row is never strictly parsed: what it holds is not ours to understand."""
    row = quirky_row(OrderUniqueIdentifier=identifier, **changes)
    assert xm.socket_events("order", json.dumps(row)) is None
    assert xm.socket_events("trade", json.dumps(row)) is None
    assert xm.row_order_id(row) is None
    with pytest.raises(XtsResponseError):  # the same row of ours is an error
        xm.socket_events("order", json.dumps(row | {"OrderUniqueIdentifier": str(uuid.uuid4())}))


def test_book_rows_are_a_list_or_the_one_list_in_an_object():
    assert xm.book_rows([{"a": 1}], "order book") == [{"a": 1}]
    assert xm.book_rows({"orders": [{"a": 1}], "count": 1}, "order book") == [{"a": 1}]
    for result in ({"a": [], "b": []}, {"count": 1}, "rows", None):
        with pytest.raises(XtsResponseError, match="order book"):
            xm.book_rows(result, "order book")


def quirky_row(**changes) -> dict:
    row = {"AppOrderID": "1100000042", "OrderUniqueIdentifier": str(uuid.uuid4()), "OrderStatus": "PARTIALLYFILLED",
           "OrderSide": "Sell", "OrderType": "StopLimit", "OrderQuantity": "150", "CumulativeQuantity": "75",
           "OrderPrice": "2,850.50", "OrderStopPrice": 2851, "OrderAverageTradedPrice": "2,853.50",
           "LastUpdateDateTime": "14-05-2021 11:17:29", "ExchangeTransactTime": "2021-05-14T11:17:28+05:30",
           "ExchangeInstrumentId": "35001", "ExchangeSegment": "NSEFO", "CancelRejectReason": "",
           "SequenceNumber": "17"}  # fmt: skip
    return row | changes


def test_tolerant_parsing_of_deployment_quirks():
    row = xm.parse_order_row(quirky_row())
    assert (row.status, row.side, row.order_type) == ("PartiallyFilled", "SELL", "STOP_LIMIT")
    assert (row.quantity, row.filled_quantity, row.sequence, row.exchange_instrument_id) == (150, 75, 17, 35001)
    assert (row.limit_price, row.stop_price, row.average_price) == (Decimal("2850.50"), 2851, Decimal("2853.50"))
    assert row.updated_at == datetime(2021, 5, 14, 5, 47, 29, tzinfo=UTC)  # IST -> UTC
    assert row.exchange_time == datetime(2021, 5, 14, 5, 47, 28, tzinfo=UTC)
    assert xm.parse_order_row(quirky_row(OrderAverageTradedPrice="", OrderStatus="new")).average_price is None
    assert xm.parse_time("2020-12-29T13:12:36.8657664") == datetime(2020, 12, 29, 7, 42, 36, 865766, tzinfo=UTC)
    assert xm.parse_time("1980-01-01T00:00:00") is None


@pytest.mark.parametrize(
    "changes",
    [
        {"OrderStatus": "Teleported"},
        {"OrderSide": "Hold"},
        {"OrderType": "Iceberg"},
        {"OrderQuantity": "ten"},
        {"OrderQuantity": 10.5},
        {"CumulativeQuantity": 200},
        {"OrderPrice": "12..5"},
        {"LastUpdateDateTime": "yesterday"},
        {"AppOrderID": None},
        {"OrderUniqueIdentifier": None},
        {"OrderQuantity": True},
    ],
)
def test_an_unreadable_row_is_a_clear_error(changes):
    with pytest.raises(XtsResponseError) as caught:
        xm.parse_order_row(quirky_row(**changes))
    assert "1100000042" in str(caught.value) or "AppOrderID" in str(caught.value)
    assert isinstance(caught.value, BrokerError)


def test_unreadable_payloads_and_trade_rows_are_clear_errors():
    for payload in ("not json", "[1, 2]", "null"):
        with pytest.raises(XtsResponseError):
            xm.socket_events("order", payload)
    with pytest.raises(XtsResponseError, match="LastTradedQuantity"):
        xm.parse_trade_row(quirky_row(ExecutionID="9", LastTradedPrice="2850", LastTradedQuantity=0))
    with pytest.raises(XtsResponseError, match="ExecutionID"):
        xm.parse_trade_row(quirky_row(LastTradedPrice="2850", LastTradedQuantity=5))
    with pytest.raises(XtsResponseError, match="position"):
        xm.socket_events("position", "{}")


def test_order_type_mapping_both_ways():
    for ours, theirs in (("MARKET", "Market"), ("LIMIT", "Limit"), ("STOP", "StopMarket"), ("STOP_LIMIT", "StopLimit")):
        assert xm.TO_XTS_ORDER_TYPE[ours] == theirs.upper()
        assert xm.enum(theirs, xm.FROM_XTS_ORDER_TYPE, "OrderType") == ours
