"""Bytes on the wire for the WebSocket feed: frames encoded once, and one writer at a time per socket.

The hub encodes each message once into a complete WebSocket text frame (a server's frames are not
masked, so the same bytes go to every socket). The flusher writes each socket's queued frames in one
write after a burst; simple-websocket also writes on the socket from its own greenlet (pings, pongs,
the close handshake) with a bare `send`. `SerializedSocket` makes every write whole and one at a
time, so frames never interleave or get cut short by a partial send to a slow client.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import orjson
from wsproto.frame_protocol import FrameProtocol

if TYPE_CHECKING:
    from tradingapp.ws.hub import Connection

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
FLUSH_EVERY = 0.02  # seconds between the starts of two flush passes (see Flusher.run)

# Server side, no extensions: send_data of a whole message keeps no state between calls.
_FRAMES = FrameProtocol(client=False, extensions=[])


def encode(message: dict) -> bytes:
    """A JSON message as one complete, unmasked, uncompressed WebSocket text frame."""
    return bytes(_FRAMES.send_data(orjson.dumps(message).decode()))


class SerializedSocket:
    """Wraps a connection's socket so that frames go out whole and in order, one writer at a time.

    `write_nowait` is the hot path: if no write is in progress it takes what is queued and writes it
    straight to the (non-blocking) descriptor, which usually accepts it all. What does not fit is
    parked, and whoever writes next (`sendall`, which waits for the client) sends it first, so a
    frame cut by a full buffer is always completed before any other byte.
    """

    def __init__(self, sock):
        self._sock = sock
        self._write = threading.Lock()
        self._parked = b""  # the rest of a write the client's buffer did not take

    @property
    def backlogged(self) -> bool:
        return bool(self._parked)

    def write_nowait(self, take: Callable[[], list[bytes]]) -> bool:
        """Write what `take()` returns without waiting; False (nothing taken) while another write
        is in progress or parked bytes wait, or when part of this write had to be parked."""
        if self._parked or not self._write.acquire(blocking=False):
            return False
        try:
            data = b"".join(take())
            sent = self._write_fd(data) if data else 0
            self._parked = data[sent:]
            return not self._parked
        finally:
            self._write.release()

    def send(self, data, *flags) -> int:
        self.sendall(data, *flags)
        return len(data)

    def write_wait(self, take: Callable[[], list[bytes]]) -> None:
        """Write what `take()` returns once no other write is in progress (parked bytes first),
        waiting for the client as long as it takes. Taken only once the socket is ours: frames
        taken before waiting could be overtaken by newer ones written meanwhile (a released gevent
        lock resumes its waiter later, and a `write_nowait` in between gets it first)."""
        with self._write:
            self._sendall_locked(b"".join(take()))

    def sendall(self, data, *flags) -> None:
        """Write parked bytes, then `data`, waiting for the client as long as it takes."""
        with self._write:
            self._sendall_locked(data, *flags)

    def _sendall_locked(self, data, *flags) -> None:
        if self._parked:
            parked, self._parked = self._parked, b""
            self._sock.sendall(parked)
        sent = self._write_fd(data) if data and not flags else 0
        if sent < len(data):
            self._sock.sendall(memoryview(data)[sent:], *flags)

    def _write_fd(self, data: bytes) -> int:
        # Skips gevent's sendall (a getsockopt and a timer per call) when the buffer has room. The
        # descriptor is looked up each time: once the socket is closed its number may already
        # belong to another client's connection.
        fd = self._sock.fileno()
        if fd < 0:
            raise OSError(errno.EBADF, "the socket is closed")
        try:
            return os.write(fd, data)
        except BlockingIOError:
            return 0

    def __getattr__(self, name):  # recv, fileno, close, shutdown, ...: the socket's own
        return getattr(self._sock, name)


class Flusher:
    """Writes out, in one pass after each burst, every socket whose outbox filled in it: one write per
    socket for all it got, and no greenlet switch per socket. A socket it cannot write without
    waiting goes to that socket's sender loop."""

    def __init__(self):
        self._dirty: list[tuple[Connection, SerializedSocket]] = []
        self._ready = threading.Event()

    def mark(self, conn: Connection, out: SerializedSocket) -> None:
        self._dirty.append((conn, out))
        if len(self._dirty) == 1:
            self._ready.set()

    def run(self, every: float = FLUSH_EVERY) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            started = time.monotonic()
            self.flush()
            # Passes start at most `every` apart: under load each write carries the frames of several
            # bursts (fewer system calls, the largest cost here); after a quiet spell the next frame
            # still goes at once.
            time.sleep(max(started + every - time.monotonic(), 0))

    def flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for conn, out in dirty:
            try:
                if not out.write_nowait(conn.take_now):
                    conn.wake()  # busy, or the client's buffer is full: its sender waits for it
            except OSError:
                conn.close(CLOSE_NORMAL, "client gone")
            except Exception:  # one socket's failure must not stop the feed of the others
                log.exception("event=ws_flush_failed user_id=%s conn=%s", conn.user_id, conn.id)
                conn.close(CLOSE_NORMAL, "flush failed")
