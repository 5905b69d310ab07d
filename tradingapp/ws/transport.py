"""Bytes on the wire for the WebSocket feed: frames encoded once, and one writer at a time per socket.

The hub encodes each message once into a complete WebSocket text frame (a server's frames are not
masked, so the same bytes go to every socket), and a socket's sender writes its queued frames with
one `sendall`. simple-websocket also writes on the socket from its own greenlet (pings, pongs, the
close handshake) with a bare `send`; `SerializedSocket` makes every write a whole `sendall` under one
lock, so frames never interleave or get cut short by a partial send to a slow client.
"""

from __future__ import annotations

import os
import threading

import orjson
from wsproto.frame_protocol import FrameProtocol

# Server side, no extensions: send_data of a whole message keeps no state between calls.
_FRAMES = FrameProtocol(client=False, extensions=[])


def encode(message: dict) -> bytes:
    """A JSON message as one complete, unmasked, uncompressed WebSocket text frame."""
    return bytes(_FRAMES.send_data(orjson.dumps(message).decode()))


class SerializedSocket:
    """Wraps a connection's socket so that every write is one whole `sendall` under one lock.

    A write first goes straight to the (non-blocking) file descriptor, which usually takes it all;
    only a remainder waits in gevent's `sendall` for the client to read. That skips gevent's
    per-call overhead (a getsockopt and a timer per sendall) on the hot path."""

    def __init__(self, sock):
        self._sock = sock
        self._fd = sock.fileno()
        self._write = threading.Lock()

    def send(self, data, *flags) -> int:
        self.sendall(data, *flags)
        return len(data)

    def sendall(self, data, *flags) -> None:
        with self._write:
            sent = 0
            if not flags:
                try:
                    sent = os.write(self._fd, data)
                except BlockingIOError:
                    pass
            if sent < len(data):
                self._sock.sendall(memoryview(data)[sent:], *flags)

    def __getattr__(self, name):  # recv, fileno, close, shutdown, ...: the socket's own
        return getattr(self._sock, name)
