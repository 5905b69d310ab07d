"""Bytes on the wire for the WebSocket feed: frames encoded once, and one writer at a time per socket.

The hub encodes each message once into a complete WebSocket text frame (a server's frames are not
masked, so the same bytes go to every socket), and a socket's sender writes its queued frames with
one `sendall`. simple-websocket also writes on the socket from its own greenlet (pings, pongs, the
close handshake) with a bare `send`; `SerializedSocket` makes every write a whole `sendall` under one
lock, so frames never interleave or get cut short by a partial send to a slow client.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable

import orjson
from wsproto.frame_protocol import FrameProtocol

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

    def sendall(self, data, *flags) -> None:
        """Write parked bytes, then `data`, waiting for the client as long as it takes."""
        with self._write:
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
