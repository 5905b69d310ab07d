"""Helpers of the XTS client tests: run order jobs, apply the broker events they publish, read the
simulator's books. (Fixtures: tests/support/xts_client.py; nothing here imports a fixture module,
so pytest can still load those as plugins.)"""

from __future__ import annotations

import time
import uuid

import requests

from tests.support.factories import new_order, set_quote
from tests.support.jobs import run_worker
from tradingapp.brokers.xts.broker import PLACED_TTL, resend_horizon
from tradingapp.extensions import get_redis
from tradingapp.services.orders.broker_events import apply_broker_event
from tradingapp.services.orders.submission import claim_for_submission


def settle(tap) -> list[dict]:
    """Apply every event published so far, as the consumer would; returns them."""
    events = tap.drain()
    for body in events:
        apply_broker_event(body)
    return events


def place_via_api(client, headers, **body) -> uuid.UUID:
    body = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "MARKET", **body}
    response = client.post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return uuid.UUID(response.get_json()["id"])


def at_simulator(xts, order_id) -> list[int]:
    """The AppOrderIDs the simulator holds under our order id (exactly-once: one)."""
    return xts.state()["orders_by_unique_id"].get(str(order_id), [])


def sim_row(xts, app_order_id: int) -> dict:
    return next(r for r in xts_orders(xts) if r["AppOrderID"] == app_order_id)


def xts_orders(xts) -> list[dict]:
    return requests.get(f"{xts.url}/_sim/orders", timeout=5).json()["orders"]


def wait_sim_status(xts, app_order_id: int, *statuses: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        row = sim_row(xts, app_order_id)
        if row["OrderStatus"] in statuses:
            return row
        assert time.monotonic() < deadline, row
        time.sleep(0.02)


__all__ = ["run_worker"]


MARKET = "2900.05"


def past_the_horizon(app, order_id) -> None:
    """Age the record of the order's last place attempt past the resend horizon (as time would)."""
    broker = app.extensions["tradingapp.broker"]
    horizon = resend_horizon(app.config["XTS_TIMEOUT"])
    get_redis().set(broker._key("placed_at", order_id), repr(time.time() - horizon - 1), ex=PLACED_TTL)


def filled_and_settled(broker, xts, trader, tap) -> tuple:
    """An order of ours placed through `broker`, filled at the simulator, its events applied:
    (its OrderRequest, its AppOrderID)."""
    request = claimed(trader)
    app_order_id = int(broker.place(request))
    wait_sim_status(xts, app_order_id, "Filled")
    broker.lookup(request.order_id)
    settle(tap)
    return request, app_order_id


def claimed(user, **body):
    """An order of ours in Postgres, claimed for submission as the worker does: its OrderRequest."""
    set_quote(1, MARKET)
    request, _resend = claim_for_submission(new_order(user, quantity=10, **body).id)
    return request
