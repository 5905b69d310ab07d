"""The HTTP side every broker route shares: XTS envelopes, request bodies, validation errors in
XTS's express-validation shape, and the fault pipeline (latency, 5xx before or after the work,
auth, rate limits, malformed answers) wrapped around each route.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal, InvalidOperation

import gevent
from flask import Response, current_app, g, request

from tradingapp.simulators.xts import hostile

JSON = "application/json; charset=utf-8"
GATEWAY_PAGE = "<html><head><title>{0}</title></head><body><center><h1>{0}</h1></center><hr>nginx</body></html>"
GATEWAY_TITLES = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable", 504: "504 Gateway Time-out"}


class BrokerError(Exception):
    """An error answer: HTTP status, XTS code, description and optional result."""

    def __init__(self, status: int, code: str, description: str, result=None):
        super().__init__(description)
        self.status, self.code, self.description, self.result = status, code, description, result


def envelope(kind: str, code: str, description: str, result) -> dict:
    return {"type": kind, "code": code, "description": description, "result": result}


def ok(result, code: str = "s-response-0001", description: str = "Success") -> tuple[int, dict]:
    return 200, envelope("success", code, description, result)


def invalid_token() -> BrokerError:
    return BrokerError(400, "e-session-0007", "Invalid Token", {})


def bad_request(field: str, message: str, kind: str = "any.invalid", location: str = "body") -> BrokerError:
    error = {"field": [field], "location": location, "messages": [f'"{field}" {message}'], "types": [kind]}
    return BrokerError(400, "e-app-0001", "Bad Request", {"errors": [error]})


def sim():
    return current_app.config["SIMULATOR"]


# ---- request bodies -------------------------------------------------------------------------------
def body(form_ok: bool = False) -> dict:
    """The JSON body (XTS's SDK sends JSON text whatever the header); login also takes a form."""
    if form_ok and request.form:
        return request.form.to_dict()
    raw = request.get_data(as_text=True)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise bad_request("body", "must be valid JSON", "object.base") from None
    if not isinstance(data, dict):
        raise bad_request("body", "must be an object", "object.base")
    return data


def query() -> dict:
    return request.args.to_dict()


def need(data: dict, name: str, location: str = "body"):
    if data.get(name) is None or data.get(name) == "":
        raise bad_request(name, "is required", "any.required", location)
    return data[name]


def whole(data: dict, name: str, low: int = 0, location: str = "body") -> int:
    value = need(data, name, location)
    if isinstance(value, bool):
        raise bad_request(name, "must be a number", "number.base", location)
    try:
        number = int(str(value))
    except ValueError:
        raise bad_request(name, "must be a number", "number.base", location) from None
    if number < low:
        raise bad_request(name, f"must be larger than or equal to {low}", "number.min", location)
    return number


def price(data: dict, name: str) -> Decimal:
    value = need(data, name)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise bad_request(name, "must be a number", "number.base") from None
    if isinstance(value, bool) or not number.is_finite() or number < 0:
        raise bad_request(name, "must be a positive number", "number.min")
    return number


def choice(data: dict, name: str, allowed: tuple[str, ...], location: str = "body") -> str:
    value = str(need(data, name, location)).upper()
    if value not in allowed:
        raise bad_request(name, f"must be one of [{', '.join(allowed)}]", "any.allowOnly", location)
    return value


# ---- the fault pipeline ---------------------------------------------------------------------------
def gateway_error(status: int) -> Response:
    if status in GATEWAY_TITLES:
        return Response(GATEWAY_PAGE.format(GATEWAY_TITLES[status]), status, content_type="text/html")
    error = envelope("error", "e-app-5000", "Internal Server Error", {})
    return Response(json.dumps(error), status, content_type=JSON)


def malformed(kind: str, status: int, data: dict) -> Response:
    text = json.dumps(data)
    if kind == "non_json":
        return Response("<html><body>Service temporarily unavailable</body></html>", status, content_type="text/html")
    if kind == "truncated":
        return Response(text[: max(len(text) // 2, 1)], status, content_type=JSON)
    if kind == "no_envelope":
        return Response(json.dumps(data.get("result")), status, content_type=JSON)
    wrong = {"unexpected": True} if isinstance(data.get("result"), list) else [data.get("result")]
    return Response(json.dumps(data | {"result": wrong}), status, content_type=JSON)


def hostile_answer(spec: dict, status: int, data: dict) -> Response:
    """The answer as a hostile broker would send it (hostile.py): a field replaced, the result
    (the envelope's "result") replaced, or a streamed giant or gzip bomb."""
    if spec["kind"] in hostile.STREAMED:
        head = json.dumps({k: v for k, v in data.items() if k != "result"})[:-1] + ', "result": '
        chunks, headers = hostile.streamed(spec, head)
        return Response(chunks, status, content_type=JSON, headers=headers)
    spec = spec | {"field": spec["field"] or "result"}
    return Response(hostile.poisoned(data, spec), status, content_type=JSON)


def broker_route(route: str, api: str | None = "interactive"):
    """Wrap a view in the fault pipeline. The view returns (status, envelope) or a Response."""

    def wrap(view):
        @functools.wraps(view)
        def handler(*args, **kwargs):
            state = sim()
            state.count(route)
            faults = state.faults
            delay = faults.latency(route)
            if delay:
                gevent.sleep(delay)
            status = faults.take_failure(route, after=False)
            if status:
                return gateway_error(status)
            try:
                if api is not None:
                    g.session = state.sessions.check(request.headers.get("Authorization"), api)
                    if g.session is None:
                        raise invalid_token()
                    if not state.limiter.allow(g.session.account.user_id, route, faults):
                        raise BrokerError(429, "e-apirl-0004", "Too Many Requests", {})
                result = view(*args, **kwargs)
            except BrokerError as err:
                result = err.status, envelope("error", err.code, err.description, err.result)
            if isinstance(result, Response):
                return result
            status = faults.take_failure(route, after=True)
            if status:
                return gateway_error(status)
            code, data = result
            kind = faults.take_malformed(route)
            if kind:
                return malformed(kind, code, data)
            spec = faults.take_hostile(route)
            if spec:
                return hostile_answer(spec, code, data)
            return Response(json.dumps(data), code, content_type=JSON)

        return handler

    return wrap


def client_id(data: dict) -> str:
    """The client an order call acts for: a dealer names it (clientID), an investor is it."""
    account = g.session.account
    if account.investor:
        return account.user_id
    location = "query" if request.method in ("GET", "DELETE") else "body"
    value = str(need(data, "clientID", location))
    if value not in account.clients:
        raise BrokerError(400, "e-user-0006", "Invalid clientID", {})
    return value
