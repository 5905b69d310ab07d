"""One XTS socket.io stream kept connected: connect with the session's current token, run until the
connection drops or is told to go, then reconnect after an exponential backoff with jitter, with a
fresh token (docs/xts.md, "One stream kept connected").
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode

import websocket

from tradingapp import metrics
from tradingapp.brokers.xts.untrusted import MAX_FRAME_BYTES

log = logging.getLogger("xts.stream")

# A connection that lived this long was healthy: the next drop starts the backoff from its base.
STABLE_AFTER = 30.0
CONNECT_TIMEOUT = 5.0


class Backoff:
    """Exponential delays with "equal jitter": half the step is fixed, half random; capped."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None):
        self.base, self.cap = base, cap
        self.rng = rng or random.Random()
        self.attempt = 0

    def next(self) -> float:
        step = min(self.cap, self.base * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 30)
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


# The socket.io/Engine.IO clients log the connect URL, session token in its query, at INFO
# ("Attempting WebSocket connection to ...?token=..."); their warnings carry no URL.
CLIENT_LOGGERS = ("engineio_v3.client", "socketio_v4.client", "engineio.client", "socketio.client", "websocket")


def quiet_client_loggers() -> None:
    """Keep the socket clients' loggers at WARNING whatever level the process logs at: a logger
    passed as False only quietens them when the root logger has no handler yet."""
    for name in CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class _BoundedFrames(websocket.frame_buffer):
    """A frame whose declared length is past MAX_FRAME_BYTES is refused before its payload is read."""

    def recv_length(self) -> None:
        super().recv_length()
        if self.length is not None and self.length > MAX_FRAME_BYTES:
            raise websocket.WebSocketPayloadException(f"a frame of {self.length} bytes, past {MAX_FRAME_BYTES}")


class _BoundedMessages(websocket.continuous_frame):
    """A message sent in fragments is refused once they add up past MAX_FRAME_BYTES."""

    def add(self, frame) -> None:
        super().add(frame)
        if self.cont_data and len(self.cont_data[1]) > MAX_FRAME_BYTES:
            raise websocket.WebSocketPayloadException(f"a message past {MAX_FRAME_BYTES} bytes")


class BoundedWebSocket(websocket.WebSocket):
    """websocket-client's socket with a cap on what one message may weigh: the Engine.IO client
    drops the connection on the refusal (logged), and SocketStream connects again. Without it a
    hostile server could send one frame of 2^63 bytes and the client would try to read it all."""

    def __init__(self, *args, fire_cont_frame: bool = False, skip_utf8_validation: bool = False, **kwargs):
        kwargs.update(fire_cont_frame=fire_cont_frame, skip_utf8_validation=skip_utf8_validation)
        super().__init__(*args, **kwargs)
        self.frame_buffer = _BoundedFrames(self._recv, skip_utf8_validation)
        self.cont_frame = _BoundedMessages(fire_cont_frame, skip_utf8_validation)


def make_client(eio: int):
    """A socket.io client speaking Engine.IO `eio` (3 or 4), and the keyword naming its path.
    Made in the stream's thread, not the main one, so neither package installs its SIGINT handler
    over the process's own. Engine.IO 4 reads through BoundedWebSocket; the Engine.IO 3 package
    takes no socket class, so there the payload caps of the handlers bound the cost (docs/xts.md)."""
    # No reconnection of the client's own: it would reconnect with the token it started with, and
    # XTS tokens change (daily expiry, a login elsewhere); SocketStream reconnects with a fresh one.
    quiet_client_loggers()
    if eio == 3:
        import socketio_v4

        client = socketio_v4.Client(reconnection=False, logger=False, engineio_v3_logger=False)
        return client, "socketio_v4_path"
    import socketio

    client = socketio.Client(
        reconnection=False,
        handle_sigint=False,
        logger=False,
        engineio_logger=False,
        websocket_extra_options={"class_": BoundedWebSocket},
    )
    return client, "socketio_path"


class SocketStream:
    """Keeps one stream connected until `stop` is set; `run()` is the thread's body."""

    def __init__(
        self,
        name: str,
        url: str,
        path: str,
        eio: int,
        query: Callable[[], dict],
        handlers: dict[str, Callable],
        stop: threading.Event,
        on_connected: Callable[[], None] | None = None,
        check_session: Callable[[], None] | None = None,
        backoff: Backoff | None = None,
    ):
        self.name, self.url, self.path, self.eio = name, url.rstrip("/"), path, eio
        self.query = query
        self.handlers = handlers
        self.stop = stop
        self.on_connected = on_connected
        self.check_session = check_session
        self._check_due = False
        self.backoff = backoff or Backoff()
        self.connected = threading.Event()
        self.connections = 0  # successful connects so far (tests and logs)
        self._lost = threading.Event()
        self._client = None

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            if self._connect():
                self._stay_connected()
                if time.monotonic() - started >= STABLE_AFTER:
                    self.backoff.reset()
            if not self.stop.is_set():
                # the kind of stream (interactive, marketdata), not the account: a bounded label
                metrics.XTS_RECONNECTS.labels(self.name.split(":", 1)[0]).inc()
                delay = self.backoff.next()
                log.info("event=xts_stream_reconnect_wait stream=%s seconds=%.2f", self.name, delay)
                self.stop.wait(delay)
        log.info("event=xts_stream_stopped stream=%s", self.name)

    def reconnect(self, check_session: bool = False) -> None:
        """Drop the current connection: `run` connects again (after checking the session: a `logout`)."""
        self._check_due = self._check_due or check_session
        self._lost.set()

    # -- one connection -----------------------------------------------------------------------
    def _connect(self) -> bool:
        self._lost.clear()
        if self._check_due and not self._check():
            return False
        try:
            query = self.query()
        except Exception as exc:  # no session (the broker's login is down): wait and retry
            log.warning("event=xts_stream_no_session stream=%s error=%s: %s", self.name, type(exc).__name__, exc)
            return False
        client, path_keyword = make_client(self.eio)
        for event, handler in self.handlers.items():
            client.on(event, handler)
        client.on("disconnect", self._on_disconnect)
        try:
            client.connect(f"{self.url}/?{urlencode(query)}", transports=["websocket"], **{path_keyword: self.path})
        except Exception as exc:  # refused (stale token?), unreachable, or a bad answer
            log.warning(
                "event=xts_stream_connect_failed stream=%s eio=%d error=%s: %s",
                self.name,
                self.eio,
                type(exc).__name__,
                exc,
            )
            _quietly(client.disconnect)
            self._check_due = True
            return False
        self._client = client
        self.connections += 1
        self.connected.set()
        log.info("event=xts_stream_connected stream=%s eio=%d connections=%d", self.name, self.eio, self.connections)
        return True

    def _check(self) -> bool:
        """The caller's session check; False (back off, check again) when it failed."""
        if self.check_session is not None:
            try:
                self.check_session()
            except Exception as exc:
                log.warning("event=xts_session_check_failed stream=%s error=%s: %s", self.name, type(exc).__name__, exc)
                return False
        self._check_due = False
        return True

    def _stay_connected(self) -> None:
        try:
            if self.on_connected is not None and not self._lost.is_set():
                try:
                    self.on_connected()
                except Exception as exc:  # e.g. the subscription call failed: connect again later
                    log.warning(
                        "event=xts_stream_setup_failed stream=%s error=%s: %s", self.name, type(exc).__name__, exc
                    )
                    return
            while not self.stop.is_set() and not self._lost.wait(0.2):
                pass
        finally:
            self.connected.clear()
            client, self._client = self._client, None
            if client is not None:
                _quietly(client.disconnect)
            log.info("event=xts_stream_disconnected stream=%s stopping=%s", self.name, self.stop.is_set())

    def _on_disconnect(self, *_reason) -> None:
        self._lost.set()


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:  # the connection is already gone
        log.debug("socket.io disconnect failed", exc_info=True)
