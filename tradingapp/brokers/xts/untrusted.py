"""What XTS sends, read as untrusted input (OWASP API10, unsafe consumption of APIs): every REST
answer, socket payload and number passes here before anything else looks at it.

A hostile, intercepted or broken answer must be refused in microseconds, as an XtsResponseError,
never stall the worker or the bridge: the integer conversion of "1e1000000" once took 25 s of CPU.
So: answers and payloads are capped in size, JSON is parsed by orjson (NaN, Infinity, a number
past a double and nesting past 1024 refused in C, in time linear in the text), numbers are checked
for length, magnitude and decimal places before any arithmetic, and a value of the wrong type is
refused by name instead of being converted. docs/xts.md, "Reading what XTS sends".
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import orjson

from tradingapp.brokers.xts.errors import XtsResponseError

MIB = 2**20
MAX_ANSWER_BYTES = 32 * MIB  # one REST answer: a day's order book of tens of thousands of rows fits
MAX_MASTER_BYTES = 256 * MIB  # the instrument master of every segment (NSEFO alone is ~20 MiB)
MAX_EVENT_CHARS = 64 * 1024  # one socket event's payload: a row or a touchline is ~1.5 KB
MAX_FRAME_BYTES = 1 * MIB  # one websocket message of a socket.io stream (Engine.IO 4)
MAX_NUMBER_CHARS = 40  # '1,23,45,678.1234' and any double's repr fit
MAX_DIGITS = 15  # a number's integer digits: below 10**15 (prices, amounts, ids, volumes)
MAX_PLACES = 20  # decimal places: 1E-1000000 would be a million digits once formatted
MAX_QUANTITY = 2**31 - 1  # an order's, a fill's, a book level's quantity (our integer columns)
MAX_TEXT_CHARS = 500  # a free-text field kept (a reason, a description)
MAX_ID = 10**15 - 1  # AppOrderID, SequenceNumber, ExchangeInstrumentID, volumes: XTS's have 13 digits at most
LAST_SECOND = 4_102_444_800  # 2100-01-01: a later time is not a time (datetime would overflow on it)
NUMBER_TYPES = (int, float, str, Decimal)


def loads(raw: object, what: str, limit: int = MAX_ANSWER_BYTES) -> object:
    """JSON text (str or bytes, at most `limit` long) as Python values; XtsResponseError otherwise."""
    if not isinstance(raw, str | bytes | bytearray | memoryview):
        raise XtsResponseError(f"{what}: {type(raw).__name__} where JSON text was expected")
    if len(raw) > limit:
        raise XtsResponseError(f"{what}: {len(raw)} long, more than the {limit} accepted")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise XtsResponseError(f"{what}: not JSON we accept ({str(exc)[:80]})") from None


def number(value: object, name: str) -> Decimal:
    """A finite number sent as a number or as text ('2,853.50' too), below 10**MAX_DIGITS and with
    at most MAX_PLACES decimal places, checked before any arithmetic on it."""
    if isinstance(value, bool) or not isinstance(value, NUMBER_TYPES):
        raise XtsResponseError(f"{name} is {shown(value)}, not a number")
    if isinstance(value, int) and not -(10**MAX_DIGITS) < value < 10**MAX_DIGITS:
        raise XtsResponseError(f"{name} is too large: {shown(value)}")
    text = value.strip().replace(",", "") if isinstance(value, str) else str(value)
    if len(text) > MAX_NUMBER_CHARS:
        raise XtsResponseError(f"{name} is {len(text)} characters long: {shown(value)}")
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        raise XtsResponseError(f"{name} is not a number: {shown(value)}") from None
    if not parsed.is_finite():
        raise XtsResponseError(f"{name} is not a finite number: {shown(value)}")
    if parsed.adjusted() >= MAX_DIGITS:
        raise XtsResponseError(f"{name} is too large: {shown(value)}")
    exponent = parsed.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_PLACES:
        raise XtsResponseError(f"{name} has more than {MAX_PLACES} decimal places: {shown(value)}")
    return parsed


def whole(value: object, name: str, minimum: int = 0, maximum: int = 10**MAX_DIGITS - 1) -> int:
    """A whole number from `minimum` to `maximum` ('10', 10, '10.0' alike); fractions refused."""
    parsed = number(value, name)
    if parsed != parsed.to_integral_value():
        raise XtsResponseError(f"{name} is not a whole number: {shown(value)}")
    result = int(parsed)  # cheap: at most MAX_DIGITS digits
    if not minimum <= result <= maximum:
        raise XtsResponseError(f"{name} is not a whole number from {minimum} to {maximum}: {shown(value)}")
    return result


def text(value: object, name: str, limit: int = MAX_TEXT_CHARS) -> str:
    """A scalar field as text (a string, or a number some deployments send instead); a list or an
    object where text belongs is refused, never turned into its repr."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, NUMBER_TYPES):
        raise XtsResponseError(f"{name} is {shown(value)}, not text")
    if isinstance(value, int) and not -(10**MAX_DIGITS) < value < 10**MAX_DIGITS:
        raise XtsResponseError(f"{name} is too large: {shown(value)}")
    if isinstance(value, str) and len(value) > limit:
        raise XtsResponseError(f"{name} is {len(value)} characters long, more than {limit}")
    return str(value).strip()


def same(value: object, *expected: str) -> bool:
    """Whether a scalar field reads as one of `expected` (XTS sends ids as numbers or strings);
    a structure never matches, and is never turned into text to find out."""
    scalar = isinstance(value, int | str) and not isinstance(value, bool) and len(str(value)) <= MAX_NUMBER_CHARS
    return scalar and str(value).strip() in expected


def shown(value: object, limit: int = 40) -> str:
    """A value for a log line or an error message, whatever it is: never the repr of a structure
    (a deep one would recurse, a large one would fill the log), never more than `limit` characters."""
    if value is None or isinstance(value, bool | float | Decimal):
        return repr(value)[:limit]
    if isinstance(value, int):
        return repr(value) if -(10**limit) < value < 10**limit else f"an integer of more than {limit} digits"
    if isinstance(value, str | bytes):
        cut = value[:limit]
        return repr(cut) + ("..." if len(value) > limit else "")
    if isinstance(value, list | dict | tuple):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__
