"""The socket.io streams: interactive (/interactive/socket.io) and market data
(/apimarketdata/socket.io and /marketdata/socket.io), each served in Engine.IO 4 (python-socketio 5)
and Engine.IO 3 (Socket.IO 2.x, the `socketio_v4` package) on the same path: the client's `EIO`
query parameter picks the server, so a client can be configured for either.

Interactive events (order, trade, position) go out in the order the exchange made them, through
one dispatcher greenlet that applies the event faults (drop, duplicate, swap with the next).
Payloads are JSON strings, as XTS sends them. Events emitted while a user has no socket are lost,
as on the real broker: clients recover them from the order and trade books.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import time
from urllib.parse import parse_qs

import gevent
import socketio
import socketio_v4
from gevent.queue import Empty, Queue

from tradingapp.simulators.xts import hostile

log = logging.getLogger("xts_sim.streams")
INTERACTIVE_PATH = "/interactive/socket.io"
MD_PATHS = ("/apimarketdata/socket.io", "/marketdata/socket.io")


def _servers() -> list:
    return [
        socketio.Server(async_mode="gevent", cors_allowed_origins="*"),
        socketio_v4.Server(async_mode="gevent", cors_allowed_origins="*"),
    ]


class Streams:
    def __init__(self, sessions, faults, rng):
        self.sessions = sessions
        self.faults = faults  # a callable returning the live Faults (reset swaps the object)
        self.rng = rng
        self.interactive = _servers()
        self.marketdata = _servers()
        self.sockets: dict[tuple[int, str], dict] = {}  # (id(server), sid) -> {user, api, mode}
        self.refuse_until = 0.0
        self.live: set = set()  # the gevent handlers of open websockets
        self.queue: Queue = Queue()
        self.stats = {"sent": 0, "dropped": 0, "duplicated": 0, "reordered": 0}
        for server in self.interactive:
            self._register(server, "interactive")
        for server in self.marketdata:
            self._register(server, "marketdata")

    # ---- WSGI ------------------------------------------------------------------------------------
    def wsgi(self, environ, start_response):
        """Serve a socket.io request, or None when the path is not a socket.io path."""
        path = environ.get("PATH_INFO", "")
        if path.startswith(INTERACTIVE_PATH):
            pair = self.interactive
        elif path.startswith(MD_PATHS):
            pair = self.marketdata
        else:
            return None
        if time.monotonic() < self.refuse_until:  # an outage: the socket endpoint is down
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"socket endpoint unavailable"]
        eio3 = parse_qs(environ.get("QUERY_STRING", "")).get("EIO") == ["3"]
        server = pair[1 if eio3 else 0]
        handler = environ.get("xts_sim.handler")
        if "wsgi.websocket" not in environ or handler is None:
            return server.handle_request(environ, start_response)
        self.live.add(handler)  # a websocket: handle_request runs for the socket's whole life
        try:
            return server.handle_request(environ, start_response)
        finally:
            self.live.discard(handler)

    # ---- connections -----------------------------------------------------------------------------
    def _register(self, server, api: str) -> None:
        def connect(sid, environ, auth=None):
            return self._connect(server, api, sid, environ)

        def disconnect(sid, *args):
            self.sockets.pop((id(server), sid), None)

        server.on("connect", connect)
        server.on("disconnect", disconnect)

    def _connect(self, server, api: str, sid: str, environ) -> bool:
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        session = self.sessions.check(query.get("token"), api)
        if session is None or session.account.user_id != query.get("userID"):
            log.info("socket refused api=%s user=%s", api, query.get("userID"))
            return False
        user = session.account.user_id
        mode = "partial" if query.get("broadcastMode", "Full").lower() == "partial" else "full"
        self.sockets[(id(server), sid)] = {"user": user, "api": api, "mode": mode, "token": session.token}
        if api == "interactive":
            server.enter_room(sid, f"i:{user}")
            joined = {"socketId": sid, "userID": user, "message": "Interactive socket joined successfully"}
            server.emit("joined", json.dumps(joined), room=sid)
        else:
            server.enter_room(sid, f"m:{user}:{mode}")
        return True

    def connected(self) -> list[dict]:
        return [{"user": v["user"], "api": v["api"], "mode": v["mode"]} for v in self.sockets.values()]

    def disconnect_all(self, mode: str = "drop", refuse_seconds: float = 0.0) -> int:
        """Every socket goes. "drop" cuts the TCP connections (a network outage: clients reconnect
        on their own); "close" is a socket.io disconnect from the server (clients stay away)."""
        self.refuse_until = time.monotonic() + refuse_seconds
        if mode == "drop":
            handlers = list(self.live)
            for handler in handlers:
                with contextlib.suppress(OSError):
                    handler.socket.shutdown(socket.SHUT_RDWR)
            return len(handlers)
        count = 0
        for server in self.interactive + self.marketdata:
            for (server_id, sid), _ in list(self.sockets.items()):
                if server_id == id(server):
                    server.disconnect(sid)
                    self.sockets.pop((server_id, sid), None)
                    count += 1
        return count

    def log_out(self, tokens: set[str]) -> None:
        """Sessions ended by the broker: a `logout` event, then the socket is closed."""
        for server in self.interactive + self.marketdata:
            for (server_id, sid), info in list(self.sockets.items()):
                if server_id == id(server) and info["token"] in tokens:
                    if info["api"] == "interactive":
                        server.emit(
                            "logout", json.dumps({"userID": info["user"], "reason": "Session expired"}), room=sid
                        )
                    gevent.spawn_later(0.05, server.disconnect, sid)
                    self.sockets.pop((server_id, sid), None)

    # ---- interactive events ----------------------------------------------------------------------
    def publish(self, kind: str, login_id: str, row: dict) -> None:
        self.queue.put((kind, login_id, row))

    def _emit(self, item) -> None:
        kind, login_id, row = item
        spec = self.faults().take_hostile_event(kind)
        payload = hostile.poisoned(row, spec) if spec else json.dumps(row)
        for server in self.interactive:
            server.emit(kind, payload, room=f"i:{login_id}")
        self.stats["sent"] += 1

    def run_dispatcher(self) -> None:
        held = None
        while True:
            try:
                item = self.queue.get(timeout=0.2 if held else None)
            except Empty:
                self._emit(held)
                held = None
                continue
            action = self.faults().events.decide(item[0], self.rng)
            if action == "drop":
                self.stats["dropped"] += 1
                continue
            if action == "reorder" and held is None:
                self.stats["reordered"] += 1
                held = item
                continue
            self._emit(item)
            if action == "duplicate":
                self.stats["duplicated"] += 1
                self._emit(item)
            if held is not None:
                self._emit(held)
                held = None

    # ---- market data -----------------------------------------------------------------------------
    def publish_quote(self, user: str, code: int, full: str, partial: str) -> None:
        faults = self.faults()
        spec = faults.take_hostile_event(f"{code}-json-full")
        full = hostile.poisoned(json.loads(full), spec) if spec else full
        spec = faults.take_hostile_event(f"{code}-json-partial")
        partial = hostile.poisoned_partial(partial, spec) if spec else partial
        for server in self.marketdata:
            server.emit(f"{code}-json-full", full, room=f"m:{user}:full")
            server.emit(f"{code}-json-partial", partial, room=f"m:{user}:partial")
