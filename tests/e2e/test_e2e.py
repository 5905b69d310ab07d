"""The whole order path on the real processes and services: log in over HTTP, watch quotes on a
real WebSocket, place a MARKET order and see it FILLED with its trade and position pushed to the
socket, rest a LIMIT order and cancel it."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.support.stack import SocketReader, Stack, demo_session, reset_to_demo_data, started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(app, env):
    reset_to_demo_data(app)
    with started(Stack({**env, "FEED_INTERVAL_MS": "250"})) as running:
        yield running


@pytest.fixture(scope="module")
def session(stack):
    http = demo_session(stack.base_url)
    return {"token": http.token, "http": http}


@pytest.fixture
def socket_reader(stack, session):
    reader = SocketReader(f"{stack.ws_url}?token={session['token']}")
    yield reader
    reader.close()
    stack.assert_alive()


def test_quotes_stream_to_a_subscribed_websocket(socket_reader):
    socket_reader.send({"action": "subscribe", "instrument_ids": [1], "mode": "full"})
    socket_reader.wait_for(lambda m: m.get("type") == "subscribed", what="subscribed")
    first = socket_reader.wait_for(lambda m: m.get("type") == "quote" and m["instrument_id"] == 1, what="quote")
    later = socket_reader.wait_for(
        lambda m: m.get("type") == "quote" and m["instrument_id"] == 1 and m["ts"] > first["ts"], what="next quote"
    )
    assert Decimal(later["ltp"]) > 0 and {"bid", "ask", "open", "high", "low", "volume"} <= set(later)


def _wait_status(stack, http, order_id: str, status: str, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()
        if order["status"] == status:
            return order
        time.sleep(0.05)
    raise AssertionError(f"order {order_id} is {order['status']}, not {status}\n{stack.logs()}")


def test_market_order_fills_and_reaches_the_websocket(stack, session, socket_reader):
    http = session["http"]
    socket_reader.send({"action": "subscribe", "instrument_ids": [2], "mode": "ltp"})
    socket_reader.wait_for(lambda m: m.get("type") == "quote" and m["instrument_id"] == 2, what="quote")
    body = {"instrument_id": 2, "side": "BUY", "quantity": 3, "order_type": "MARKET"}
    response = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
    assert response.status_code == 202 and response.json()["status"] == "PENDING"
    order_id = response.json()["id"]

    order_msg = socket_reader.wait_for(
        lambda m: m.get("type") == "order" and m["order"]["id"] == order_id and m["order"]["status"] == "FILLED",
        what="FILLED order message",
    )
    trade_msg = socket_reader.wait_for(
        lambda m: m.get("type") == "trade" and m["trade"]["order_id"] == order_id, what="trade message"
    )
    position_msg = socket_reader.wait_for(
        lambda m: m.get("type") == "position" and m["position"]["instrument_id"] == 2, what="position message"
    )
    assert order_msg["order"]["filled_quantity"] == 3
    assert trade_msg["trade"]["quantity"] == 3
    assert position_msg["position"]["quantity"] == 3

    order = http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()
    trades = http.get(f"{stack.base_url}/api/v1/trades?order_id={order_id}", timeout=5).json()["items"]
    positions = http.get(f"{stack.base_url}/api/v1/positions", timeout=5).json()["items"]
    assert order["status"] == "FILLED" and order["average_price"] == trades[0]["price"]
    assert [t["quantity"] for t in trades] == [3]
    assert [(p["instrument_id"], p["quantity"]) for p in positions] == [(2, 3)]
    assert positions[0]["average_price"] == order["average_price"]
    events = http.get(f"{stack.base_url}/api/v1/orders/{order_id}/events", timeout=5).json()["items"]
    assert [e["event"] for e in events] == ["created", "submitted", "accepted", "fill"]


def test_limit_order_rests_open_and_cancels(stack, session, socket_reader):
    http = session["http"]
    socket_reader.send({"action": "subscribe", "instrument_ids": [3], "mode": "ltp"})
    quote = socket_reader.wait_for(lambda m: m.get("type") == "quote" and m["instrument_id"] == 3, what="quote")
    tick = Decimal("0.05")
    # 15% below the market: inside the 20% price band, far beyond what the random walk moves in the test
    far_below = (Decimal(quote["ltp"]) * Decimal("0.85") / tick).to_integral_value() * tick
    body = {"instrument_id": 3, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": str(far_below)}
    response = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    _wait_status(stack, http, order_id, "OPEN")

    # Modify through the worker and the paper exchange: MODIFY_PENDING, then OPEN with the new terms.
    lower = far_below - tick
    response = http.patch(f"{stack.base_url}/api/v1/orders/{order_id}", json={"quantity": 2,
                          "limit_price": str(lower)}, timeout=5)  # fmt: skip
    assert response.status_code == 202 and response.json()["status"] == "MODIFY_PENDING", response.text
    modified = _wait_status(stack, http, order_id, "OPEN")
    assert (modified["quantity"], Decimal(modified["limit_price"])) == (2, lower)

    response = http.delete(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5)
    assert response.status_code == 202 and response.json()["status"] == "CANCEL_PENDING"
    cancelled = _wait_status(stack, http, order_id, "CANCELLED")
    assert cancelled["filled_quantity"] == 0
    socket_reader.wait_for(
        lambda m: m.get("type") == "order" and m["order"]["id"] == order_id and m["order"]["status"] == "CANCELLED",
        what="CANCELLED order message",
    )
    again = http.delete(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5)
    assert again.status_code == 409
    events = http.get(f"{stack.base_url}/api/v1/orders/{order_id}/events", timeout=5).json()["items"]
    assert [e["event"] for e in events] == [
        "created", "submitted", "accepted", "modify_requested", "modified", "cancel_requested", "cancelled",
    ]  # fmt: skip
