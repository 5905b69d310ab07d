"""Fixtures of the WebSocket tests."""

import pytest
import websocket


@pytest.fixture
def sockets():
    """Opens WebSocket clients (websocket.create_connection) and closes every one after the test."""
    opened = []

    def connect(url: str, **options) -> websocket.WebSocket:
        ws = websocket.create_connection(url, timeout=5, **options)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        ws.close(timeout=1)
        ws.shutdown()  # close() skips the socket once the server's close frame was read
