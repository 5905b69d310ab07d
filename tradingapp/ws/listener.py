"""One Redis pub/sub subscription per process, feeding the hub (CTFd's RedisEventManager idea).

Started lazily by the first WebSocket connection, so only the process that serves sockets
subscribes. It reconnects with backoff when Redis goes away and never dies on a bad message.
Pub/sub keeps nothing for a subscriber that is away: at each re-subscription the sockets already
open (which may have missed order events meanwhile, unknowingly) are closed with 1012, so their
clients reconnect and re-read their books, as they do after any reconnect.
"""

from __future__ import annotations

import logging
import threading

import orjson
import redis

from tradingapp.ws.hub import Hub

log = logging.getLogger(__name__)

MAX_BACKOFF = 10.0
CLOSE_RESYNC = 1012  # "service restart": reconnect, then re-read what the socket may have missed
RESYNC_REASON = "live feed interrupted: reconnect and re-read"


class Listener:
    def __init__(self, client: redis.Redis, hub: Hub, quotes_channel: str, user_events_channel: str):
        self.client = client
        self.hub = hub
        self.quotes_channel = quotes_channel
        self.user_events_channel = user_events_channel
        self.ready = threading.Event()  # set while subscribed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float = 2.0) -> None:
        """Start the background loop and wait (briefly) until it is subscribed."""
        self._thread = threading.Thread(target=self.run, name="ws-redis-listener", daemon=True)
        self._thread.start()
        self.ready.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = 0.5
            except redis.RedisError as exc:
                self.ready.clear()
                log.warning("event=ws_listener_disconnected error=%s retry_in=%.1fs", type(exc).__name__, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)
            except Exception:  # keep the feed alive whatever happens; the log has the traceback
                self.ready.clear()
                log.exception("event=ws_listener_error retry_in=%.1fs", backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF)

    def _listen(self) -> None:
        pubsub = self.client.pubsub()
        try:
            pubsub.subscribe(self.quotes_channel, self.user_events_channel)
            # the subscribe confirmation proves the connection works before we report ready
            while not self._stop.is_set() and not self.ready.is_set():
                message = pubsub.get_message(timeout=1.0)
                if message and message["type"] == "subscribe":
                    self.ready.set()
                    log.info("event=ws_listener_subscribed resynced=%d", self.resync())
                elif message:
                    self.dispatch(message)
            while not self._stop.is_set():
                message = pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    self.dispatch(message)
        finally:
            self.ready.clear()
            pubsub.close()

    def resync(self) -> int:
        """Close every socket open now (none at the first subscription: sockets register once the
        listener is up or has timed out); returns how many."""
        connections = self.hub.connections()
        for conn in connections:
            conn.close(CLOSE_RESYNC, RESYNC_REASON)
        return len(connections)

    def dispatch(self, message: dict) -> None:
        """Route one pub/sub message; a malformed one is logged and dropped."""
        if message.get("type") != "message":
            return
        channel = message["channel"]
        channel = channel.decode() if isinstance(channel, bytes) else channel
        try:
            body = orjson.loads(message["data"])
            if not isinstance(body, dict):
                raise ValueError("not an object")
            if channel == self.quotes_channel:
                self.hub.route_quote(body)
            elif channel == self.user_events_channel:
                self.hub.route_user_event(body)
        except (ValueError, KeyError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            log.warning("event=ws_bad_pubsub_message channel=%s error=%s", channel, exc)
