"""OWASP API8:2023 Security Misconfiguration: the headers every answer carries (no MIME sniffing, no
framing, nothing cached that holds a token or a user's data), CORS only for configured origins,
error bodies that never show the parser's or Python's text, no debug, and gunicorn's own refusals
(414, 431, a malformed request) in the API's JSON envelope rather than gunicorn's HTML page."""

from __future__ import annotations

import json
import socket

import pytest

LOGIN = "/api/v1/auth/login"
PASSWORD = "correct-horse-battery"
# What Python, the JSON parser or gunicorn would say, never our own messages.
INTERNALS = ("sys.", "set_int_max_str_digits", "Expecting", "line 1 column", "Traceback", "codec", "Exceeds the limit",
             "Decimal", "RecursionError", "InvalidOperation", "Invalid request", "Invalid header", "<html")  # fmt: skip


def assert_common_headers(response, name: str) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff", name
    assert headers["X-Frame-Options"] == "DENY", name
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", name
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], name


# -- headers --------------------------------------------------------------------------------------
@pytest.fixture
def user(make_user):
    return make_user(email="alice@example.com", password=PASSWORD)


def test_every_kind_of_json_answer_refuses_sniffing_framing_and_caching(client, trader_headers, app):
    answers = {
        "health": client.get("/health"),
        "ready": client.get("/ready"),
        "authenticated": client.get("/api/v1/auth/me", headers=trader_headers),
        "list": client.get("/api/v1/orders", headers=trader_headers),
        "401": client.get("/api/v1/orders"),
        "404": client.get("/api/v1/no-such-thing"),
        "405": client.put("/health"),
        "400": client.post(LOGIN, data="{", content_type="application/json"),
        "413": client.post(
            LOGIN, data=b"{" + b" " * app.config["MAX_CONTENT_LENGTH"] + b"}", content_type="application/json"
        ),  # fmt: skip
        "openapi": client.get("/api/v1/openapi.json"),
    }
    for name, response in answers.items():
        assert response.is_json, name
        assert_common_headers(response, name)
        # A JSON answer is data: it loads nothing, runs nothing, and no cache keeps it.
        assert response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'", name
        assert response.headers["Cache-Control"] == "no-store", name


def test_token_answers_are_never_stored(client, user):
    registered = client.post("/api/v1/auth/register",
                             json={"email": "bob@example.com", "password": PASSWORD, "name": "Bob"})  # fmt: skip
    login = client.post(LOGIN, json={"email": "alice@example.com", "password": PASSWORD})
    refresh = client.post("/api/v1/auth/refresh",
                          headers={"Authorization": f"Bearer {login.get_json()['refresh_token']}"})  # fmt: skip
    for name, response, status in (
        ("register", registered, registered.status_code),
        ("login", login, 200),
        ("refresh", refresh, 200),
    ):
        assert response.status_code == status, (name, response.get_data(as_text=True))
        assert response.headers["Cache-Control"] == "no-store", name
    assert "access_token" in login.get_json() and "access_token" in refresh.get_json()


def test_a_route_that_sets_its_own_cache_control_keeps_it(client, tmp_path, make_app):
    assert client.get("/api/v1/meta").headers["Cache-Control"] == "no-store"
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_text('<!doctype html><script type="module" src="/assets/a-1.js"></script>')
    (build / "assets" / "a-1.js").write_text("console.log(1)")
    web = make_app(FRONTEND_DIST=str(build)).test_client()
    page, asset = web.get("/orders"), web.get("/assets/a-1.js")
    assert page.headers["Cache-Control"] == "no-cache"
    assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for name, response in (("page", page), ("asset", asset)):
        response.close()
        assert_common_headers(response, name)
        # The terminal loads its own scripts and styles: only framing is refused here (nginx adds the rest).
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'", name


# -- CORS -----------------------------------------------------------------------------------------
def test_cors_is_closed_to_every_origin_by_default(client, trader_headers):
    for origin in ("https://evil.example", "null", "http://localhost"):
        response = client.get("/api/v1/orders", headers={**trader_headers, "Origin": origin})
        assert response.status_code == 200
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Credentials" not in response.headers


def test_cors_echoes_only_a_configured_origin(make_app, db, auth_headers, make_user):
    app = make_app(CORS_ALLOWED_ORIGINS="https://terminal.example")
    headers = auth_headers(make_user())
    web = app.test_client()
    for origin in ("https://evil.example", "https://terminal.example.evil.example", "null"):
        refused = web.get("/api/v1/orders", headers={**headers, "Origin": origin})
        assert "Access-Control-Allow-Origin" not in refused.headers, origin
    allowed = web.get("/api/v1/orders", headers={**headers, "Origin": "https://terminal.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://terminal.example"
    assert allowed.headers["Vary"] == "Origin"
    # Bearer tokens, not cookies: credentials are never allowed cross-origin.
    assert "Access-Control-Allow-Credentials" not in allowed.headers


# -- error bodies and debug -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    ['{"email": ' + "1" * 5000 + "}", '{"email": ', "NaN", '{"a": Infinity}', b"\xff\xfe\x00{", b'{"a": "\xff"}',
     '{"a": 1e9999999999999999999}', "[" * 2000, '{"a": 1}}', "\x00", '{"a": "\\ud800"}'],
    ids=["5000 digits", "truncated", "NaN", "Infinity", "bad utf-16", "bad utf-8", "exponent", "nested", "trailing",
         "raw NUL", "surrogate"],
)  # fmt: skip
def test_error_bodies_never_echo_parser_or_python_text(client, raw):
    response = client.post(LOGIN, data=raw, content_type="application/json")
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert not [marker for marker in INTERNALS if marker in text], text
    assert response.get_json()["error"]["code"] == "validation_error"


def test_malformed_json_says_where_not_what_the_parser_said(client):
    response = client.post(LOGIN, data='{\n  "email": }', content_type="application/json")
    assert response.get_json()["error"] == {
        "code": "validation_error",
        "message": "malformed JSON",
        "details": {"line": 2, "column": 12},
    }


def test_an_unexpected_error_is_a_bare_500_without_a_trace(make_app, db):
    app = make_app()
    assert app.debug is False and not app.config.get("PROPAGATE_EXCEPTIONS")

    @app.get("/api/v1/_test/boom")
    def boom():
        raise RuntimeError("connection to /var/lib/secret.sock failed: password=hunter2")

    response = app.test_client().get("/api/v1/_test/boom")
    assert response.status_code == 500
    assert response.get_json() == {"error": {"code": "internal_error", "message": "internal server error",
                                             "details": {}}}  # fmt: skip
    assert b"hunter2" not in response.data and b"RuntimeError" not in response.data
    assert_common_headers(response, "500")


# -- gunicorn's own refusals ----------------------------------------------------------------------
def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the answer to the end (gunicorn closes after its own errors)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received:
                head, _, body = received.partition(b"\r\n\r\n")
                length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


def assert_json_envelope(headers: dict, body: bytes, code: str, *, absent: bytes) -> dict:
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    error = json.loads(body)["error"]
    assert error["code"] == code
    assert absent not in body  # nothing of the request is quoted back
    assert not [marker for marker in INTERNALS if marker in body.decode()], body
    return error


def test_a_request_line_over_the_limit_is_a_json_414(backend):
    path = "/api/v1/instruments?q=" + "A" * 5000
    status, headers, body = exchange(backend.http_port, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 414
    error = assert_json_envelope(headers, body, "uri_too_long", absent=b"AAAA")
    assert error["details"] == {"max_bytes": 4094}
    assert exchange(backend.http_port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[0] == 200


@pytest.mark.parametrize(
    "headers",
    ["".join(f"X-Probe-{i}: v\r\n" for i in range(60)), "X-Big: " + "B" * 9000 + "\r\n"],
    ids=["60 fields", "a 9000 byte field"],
)
def test_headers_over_the_limits_are_a_json_431(backend, headers):
    status, answer, body = exchange(backend.http_port, f"GET /health HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    assert status == 431
    error = assert_json_envelope(answer, body, "headers_too_large", absent=b"BBBB")
    assert error["details"] == {"max_fields": 50, "max_field_bytes": 8190}


GUNICORN_400 = "malformed HTTP request"


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"GET /health HTTP/1.1\r\nHost: x\r\nNo colon here QQQQ\r\n\r\n", GUNICORN_400),
     (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", GUNICORN_400),
     (b"GET /health QQQQ HTTP/1.1\r\nHost: x\r\n\r\n", GUNICORN_400),
     # gunicorn reads a chunked body as the app reads it: the app answers for a broken one.
     (b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      b"Transfer-Encoding: chunked\r\n\r\nQQQQ\r\n{}\r\n0\r\n\r\n", "malformed request body: it could not be read")],
    ids=["header without a colon", "unknown HTTP version", "bad request line", "bad chunk size"],
)  # fmt: skip
def test_a_malformed_request_is_a_json_400(backend, raw, message):
    status, headers, body = exchange(backend.http_port, raw)
    assert status == 400
    error = assert_json_envelope(headers, body, "validation_error", absent=b"QQQQ")
    assert error["message"] == message


def test_the_server_header_names_no_version(backend):
    status, headers, _ = exchange(backend.http_port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200
    assert headers.get("server", "gunicorn") == "gunicorn"


def test_the_served_app_has_no_debugger(backend):
    request = b"GET /api/v1/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, headers, body = exchange(backend.http_port, request)
    assert status == 404 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "not_found"
    assert b"Werkzeug" not in body and b"debugger" not in body.lower()
