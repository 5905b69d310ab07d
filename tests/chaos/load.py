"""The chaos suite's clients, over real HTTP and WebSocket as a trader's terminal would be:

- Trader: a steady order load for one user (MARKET and LIMIT orders, modifications, cancels).
  Each new order carries its own client_order_id; a request that fails with a 5xx, a 429 or a
  connection error is sent again, unchanged (same key), with backoff, as a real client does.
- Watcher: the terminal's socket for one user: auth, a ping to know it is registered, then the
  REST snapshot of the user's orders; every `order` message and every snapshot merge into one
  view (the newer `updated_at` wins, as the terminal's cache does). It reconnects after any
  fault, re-reading the snapshot each time.
- Probe: one MARKET order at a time, placed and read back until FILLED: the time from a fault to
  the first order through the whole path is that fault's recovery time.
Every failed attempt is counted by outcome (HTTP status, or `conn` / `timeout`) under the fault
window open when it failed.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

import orjson
import requests
import websocket

RETRYABLE = {429, 500, 502, 503, 504}
GIVE_UP_AFTER = 60.0  # seconds a client keeps retrying one request
STATUS_RANK = {"PENDING": 0, "SUBMITTED": 1, "OPEN": 2, "MODIFY_PENDING": 2, "CANCEL_PENDING": 2, "PARTIALLY_FILLED": 3}
FINAL = {"FILLED", "CANCELLED", "REJECTED", "EXPIRED"}


class Windows:
    """The fault window each request belongs to (0: before the first fault), and the counts."""

    def __init__(self):
        self.current = 0
        self.errors: dict[int, Counter] = {}
        self._lock = threading.Lock()

    def count(self, window: int, outcome: str) -> None:
        with self._lock:
            self.errors.setdefault(window, Counter())[outcome] += 1


@dataclass
class Accepted:
    order_id: str
    client_order_id: str
    order_type: str
    window: int
    at: float


@dataclass
class Client:
    """A logged-in HTTP client that retries what a real client retries."""

    base_url: str
    email: str
    password: str
    windows: Windows
    stop: threading.Event
    session: requests.Session = field(default_factory=requests.Session)
    user_id: str | None = None
    token: str | None = None

    def login(self) -> None:
        answer = self.call(
            "POST", "/api/v1/auth/login", json={"email": self.email, "password": self.password}, auth=False
        )
        if answer is None or answer.status_code != 200:
            raise RuntimeError(f"login of {self.email} failed: {answer and answer.text}")
        self.token = answer.json()["access_token"]
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def call(self, method: str, path: str, auth: bool = True, **kwargs) -> requests.Response | None:
        """The final answer (None: gave up on connection errors). 5xx, 429 and connection errors are
        counted and retried with the same request; a 401 logs in again once."""
        started = time.monotonic()
        delay, relogged = 0.1, False
        while True:
            try:
                answer = self.session.request(method, self.base_url + path, timeout=10, **kwargs)
            except requests.Timeout:
                self.windows.count(self.windows.current, "timeout")
                answer = None
            except requests.ConnectionError:
                self.windows.count(self.windows.current, "conn")
                answer = None
            if answer is not None:
                if answer.status_code == 401 and auth and not relogged:
                    self.windows.count(self.windows.current, "401")
                    relogged = True
                    self.login()
                    continue
                if answer.status_code not in RETRYABLE:
                    if answer.status_code >= 400:
                        self.windows.count(self.windows.current, str(answer.status_code))
                    return answer
                self.windows.count(self.windows.current, str(answer.status_code))
                if answer.status_code == 429:
                    delay = max(delay, float(answer.headers.get("Retry-After") or 1))
            if time.monotonic() - started > (10 if self.stop.is_set() else GIVE_UP_AFTER):
                return answer
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def place(self, body: dict) -> tuple[requests.Response | None, str]:
        key = str(uuid.uuid4())
        return self.call("POST", "/api/v1/orders", json={**body, "client_order_id": key}), key


class Trader(threading.Thread):
    """A steady mix for one user: `rate` actions a second."""

    INSTRUMENTS = (1, 2, 3, 4, 5)

    def __init__(self, client: Client, watcher: Watcher, rate: float, seed: int):
        super().__init__(name=f"trader-{client.email}", daemon=True)
        self.client, self.watcher, self.rate = client, watcher, rate
        self.random = random.Random(seed)
        self.accepted: list[Accepted] = []
        self.unknown: list[str] = []  # client_order_ids whose outcome the client never learnt
        self.actions = Counter()
        self.prices: dict[int, Decimal] = {}
        self._prices_at = 0.0

    def run(self) -> None:
        while not self.client.stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception as exc:  # a bug in the load must show, not kill the thread silently
                self.client.windows.count(self.client.windows.current, f"client-error:{type(exc).__name__}")
            self.client.stop.wait(max(0.0, 1 / self.rate - (time.monotonic() - started)))

    def step(self) -> None:
        if time.monotonic() - self._prices_at > 5:
            self.refresh_prices()
        roll = self.random.random()
        working = [o for o in self.watcher.working() if o["order_type"] == "LIMIT"]
        if roll < 0.15 and working:
            self.modify(self.random.choice(working))
        elif roll < 0.3 and working:
            self.cancel(self.random.choice(working))
        elif roll < 0.6 and self.prices:
            self.limit()
        else:
            self.market()

    def refresh_prices(self) -> None:
        ids = ",".join(map(str, self.INSTRUMENTS))
        answer = self.client.call("GET", f"/api/v1/quotes?instrument_ids={ids}")
        if answer is not None and answer.status_code == 200:
            for quote in answer.json()["items"]:
                if quote.get("ltp"):
                    self.prices[int(quote["instrument_id"])] = Decimal(str(quote["ltp"]))
            self._prices_at = time.monotonic()

    def _new(self, body: dict) -> None:
        window, at = self.client.windows.current, time.monotonic()
        answer, key = self.client.place(body)
        self.actions[body["order_type"]] += 1
        if answer is None:
            self.unknown.append(key)
        elif answer.status_code in (200, 202):
            self.accepted.append(Accepted(answer.json()["id"], key, body["order_type"], window, at))
        elif answer.status_code >= 500:
            self.unknown.append(key)

    def market(self) -> None:
        side = self.random.choice(("BUY", "SELL"))
        self._new(
            {
                "instrument_id": self.random.choice(self.INSTRUMENTS),
                "side": side,
                "quantity": self.random.randint(1, 5),
                "order_type": "MARKET",
                "product": "MIS",
            }
        )

    def limit(self) -> None:
        instrument = self.random.choice(sorted(self.prices))
        side = self.random.choice(("BUY", "SELL"))
        away = Decimal(self.random.choice(("0.001", "0.003", "0.01", "0.03")))
        price = self.prices[instrument] * (1 - away if side == "BUY" else 1 + away)
        self._new(
            {
                "instrument_id": instrument,
                "side": side,
                "quantity": self.random.randint(1, 5),
                "order_type": "LIMIT",
                "limit_price": str(tick(price)),
                "product": "MIS",
            }
        )

    def modify(self, order: dict) -> None:
        self.actions["modify"] += 1
        price = Decimal(order["limit_price"]) * Decimal(self.random.choice(("0.999", "1.001", "0.998", "1.002")))
        self.client.call("PATCH", f"/api/v1/orders/{order['id']}", json={"limit_price": str(tick(price))})

    def cancel(self, order: dict) -> None:
        self.actions["cancel"] += 1
        self.client.call("DELETE", f"/api/v1/orders/{order['id']}")


def tick(price: Decimal, size: Decimal = Decimal("0.05")) -> Decimal:
    return (price / size).quantize(Decimal(1)) * size


def newer(old: dict | None, new: dict) -> bool:
    """Whether `new` supersedes `old`: a later update, or at the same millisecond a later state."""
    if old is None:
        return True
    if new["updated_at"] != old["updated_at"]:
        return new["updated_at"] > old["updated_at"]
    rank = lambda o: (o["status"] in FINAL, o["filled_quantity"], STATUS_RANK.get(o["status"], 0))  # noqa: E731
    return rank(new) >= rank(old)


class Watcher(threading.Thread):
    """One user's socket and the view of the user's orders it keeps (see the module doc)."""

    def __init__(self, client: Client, ws_url: str):
        super().__init__(name=f"watcher-{client.email}", daemon=True)
        self.client, self.ws_url = client, ws_url
        self.stop = threading.Event()  # its own: the socket keeps listening after the load stops
        self.view: dict[str, dict] = {}
        self.connects = 0
        self.snapshots = 0
        self.from_socket = 0
        self.snapshot_failures = 0
        self.drops: Counter = Counter()  # why the socket ended, by exception type
        self.dropped_at: float | None = None
        self.caught_up: list[tuple[int, float]] = []  # (window, seconds from the drop to the snapshot read)
        self._lock = threading.Lock()
        self._ws: websocket.WebSocket | None = None

    def merge(self, order: dict, from_socket: bool) -> None:
        with self._lock:
            if newer(self.view.get(order["id"]), order):
                self.view[order["id"]] = order
                self.from_socket += from_socket

    def working(self) -> list[dict]:
        with self._lock:
            return [o for o in self.view.values() if o["status"] in ("OPEN", "PARTIALLY_FILLED")]

    def run(self) -> None:
        delay = 0.2
        while not self.stop.is_set():
            try:
                self.session()
                delay = 0.2
            except Exception as exc:  # any fault: reconnect with backoff, as the terminal does
                self.drops[type(exc).__name__] += 1
                if self.dropped_at is None:
                    self.dropped_at = time.monotonic()
            finally:
                self.close()
                self._ws = None
            self.stop.wait(delay)
            delay = min(delay * 2, 2.0)

    def session(self) -> None:
        self._ws = ws = websocket.create_connection(self.ws_url, timeout=5)
        ws.send(orjson.dumps({"action": "auth", "token": self.client.token}).decode())
        ws.send(orjson.dumps({"action": "ping"}).decode())
        while self.receive(ws) != "pong":  # registered with the hub from here on
            pass
        self.snapshot()
        self.connects += 1
        if self.dropped_at is not None:  # caught up again: how long the user's view may have lagged
            self.caught_up.append((self.client.windows.current, time.monotonic() - self.dropped_at))
            self.dropped_at = None
        ws.settimeout(1)
        while not self.stop.is_set():
            try:
                self.receive(ws)
            except websocket.WebSocketTimeoutException:
                continue

    def receive(self, ws) -> str | None:
        raw = ws.recv()
        if not raw:
            raise ConnectionError("socket closed")
        message = orjson.loads(raw)
        if message.get("type") == "order":
            self.merge(message["order"], from_socket=True)
        return message.get("type")

    def snapshot(self) -> None:
        """Every order of the user, newest first, page by page (GET /orders)."""
        cursor = None
        while True:
            query = "/api/v1/orders?limit=500" + (f"&cursor={cursor}" if cursor else "")
            answer = self.client.call("GET", query)
            if answer is None or answer.status_code != 200:
                self.snapshot_failures += 1
                raise ConnectionError("snapshot failed")
            page = answer.json()
            for order in page["items"]:
                self.merge(order, from_socket=False)
            cursor = page.get("next_cursor")
            if not cursor:
                break
        self.snapshots += 1

    def close(self) -> None:
        ws = self._ws
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:  # the socket may be gone already
                pass
            finally:
                ws.shutdown()  # close() leaves the socket open when its close frame fails


class Probe:
    """Places one MARKET order (retrying as a client does) and reads it until FILLED; a fault's
    recovery time is from the fault to the first such fill seen."""

    def __init__(self, client: Client):
        self.client = client
        self.side = "BUY"
        self.accepted: list[Accepted] = []

    def first_fill_after(self, t0: float, timeout: float) -> float | None:
        """Seconds from t0 to the first probe order seen FILLED (None: not within timeout)."""
        deadline = t0 + timeout
        waiting: list[tuple[str, float]] = []
        while time.monotonic() < deadline:
            if not waiting or time.monotonic() - waiting[-1][1] > 5:  # one stuck: try another
                self.side = "SELL" if self.side == "BUY" else "BUY"
                window = self.client.windows.current
                answer, key = self.client.place(
                    {"instrument_id": 1, "side": self.side, "quantity": 1, "order_type": "MARKET", "product": "MIS"}
                )
                if answer is not None and answer.status_code in (200, 202):
                    waiting.append((answer.json()["id"], time.monotonic()))
                    self.accepted.append(Accepted(waiting[-1][0], key, "MARKET", window, waiting[-1][1]))
            for order_id, _placed in waiting:
                answer = self.client.call("GET", f"/api/v1/orders/{order_id}")
                if answer is not None and answer.status_code == 200 and answer.json()["status"] == "FILLED":
                    return time.monotonic() - t0
            time.sleep(0.1)
        return None
