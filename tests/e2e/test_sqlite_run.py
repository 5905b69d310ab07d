"""The zero-config run path: no DB_HOST, so every process shares an SQLite file under the
given path. The same CLI steps as `make run`, then a MARKET order through the real processes."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import redis
import requests

from tests.support import ROOT
from tests.support.stack import BIN, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sqlite_env(env, tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "tradingapp.db"
    redis_db = str((int(env["REDIS_DB"]) + 1) % 16)
    sqlite = {
        **env,
        "DB_HOST": "",
        "SQLITE_PATH": str(path),
        "REDIS_DB": redis_db,
        "NAMESPACE": env["NAMESPACE"] + "sqlite",
        "FLASK_APP": "wsgi",
        "FEED_INTERVAL_MS": "250",
        "PRICE_BAND_PCT": "80",  # the resting-order check below bids a third of the market price
    }
    redis.Redis(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]), db=int(redis_db)).flushdb()
    return sqlite


def flask(env: dict, *args: str) -> str:
    result = subprocess.run(
        [str(BIN / "flask"), *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_migrate_and_seed_on_sqlite_are_repeatable(sqlite_env):
    assert "nothing to create" in flask(sqlite_env, "create-db")
    flask(sqlite_env, "db", "upgrade")
    assert "seeded users=2 instruments=6" in flask(sqlite_env, "seed")
    flask(sqlite_env, "db", "upgrade")
    assert "seeded users=0 instruments=0" in flask(sqlite_env, "seed")


def wait_status(stack, http, order_id: str, status: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while (current := http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()["status"]) != status:
        assert time.monotonic() < deadline, f"order is {current}, not {status}\n{stack.logs()}"
        time.sleep(0.1)


def test_market_order_fills_and_limit_order_rests_on_sqlite(sqlite_env):
    stack = Stack(sqlite_env)
    try:
        stack.start(["backend", "worker", "consumer", "feed"])
        http = requests.Session()
        login = http.post(
            f"{stack.base_url}/api/v1/auth/login",
            json={"email": "demo@tradingapp.local", "password": "demo-password-123"},
            timeout=10,
        )
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        deadline = time.monotonic() + 20
        while not http.get(f"{stack.base_url}/api/v1/quotes?instrument_ids=1", timeout=5).json().get("items"):
            assert time.monotonic() < deadline, "no quote from the feed\n" + stack.logs()
            time.sleep(0.1)
        body = {"instrument_id": 1, "side": "BUY", "quantity": 2, "order_type": "MARKET"}
        placed = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
        assert placed.status_code == 202, placed.text
        order_id = placed.json()["id"]
        while True:
            order = http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()
            if order["status"] == "FILLED":
                break
            assert time.monotonic() < deadline + 20, f"order is {order['status']}\n{stack.logs()}"
            time.sleep(0.1)
        positions = http.get(f"{stack.base_url}/api/v1/positions", timeout=5).json()["items"]
        assert [(p["instrument_id"], p["quantity"]) for p in positions] == [(1, 2)]

        # A BUY limit at a fraction of the price must rest (SQLite once compared prices as text).
        body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": "950.00"}
        placed = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
        assert placed.status_code == 202, placed.text
        resting = placed.json()["id"]
        wait_status(stack, http, resting, "OPEN")
        time.sleep(1)  # several feed ticks pass over it
        assert http.get(f"{stack.base_url}/api/v1/orders/{resting}", timeout=5).json()["status"] == "OPEN"
        http.delete(f"{stack.base_url}/api/v1/orders/{resting}", timeout=5)
        wait_status(stack, http, resting, "CANCELLED")
        stack.assert_alive()
    finally:
        stack.stop()
