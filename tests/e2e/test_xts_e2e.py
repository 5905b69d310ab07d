"""BROKER=xts end to end on the real processes: backend, websocket, worker, consumer and the feed
process (which with BROKER=xts is the XTS event bridge), against the XTS simulator process, real
Postgres, Redis and RabbitMQ. An order placed through our API reaches the simulator exactly once,
its fills come back through the bridge, RabbitMQ and the consumer, and the user's WebSocket shows
them: plainly, across a socket outage with fills during it, with duplicated and reordered socket
events, and across a session expiry.
"""

from __future__ import annotations

import warnings
from decimal import Decimal

import pytest
import requests

from tests.support import wait_until
from tests.support.stack import SocketReader, Stack, demo_session, reset_to_demo_data, started

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim(xts_sim_process):
    from tests.support.xts_sim import XtsSim

    sim = XtsSim(xts_sim_process)
    sim.control("reset", {"sessions": True})
    yield sim
    sim.close()


@pytest.fixture(scope="module")
def stack(app, env, sim):
    from tests.support.xts_sim import APP_KEY, MD_KEY, MD_SECRET, SECRET_KEY

    reset_to_demo_data(app)
    running = Stack({**env, "BROKER": "xts", "XTS_API_URL": sim.url, "XTS_API_KEY": APP_KEY,
                     "XTS_API_SECRET": SECRET_KEY, "XTS_MD_API_KEY": MD_KEY, "XTS_MD_API_SECRET": MD_SECRET,
                     "XTS_TICK_FLUSH_MS": "50", "XTS_RECONCILE_INTERVAL": "0", "LOG_LEVEL": "INFO"})  # fmt: skip

    def sockets_joined(running: Stack) -> None:
        wait_until(
            lambda: {"interactive", "marketdata"} <= {s["api"] for s in sim.state()["sockets"]}, 30, running.logs
        )

    with started(running, sockets_joined):
        yield running


@pytest.fixture(scope="module")
def http(stack):
    return demo_session(stack.base_url)


@pytest.fixture
def socket_reader(stack, http, sim):
    sim.faults(events={"drop_next": 0, "duplicate_next": 0, "reorder_next": 0, "duplicate_prob": 0.0,
                       "reorder_prob": 0.0, "drop_prob": 0.0})  # fmt: skip
    reader = SocketReader(f"{stack.ws_url}?token={http.token}")
    yield reader
    reader.close()
    stack.assert_alive()


@pytest.fixture(autouse=True)
def _quiet_socket_gc():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


def place(stack, http, quantity: int) -> str:
    body = {"instrument_id": 1, "side": "BUY", "quantity": quantity, "order_type": "MARKET"}
    response = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def filled_on_the_socket(reader: SocketReader, order_id: str, quantity: int) -> None:
    order = reader.wait_for(
        lambda m: m.get("type") == "order" and m["order"]["id"] == order_id and m["order"]["status"] == "FILLED",
        timeout=30, what=f"FILLED message of {order_id}",
    )  # fmt: skip
    assert order["order"]["filled_quantity"] == quantity
    reader.wait_for(lambda m: m.get("type") == "trade" and m["trade"]["order_id"] == order_id, what="trade")


def booked_once(stack, http, sim, order_id: str, quantity: int) -> None:
    """At the simulator exactly once; our trades add up to the quantity, one per execution."""
    assert len(sim.state()["orders_by_unique_id"].get(order_id, [])) == 1
    trades = http.get(f"{stack.base_url}/api/v1/trades?order_id={order_id}", timeout=5).json()["items"]
    assert sum(t["quantity"] for t in trades) == quantity
    order = http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()
    assert (order["status"], order["filled_quantity"]) == ("FILLED", quantity)


def test_an_order_through_our_api_fills_through_the_bridge_onto_the_websocket(stack, http, sim, socket_reader):
    socket_reader.send({"action": "subscribe", "instrument_ids": [1], "mode": "full"})
    socket_reader.wait_for(lambda m: m.get("type") == "subscribed", what="subscribed")
    sim.price("NSECM", 2885, "2933.35")
    quote = socket_reader.wait_for(
        lambda m: m.get("type") == "quote" and m["instrument_id"] == 1 and m["ltp"] == "2933.35", what="bridge quote"
    )
    assert Decimal(quote["bid"]) > 0
    order_id = place(stack, http, 5)
    filled_on_the_socket(socket_reader, order_id, 5)
    socket_reader.wait_for(lambda m: m.get("type") == "position" and m["position"]["instrument_id"] == 1)
    booked_once(stack, http, sim, order_id, 5)


def test_fills_during_a_socket_outage_reach_the_websocket_once(stack, http, sim, socket_reader):
    sim.control("sockets/disconnect", {"mode": "drop", "refuse_seconds": 3})
    order_id = place(stack, http, 7)
    wait_until(lambda: sim_status(sim, order_id) == "Filled", 10, stack.logs)
    assert not any(s["api"] == "interactive" for s in sim.state()["sockets"])  # filled while the bridge was away
    filled_on_the_socket(socket_reader, order_id, 7)
    booked_once(stack, http, sim, order_id, 7)
    assert stack.processes["feed"].tail(400).count("reason=connected") >= 2  # reconnected, reconciled


def sim_status(sim, order_id: str) -> str | None:
    rows = requests.get(f"{sim.url}/_sim/orders", timeout=5).json()["orders"]
    return next((r["OrderStatus"] for r in rows if r["OrderUniqueIdentifier"] == order_id), None)


def test_duplicated_and_reordered_events_are_applied_once(stack, http, sim, socket_reader):
    sim.faults(events={"duplicate_prob": 0.5, "reorder_prob": 0.3})
    order_ids = [place(stack, http, quantity) for quantity in (2, 3, 4)]
    for order_id, quantity in zip(order_ids, (2, 3, 4), strict=True):
        filled_on_the_socket(socket_reader, order_id, quantity)
        booked_once(stack, http, sim, order_id, quantity)
    assert sim.state()["events"]["duplicated"] > 0


def test_an_order_after_a_session_expiry_fills_once(stack, http, sim, socket_reader):
    sim.control("sessions/expire", {})
    order_id = place(stack, http, 6)
    filled_on_the_socket(socket_reader, order_id, 6)
    booked_once(stack, http, sim, order_id, 6)
