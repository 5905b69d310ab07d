"""The XTS simulator over real HTTP and real socket.io, started as its own process."""

from __future__ import annotations

import gc
import json
import time

import pytest
import requests

# tests/conftest.py collect_module_garbage
LEAKS_PLAIN_SOCKETS = "python-engineio's clients leave a cut connection's socket to the garbage collector"

ORDER_FIELDS = {
    "LoginID",
    "ClientID",
    "AppOrderID",
    "OrderReferenceID",
    "ExchangeOrderID",
    "ExchangeSegment",
    "ExchangeInstrumentID",
    "TradingSymbol",
    "OrderSide",
    "OrderType",
    "ProductType",
    "TimeInForce",
    "OrderPrice",
    "OrderQuantity",
    "OrderStopPrice",
    "OrderStatus",
    "OrderAverageTradedPrice",
    "LeavesQuantity",
    "CumulativeQuantity",
    "OrderDisclosedQuantity",
    "OrderGeneratedDateTime",
    "ExchangeTransactTime",
    "LastUpdateDateTime",
    "CancelRejectReason",
    "OrderUniqueIdentifier",
    "MessageCode",
    "SequenceNumber",
}


def order_id(response) -> int:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["type"], body["code"], body["description"]) == ("success", "s-orders-0001", "Request sent")
    return body["result"]["AppOrderID"]


def listening(xts):
    """A session and its interactive socket's events."""
    session = xts.login()
    _, events = xts.interactive_socket(session)
    return session, events


def final(events, app_order_id, status="Filled", timeout=5.0):
    events.wait_for(lambda _: status in events.statuses(app_order_id), timeout)
    return events.of("order", app_order_id)[-1]


# ---- sessions -------------------------------------------------------------------------------------
def test_login_accepts_form_and_json_bodies(xts):
    creds = {"appKey": "sim-app-key", "secretKey": "sim-secret-key", "source": "WEBAPI"}
    form = requests.post(f"{xts.url}/interactive/user/session", data=creds, timeout=5).json()
    as_json = requests.post(f"{xts.url}/interactive/user/session", json=creds, timeout=5).json()
    for body in (form, as_json):
        assert body["type"] == "success" and body["code"] == "s-user-0001"
        assert body["result"]["userID"] == "SIMUSER1" and body["result"]["isInvestorClient"] is True
        assert body["result"]["token"].count(".") == 2  # a JWT


def test_wrong_secret_is_an_error_envelope(xts):
    r = requests.post(
        f"{xts.url}/interactive/user/session",
        json={"appKey": "sim-app-key", "secretKey": "nope", "source": "WEBAPI"},
        timeout=5,
    )
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_unknown_token_answers_400_invalid_token(xts):
    r = xts.call("GET", "/interactive/orders", "not-a-token")
    assert r.status_code == 400
    assert r.json() == {"type": "error", "code": "e-session-0007", "description": "Invalid Token", "result": {}}


def test_expired_session_is_invalid_token_and_its_socket_gets_logout(xts):
    session, events = listening(xts)
    assert xts.control("sessions/expire", {"userID": "SIMUSER1"})["expired"] == 1
    events.wait_for(lambda items: any(n == "logout" for n, _ in items))
    r = xts.call("GET", "/interactive/orders", session["token"])
    assert (r.status_code, r.json()["description"]) == (400, "Invalid Token")
    fresh = xts.login()
    assert xts.call("GET", "/interactive/orders", fresh["token"]).status_code == 200


def test_second_login_ends_the_first_session_and_its_socket(xts):
    first = xts.login()
    _, events = xts.interactive_socket(first)
    second = xts.login()
    events.wait_for(lambda items: any(n == "logout" for n, _ in items))
    assert xts.call("GET", "/interactive/orders", first["token"]).json()["description"] == "Invalid Token"
    assert xts.call("GET", "/interactive/orders", second["token"]).status_code == 200


def test_socket_with_a_bad_token_is_refused(xts):
    with pytest.raises(Exception, match="(?i)connect"):
        xts.interactive_socket({"token": "bogus", "userID": "SIMUSER1"})


def test_dealer_must_name_its_client(xts):
    dealer = xts.login("sim-dealer-key", "sim-dealer-secret")
    assert dealer["isInvestorClient"] is False
    missing = xts.place(dealer["token"])
    assert missing.status_code == 400 and missing.json()["description"] == "Bad Request"
    placed = xts.place(dealer["token"], clientID="CLIENT1")
    assert placed.json()["result"]["ClientID"] == "CLIENT1"
    book = xts.call("GET", "/interactive/orders", dealer["token"], {"clientID": "CLIENT1"}).json()["result"]
    assert [row["ClientID"] for row in book] == ["CLIENT1"]
    balance = xts.call("GET", "/interactive/user/balance", dealer["token"], {"clientID": "CLIENT1"})
    assert balance.status_code == 400


# ---- order life cycle -----------------------------------------------------------------------------
def test_market_order_fills_with_events_and_book_rows(xts):
    session, events = listening(xts)
    app_id = order_id(xts.place(session["token"], orderUniqueIdentifier="mkt-1"))
    row = final(events, app_id)
    assert events.statuses(app_id) == ["PendingNew", "New", "Filled"]
    assert all(isinstance(data, str) for name, data in events.raw if name in ("order", "trade", "position"))
    assert ORDER_FIELDS <= set(row)
    assert row["OrderSide"] == "Buy" and row["OrderType"] == "Market" and row["MessageCode"] == 9004
    assert row["OrderUniqueIdentifier"] == "mkt-1" and row["CumulativeQuantity"] == 10 and row["LeavesQuantity"] == 0
    assert isinstance(row["OrderAverageTradedPrice"], str) and "," in row["OrderAverageTradedPrice"]  # "2,900.10"
    assert row["ExchangeTransactTime"].endswith("+05:30") and "+" not in row["OrderGeneratedDateTime"]
    assert events.of("order", app_id)[0]["OrderAverageTradedPrice"] == ""
    trade = events.of("trade", app_id)[0]
    assert trade["MessageCode"] == 9005 and trade["LastTradedQuantity"] == 10
    assert {"ExecutionID", "LastTradedPrice", "LastExecutionTransactTime"} <= set(trade)
    book = xts.call("GET", "/interactive/orders", session["token"]).json()["result"]
    assert [(r["AppOrderID"], r["OrderStatus"]) for r in book] == [(app_id, "Filled")]
    trades = xts.call("GET", "/interactive/orders/trades", session["token"]).json()["result"]
    assert [t["ExecutionID"] for t in trades] == [trade["ExecutionID"]]
    history = xts.call("GET", "/interactive/orders", session["token"], {"appOrderID": app_id}).json()["result"]
    assert [r["OrderStatus"] for r in history] == ["PendingNew", "New", "Filled"]
    assert [r["SequenceNumber"] for r in history] == sorted(r["SequenceNumber"] for r in history)
    events.wait_for(lambda _: events.of("position"))
    positions = xts.call("GET", "/interactive/portfolio/positions", session["token"], {"dayOrNet": "NetWise"})
    (position,) = positions.json()["result"]["positionList"]
    assert position["ExchangeInstrumentId"] == "2885" and position["Quantity"] == "10"


def test_partial_fills_as_the_touch_refreshes(xts):
    session, events = listening(xts)
    xts.control("market", {"display_lots": 40})
    xts.price("NSECM", 2885, "2900", ask="2900.10", askSize=30)
    app_id = order_id(xts.place(session["token"], orderQuantity=50))
    events.wait_for(lambda _: "PartiallyFilled" in events.statuses(app_id))
    first = events.of("trade", app_id)[0]
    assert (first["LastTradedQuantity"], first["CumulativeQuantity"], first["LeavesQuantity"]) == (30, 30, 20)
    xts.control("step", {"count": 3})
    row = final(events, app_id)
    assert row["CumulativeQuantity"] == 50 and len(events.of("trade", app_id)) >= 2
    assert len({t["ExecutionID"] for t in events.of("trade", app_id)}) == len(events.of("trade", app_id))


def test_limit_order_rests_and_fills_at_its_price_when_crossed(xts):
    session, events = listening(xts)
    xts.price("NSECM", 3045, "800", bid="799.95", ask="800.05")
    app_id = order_id(xts.place(session["token"], exchangeInstrumentID=3045, orderType="LIMIT", limitPrice=790))
    events.wait_for(lambda _: "New" in events.statuses(app_id))
    xts.control("step")
    assert events.statuses(app_id)[-1] == "New"
    xts.price("NSECM", 3045, "785", bid="784.95", ask="785.05")
    row = final(events, app_id)
    assert row["OrderType"] == "Limit" and row["OrderAverageTradedPrice"] == "790.00"


def test_modify_goes_pending_replace_then_replaced_and_keeps_the_order_id(xts):
    session, events = listening(xts)
    xts.price("NSECM", 1594, "1900", bid="1899.95", ask="1900.05")
    app_id = order_id(
        xts.place(
            session["token"],
            exchangeInstrumentID=1594,
            orderType="LIMIT",
            limitPrice=1850,
            orderUniqueIdentifier="mod-1",
        )
    )
    events.wait_for(lambda _: "New" in events.statuses(app_id))
    change = {
        "appOrderID": app_id,
        "modifiedProductType": "MIS",
        "modifiedOrderType": "LIMIT",
        "modifiedOrderQuantity": 20,
        "modifiedDisclosedQuantity": 0,
        "modifiedLimitPrice": 1860,
        "modifiedStopPrice": 0,
        "modifiedTimeInForce": "DAY",
        "orderUniqueIdentifier": "mod-1",
    }
    r = xts.call("PUT", "/interactive/orders", session["token"], change)
    assert r.status_code == 200 and r.json()["result"]["AppOrderID"] == app_id
    replaced = final(events, app_id, "Replaced")
    assert events.statuses(app_id)[-2:] == ["PendingReplace", "Replaced"]
    assert (replaced["OrderQuantity"], replaced["OrderPrice"], replaced["AppOrderID"]) == (20, 1860.0, app_id)
    xts.price("NSECM", 1594, "1855", bid="1854.95", ask="1855.05")
    assert final(events, app_id)["CumulativeQuantity"] == 20


def test_cancel_goes_pending_cancel_then_cancelled_and_a_filled_order_cannot_be_cancelled(xts):
    session, events = listening(xts)
    resting = order_id(xts.place(session["token"], orderType="LIMIT", limitPrice=2500))
    events.wait_for(lambda _: "New" in events.statuses(resting))
    r = xts.call(
        "DELETE", "/interactive/orders", session["token"], {"appOrderID": resting, "orderUniqueIdentifier": "ord-1"}
    )
    assert r.status_code == 200 and r.json()["result"]["AppOrderID"] == resting
    row = final(events, resting, "Cancelled")
    assert events.statuses(resting)[-2:] == ["PendingCancel", "Cancelled"] and row["CumulativeQuantity"] == 0
    filled = order_id(xts.place(session["token"], orderUniqueIdentifier="ord-2"))
    final(events, filled)
    again = xts.call("DELETE", "/interactive/orders", session["token"], {"appOrderID": filled})
    assert again.status_code == 400 and again.json()["type"] == "error"


def test_rms_reject_arrives_later_as_a_rejected_order_event(xts):
    session, events = listening(xts)
    xts.control("risk", {"margin_available": "1000"})
    app_id = order_id(xts.place(session["token"], productType="CNC"))
    row = final(events, app_id, "Rejected")
    assert events.statuses(app_id) == ["PendingNew", "Rejected"]
    assert row["CancelRejectReason"].startswith("RMS : Margin Exceeds")
    xts.control("risk", {"margin_available": "10000000", "reject_instruments": [["NSECM", 1333]]})
    blocked = order_id(xts.place(session["token"], exchangeInstrumentID=1333, orderUniqueIdentifier="b"))
    assert final(events, blocked, "Rejected")["CancelRejectReason"].startswith("RMS : Margin Exceeds")


def test_quantity_off_the_lot_size_is_rejected(xts):
    session, events = listening(xts)
    app_id = order_id(
        xts.place(
            session["token"], exchangeSegment="NSEFO", exchangeInstrumentID=35001, productType="NRML", orderQuantity=10
        )
    )
    assert "lot size" in final(events, app_id, "Rejected")["CancelRejectReason"]


def test_stop_market_waits_for_its_trigger(xts):
    session, events = listening(xts)
    xts.price("NSECM", 11536, "4100", bid="4099.95", ask="4100.05")
    app_id = order_id(
        xts.place(
            session["token"], exchangeInstrumentID=11536, orderType="STOPMARKET", orderSide="SELL", stopPrice=4050
        )
    )
    events.wait_for(lambda _: "New" in events.statuses(app_id))
    xts.price("NSECM", 11536, "4060")
    assert "Filled" not in events.statuses(app_id)
    xts.price("NSECM", 11536, "4045", bid="4044.95", ask="4045.05")
    row = final(events, app_id)
    assert row["OrderType"] == "StopMarket" and row["OrderAverageTradedPrice"] == "4,044.95"


def test_ioc_remainder_is_cancelled(xts):
    session, events = listening(xts)
    xts.price("NSECM", 2885, "2900", ask="2900.10", askSize=4)
    app_id = order_id(xts.place(session["token"], timeInForce="IOC", orderQuantity=10))
    row = final(events, app_id, "Cancelled")
    assert row["CumulativeQuantity"] == 4 and row["LeavesQuantity"] == 6


def test_with_an_acknowledgement_delay_the_answer_comes_before_any_event(xts):
    session, events = listening(xts)
    xts.faults(ack_delay_ms=300)
    app_id = order_id(xts.place(session["token"]))
    (row,) = xts.call("GET", "/interactive/orders", session["token"]).json()["result"]
    assert (row["AppOrderID"], row["OrderStatus"]) == (app_id, "PendingNew") and not events.of("order")
    assert final(events, app_id)["CumulativeQuantity"] == 10


def test_a_repeated_unique_identifier_makes_a_second_order(xts):
    session = xts.login()
    first = order_id(xts.place(session["token"], orderUniqueIdentifier="same"))
    second = order_id(xts.place(session["token"], orderUniqueIdentifier="same"))
    assert first != second
    assert xts.state()["orders_by_unique_id"]["same"] == [first, second]


def test_validation_failure_is_bad_request_with_errors(xts):
    session = xts.login()
    r = xts.place(session["token"], orderQuantity="ten")
    body = r.json()
    assert r.status_code == 400 and body["type"] == "error" and body["description"] == "Bad Request"
    assert body["result"]["errors"][0]["field"] == ["orderQuantity"]
    assert xts.state()["orders"] == 0


# ---- HTTP faults ----------------------------------------------------------------------------------
def test_5xx_before_the_work_then_success(xts):
    session = xts.login()
    xts.faults(fail_next={"place": {"count": 2, "status": 503}})
    for _ in range(2):
        r = xts.place(session["token"])
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html")
    assert xts.state()["orders"] == 0
    order_id(xts.place(session["token"]))
    assert xts.state()["orders"] == 1


def test_5xx_after_the_work_leaves_the_order_placed(xts):
    session = xts.login()
    xts.faults(fail_next={"place": {"count": 1, "status": 500, "after": True}})
    r = xts.place(session["token"], orderUniqueIdentifier="after-500")
    assert r.status_code == 500 and r.json()["type"] == "error"
    assert len(xts.state()["orders_by_unique_id"]["after-500"]) == 1


def test_place_accepted_but_the_answer_never_comes(xts):
    session, events = listening(xts)
    xts.faults(hang_place={"count": 1, "mode": "sleep", "seconds": 3})
    with pytest.raises(requests.Timeout):
        xts.place(session["token"], orderUniqueIdentifier="lost-answer", timeout=0.5)
    (app_id,) = xts.state()["orders_by_unique_id"]["lost-answer"]
    final(events, app_id)
    xts.faults(hang_place={"count": 1, "mode": "drop"})
    with pytest.raises(requests.ConnectionError):
        xts.place(session["token"], orderUniqueIdentifier="cut-line")
    assert len(xts.state()["orders_by_unique_id"]["cut-line"]) == 1


def test_latency_knob_delays_the_answer(xts):
    session = xts.login()
    xts.faults(latency_ms={"orders": 400})
    started = time.monotonic()
    assert xts.call("GET", "/interactive/orders", session["token"]).status_code == 200
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize("kind", ["non_json", "truncated", "wrong_shape", "no_envelope"])
def test_malformed_answers(xts, kind):
    session = xts.login()
    order_id(xts.place(session["token"]))
    xts.faults(malformed={"orders": {"count": 1, "kind": kind}})
    r = xts.call("GET", "/interactive/orders", session["token"])
    if kind in ("non_json", "truncated"):
        with pytest.raises(ValueError):
            r.json()
    elif kind == "wrong_shape":
        assert r.json()["type"] == "success" and not isinstance(r.json()["result"], list)
    else:
        assert isinstance(r.json(), list)
    assert isinstance(xts.call("GET", "/interactive/orders", session["token"]).json()["result"], list)


def test_rate_limits_answer_429(xts):
    session = xts.login()
    xts.faults(rate_limit=True)
    codes = [xts.call("GET", "/interactive/orders", session["token"]).status_code for _ in range(3)]
    assert codes[0] == 200 and 429 in codes
    placed = [xts.place(session["token"], orderUniqueIdentifier=f"r{i}").status_code for i in range(12)]
    assert placed.count(200) == 10 and placed[-1] == 429
    body = xts.place(session["token"]).json()
    assert body["type"] == "error"


def test_stale_order_book_row(xts):
    session, events = listening(xts)
    app_id = order_id(xts.place(session["token"]))
    final(events, app_id)
    xts.faults(stale_order_book=1)
    (stale,) = xts.call("GET", "/interactive/orders", session["token"]).json()["result"]
    assert stale["OrderStatus"] == "New" and stale["CumulativeQuantity"] == 0
    (fresh,) = xts.call("GET", "/interactive/orders", session["token"]).json()["result"]
    assert fresh["OrderStatus"] == "Filled"


def test_bad_knobs_are_refused_and_change_nothing(xts):
    before = xts.state()["faults"]
    for knobs in (
        {"nope": 1},
        {"fail_next": {"nowhere": 1}},
        {"malformed": {"orders": {"kind": "x"}}},
        {"events": {"drop_prob": 2}},
        {"latency_ms": {"*": -1}},
    ):
        r = requests.post(f"{xts.url}/_sim/faults", json=knobs, timeout=5)
        assert r.status_code == 400 and "error" in r.json()
    assert xts.state()["faults"] == before


# ---- socket faults --------------------------------------------------------------------------------
def test_dropped_duplicated_and_reordered_events(xts):
    session, events = listening(xts)
    xts.faults(events={"drop_next": 1, "kinds": ["order"]})
    dropped = order_id(xts.place(session["token"], orderUniqueIdentifier="d"))
    final(events, dropped)
    assert events.statuses(dropped) == ["New", "Filled"]
    xts.faults(events={"duplicate_next": 1, "kinds": ["trade"]})
    duplicated = order_id(xts.place(session["token"], orderUniqueIdentifier="dup"))
    events.wait_for(lambda _: len(events.of("trade", duplicated)) == 2)
    first, second = events.of("trade", duplicated)
    assert first["ExecutionID"] == second["ExecutionID"]
    xts.faults(events={"reorder_next": 1, "kinds": ["order"]})
    swapped = order_id(xts.place(session["token"], orderUniqueIdentifier="swap"))
    events.wait_for(lambda _: len(events.statuses(swapped)) == 3)
    assert events.statuses(swapped) == ["New", "PendingNew", "Filled"]
    assert xts.state()["events"] | {"sent": 0} == {"sent": 0, "dropped": 1, "duplicated": 1, "reordered": 1}


# python-engineio's client leaves the cut websocket (and a refused handshake's) to the garbage collector.
@pytest.mark.filterwarnings("ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning")
def test_fills_during_a_socket_outage_are_only_in_the_books(xts):
    session = xts.login()
    client, events = xts.interactive_socket(session, reconnection=True)
    resting = order_id(xts.place(session["token"], orderType="LIMIT", limitPrice=2800))
    events.wait_for(lambda _: "New" in events.statuses(resting))
    assert xts.control("sockets/disconnect", {"refuse_seconds": 1.5})["disconnected"] >= 1
    events.wait_for(lambda items: any(n == "_disconnect" for n, _ in items))
    xts.price("NSECM", 2885, "2790", bid="2789.95", ask="2790.05")
    book = xts.call("GET", "/interactive/orders", session["token"]).json()["result"]
    assert [r["OrderStatus"] for r in book] == ["Filled"]
    assert "Filled" not in events.statuses(resting)
    events.wait_for(lambda items: sum(n == "joined" for n, _ in items) == 2, timeout=10)
    assert "Filled" not in events.statuses(resting)  # missed events are not replayed
    second = order_id(xts.place(session["token"], orderUniqueIdentifier="after"))
    final(events, second)
    client.disconnect()
    gc.collect()  # the leaked sockets' warnings land in this test, not the next one


def test_engine_io_3_clients_get_the_same_events(xts):
    session = xts.login()
    _, events = xts.interactive_socket(session, eio3=True)
    app_id = order_id(xts.place(session["token"]))
    assert final(events, app_id)["OrderStatus"] == "Filled"
    assert isinstance(events.raw[-1][1], str)


# ---- market data ----------------------------------------------------------------------------------
def test_market_data_login_answers_success_with_an_e_code_on_both_prefixes(xts):
    for prefix in ("/apimarketdata", "/marketdata"):
        r = requests.post(
            f"{xts.url}{prefix}/auth/login",
            data={"appKey": "sim-md-key", "secretKey": "sim-md-secret", "source": "WEBAPI"},
            timeout=5,
        )
        assert r.json()["type"] == "success" and r.json()["code"].startswith("e-")


def test_instrument_master_lines(xts):
    md = xts.md_login()
    r = xts.call("POST", "/apimarketdata/instruments/master", md["token"], {"exchangeSegmentList": ["NSECM", "NSEFO"]})
    lines = {tuple(line.split("|")[:2]): line.split("|") for line in r.json()["result"].splitlines()}
    reliance, future, option = lines[("NSECM", "2885")], lines[("NSEFO", "35001")], lines[("NSEFO", "35002")]
    assert (len(reliance), len(future), len(option)) == (22, 21, 23)
    assert reliance[2] == "8" and reliance[11] == "0.05" and reliance[12] == "1"
    assert future[2] == "1" and future[12] == "75" and option[2] == "2" and option[18] == "3"
    assert {("NSECM", "11536"), ("NSECM", "1594"), ("NSECM", "1333"), ("NSECM", "3045")} <= set(lines)


def test_quotes_are_json_strings_and_at_most_50_instruments(xts):
    md = xts.md_login()
    ask = {
        "instruments": [{"exchangeSegment": 1, "exchangeInstrumentID": 2885}],
        "xtsMessageCode": 1501,
        "publishFormat": "JSON",
    }
    result = xts.call("POST", "/apimarketdata/instruments/quotes", md["token"], ask).json()["result"]
    (raw,) = result["listQuotes"]
    quote = json.loads(raw)
    assert quote["ExchangeInstrumentID"] == 2885 and "LastTradedQunatity" in quote["Touchline"]
    too_many = ask | {"instruments": ask["instruments"] * 51}
    r = xts.call("POST", "/apimarketdata/instruments/quotes", md["token"], too_many)
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_subscription_streams_full_and_partial_and_refuses_a_second_subscribe(xts):
    md = xts.md_login()
    _, full = xts.md_socket(md, "Full")
    _, partial = xts.md_socket(md, "Partial", path="/marketdata/socket.io")
    sub = {"instruments": [{"exchangeSegment": 1, "exchangeInstrumentID": 2885}], "xtsMessageCode": 1501}
    r = xts.call("POST", "/apimarketdata/instruments/subscription", md["token"], sub)
    assert r.status_code == 200 and len(r.json()["result"]["listQuotes"]) == 1
    again = xts.call("POST", "/apimarketdata/instruments/subscription", md["token"], sub)
    assert (again.status_code, again.json()["code"]) == (400, "e-session-0002")
    xts.price("NSECM", 2885, "2950")
    (name, quote) = full.wait_for(lambda items: items)[0]
    assert name == "1501-json-full" and quote["Touchline"]["LastTradedPrice"] == 2950.0
    (name, text) = partial.wait_for(lambda items: items)[0]
    assert name == "1501-json-partial" and text.startswith("t:1_2885,ltp:2950")


def test_ohlc_answers_bars_in_data_reponse(xts):
    md = xts.md_login()
    params = {
        "exchangeSegment": "NSECM",
        "exchangeInstrumentID": 2885,
        "startTime": "Dec 02 2019 091500",
        "endTime": "Dec 02 2019 093000",
        "compressionValue": 60,
    }
    result = xts.call("GET", "/apimarketdata/instruments/ohlc", md["token"], params).json()["result"]
    bars = [b.split("|") for b in result["dataReponse"].split(",") if b]
    assert len(bars) == 15 and all(len(b) == 7 for b in bars)
    assert int(bars[0][0]) == 1575278100  # 2019-12-02 09:15 IST wall clock as epoch seconds


def test_positions_shape_and_date_style_switch(xts):
    session, events = listening(xts)
    xts.control("style", {"positions_shape": "flat", "date_style": "dmy", "thousands": False})
    app_id = order_id(xts.place(session["token"]))
    row = final(events, app_id)
    assert "," not in row["OrderAverageTradedPrice"] and row["OrderGeneratedDateTime"][2] == "-"
    result = xts.call("GET", "/interactive/portfolio/positions", session["token"], {"dayOrNet": "DayWise"})
    (position,) = result.json()["result"]
    assert position["ExchangeInstrumentID"] == 2885 and position["Quantity"] == 10
