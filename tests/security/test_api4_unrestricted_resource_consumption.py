"""OWASP API4:2023 Unrestricted Resource Consumption: what a client sends that costs the server more
than it should, or reached PostgreSQL and came back as a 500. Bodies (size, chunked or not; nesting;
numbers), text PostgreSQL cannot store (NUL, unpaired surrogates) anywhere in a request, ids and
cursors past their columns, page sizes, and a flood of readiness probes. Every refusal is a 4xx in
the API's error shape, fast, and changes nothing. Slow and half-open clients are nginx's to absorb:
tests/deploy/test_nginx.py runs them against the real configuration."""

from __future__ import annotations

import base64
import time

import orjson
import pytest
import requests
import sqlalchemy as sa

from config import TestConfig as AppConfig
from tests.support import wait_until
from tests.support.net import TcpProxy, free_port
from tradingapp.api.health import RABBITMQ_PROBE_SECONDS
from tradingapp.extensions import db as _db
from tradingapp.http import MAX_JSON_DEPTH, MAX_NUMBER_CHARS
from tradingapp.models import User

LOGIN = "/api/v1/auth/login"
REGISTER = "/api/v1/auth/register"
KILL_SWITCH = "/api/v1/admin/kill-switch"
# Fast: refused before any parser recursion or arithmetic, on a shared 2-core machine.
FAST_SECONDS = 1.0


def post_raw(client, path: str, raw: str | bytes, headers=None):
    return client.post(path, data=raw, content_type="application/json", headers=headers or {})


def assert_400(response, *, mentions: str | None = None, status=(400,)) -> dict:
    assert response.status_code in status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    if mentions:
        assert mentions in error["message"], error
    return error


# A value that matched the document's shape but not the rules (a cursor that does not decode, a
# limit past the maximum) is a 422 under the OpenAPI gate (api/openapi.py), a 400 without it.
MATCHED_SHAPE = (400, 422)


def cursor(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def users_count() -> int:
    return _db.session.scalar(sa.select(sa.func.count()).select_from(User))


# -- text PostgreSQL cannot store: one check for every request ------------------------------------
@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff"])
def test_nul_or_lone_surrogate_in_the_login_email_is_a_400_not_a_500(client, escape):
    raw = '{"email": "demo' + escape + '@tradingapp.local", "password": "demo-password-123"}'
    error = assert_400(post_raw(client, LOGIN, raw), mentions="NUL")
    assert error["details"] == {"where": "body", "field": "email"}


def test_nul_in_the_register_email_is_a_400_and_creates_no_user(client):
    before = users_count()
    raw = '{"email": "demo\\u0000@example.com", "password": "a-long-enough-password", "name": "Nul"}'
    assert_400(post_raw(client, REGISTER, raw))
    assert users_count() == before


def test_nul_in_a_key_or_a_nested_string_is_found(client):
    assert_400(post_raw(client, LOGIN, '{"email\\u0000": "x@example.com", "password": "p"}'))
    error = assert_400(post_raw(client, LOGIN, '{"email": "x@example.com", "password": ["ok", {"a": "\\u0000"}]}'))
    assert error["details"]["field"] == "password[1].a"


@pytest.mark.parametrize(
    "query", ["q=a%00", "exchange_segment=NSECM%00", "q%00=a", "cursor=%00", "limit=1%00"]
)  # fmt: skip
def test_nul_in_the_instrument_search_query_is_a_400(client, trader_headers, query):
    response = client.get(f"/api/v1/instruments?{query}", headers=trader_headers)
    assert_400(response)
    assert response.get_json()["error"]["details"]["where"] == "query"


@pytest.mark.parametrize("path", ["/api/v1/orders/abc%00", "/api/v1/watchlists/%00/instruments/1",
                                  "/api/v1/instruments%00"])  # fmt: skip
def test_nul_in_a_path_segment_is_a_400(client, trader_headers, path):
    response = client.get(path, headers=trader_headers)
    assert_400(response)
    assert response.get_json()["error"]["details"] == {"where": "path"}


def test_nul_in_a_header_is_a_400(client, trader_headers):
    order = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET", "product": "MIS"}
    response = client.post("/api/v1/orders", json=order, headers={**trader_headers, "Idempotency-Key": "k\x00"})
    assert_400(response)
    assert response.get_json()["error"]["details"] == {"where": "headers", "field": "Idempotency-Key"}
    assert client.get("/api/v1/orders", headers=trader_headers).get_json()["items"] == []


def test_nul_in_the_kill_switch_reason_is_a_400_and_changes_nothing(client, admin_headers):
    before = client.get(KILL_SWITCH, headers=admin_headers).get_json()
    audit_before = client.get("/api/v1/admin/audit", headers=admin_headers).get_json()
    response = post_raw(client, KILL_SWITCH, '{"active": true, "reason": "outage\\u0000"}', admin_headers)
    assert assert_400(response)["details"] == {"where": "body", "field": "reason"}
    assert client.get(KILL_SWITCH, headers=admin_headers).get_json() == before
    assert client.get("/api/v1/admin/audit", headers=admin_headers).get_json() == audit_before


# -- JSON nesting and numbers ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    ["[" * 2000, '{"a":' * 2000, "[" * 60_000, '{"email": ' + "[" * 1000 + "]" * 1000 + "}"],
    ids=["2000 brackets", "2000 objects", "60000 brackets", "balanced 1000"],
)
def test_deeply_nested_json_is_refused_fast(client, raw):
    started = time.monotonic()
    response = post_raw(client, LOGIN, raw)
    assert time.monotonic() - started < FAST_SECONDS
    error = assert_400(response, mentions=f"nested deeper than {MAX_JSON_DEPTH}")
    assert error["details"] == {"max_depth": MAX_JSON_DEPTH}


def test_nesting_up_to_the_bound_still_parses(client):
    nested = "[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1)
    # Brackets inside strings are text, not nesting.
    raw = '{"email": ' + nested + ', "password": "' + "[" * 3000 + '"}'
    error = assert_400(post_raw(client, LOGIN, raw))
    assert "nested" not in error["message"] and "malformed" not in error["message"]


@pytest.mark.parametrize("number", ["1" * 5000, "1." + "1" * 60_000, "-" + "9" * 41])
def test_a_number_of_thousands_of_digits_is_refused_fast(client, number):
    started = time.monotonic()
    response = post_raw(client, LOGIN, '{"email": "x@example.com", "password": ' + number + "}")
    assert time.monotonic() - started < FAST_SECONDS
    error = assert_400(response, mentions=f"longer than {MAX_NUMBER_CHARS} characters")
    assert error["details"] == {"max_chars": MAX_NUMBER_CHARS}


@pytest.mark.parametrize("number", ["1e9999999999999999999", "1e-9999999999999999999", "1e999999999", "5E+41"])
def test_a_number_with_an_absurd_exponent_is_a_400_not_a_500(client, trader_headers, number):
    raw = '{"instrument_id": 1, "side": "BUY", "quantity": ' + number + ', "order_type": "MARKET", "product": "MIS"}'
    for path in ("/api/v1/orders", "/api/v1/orders/estimate"):
        assert_400(post_raw(client, path, raw, trader_headers), mentions="out of range")
    assert client.get("/api/v1/orders", headers=trader_headers).get_json()["items"] == []


def test_numbers_of_the_apis_sizes_still_parse(client, trader_headers):
    raw = '{"instrument_id": 2147483647, "side": "BUY", "quantity": 9999999999999999999999999999999999999999, ' \
          '"order_type": "MARKET", "product": "MIS"}'  # fmt: skip
    response = post_raw(client, "/api/v1/orders/estimate", raw, trader_headers)
    # Parsed, then refused by the order's own rules (not by the parser) and named by field.
    assert response.status_code in MATCHED_SHAPE and response.get_json()["error"]["details"].get("quantity")


@pytest.mark.parametrize("raw", ['"' + '\\"' * 30000, '"a' * 30000, '{"a": "' + "[" * 60000])
def test_an_unterminated_string_near_the_size_limit_is_refused_in_linear_time(client, raw):
    # The nesting pre-scan once retried an unterminated string from every later quote: 11 s of CPU
    # for 64 KiB, on an anonymous route, stalling the whole gevent worker.
    started = time.process_time()
    response = post_raw(client, LOGIN, raw)
    assert time.process_time() - started < 1.0
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"


# -- ids and cursors past their columns -----------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/api/v1/instruments/99999999999", "/api/v1/instruments/2147483648", "/api/v1/instruments/" + "9" * 5000,
     "/api/v1/instruments/99999999999/candles", "/api/v1/instruments/2147483648/candles?interval=1d"],
)  # fmt: skip
def test_an_instrument_id_past_the_integer_column_is_a_404(client, trader_headers, path):
    response = client.get(path, headers=trader_headers)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("method", ["put", "delete"])
def test_an_id_past_the_column_on_a_route_with_other_methods_is_a_404_not_a_405(client, trader_headers, method):
    # Two rules share the path (PUT and DELETE); the refused id must not turn into "wrong method".
    path = f"/api/v1/watchlists/{UUID}/instruments/2147483648"
    response = getattr(client, method)(path, headers=trader_headers)
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_largest_id_the_column_holds_is_an_ordinary_404(client, trader_headers):
    for path in ("/api/v1/instruments/2147483647", "/api/v1/instruments/2147483647/candles"):
        response = client.get(path, headers=trader_headers)
        assert response.status_code == 404
        assert response.get_json()["error"]["message"] == "instrument not found"


TIME = "2024-01-01T00:00:00+00:00"
UUID = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/trades"])
@pytest.mark.parametrize(
    "raw",
    [f'["{TIME}", 5]'.encode(), f'[5, "{UUID}"]'.encode(), b"[null, null]", b'[{"a": 1}, ["b"]]',
     f'["{TIME}", true]'.encode(), f'["2024-01-01T00:00:00", "{UUID}"]'.encode(),
     f'["0001-01-01T00:00:00+14:00", "{UUID}"]'.encode(), f'["{TIME}", "not-a-uuid"]'.encode(), b'"x"', b"[1e999]"],
    ids=["id int", "time int", "nulls", "containers", "id bool", "naive time", "year 1 east of UTC", "id not a uuid",
         "not a list", "huge float"],
)  # fmt: skip
def test_a_keyset_cursor_of_the_wrong_types_is_a_400(client, trader_headers, path, raw):
    response = client.get(f"{path}?cursor={cursor(raw)}", headers=trader_headers)
    assert assert_400(response, status=MATCHED_SHAPE)["message"] == "invalid cursor"


@pytest.mark.parametrize("raw", [b"[99999999999]", b"[2147483648]", b"[-1]", b"[true]", b'["1"]', b"[1.5]", b"[null]"])
def test_an_instrument_cursor_past_the_id_column_is_a_400(client, trader_headers, raw):
    response = client.get(f"/api/v1/instruments?cursor={cursor(raw)}", headers=trader_headers)
    assert assert_400(response, status=MATCHED_SHAPE)["message"] == "invalid cursor"


def test_a_cursor_the_server_made_still_pages(client, trader_headers):
    first = client.get("/api/v1/instruments?limit=1", headers=trader_headers).get_json()
    second = client.get(f"/api/v1/instruments?limit=1&cursor={first['next_cursor']}", headers=trader_headers)
    assert second.status_code == 200
    assert second.get_json()["items"][0]["id"] > first["items"][0]["id"]
    made = cursor(orjson.dumps([TIME, UUID]))
    for path in ("/api/v1/orders", "/api/v1/trades"):
        assert client.get(f"{path}?cursor={made}", headers=trader_headers).status_code == 200


# -- pages ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", ["501", "0", "-1", "9" * 5000, "1e3", "ten"])
@pytest.mark.parametrize("path", ["/api/v1/orders", "/api/v1/trades", "/api/v1/instruments"])
def test_a_page_larger_than_the_maximum_or_not_a_number_is_a_400(client, trader_headers, path, limit):
    assert_400(client.get(f"{path}?limit={limit}", headers=trader_headers), status=MATCHED_SHAPE)


# -- bodies through the real server ---------------------------------------------------------------
@pytest.fixture(scope="module")
def max_bytes(env) -> int:
    return AppConfig(env).MAX_CONTENT_LENGTH


def chunks(body: bytes, size: int = 4096):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def at_length(length: int) -> bytes:
    body = b'{"email": "x@example.com", "password": "' + b"p" * (length - 42) + b'"}'
    assert len(body) == length
    return body


@pytest.mark.parametrize("over", [1, 6 * 1024, 1024 * 1024])
def test_a_chunked_body_over_the_limit_is_a_413(backend, max_bytes, over):
    body = at_length(max_bytes + over)
    response = requests.post(f"{backend.base_url}{LOGIN}", data=chunks(body), timeout=30,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 413, response.text
    assert response.json()["error"] == {
        "code": "payload_too_large",
        "message": f"request body is larger than {max_bytes} bytes",
        "details": {"max_bytes": max_bytes},
    }


def test_a_body_over_the_limit_with_a_content_length_is_a_413(backend, max_bytes):
    response = requests.post(f"{backend.base_url}{LOGIN}", data=at_length(max_bytes + 1), timeout=30,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("chunked", [True, False])
def test_a_body_of_exactly_the_limit_reaches_the_app(backend, max_bytes, chunked):
    body = at_length(max_bytes)
    response = requests.post(f"{backend.base_url}{LOGIN}", data=chunks(body) if chunked else body, timeout=30,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code != 413, response.text
    assert response.json()["error"]["code"] in ("unauthorized", "validation_error")
    # The connection and the server are fine afterwards.
    assert requests.get(f"{backend.base_url}/health", timeout=10).status_code == 200


# -- readiness probes ----------------------------------------------------------------------------
@pytest.fixture
def rabbitmq_proxy():
    proxy = TcpProxy(free_port())
    proxy.start()
    yield proxy
    proxy.cut()


def test_a_flood_of_ready_opens_one_broker_connection_per_interval(make_app, db, rabbitmq_proxy):
    app = make_app(RABBITMQ_PORT=str(rabbitmq_proxy.port))
    client = app.test_client()
    started = time.monotonic()
    for _ in range(100):
        response = client.get("/ready")
        assert response.status_code == 200, response.get_data(as_text=True)
    assert time.monotonic() - started < RABBITMQ_PROBE_SECONDS  # the flood fitted in one interval
    assert len(rabbitmq_proxy.sockets) == 2  # one connection: the client side and the upstream side

    # The probe result is kept, not frozen: a broker that goes away shows within the interval.
    rabbitmq_proxy.cut()
    wait_until(lambda: client.get("/ready").status_code == 503, timeout=RABBITMQ_PROBE_SECONDS + 5)
    body = client.get("/ready").get_json()
    assert body["checks"]["rabbitmq"] == "unavailable"
    assert body["checks"]["database"] == body["checks"]["redis"] == "ok"
