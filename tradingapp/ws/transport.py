"""Bytes on the wire for the WebSocket feed: frames encoded once, and one writer at a time per socket.

The hub encodes each message once into a complete WebSocket text frame (a server's frames are not
masked, so the same bytes go to every socket), and a socket's sender writes its queued frames with
one `sendall`. simple-websocket also writes on the socket from its own greenlet (pings, pongs, the
close handshake) with a bare `send`; `SerializedSocket` makes every write a whole `sendall` under one
lock, so frames never interleave or get cut short by a partial send to a slow client.
"""

from __future__ import annotations

import threading

import orjson
from wsproto.frame_protocol import FrameProtocol

# Server side, no extensions: send_data of a whole message keeps no state between calls.
_FRAMES = FrameProtocol(client=False, extensions=[])


def encode(message: dict) -> bytes:
    """A JSON message as one complete, unmasked, uncompressed WebSocket text frame."""
    return bytes(_FRAMES.send_data(orjson.dumps(message).decode()))


class SerializedSocket:
    """Wraps a connection's socket so that every write is one whole `sendall` under one lock."""

    def __init__(self, sock):
        self._sock = sock
        self._write = threading.Lock()

    def send(self, data, *flags) -> int:
        self.sendall(data, *flags)
        return len(data)

    def sendall(self, data, *flags) -> None:
        with self._write:
            self._sock.sendall(data, *flags)

    def __getattr__(self, name):  # recv, fileno, close, shutdown, ...: the socket's own
        return getattr(self._sock, name)
