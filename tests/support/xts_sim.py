"""The XTS simulator as a real process, and small helpers to talk to it over HTTP and socket.io.

`xts_sim_process` (module scope) starts `python -m tradingapp.simulators.xts` on a free port with
prices moving only when told; `xts` (function scope) resets it and hands out an `XtsSim` helper.
Both are registered as a plugin by tests/conftest.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
import socketio

from tests.support import ROOT
from tests.support.net import free_port

APP_KEY, SECRET_KEY = "sim-app-key", "sim-secret-key"
MD_KEY, MD_SECRET = "sim-md-key", "sim-md-secret"


def start_simulator(log_path: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "tradingapp.simulators.xts",
        "--port",
        str(port),
        "--seed",
        "7",
        "--tick-interval",
        "0",
        *extra,
    ]
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    proc.log_file = log
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited: {log_path.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/_sim/state", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    stop_simulator(proc)
    raise RuntimeError("simulator did not start in 20 s")


def stop_simulator(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    proc.log_file.close()


class Events:
    """Socket events as (name, payload) with the payload parsed from its JSON string."""

    def __init__(self):
        self.items: list[tuple[str, object]] = []
        self.raw: list[tuple[str, object]] = []
        self.cond = threading.Condition()

    def add(self, name: str, data) -> None:
        with self.cond:
            self.raw.append((name, data))
            self.items.append((name, json.loads(data) if isinstance(data, str) and data[:1] in "{[" else data))
            self.cond.notify_all()

    def wait_for(self, predicate, timeout: float = 5.0):
        """Wait until predicate(items) is truthy and return its value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(self.items)
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out; events so far: {[(n, _brief(d)) for n, d in self.items]}")
                self.cond.wait(left)

    def of(self, name: str, app_order_id: int | None = None) -> list[dict]:
        with self.cond:
            return [d for n, d in self.items if n == name and (app_order_id is None or d["AppOrderID"] == app_order_id)]

    def statuses(self, app_order_id: int) -> list[str]:
        return [d["OrderStatus"] for d in self.of("order", app_order_id)]


def _brief(d):
    return {k: d[k] for k in ("AppOrderID", "OrderStatus") if k in d} if isinstance(d, dict) else d


class XtsSim:
    def __init__(self, url: str):
        self.url = url
        self.clients: list = []

    # ---- control ----------------------------------------------------------------------------------
    def control(self, path: str, payload: dict | None = None) -> dict:
        r = requests.post(f"{self.url}/_sim/{path}", json=payload or {}, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def state(self) -> dict:
        return requests.get(f"{self.url}/_sim/state", timeout=5).json()

    def faults(self, **knobs) -> dict:
        return self.control("faults", knobs)

    def price(self, segment: str, ex_id: int, price, **extra) -> dict:
        return self.control(
            "price", {"exchangeSegment": segment, "exchangeInstrumentID": ex_id, "price": str(price)} | extra
        )

    # ---- broker calls -----------------------------------------------------------------------------
    def login(self, app_key: str = APP_KEY, secret_key: str = SECRET_KEY) -> dict:
        r = requests.post(
            f"{self.url}/interactive/user/session",
            json={"appKey": app_key, "secretKey": secret_key, "source": "WEBAPI"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        return r.json()["result"]

    def md_login(self, prefix: str = "/apimarketdata") -> dict:
        r = requests.post(
            f"{self.url}{prefix}/auth/login",
            json={"appKey": MD_KEY, "secretKey": MD_SECRET, "source": "WEBAPI"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
        return r.json()["result"]

    def call(self, method: str, path: str, token: str, payload: dict | None = None, timeout: float = 5):
        headers = {"Authorization": token, "Content-Type": "application/json"}
        if method in ("GET", "DELETE"):
            return requests.request(method, self.url + path, params=payload, headers=headers, timeout=timeout)
        return requests.request(
            method, self.url + path, data=json.dumps(payload or {}), headers=headers, timeout=timeout
        )

    def place(self, token: str, timeout: float = 5, **overrides) -> requests.Response:
        order = {
            "exchangeSegment": "NSECM",
            "exchangeInstrumentID": 2885,
            "productType": "MIS",
            "orderType": "MARKET",
            "orderSide": "BUY",
            "timeInForce": "DAY",
            "disclosedQuantity": 0,
            "orderQuantity": 10,
            "limitPrice": 0,
            "stopPrice": 0,
            "orderUniqueIdentifier": "ord-1",
        }
        return self.call("POST", "/interactive/orders", token, order | overrides, timeout=timeout)

    # ---- sockets ----------------------------------------------------------------------------------
    def interactive_socket(self, session: dict, eio3: bool = False, reconnection: bool = False):
        events = Events()
        if eio3:
            import socketio_v4

            client = socketio_v4.Client(reconnection=reconnection)
            path_kw = {"socketio_v4_path": "/interactive/socket.io"}
        else:
            client = socketio.Client(reconnection=reconnection, reconnection_delay=0.2, reconnection_delay_max=0.5)
            path_kw = {"socketio_path": "/interactive/socket.io"}
        for name in ("joined", "order", "trade", "position", "logout", "error"):
            client.on(name, lambda data, name=name: events.add(name, data))
        client.on("disconnect", lambda *a: events.add("_disconnect", "{}"))
        url = f"{self.url}/?token={session['token']}&userID={session['userID']}&apiType=INTERACTIVE"
        client.connect(url, transports=["websocket"], **path_kw)
        self.clients.append(client)
        events.wait_for(lambda items: any(n == "joined" for n, _ in items))
        return client, events

    def md_socket(self, session: dict, mode: str = "Full", path: str = "/apimarketdata/socket.io"):
        events = Events()
        client = socketio.Client(reconnection=False)
        for code in (1501, 1502, 1512):
            for kind in ("full", "partial"):
                name = f"{code}-json-{kind}"
                client.on(name, lambda data, name=name: events.add(name, data))
        url = f"{self.url}/?token={session['token']}&userID={session['userID']}&publishFormat=JSON&broadcastMode={mode}"
        client.connect(url, transports=["websocket"], socketio_path=path)
        self.clients.append(client)
        return client, events

    def close(self) -> None:
        for client in self.clients:
            try:
                client.disconnect()
            except Exception:  # already gone (the test may have had the server drop it)
                pass


@pytest.fixture(scope="module")
def xts_sim_process(tmp_path_factory):
    proc, url = start_simulator(tmp_path_factory.mktemp("xts") / "simulator.log")
    yield url
    stop_simulator(proc)


@pytest.fixture
def xts(xts_sim_process):
    sim = XtsSim(xts_sim_process)
    sim.control("reset", {"sessions": True})
    sim.faults(rate_limit=False)
    yield sim
    sim.close()
