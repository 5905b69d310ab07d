"""What the WebSocket feed counts: open sockets, deliveries by type, conflated quotes, messages dropped
and closes by code. The hub's counts on their own (in this process's registry), then the real
websocket process (gunicorn with the project's gunicorn.conf.py: multiprocess metrics) read from its
/metrics."""

from __future__ import annotations

import socket
import struct
import time

import orjson
import pytest
import websocket
from prometheus_client import REGISTRY

from tests.support import wait_until
from tests.support.stack import Stack, scrape
from tradingapp import metrics, realtime
from tradingapp.extensions import get_redis
from tradingapp.security.auth import issue_tokens
from tradingapp.ws.hub import CLOSE_OVERFLOW, Connection, Hub

QUOTE = {
    "instrument_id": 7, "ltp": "101.25", "ltq": 5, "bid": "101.20", "ask": "101.30", "bid_qty": 40,
    "ask_qty": 60, "open": "100.00", "high": "102.00", "low": "99.50", "close": "100.10",
    "volume": 12000, "ts": "2024-05-02T09:15:01.000000+00:00",
}  # fmt: skip


# -- the hub's counts, in this process -------------------------------------------------------------------
@pytest.fixture
def counted():
    """Real metrics in this process (another test's app may have switched them off), and a reader of
    how much a sample grew since the test began."""
    metrics.configure(True)
    before: dict = {}

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return (REGISTRY.get_sample_value(name, labels) or 0) - before[key]

    def watch(name: str, **labels: str) -> None:
        before[(name, tuple(sorted(labels.items())))] = REGISTRY.get_sample_value(name, labels) or 0

    grew.watch = watch
    return grew


def test_a_quote_replaced_before_it_was_sent_is_conflated_not_delivered(counted):
    counted.watch("tradingapp_ws_quotes_conflated_total")
    counted.watch("tradingapp_ws_deliveries_total", type="quote")
    hub = Hub()
    slow, fast = hub.register("u1"), hub.register("u2")
    hub.subscribe(slow, [7], "ltp")
    hub.subscribe(fast, [7, 8], "full")
    hub.route_quote({**QUOTE, "ltp": "101.00"})
    fast.take_now()  # the fast socket's writer took it; the slow one's still waits
    hub.route_quote({**QUOTE, "ltp": "102.00"})  # replaces the slow socket's unsent quote
    hub.route_quote({**QUOTE, "instrument_id": 8})
    assert counted("tradingapp_ws_quotes_conflated_total") == 1
    # 5 quotes queued, 1 of them replaced: 4 go out (101.00 to the fast socket, 102.00 to both,
    # instrument 8 to the fast one)
    assert counted("tradingapp_ws_deliveries_total", type="quote") == 4
    assert [orjson.loads(m)["ltp"] for m in slow.take_now()] == ["102.00"]


def test_user_events_and_replies_are_delivered_by_type(counted):
    for kind in ("order", "pong"):
        counted.watch("tradingapp_ws_deliveries_total", type=kind)
    hub = Hub()
    first, second = hub.register("u1"), hub.register("u1")
    hub.register("u2")
    hub.route_user_event({"user_id": "u1", "type": "order", "order": {"id": "o1"}})
    first.send({"type": "pong"})
    assert counted("tradingapp_ws_deliveries_total", type="order") == 2  # both of u1's sockets, not u2's
    assert counted("tradingapp_ws_deliveries_total", type="pong") == 1
    assert second.pending() == 1


def test_an_overflowing_outbox_counts_everything_it_drops(counted):
    counted.watch("tradingapp_ws_deliveries_dropped_total", reason="queue_full")
    conn = Connection("u1", max_events=2)
    conn.sending_since = time.monotonic()  # its client is not reading: the limit applies as it is
    conn.push_quote(7, b"q")
    assert conn.push(b"e1") and conn.push(b"e2")
    assert not conn.push(b"e3")
    assert conn.close_code == CLOSE_OVERFLOW
    # the two events queued, the quote and the event refused: none of them will be sent
    assert counted("tradingapp_ws_deliveries_dropped_total", reason="queue_full") == 4


def test_a_socket_closed_with_nothing_queued_drops_nothing(counted):
    counted.watch("tradingapp_ws_deliveries_dropped_total", reason="closed")
    conn = Connection("u1")
    conn.push(b"e1")
    conn.take_now()
    conn.close(1000, "bye")
    assert counted("tradingapp_ws_deliveries_dropped_total", reason="closed") == 0


def test_switched_off_nothing_is_counted(counted):
    counted.watch("tradingapp_ws_deliveries_total", type="quote")
    metrics.configure(False)
    try:
        hub = Hub()
        hub.subscribe(hub.register("u1"), [7], "ltp")
        hub.route_quote(QUOTE)
    finally:
        metrics.configure(True)
    assert counted("tradingapp_ws_deliveries_total", type="quote") == 0


# -- the websocket process ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(app, env):
    """The websocket process as deployed (gunicorn.conf.py), with a short send timeout and heartbeats
    slow enough that a client that stops reading is closed for its send, not for a missed pong."""
    stack = Stack({**env, "WS_SEND_TIMEOUT": "1", "WS_PING_INTERVAL": "60", "WS_REVOCATION_CHECK": "1"})
    try:
        stack.start(["websocket"])
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def token(app, make_user):
    def factory() -> str:
        with app.test_request_context():
            return issue_tokens(make_user())["access_token"]

    return factory


def recv_json(ws) -> dict:
    return orjson.loads(ws.recv())


def close_code(ws) -> int:
    while True:
        opcode, frame = ws.recv_data_frame(control_frame=True)
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            return struct.unpack("!H", frame.data[:2])[0]


def grows(server: Stack, sample: str, by: float, **labels: str):
    """Wait until `sample` on the websocket's /metrics is `by` more than it is now."""
    url = server.metrics_url("websocket")
    start = scrape(url).value(sample, **labels)

    def reached():
        now = scrape(url).value(sample, **labels)
        return now if now >= start + by else None

    return lambda: wait_until(reached, timeout=10, details=lambda: f"{sample}{labels} still {start} + <{by}")


def test_open_sockets_go_up_and_down_and_closes_are_counted_by_code(server, token, sockets):
    url = server.metrics_url("websocket")
    open_now = lambda: scrape(url).value("tradingapp_ws_open_sockets")  # noqa: E731
    base = open_now()
    first, second = (sockets(f"{server.ws_url}?token={token()}") for _ in range(2))
    for ws in (first, second):
        ws.send('{"action": "ping"}')
        assert recv_json(ws) == {"type": "pong"}
    assert open_now() == base + 2
    by_client = grows(server, "tradingapp_ws_closes_total", 1, code="1001")
    first.close(status=1001)  # the client going away
    by_client()
    wait_until(lambda: open_now() == base + 1, details=lambda: f"open {open_now()}")
    unauthorized = grows(server, "tradingapp_ws_closes_total", 1, code="4401")
    refused = sockets(f"{server.ws_url}?token=not-a-token")
    assert close_code(refused) == 4401
    unauthorized()
    wait_until(lambda: open_now() == base + 1, details=lambda: f"open {open_now()}")


def test_replies_and_quotes_are_counted_as_delivered(server, token, sockets):
    replies = grows(server, "tradingapp_ws_deliveries_total", 1, type="subscribed")
    quotes = grows(server, "tradingapp_ws_deliveries_total", 2, type="quote")
    ws = sockets(f"{server.ws_url}?token={token()}")
    ws.send(orjson.dumps({"action": "subscribe", "instrument_ids": [1, 2], "mode": "ltp"}).decode())
    assert recv_json(ws)["type"] == "subscribed"
    replies()
    realtime.store_quotes(get_redis(), [{**QUOTE, "instrument_id": 1}, {**QUOTE, "instrument_id": 2}], 60)
    assert {recv_json(ws)["instrument_id"] for _ in range(2)} == {1, 2}
    quotes()


def test_a_client_that_stops_reading_is_conflated_then_dropped_for_its_send(server, token, sockets):
    url = server.metrics_url("websocket")
    before = scrape(url)
    # a tiny receive buffer, so the server's writes back up soon after the client stops reading
    ws = sockets(f"{server.ws_url}?token={token()}", sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    ids = list(range(1, 201))
    ws.send(orjson.dumps({"action": "subscribe", "instrument_ids": ids, "mode": "full"}).decode())
    assert recv_json(ws)["type"] == "subscribed"
    timed_out = grows(server, "tradingapp_ws_closes_total", 1, code=str(CLOSE_OVERFLOW))
    published, flood_until = 0, time.monotonic() + 3  # past the 1 s send timeout and the watcher's tick
    while time.monotonic() < flood_until:
        pipe = get_redis().pipeline(transaction=False)
        for iid in ids:
            realtime.publish_quote(pipe, {**QUOTE, "instrument_id": iid, "ltp": f"{published}.00"})
            published += 1
        pipe.execute()
        time.sleep(0.02)
    timed_out()
    after = scrape(url)
    conflated = after.value("tradingapp_ws_quotes_conflated_total") - before.value(
        "tradingapp_ws_quotes_conflated_total"
    )
    assert conflated > 0
    dropped = after.value("tradingapp_ws_deliveries_dropped_total", reason="send_timeout") - before.value(
        "tradingapp_ws_deliveries_dropped_total", reason="send_timeout"
    )
    assert dropped > 0


def test_close_codes_a_client_chooses_are_counted_as_other():
    """A client may close with any code from 1000 to 4999: each unknown one would be a series of its own."""
    from tradingapp.ws.routes import close_code_label

    assert [close_code_label(code) for code in (1000, 1005, 1006, 1008, 1012, 1013, 4401, 4429)] == [
        "1000", "1005", "1006", "1008", "1012", "1013", "4401", "4429",
    ]  # fmt: skip
    assert {close_code_label(code) for code in (1002, 3000, 4000, 4123, 4999)} == {"other"}


def test_a_made_up_http_method_is_counted_as_other(counted, client):
    """gunicorn passes any token as a method; the label keeps to the standard ones."""
    counted.watch("tradingapp_http_requests_total", route="unmatched", method="other", status="405")
    counted.watch("tradingapp_http_requests_total", route="/health", method="other", status="405")
    for method in ("FOOBAR", "BREW", "XYZZY"):
        assert client.open("/health", method=method).status_code == 405
    grown = counted("tradingapp_http_requests_total", route="/health", method="other", status="405")
    grown += counted("tradingapp_http_requests_total", route="unmatched", method="other", status="405")
    assert grown == 3
    assert (
        REGISTRY.get_sample_value(
            "tradingapp_http_requests_total", {"route": "/health", "method": "FOOBAR", "status": "405"}
        )
        is None
    )
