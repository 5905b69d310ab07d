"""The gunicorn worker of both servers (gunicorn.conf.py's worker_class): gunicorn's gevent worker,
with the errors gunicorn answers itself in the API's JSON error envelope.

A request gunicorn refuses before the app sees it (a request line over limit_request_line: 414;
too many or too large headers: 431; a malformed request line, header or chunk: 400) is answered
by gunicorn as a small HTML page. Here gunicorn still decides the status and writes its log lines
(handle_error, unchanged), but the page it would send is captured and replaced by
{"error": {"code", "message", "details"}} with a message of ours: gunicorn's own text can quote
the client's request line, and no parser's text reaches a client.
"""

from __future__ import annotations

import json
import re
import traceback

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.workers.ggevent import GeventWorker

from tradingapp.errors import HTTP_CODES, error_body
from tradingapp.http import COMMON_HEADERS, JSON_CSP

STATUS_LINE = re.compile(rb"^HTTP/1\.[01] (\d{3}) ")

REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
}


def error_message(status: int, cfg) -> tuple[str, dict]:
    """The message and details of gunicorn's own refusal with this status."""
    if status == 414:
        return f"request line longer than {cfg.limit_request_line} bytes", {"max_bytes": cfg.limit_request_line}
    if status == 431:
        limits = {"max_fields": cfg.limit_request_fields, "max_field_bytes": cfg.limit_request_field_size}
        return (
            f"request headers too large: at most {cfg.limit_request_fields} fields of "
            f"{cfg.limit_request_field_size} bytes",
            limits,
        )
    if status == 501:
        return "unsupported Transfer-Encoding", {}
    if status == 417:
        return "unsupported Expect header", {}
    if status == 403:
        return "request refused", {}
    if status >= 500:
        return "internal server error", {}
    return "malformed HTTP request", {}


def json_error_response(status: int, cfg) -> bytes:
    message, details = error_message(status, cfg)
    code = HTTP_CODES.get(status, "error" if status < 500 else "internal_error")
    body = json.dumps(error_body(code, message, details), separators=(",", ":")).encode()
    headers = {
        "Connection": "close",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        "Content-Security-Policy": JSON_CSP,
        **COMMON_HEADERS,
    }
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


class _Captured:
    """The client socket as gunicorn's handle_error sees it: what it writes is kept, not sent."""

    def __init__(self, sock):
        self._sock = sock
        self.written = b""

    def sendall(self, data: bytes) -> None:
        self.written += data

    def send(self, data: bytes) -> int:
        self.written += data
        return len(data)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class JsonErrorGeventWorker(GeventWorker):
    def handle_error(self, req, client, addr, exc):
        captured = _Captured(client)
        super().handle_error(req, captured, addr, exc)
        if not captured.written:
            return
        found = STATUS_LINE.match(captured.written)
        status = int(found.group(1)) if found else 400
        try:
            util.write_nonblock(client, json_error_response(status, self.cfg))
        except Exception:
            self.log.debug("Failed to send error message.")


class AccessLogger(Logger):
    """gunicorn's logger (gunicorn.conf.py's logger_class). The access line's text is access_log_format
    as before; its record also carries the answer's X-Request-ID as request_id and the request's parts
    (remote, method, path without the query string, status, bytes, duration_ms), which a JSON line
    (LOG_FORMAT=json) shows as fields of their own."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        try:
            atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
            request_id = atoms["{x-request-id}o"]
            fields = {
                "remote": atoms["h"],
                "method": atoms["m"],
                "path": atoms["U"],
                "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
                "bytes": atoms["B"],
                "duration_ms": atoms["M"],
            }
            if request_id != "-":
                fields["request_id"] = request_id
            self.access_log.info(self.cfg.access_log_format, atoms, extra=fields)
        except Exception:
            self.error(traceback.format_exc())
