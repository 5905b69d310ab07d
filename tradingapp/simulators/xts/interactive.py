"""Interactive API routes: session, profile, balance, orders, trades, positions, holdings."""

from __future__ import annotations

import socket

import gevent
from flask import Blueprint, Response, g, request

from tradingapp.simulators.xts.exchange import OrderError
from tradingapp.simulators.xts.http import (
    BrokerError,
    bad_request,
    body,
    broker_route,
    choice,
    client_id,
    need,
    ok,
    price,
    query,
    sim,
    whole,
)
from tradingapp.simulators.xts.instruments import SEGMENT_CODES

bp = Blueprint("interactive", __name__, url_prefix="/interactive")
ORDER_TYPES = ("MARKET", "LIMIT", "STOPMARKET", "STOPLIMIT")
PRODUCTS = ("MIS", "NRML", "CNC")
SIDES = ("BUY", "SELL")
TIFS = ("DAY", "IOC")
ENUMS = {
    "socketPlatform": [{"key": "WEBAPI", "value": "WEBAPI"}],
    "exchangeSegment": [{"key": k, "value": v} for k, v in SEGMENT_CODES.items()],
    "productType": list(PRODUCTS),
    "orderType": list(ORDER_TYPES),
    "orderSide": list(SIDES),
    "timeInForce": list(TIFS),
}


def login_response(api: str, code: str, description: str):
    data = body(form_ok=True)
    app_key, secret_key = need(data, "appKey"), need(data, "secretKey")
    if not (data.get("source") or data.get("accessToken")):
        raise bad_request("source", "is required", "any.required")
    state = sim()
    account = state.sessions.authenticate(api, str(app_key), str(secret_key))
    if account is None:
        raise BrokerError(400, "e-user-0005", "Invalid appKey or secretKey", {})
    if state.faults.single_session:  # logged in elsewhere: the old session and its sockets end
        ended = state.sessions.expire(user_id=account.user_id, api=api)
        state.streams.log_out({s.token for s in ended})
    session = state.sessions.open(account)
    result = {
        "token": session.token,
        "userID": account.user_id,
        "appVersion": "SIM-1.0",
        "application_expiry_date": "31-12-2099",
    }
    if api == "interactive":
        result |= {"isInvestorClient": account.investor, "clientCodes": list(account.client_ids), "enums": ENUMS}
    return ok(result, code, description)


@bp.post("/user/session")
@broker_route("login", api=None)
def login():
    return login_response("interactive", "s-user-0001", "Valid User.")


@bp.delete("/user/session")
@broker_route("logout")
def logout():
    g.session.valid = False
    sim().streams.log_out({g.session.token})
    return ok({"token": g.session.token}, "s-user-0002", "User logged out successfully")


@bp.get("/user/profile")
@broker_route("profile")
def profile():
    client = client_id(query())
    exchanges = {seg: {"ClientExchange": seg, "Enabled": True} for seg in ("NSECM", "NSEFO")}
    result = {
        "ClientId": client,
        "ClientName": "Simulated Trader",
        "EmailId": f"{client.lower()}@example.invalid",
        "MobileNo": "9999999999",
        "PAN": "AAAPA0000A",
        "IncludeInAutoSquareoff": False,
        "ClientExchangeDetailsList": exchanges,
        "ClientBankInfoList": [],
    }
    return ok(result, "s-user-0001", "Fetched user profile successfully")


@bp.get("/user/balance")
@broker_route("balance")
def balance():
    if not g.session.account.investor:
        raise BrokerError(400, "e-user-0007", "Balance is available for retail API users only", {})
    cash = sim().exchange.risk.margin_available
    limits = {
        "cashAvailable": f"{cash:.2f}",
        "netMarginAvailable": f"{cash:.2f}",
        "marginUtilized": "0.00",
        "collateral": "0.00",
        "MTM": "0.00",
        "UnrealizedMTM": "0.00",
        "RealizedMTM": "0.00",
    }
    entry = {"limitHeader": "ALL|ALL|ALL", "limitObject": {"RMSSubLimits": limits, "marginAvailable": limits}}
    return ok({"BalanceList": [entry]}, "s-user-0003", "Get Balance Successfully!")


# ---- orders -------------------------------------------------------------------------------------
def order_params(data: dict) -> dict:
    params = {
        "exchangeSegment": choice(data, "exchangeSegment", tuple(SEGMENT_CODES)),
        "exchangeInstrumentID": whole(data, "exchangeInstrumentID", 1),
        "productType": choice(data, "productType", PRODUCTS),
        "orderType": choice(data, "orderType", ORDER_TYPES),
        "orderSide": choice(data, "orderSide", SIDES),
        "timeInForce": choice(data, "timeInForce", TIFS),
        "disclosedQuantity": whole(data, "disclosedQuantity", 0),
        "orderQuantity": whole(data, "orderQuantity", 1),
        "limitPrice": price(data, "limitPrice"),
        "stopPrice": price(data, "stopPrice"),
        "orderUniqueIdentifier": str(data.get("orderUniqueIdentifier") or ""),
    }
    if "orderUniqueIdentifier" not in data or not isinstance(data["orderUniqueIdentifier"], str | int):
        raise bad_request("orderUniqueIdentifier", "is required", "any.required")
    if params["orderType"] in ("LIMIT", "STOPLIMIT") and params["limitPrice"] <= 0:
        raise bad_request("limitPrice", "must be larger than 0", "number.min")
    if params["orderType"] in ("STOPMARKET", "STOPLIMIT") and params["stopPrice"] <= 0:
        raise bad_request("stopPrice", "must be larger than 0", "number.min")
    return params


@bp.post("/orders")
@broker_route("place")
def place():
    data = body()
    params = order_params(data)
    client = client_id(data)
    state = sim()
    instrument = state.instrument_by_code(params["exchangeSegment"], params["exchangeInstrumentID"])
    if instrument is None:
        raise bad_request("exchangeInstrumentID", "is not a known instrument", "any.invalid")
    order = state.exchange.accept(g.session.account.user_id, client, instrument, params)
    state.later(state.exchange.process, order)
    hang = state.faults.take_hang()
    if hang:
        return hang_up(hang)
    result = {"AppOrderID": order.app_order_id, "OrderUniqueIdentifier": order.unique_id, "ClientID": client}
    return ok(result, "s-orders-0001", "Request sent")


def hang_up(hang: dict) -> Response:
    """The order exists; the answer never arrives: sleep past the client's timeout, or cut the line."""
    if hang["mode"] == "drop":
        handler = request.environ.get("xts_sim.handler")
        if handler is not None and handler.socket is not None:
            try:
                handler.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return Response(b"", 200)
    gevent.sleep(hang["seconds"])
    return Response(b"", 504)


def order_request(app_order_id: int, data: dict, code: str, request_change, complete):
    """A modify or cancel of one order: the exchange takes the request now ("Request sent") and
    completes it a moment later, as XTS does; an order it cannot act on is a 400."""
    state = sim()
    try:
        order = state.exchange.find(app_order_id, client_id(data))
        request_change(order)
    except OrderError as err:
        raise BrokerError(400, f"e-orders-{code}", str(err), {}) from None
    state.later(complete, order)
    result = {"AppOrderID": order.app_order_id, "OrderUniqueIdentifier": order.unique_id}
    return ok(result, f"s-orders-{code}", "Request sent")


@bp.put("/orders")
@broker_route("modify")
def modify():
    data = body()
    change = {
        "modifiedProductType": choice(data, "modifiedProductType", PRODUCTS),
        "modifiedOrderType": choice(data, "modifiedOrderType", ORDER_TYPES),
        "modifiedOrderQuantity": whole(data, "modifiedOrderQuantity", 1),
        "modifiedDisclosedQuantity": whole(data, "modifiedDisclosedQuantity", 0),
        "modifiedLimitPrice": price(data, "modifiedLimitPrice"),
        "modifiedStopPrice": price(data, "modifiedStopPrice"),
        "modifiedTimeInForce": choice(data, "modifiedTimeInForce", TIFS),
    }
    exchange = sim().exchange
    return order_request(
        whole(data, "appOrderID", 1),
        data,
        "0002",
        lambda order: exchange.request_modify(order, change),
        exchange.complete_modify,
    )


@bp.delete("/orders")
@broker_route("cancel")
def cancel():
    params = query()
    exchange = sim().exchange
    return order_request(
        whole(params, "appOrderID", 1, "query"), params, "0003", exchange.request_cancel, exchange.complete_cancel
    )


@bp.post("/orders/cancelall")
@broker_route("cancelall")
def cancel_all():
    data = body()
    segment = choice(data, "exchangeSegment", tuple(SEGMENT_CODES))
    key = (segment, whole(data, "exchangeInstrumentID", 1))
    state = sim()
    orders = state.exchange.open_orders(g.session.account.user_id, client_id(data), key)
    for order in orders:
        state.exchange.request_cancel(order)
        state.later(state.exchange.complete_cancel, order)
    return ok([o.app_order_id for o in orders], "s-orders-0004", "Request sent")


@bp.get("/orders")
@broker_route("orders")
def order_book():
    params = query()
    client = client_id(params)
    state = sim()
    exchange = state.exchange
    if params.get("appOrderID"):
        try:
            order = exchange.find(whole(params, "appOrderID", 1, "query"), client)
        except OrderError as err:
            raise BrokerError(400, "e-orders-0005", str(err), {}) from None
        return ok(list(order.history), "s-orders-0005", "Order history retrieved successfully")
    login_id = g.session.account.user_id
    mine = [o for o in exchange.orders.values() if o.login_id == login_id and o.client_id == client]
    stale = state.faults.stale_order_book > 0
    if stale:
        state.faults.stale_order_book -= 1
    book = [o.history[-2] if stale and len(o.history) > 1 else exchange.current_row(o) for o in mine]
    return ok(book, "s-orders-0006", "Order book retrieved successfully")


@bp.get("/orders/trades")
@broker_route("trades")
def trade_book():
    client = client_id(query())
    login_id = g.session.account.user_id
    trades = [t for t in sim().exchange.trades if t["LoginID"] == login_id and t["ClientID"] == client]
    return ok(trades, "s-orders-0007", "Trade book retrieved successfully")


@bp.get("/portfolio/positions")
@broker_route("positions")
def positions():
    params = query()
    choice(params, "dayOrNet", ("DAYWISE", "NETWISE"), "query")
    state = sim()
    rows = state.exchange.client_positions(g.session.account.user_id, client_id(params))
    result = rows if state.style.positions_shape == "flat" else {"positionList": rows}
    return ok(result, "s-portfolio-0001", "Position retrieved successfully")


@bp.get("/portfolio/holdings")
@broker_route("holdings")
def holdings():
    client = client_id(query())
    return ok({"RMSHoldings": {"ClientId": client, "Holdings": {}}}, "s-portfolio-0002", "Holdings retrieved")
