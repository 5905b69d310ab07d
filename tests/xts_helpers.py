"""Helpers of the XTS client tests: run order jobs, apply the broker events they publish, read the
simulator's books. (Fixtures: tests/xts_client_fixture.py; nothing here imports a fixture module,
so pytest can still load those as plugins.)"""

from __future__ import annotations

import time
import uuid

import requests

from tests.test_jobs import run_worker
from tradingapp.extensions import db as _db
from tradingapp.models import Order
from tradingapp.services.orders.broker_events import apply_broker_event


def settle(tap) -> list[dict]:
    """Apply every event published so far, as the consumer would; returns them."""
    events = tap.drain()
    for body in events:
        apply_broker_event(body)
    return events


def reload(order_id) -> Order:
    _db.session.rollback()
    return _db.session.get(Order, order_id, populate_existing=True)


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
