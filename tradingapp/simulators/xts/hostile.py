"""Hostile answers (OWASP API10): what a broken or malicious broker, or a man in the middle, might
send, set through the `hostile` (per REST route) and `hostile_events` (socket events) fault knobs
that faults.py validates. A kind replaces a field's value wherever it stands, or writes JSON text
Python's encoder never would (a NaN, a 4000-digit integer, 100000 brackets); docs/xts-simulator.md."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator

DEPTH = 100_000
RAW = {  # kind -> the JSON text written in place of the value
    "exponent_literal": "1e1000000",
    "long_integer": "9" * 4000,
    "nan": "NaN",
    "infinity": "Infinity",
    "deep": "[" * DEPTH + "]" * DEPTH,
}
VALUES = {  # kind -> the value written (as JSON)
    "exponent": "1e1000000",  # XTS sends most numbers as strings: the one the issue timed at 25 s
    "negative": -5,
    "zero": 0,
    "string": "ten",
    "list": [10],
    "object": {"value": 10},
}
STREAMED = ("giant", "gzip_bomb")  # the whole answer, streamed: `bytes` long (inflated, for the bomb)
KINDS = (*RAW, *VALUES, *STREAMED)
WHOLE_OK = ("deep", "list", "object", *STREAMED)  # kinds that may go without a field: the whole result
EVENTS = ("order", "trade", "1501-json-full", "1501-json-partial")
DEFAULT_BYTES = 64 * 2**20
_MARK = "\u0000hostile\u0000"
_CHUNK = 2**20


def poisoned(data: object, spec: dict) -> str:
    """The JSON text of `data` with the spec's kind applied to its field (or to `data` itself)."""
    kind, field = spec["kind"], spec.get("field")
    raw = RAW.get(kind)
    if kind == "giant":  # a socket payload: the field (or a Padding field) this long
        return json.dumps(_replace(data, field, "x" * spec["bytes"]) if field else _padded(data, spec["bytes"]))
    if field is None:
        return raw if raw is not None else json.dumps(_wrapped(data, kind))
    return _raw(json.dumps(_replace(data, field, _MARK if raw is not None else VALUES[kind], raw)), raw)


def poisoned_partial(text: str, spec: dict) -> str:
    """A partial touchline ('t:1_2885,ltp:2900.05,...') with the field's value replaced."""
    kind, field = spec["kind"], spec.get("field") or "ltp"
    plain = VALUES.get(kind, "")
    value = (
        "x" * spec["bytes"]
        if kind == "giant"
        else RAW.get(kind) or (plain if isinstance(plain, str) else json.dumps(plain))
    )
    parts = [f"{field}:{value}" if part.startswith(f"{field}:") else part for part in text.split(",")]
    return ",".join(parts)


def streamed(spec: dict, envelope_head: str) -> tuple[Iterator[bytes], dict[str, str]]:
    """A streamed answer of `bytes` bytes (and its headers): one long JSON string as the result
    ("giant"), or a gzip stream that inflates to that size from a few kilobytes ("gzip_bomb")."""
    size = spec["bytes"]

    def body() -> Iterator[bytes]:
        yield envelope_head.encode() + b'"'
        sent = 0
        while sent < size:
            step = min(_CHUNK, size - sent)
            yield b"x" * step
            sent += step
        yield b'"}'

    if spec["kind"] == "giant":
        return body(), {}

    def bomb() -> Iterator[bytes]:
        packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
        for chunk in body():
            packed = packer.compress(chunk)
            if packed:
                yield packed
        yield packer.flush()

    return bomb(), {"Content-Encoding": "gzip"}


def _replace(value: object, field: str, replacement: object, raw: str | None = None) -> object:
    if isinstance(value, dict):
        return {k: replacement if k == field else _replace(v, field, replacement, raw) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(item, field, replacement, raw) for item in value]
    if isinstance(value, str) and value.startswith("{"):  # a JSON string inside (listQuotes entries)
        try:
            inner = json.loads(value)
        except ValueError:
            return value
        return _raw(json.dumps(_replace(inner, field, replacement, raw)), raw)
    return value


def _raw(text: str, raw: str | None) -> str:
    """JSON text with the mark written as the raw text (in a JSON string inside, escaped by the
    encoder of the text around it, as a broker's would)."""
    return text if raw is None else text.replace(json.dumps(_MARK), raw)


def _wrapped(data: object, kind: str) -> object:
    """The whole result where another shape belongs: a list for an object, an object for a list."""
    return [data] if kind == "list" else {"value": data}


def _padded(data: object, size: int) -> object:
    return data | {"Padding": "x" * size} if isinstance(data, dict) else {"Padding": "x" * size, "data": data}
