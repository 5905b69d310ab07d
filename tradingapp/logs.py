"""Log lines of every process: JSON (LOG_FORMAT=json, python-json-logger) or text for a person, with
the context at hand attached to each line.

The context is a set of ids bound for a block of work (a request, a job, an event): request_id,
user_id, order_id, client_order_id, broker_order_id, event_id. It lives in a ContextVar, so each
greenlet (gunicorn's gevent workers) and each thread sees its own:

    with logs.bind(order_id=order.id, request_id=job_request_id):
        log.info("event=order_placed ...")   # the line carries order_id and request_id

JSON lines have: time, level, process, logger, message, event (the message's leading `event=` name)
and every bound id. deploy/elk/ maps exactly these fields.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

# The ids a line may carry, in the order the text format prints them.
CONTEXT_FIELDS = ("request_id", "user_id", "order_id", "client_order_id", "broker_order_id", "event_id")

_context: ContextVar[dict[str, object]] = ContextVar("tradingapp_log_context", default={})  # noqa: B039 - never mutated
_process = {"name": "tradingapp"}


@contextmanager
def bind(**fields: object) -> Iterator[None]:
    """Attach these ids (None ones are skipped) to every line logged inside the block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current() -> dict[str, object]:
    """The ids bound here (a copy)."""
    return dict(_context.get())


def set_process(name: str) -> None:
    """Name this process in its lines (backend, websocket, worker, consumer, feed, xts_bridge)."""
    _process["name"] = name


class ContextFilter(logging.Filter):
    """Puts the process name, the `event` name and the bound ids on each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.process_name = _process["name"]
        context = _context.get()
        for field in CONTEXT_FIELDS:
            if field in context and not hasattr(record, field):
                setattr(record, field, context[field])
        if not hasattr(record, "event") and isinstance(record.msg, str) and record.msg.startswith("event="):
            # The formatted message: some names are built from arguments ("event=%s_failed").
            record.event = record.getMessage()[6:].split(" ", 1)[0]
        return True


class TextFormatter(logging.Formatter):
    """`time level=... logger=... message` and the bound ids as key=value, for a person (those the
    message does not already name)."""

    def __init__(self):
        super().__init__("%(asctime)s level=%(levelname)s process=%(process_name)s logger=%(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        message = record.getMessage()
        extra = " ".join(
            f"{f}={getattr(record, f)}" for f in CONTEXT_FIELDS if hasattr(record, f) and f"{f}=" not in message
        )
        if not extra:
            return line
        # A traceback stays last, after the ids.
        head, sep, tail = line.partition("\n")
        return f"{head} {extra}{sep}{tail}"


class _JsonLines(JsonFormatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        """ISO 8601 in UTC to the millisecond: one order's lines across processes fall within a second,
        and a reader (Kibana) must still put them in order."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def json_formatter() -> logging.Formatter:
    return _JsonLines(
        "{asctime}{levelname}{process_name}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "process_name": "process", "name": "logger"},
        timestamp=False,
        json_ensure_ascii=False,
    )


def formatter(fmt: str) -> logging.Formatter:
    return json_formatter() if fmt == "json" else TextFormatter()


def configure_logging(level: str, fmt: str = "text", process: str | None = None) -> None:
    """One stderr handler on the root logger, in the chosen format, with the context filter."""
    if process:
        set_process(process)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_tradingapp", False)), None)
    if handler is None and root.handlers:
        return  # someone else's handlers (pytest's capture), as logging.basicConfig leaves them
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler._tradingapp = True  # type: ignore[attr-defined]
        handler.addFilter(ContextFilter())
        root.addHandler(handler)
    handler.setFormatter(formatter(fmt))
    root.setLevel(level)
    # Python's warnings (gevent's, a library's deprecations) as log lines in the same format.
    logging.captureWarnings(True)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
