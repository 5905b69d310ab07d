"""Client messages of the WebSocket feed: parsing and validation, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from tradingapp.ws.hub import MODES

ACTIONS = ("auth", "subscribe", "unsubscribe", "ping")


class ProtocolError(Exception):
    """A bad client message; the socket stays open and gets an error message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def as_message(self) -> dict:
        return {"type": "error", "code": self.code, "message": self.message}


@dataclass(frozen=True)
class Command:
    action: str
    instrument_ids: tuple[int, ...] = ()
    mode: str = "ltp"
    token: str = ""


def parse_message(data: str | bytes | None, max_bytes: int) -> Command:
    """A validated command from one frame, or ProtocolError."""
    if not isinstance(data, str):
        raise ProtocolError("unsupported_frame", "binary frames are not accepted; send JSON text")
    if len(data.encode()) > max_bytes:
        raise ProtocolError("message_too_large", f"messages are limited to {max_bytes} bytes")
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ProtocolError("validation_error", "message is not valid JSON") from None
    if not isinstance(body, dict):
        raise ProtocolError("validation_error", "message must be a JSON object")
    action = body.get("action")
    if action not in ACTIONS:
        raise ProtocolError("unknown_action", f"action must be one of {', '.join(ACTIONS)}")
    if action == "auth":
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("validation_error", "token must be a non-empty string")
        return Command("auth", token=token)
    if action == "ping":
        return Command("ping")
    ids = _instrument_ids(body.get("instrument_ids"))
    if action == "unsubscribe":
        return Command("unsubscribe", ids)
    mode = body.get("mode", "ltp")
    if mode not in MODES:
        raise ProtocolError("validation_error", f"mode must be one of {', '.join(MODES)}")
    return Command("subscribe", ids, mode)


def _instrument_ids(value) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ProtocolError("validation_error", "instrument_ids must be a non-empty list of positive integers")
    for item in value:
        # bool is an int subclass; true is not an instrument id
        if not isinstance(item, int) or isinstance(item, bool) or item <= 0:
            raise ProtocolError("validation_error", "instrument_ids must be positive integers")
    return tuple(dict.fromkeys(value))  # de-duplicated, order kept
