"""The load generator of bench/ws_fanout.py, run in its own processes: asyncio WebSocket clients
(the `websockets` library's Sans-I/O protocol, offering permessage-deflate as browsers do) and the
raw Redis subscriber of the baseline. Kept apart from the Flask stack so a child imports only what it uses.

Every quote's `ts` is its publish time, so publish -> receive latency is the receive time minus
`ts` (one machine, one clock). Only quotes received inside the measuring window count; the window
(two wall-clock times) is set by the parent in a shared array once every client is subscribed.
"""

from __future__ import annotations

import asyncio
import gc
import time
from array import array
from datetime import datetime

import orjson
import redis
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.uri import parse_uri

CONNECT_CONCURRENCY = 50  # handshakes in flight per process while the clients connect
GRACE = 1.0  # seconds after the window before the clients close


class Tally:
    """Deliveries and publish -> receive latencies (ms) inside the window."""

    def __init__(self, window, kind: str | None = "quote"):
        self.window, self.kind = window, kind  # kind None: every message is a bare quote (pub/sub)
        self.count = 0
        self.latencies = array("f")
        self.early = 0  # quotes received before the window (warm-up, snapshots)

    def record(self, payload: bytes | str) -> None:
        now = time.time()
        start, end = self.window[0], self.window[1]
        if not start or now < start:
            self.early += 1
            return
        if now > end:
            return
        message = orjson.loads(payload)
        if self.kind and message.get("type") != self.kind:
            return
        self.count += 1
        self.latencies.append((now - datetime.fromisoformat(message["ts"]).timestamp()) * 1000)


class FeedClient(asyncio.Protocol):
    """One client: the `websockets` Sans-I/O protocol on a plain asyncio connection. Each frame is
    parsed by the library and handed straight to the tally, without a task, queue or future per
    message, so that the load generator costs little per delivery beside the server it loads."""

    def __init__(self, url: str, subscribe: str, tally: Tally):
        self.ws = ClientProtocol(parse_uri(url), max_size=2**20)
        self.subscribe, self.tally = subscribe, tally
        self.subscribed = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.ws.receive_data(data)
        for event in self.ws.events_received():
            if isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.on_message(event.data)
            elif self.ws.handshake_exc is not None:
                self.subscribed.set_exception(self.ws.handshake_exc)
            else:  # the handshake's response: the socket is open
                self.ws.send_text(self.subscribe.encode())
        self.flush()

    def on_message(self, data: bytes) -> None:
        if self.subscribed.done():
            self.tally.record(data)
        elif orjson.loads(data).get("type") == "subscribed":
            self.subscribed.set_result(True)

    def flush(self) -> None:
        for chunk in self.ws.data_to_send():
            if chunk and not self.transport.is_closing():
                self.transport.write(chunk)

    def connection_lost(self, exc) -> None:
        if not self.subscribed.done():
            self.subscribed.set_exception(exc or ConnectionError("closed before subscribing"))
        self.closed.set_result(True)

    def close(self) -> None:
        if not self.transport.is_closing():
            self.ws.send_close()
            self.flush()
            self.transport.close()


async def _client(url: str, ids: list[int], mode: str, tally: Tally, gate: asyncio.Semaphore) -> FeedClient:
    subscribe = orjson.dumps({"action": "subscribe", "instrument_ids": ids, "mode": mode}).decode()
    parsed = parse_uri(url)
    async with gate:
        loop = asyncio.get_running_loop()
        _, client = await loop.create_connection(lambda: FeedClient(url, subscribe, tally), parsed.host, parsed.port)
        await asyncio.wait_for(client.subscribed, 60)
    return client


async def _clients(job: dict, window, report) -> dict:
    tally = Tally(window)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    outcomes = await asyncio.gather(
        *(_client(f"{job['url']}?token={token}", ids, job["mode"], tally, gate) for token, ids in job["clients"]),
        return_exceptions=True,
    )
    ready = [c for c in outcomes if isinstance(c, FeedClient)]
    errors = [repr(c) for c in outcomes if not isinstance(c, FeedClient)]
    # The clients' objects stay for the run: out of the collector's view, so that the load
    # generator's own full collections (tens of ms with a thousand sockets) are not measured as
    # the server's latency.
    gc.freeze()
    gc.set_threshold(50_000)
    report.put(("ready", job["index"], len(ready), errors[:3]))
    while not window[1]:
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(window[1] + GRACE - time.time(), 0))
    dropped = sum(c.closed.done() for c in ready)  # a socket that ended before the end
    for client in ready:
        client.close()
    return {
        "count": tally.count,
        "latencies": tally.latencies,
        "early": tally.early,
        "dropped": dropped,
        "connected": len(ready),
        "errors": errors[:3],
    }


def run_clients(job: dict, window, report) -> None:
    """Process entry: `job` = {index, url, mode, clients: [(token, instrument_ids), ...]}."""
    result = asyncio.run(_clients(job, window, report))
    report.put(("done", job["index"], result))


def run_raw_subscriber(redis_url: str, channel: str, window, report) -> None:
    """Process entry: the baseline, one plain Redis subscriber of the same quotes channel."""
    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1)
    tally = Tally(window, kind=None)
    report.put(("ready", "raw", 0, []))
    while not window[1] or time.time() < window[1] + GRACE:
        message = pubsub.get_message(timeout=0.5)
        if message is not None:
            tally.record(message["data"])
    pubsub.close()
    report.put(("done", "raw", {"count": tally.count, "latencies": tally.latencies}))
