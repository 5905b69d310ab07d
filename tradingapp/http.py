"""Request plumbing shared by every route: the checks every request passes, JSON bodies, CORS, the
request id and the headers of every response.

Every request has an id: the client's X-Request-ID when it is sane (REQUEST_ID_PATTERN), else a
fresh one (a bad one is replaced, never refused). It is bound to every log line of the request
(tradingapp/logs.py), stored on an order it places (orders.request_id, which the worker and the
consumer put on their lines) and returned in the X-Request-ID header of every answer, errors too.

What no route could store or use is refused here, before any route or service sees it: text
PostgreSQL cannot hold (a NUL, an unpaired surrogate) anywhere in the path, query string, headers
or JSON body; a JSON body nested deeper than MAX_JSON_DEPTH, or with a number longer than
MAX_NUMBER_CHARS or an exponent past MAX_NUMBER_EXPONENT (all 400); a body over MAX_CONTENT_LENGTH,
with a Content-Length or chunked (413); a path id past the id columns (404, IdConverter). Messages
are ours, never a parser's text.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal, InvalidOperation

from flask import Flask, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from tradingapp import logs
from tradingapp.domain.validation import MAX_ID
from tradingapp.errors import APIError, validation_error

# Deeper than any body of the API (an order is two levels), far below the parser's recursion limit.
MAX_JSON_DEPTH = 32
# A price or quantity needs a few tens of digits at most; int() of thousands of digits costs quadratic time.
MAX_NUMBER_CHARS = 40
# And a magnitude between 1e-40 and 1e40: Decimal("1e9999999999999999999") is not even a Decimal,
# and arithmetic on 1e999999999 can overflow wherever it lands.
MAX_NUMBER_EXPONENT = 40

# PostgreSQL's text types refuse a NUL (0x00); an unpaired surrogate (JSON's "\ud800") cannot be
# encoded as the UTF-8 it stores. Either reaching a query would be a 500.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A bracket, or a JSON string literal (escapes included) to step over. The closing quote is
# optional: an unterminated string then runs to the end in one match, where requiring the quote made
# the scan retry from every later quote (quadratic: 11 s of CPU for a 64 KiB body of `"\"...`).
_JSON_TOKEN = re.compile(r'"(?:[^"\\]+|\\.)*"?|[\[\]{}]', re.DOTALL)

# Sent with every response (the terminal's pages too): no MIME sniffing, no framing, no full URL
# in the Referer of a link followed away from the app. Behind nginx the edge sends its own and
# drops these (proxy_hide_header), so each arrives once.
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}
# A JSON answer is data, never a document: nothing in it loads or runs, nothing may frame it.
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
PAGE_CSP = "frame-ancestors 'none'"

REQUEST_ID_HEADER = "X-Request-ID"
# What a client's request id may be: short, and nothing a log line or a header could be bent by.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def unstorable_input(where: str, field: str | None = None) -> APIError:
    details = {"where": where, **({"field": field} if field else {})}
    return validation_error(
        f"the request's {where} holds a NUL character or an unpaired surrogate, which no field accepts", **details
    )


def json_body() -> dict:
    """The request body as a JSON object; numbers with a fraction parse as exact Decimals."""
    raw = _read_body()
    if not raw:
        raise validation_error("request body must be a JSON object")
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise APIError(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        text = raw.decode(json.detect_encoding(raw))
    except UnicodeDecodeError:
        raise validation_error("request body is not valid UTF-8") from None
    if _nesting_depth(text) > MAX_JSON_DEPTH:
        raise validation_error(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", max_depth=MAX_JSON_DEPTH)
    try:
        body = json.loads(text, parse_float=_decimal, parse_int=_integer, parse_constant=_reject_constant)
    except _NumberTooLong:
        raise validation_error(
            f"a number in the body is longer than {MAX_NUMBER_CHARS} characters", max_chars=MAX_NUMBER_CHARS
        ) from None
    except _NumberOutOfRange:
        raise validation_error(
            f"a number in the body is out of range: its exponent must be within {MAX_NUMBER_EXPONENT} of zero",
            max_exponent=MAX_NUMBER_EXPONENT,
        ) from None
    except json.JSONDecodeError as exc:
        raise validation_error("malformed JSON", line=exc.lineno, column=exc.colno) from None
    except (ValueError, RecursionError):
        raise validation_error("malformed JSON") from None
    if not isinstance(body, dict):
        raise validation_error("request body must be a JSON object")
    if (field := _unstorable_field(body)) is not None:
        raise unstorable_input("body", field)
    return body


def _read_body() -> bytes:
    """The whole body; 413 past MAX_CONTENT_LENGTH whether it came with a Content-Length or chunked."""
    try:
        raw = request.get_data(cache=True)  # 413 for a Content-Length over the limit
    except HTTPException:
        raise
    except Exception:  # the server's stream refused the body (a malformed chunk): the client's fault
        raise validation_error("malformed request body: it could not be read") from None
    limit = request.max_content_length
    if limit is not None and request.content_length is None and len(raw) >= limit:
        # Werkzeug stops a streamed (chunked) body at the limit and says nothing: one more byte from
        # the server's stream tells a body of exactly the limit from a longer one.
        if request.environ["wsgi.input"].read(1):
            raise APIError(413, "payload_too_large", f"request body is larger than {limit} bytes", {"max_bytes": limit})
    return raw


def _nesting_depth(text: str) -> int:
    """How deep the JSON nests (strings skipped), counted without recursion; stops past MAX_JSON_DEPTH."""
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(text):
        if token.group()[0] == '"':
            continue
        if token.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
        else:
            depth -= 1
    return deepest


class _NumberTooLong(ValueError):
    pass


class _NumberOutOfRange(ValueError):
    pass


def _integer(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _NumberTooLong
    return int(literal)


def _decimal(literal: str) -> Decimal:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _NumberTooLong
    try:
        value = Decimal(literal)
    except InvalidOperation:  # an exponent past what Decimal holds
        raise _NumberOutOfRange from None
    if max(abs(value.as_tuple().exponent), abs(value.adjusted())) > MAX_NUMBER_EXPONENT:
        raise _NumberOutOfRange
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def _unstorable_field(value, path: str = "") -> str | None:
    """The path (`a.b[2]`) of the first key or string PostgreSQL cannot store, else None."""
    if isinstance(value, str):
        return path or "body" if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if UNSTORABLE.search(key):
                return path or "body"
            if (found := _unstorable_field(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _unstorable_field(item, f"{path}[{index}]")) is not None:
                return found
    return None


def refuse_unstorable_url() -> None:
    """Before every route: the path, the query string and the headers hold no text PostgreSQL refuses."""
    if UNSTORABLE.search(request.path):
        raise unstorable_input("path")
    for name, value in request.args.items(multi=True):
        if UNSTORABLE.search(name) or UNSTORABLE.search(value):
            raise unstorable_input("query", name if not UNSTORABLE.search(name) else None)
    for name, value in request.headers.items():
        if UNSTORABLE.search(value):
            raise unstorable_input("headers", name)


def digits_up_to(limit: int) -> str:
    """A regex of the decimal numbers 0..limit. The bound sits in the rule's pattern, not only in
    to_python: Werkzeug answers 405 when a path matches another method's rule and this one's value is
    then refused, so an id past the column must not match the path at all (404, as for any id)."""
    text = str(limit)
    choices = [rf"\d{{1,{len(text) - 1}}}"] if len(text) > 1 else []
    for i, digit in enumerate(text):
        if digit != "0":
            choices.append(f"{text[:i]}[0-{int(digit) - 1}]\\d{{{len(text) - i - 1}}}")
    choices.append(text)
    return "(?:" + "|".join(choices) + ")"


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: the id of an integer column (PostgreSQL's 32-bit integer). A
    number past MAX_ID names nothing that can exist, so the route does not match and the answer
    is the 404 of any unknown id (a 400 would tell the caller more than "no such thing", and
    Werkzeug already answers 404 for a path segment that is not a number). At most ten digits
    are matched, so no path costs int() of thousands of digits."""

    regex = digits_up_to(MAX_ID)

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002 (Werkzeug's names)
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def request_id_of(header: str | None) -> str:
    """The client's request id when it is sane, else a fresh one (uuid4 hex)."""
    if header and REQUEST_ID_PATTERN.fullmatch(header):
        return header
    return uuid.uuid4().hex


def bind_request_id() -> None:
    """Before everything else (the checks that refuse a request log and answer with the id too)."""
    g.request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    g.request_log_context = logs.bind(request_id=g.request_id)
    g.request_log_context.__enter__()


def unbind_request_id(_exc: BaseException | None) -> None:
    context = g.pop("request_log_context", None)
    if context is not None:
        context.__exit__(None, None, None)


def init_app(app: Flask) -> None:
    # Before any blueprint: a rule takes its converter when it is added.
    app.url_map.converters["int"] = IdConverter
    app.before_request(bind_request_id)
    app.teardown_request(unbind_request_id)
    app.before_request(refuse_unstorable_url)

    @app.after_request
    def request_id_header(response):
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.after_request
    def cors(response):
        origin = request.headers.get("Origin")
        allowed = current_app.config.get("CORS_ALLOWED_ORIGINS") or []
        if origin and (origin in allowed or "*" in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = (
                f"Authorization, Content-Type, Idempotency-Key, {REQUEST_ID_HEADER}"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
            # The page's script may read the id of an answer (to quote it in a report).
            response.headers["Access-Control-Expose-Headers"] = REQUEST_ID_HEADER
            response.headers["Access-Control-Max-Age"] = "600"
        return response

    @app.after_request
    def security_headers(response):
        for name, value in COMMON_HEADERS.items():
            response.headers.setdefault(name, value)
        if response.is_json:
            # Tokens (login, refresh, register) and every user's orders, cash and positions: nothing
            # of the API's JSON is for a browser's or a proxy's cache. A route that sets its own
            # Cache-Control keeps it.
            response.headers.setdefault("Cache-Control", "no-store")
            response.headers.setdefault("Content-Security-Policy", JSON_CSP)
        else:
            response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        return response
