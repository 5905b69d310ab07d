"""Market-data API routes, served under both /apimarketdata and /marketdata.

Successful market-data logins answer type "success" with an "e-" code on purpose: the shared
XTS notes record one seen in the wild, and a client must branch on `type`, never on the code.
"""

from __future__ import annotations

from flask import Blueprint, g

from tradingapp.simulators.xts.http import (
    BrokerError,
    bad_request,
    body,
    broker_route,
    need,
    ok,
    query,
    sim,
    whole,
)
from tradingapp.simulators.xts.instruments import SEGMENT_CODES, master_line, search_row
from tradingapp.simulators.xts.interactive import login_response
from tradingapp.simulators.xts.market import SUPPORTED_CODES, ohlc_bars, parse_ohlc_time

bp = Blueprint("marketdata", __name__)
MAX_QUOTE_INSTRUMENTS = 50
COMPRESSIONS = {"60", "120", "180", "300", "600", "900", "1800", "3600", "D"}


@bp.post("/auth/login")
@broker_route("md_login", api=None)
def md_login():
    return login_response("marketdata", "e-session-0001", "Logged in successfully")


@bp.delete("/auth/logout")
@broker_route("md_logout", api="marketdata")
def md_logout():
    g.session.valid = False
    sim().subscriptions.pop(g.session.account.user_id, None)
    return ok({}, "s-session-0002", "Logged out successfully")


@bp.get("/config/clientConfig")
@broker_route("md_config", api="marketdata")
def client_config():
    result = {
        "exchangeSegments": SEGMENT_CODES,
        "xtsMessageCode": {
            "touchlineEvent": 1501,
            "marketDepthEvent": 1502,
            "indexDataEvent": 1504,
            "candleDataEvent": 1505,
            "openInterestEvent": 1510,
            "ltpEvent": 1512,
        },
        "publishFormat": ["Binary", "JSON"],
        "broadCastMode": ["Full", "Partial"],
        "instrumentType": {"1": "Futures", "2": "Options", "4": "Spread", "8": "Equity"},
    }
    return ok(result, "s-response-0001", "Fetched client config successfully")


@bp.post("/instruments/master")
@broker_route("master", api="marketdata")
def master():
    segments = need(body(), "exchangeSegmentList")
    if not isinstance(segments, list) or not segments or any(s not in SEGMENT_CODES for s in segments):
        raise bad_request("exchangeSegmentList", "must be a list of exchange segments", "array.base")
    state = sim()
    lines = [
        master_line(ins, state.market.book(*ins.key).price_band())
        for ins in state.instruments.values()
        if ins.segment in segments
    ]
    return ok("\n".join(lines), "s-instrument-0002", "Instrument master retrieved successfully")


def instrument_list(data: dict) -> list:
    items = need(data, "instruments")
    if not isinstance(items, list):
        raise bad_request("instruments", "must be an array", "array.base")
    found = []
    state = sim()
    for item in items:
        if not isinstance(item, dict):
            raise bad_request("instruments", "must contain objects", "object.base")
        ins = state.instrument_by_code(item.get("exchangeSegment"), item.get("exchangeInstrumentID"))
        if ins is not None:
            found.append(ins)
    return found


def message_code(data: dict) -> int:
    code = whole(data, "xtsMessageCode", 1)
    if code not in SUPPORTED_CODES:
        raise bad_request("xtsMessageCode", f"must be one of {list(SUPPORTED_CODES)}", "any.allowOnly")
    return code


def quotes_list(instruments) -> list[dict]:
    return [
        {"exchangeSegment": i.segment_code, "exchangeInstrumentID": str(i.exchange_instrument_id)} for i in instruments
    ]


def quotes_result(instruments, code: int) -> dict:
    """The instruments' current quotes, as the quotes call and a subscription both answer them."""
    market = sim().market
    return {
        "mdp": code,
        "quotesList": quotes_list(instruments),
        "listQuotes": [market.quote_json(market.book(*i.key), code) for i in instruments],
    }


@bp.post("/instruments/quotes")
@broker_route("quotes", api="marketdata")
def quotes():
    data = body()
    if isinstance(data.get("instruments"), list) and len(data["instruments"]) > MAX_QUOTE_INSTRUMENTS:
        raise bad_request(
            "instruments", f"must contain less than or equal to {MAX_QUOTE_INSTRUMENTS} items", "array.max"
        )
    code = message_code(data)
    if str(data.get("publishFormat", "JSON")).upper() != "JSON":
        raise bad_request("publishFormat", "must be JSON on this server", "any.allowOnly")
    instruments = instrument_list(data)
    return ok(quotes_result(instruments, code), "s-quotes-0001", "Get quotes successfully!")


def subscription_request() -> tuple[int, list, set, set]:
    """A (un)subscription's message code and instruments, the user's subscriptions (kept by the
    simulator, changed in place) and the (segment, id, code) keys the request names."""
    data = body()
    code = message_code(data)
    instruments = instrument_list(data)
    subs = sim().subscriptions.setdefault(g.session.account.user_id, set())
    return code, instruments, subs, {(i.segment_code, i.exchange_instrument_id, code) for i in instruments}


@bp.post("/instruments/subscription")
@broker_route("subscribe", api="marketdata")
def subscribe():
    code, instruments, subs, wanted = subscription_request()
    if wanted & subs:
        raise BrokerError(400, "e-session-0002", "Instrument Already Subscribed !", {})
    subs |= wanted
    return ok(quotes_result(instruments, code), "s-session-0001", "Instrument subscribed successfully!")


@bp.put("/instruments/subscription")
@broker_route("unsubscribe", api="marketdata")
def unsubscribe():
    code, instruments, subs, wanted = subscription_request()
    subs -= wanted
    return ok(
        {"mdp": code, "unsubList": quotes_list(instruments)}, "s-session-0003", "Instrument unsubscribed successfully!"
    )


@bp.get("/instruments/ohlc")
@broker_route("ohlc", api="marketdata")
def ohlc():
    params = query()
    state = sim()
    ins = state.instrument_by_code(
        need(params, "exchangeSegment", "query"), whole(params, "exchangeInstrumentID", 1, "query")
    )
    if ins is None:
        raise bad_request("exchangeInstrumentID", "is not a known instrument", "any.invalid", "query")
    compression = str(need(params, "compressionValue", "query")).upper()
    if compression not in COMPRESSIONS:
        raise bad_request("compressionValue", f"must be one of {sorted(COMPRESSIONS)}", "any.allowOnly", "query")
    try:
        start = parse_ohlc_time(need(params, "startTime", "query"))
        end = parse_ohlc_time(need(params, "endTime", "query"))
    except ValueError:
        raise bad_request("startTime", "must look like 'Dec 02 2019 091500'", "date.base", "query") from None
    bars = ohlc_bars(state.market.book(*ins.key), start, end, compression, state.settings.seed)
    result = {
        "exchangeSegment": ins.segment,
        "exchangeInstrumentID": str(ins.exchange_instrument_id),
        "dataReponse": bars,
    }
    return ok(result, "s-instrument-0001", "Data found")


@bp.get("/search/instruments")
@broker_route("search", api="marketdata")
def search():
    text = str(need(query(), "searchString", "query")).upper()
    found = [search_row(i) for i in sim().instruments.values() if text in i.name or text in i.trading_symbol]
    return ok(found, "s-search-0001", "Instruments found")


@bp.post("/search/instrumentsbyid")
@broker_route("search", api="marketdata")
def search_by_id():
    return ok([search_row(i) for i in instrument_list(body())], "s-search-0001", "Instruments found")
