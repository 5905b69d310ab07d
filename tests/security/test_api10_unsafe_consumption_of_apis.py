"""OWASP API10:2023 Unsafe Consumption of APIs: what XTS (or whoever sits between us and it) sends
back, read as the untrusted input it is. Each hostile answer goes over real HTTP or socket.io: the
XTS simulator told to answer so (its `hostile` and `hostile_events` fault knobs,
tradingapp/simulators/xts/hostile.py), or a tiny raw HTTP server here for bytes no simulator route
writes. Each is refused by the exact error type within a small CPU bound (time.process_time), and
leaves our order as it was: the refusal is an XtsResponseError (an answer of an unexpected shape:
retried or looked up, never guessed around), a BadQuote, or a dropped socket that reconnects."""

from __future__ import annotations

import base64
import contextlib
import gc
import http.server
import threading
import time
import uuid
from decimal import Decimal

import pytest
import requests

from tests.support import wait_until
from tests.support.factories import reload
from tests.support.xts import claimed, filled_and_settled, settle, wait_sim_status
from tests.support.xts_sim import APP_KEY, MD_KEY, MD_SECRET, SECRET_KEY
from tradingapp.brokers.xts import ticks as xts_ticks
from tradingapp.brokers.xts.errors import XtsRateLimited, XtsResponseError, XtsUnavailable
from tradingapp.brokers.xts.market_stream import MarketStream
from tradingapp.brokers.xts.marketdata import MarketData
from tradingapp.brokers.xts.order_stream import OrderStream
from tradingapp.brokers.xts.outbox import Outbox
from tradingapp.brokers.xts.session import INTERACTIVE, MARKETDATA, MAX_RETRY_AFTER, TokenStore, XtsAccount, XtsSession
from tradingapp.brokers.xts.untrusted import MAX_ANSWER_BYTES, MAX_EVENT_CHARS, MAX_FRAME_BYTES
from tradingapp.models import Instrument

# tests/conftest.py collect_module_garbage
LEAKS_PLAIN_SOCKETS = "python-engineio's clients leave a cut connection's socket to the garbage collector"

# Refused before any arithmetic or recursion: microseconds of work, a second allowed on a shared
# 2-core machine. The unbounded conversion of "1e1000000" took 25 s.
FAST_CPU_SECONDS = 1.0
HUGE = "1e1000000"
GIB = 2**30


@contextlib.contextmanager
def refused_fast(error_type: type[Exception]):
    """The block raises exactly `error_type` (not a subclass, not a RecursionError or a
    ValueError from deeper down) and this process spent under FAST_CPU_SECONDS on it."""
    started = time.process_time()
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the exact type is asserted below
        yield caught
    spent = time.process_time() - started
    assert type(caught.value) is error_type, f"{type(caught.value).__name__}: {caught.value}"
    assert spent < FAST_CPU_SECONDS, f"{spent:.2f} s of CPU to refuse it"


def assert_unchanged(broker, request, app_order_id, tap) -> None:
    """Once the hostile answer is spent the broker's next answer is read as before, and our order
    holds what the broker said of it: nothing of the hostile answer went into it."""
    assert tap.drain() == []
    known = broker.lookup(request.order_id)
    assert (known.broker_order_id, known.status, known.filled_quantity) == (str(app_order_id), "filled", 10)
    settle(tap)
    order = reload(request.order_id)
    assert (order.status, order.filled_quantity, order.broker_order_id) == ("FILLED", 10, str(app_order_id))


def lookup_refused(broker, xts, trader, tap, route: str, **spec) -> str:
    """An order of ours filled at the simulator, then the next answer of `route` hostile (`spec`):
    the lookup is refused fast as an XtsResponseError and the order stays as it was. The refusal's
    message."""
    request, app_order_id = filled_and_settled(broker, xts, trader, tap)
    xts.faults(hostile={route: spec})
    with refused_fast(XtsResponseError) as refused:
        broker.lookup(request.order_id)
    assert_unchanged(broker, request, app_order_id, tap)
    return str(refused.value)


# -- numbers --------------------------------------------------------------------------------------
def test_a_place_answer_app_order_id_of_1e1000000_is_refused_fast(broker, xts, trader, tap):
    request = claimed(trader)
    xts.faults(hostile={"place": {"kind": "exponent", "field": "AppOrderID"}})
    with refused_fast(XtsResponseError) as refused:
        broker.place(request)
    assert "AppOrderID is too large" in str(refused.value)
    assert tap.drain() == []  # no accepted event under a made-up id
    [app_order_id] = xts.state()["orders_by_unique_id"][str(request.order_id)]
    wait_sim_status(xts, app_order_id, "Filled")
    known = broker.lookup(request.order_id)  # the ambiguous place is looked up, as after a timeout
    assert known.broker_order_id == str(app_order_id)


def test_an_order_book_quantity_of_1e1000000_is_refused_fast_and_the_order_is_untouched(broker, xts, trader, tap):
    refused = lookup_refused(broker, xts, trader, tap, "orders", kind="exponent", field="OrderQuantity")
    assert "OrderQuantity is too large" in refused


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        ("exponent_literal", "CumulativeQuantity"),  # 1e1000000 as a JSON number: past a double
        ("long_integer", "AppOrderID"),  # 4000 digits
        ("nan", "OrderPrice"),
        ("infinity", "OrderAverageTradedPrice"),
    ],
)
def test_numbers_json_cannot_hold_in_an_order_book_are_refused_fast(broker, xts, trader, tap, kind, field):
    lookup_refused(broker, xts, trader, tap, "orders", kind=kind, field=field)


@pytest.mark.parametrize(
    ("field", "kind", "says"),
    [
        ("LastTradedQuantity", "negative", "LastTradedQuantity is not a whole number from 1"),
        ("LastTradedQuantity", "zero", "LastTradedQuantity is not a whole number from 1"),
        ("LastTradedPrice", "negative", "LastTradedPrice is negative"),
        ("LastTradedPrice", "zero", "LastTradedPrice is not positive"),
    ],
)
def test_a_fill_of_negative_or_zero_quantity_or_price_is_refused(broker, xts, trader, tap, field, kind, says):
    assert says in lookup_refused(broker, xts, trader, tap, "trades", kind=kind, field=field)


@pytest.mark.parametrize("kind", ["negative", "zero"])
def test_an_order_quantity_of_zero_or_less_is_refused(broker, xts, trader, tap, kind):
    refused = lookup_refused(broker, xts, trader, tap, "orders", kind=kind, field="OrderQuantity")
    assert "OrderQuantity is not a whole number from 1" in refused


def test_a_quote_price_of_1e1000000_is_refused_fast(broker, xts):
    instrument = Instrument(exchange_segment="NSECM", exchange_instrument_id=2885)
    assert broker.quote(instrument)["ltp"]
    xts.faults(hostile={"quotes": {"kind": "exponent", "field": "LastTradedPrice"}})
    with refused_fast(XtsResponseError) as refused:
        broker.quote(instrument)
    assert "LastTradedPrice is too large" in str(refused.value)


@pytest.mark.parametrize("field", ["MTM", "Quantity"])
def test_a_position_amount_or_quantity_of_1e1000000_is_refused_fast(broker, xts, trader, tap, field):
    filled_and_settled(broker, xts, trader, tap)
    xts.faults(hostile={"positions": {"kind": "exponent", "field": field}})
    with refused_fast(XtsResponseError) as refused:
        broker.positions()
    assert f"{field} is too large" in str(refused.value)
    assert broker.positions()[0]["quantity"] == 10


# -- shapes ---------------------------------------------------------------------------------------
def test_an_answer_nested_100000_deep_is_refused_fast(broker, xts, trader, tap):
    refused = lookup_refused(broker, xts, trader, tap, "orders", kind="deep")  # the whole result: [[[[...]]]]
    assert "not JSON we accept" in refused


@pytest.mark.parametrize("kind", ["string", "list", "object"])
def test_a_quantity_of_the_wrong_type_is_refused_by_name(broker, xts, trader, tap, kind):
    assert "OrderQuantity is" in lookup_refused(broker, xts, trader, tap, "orders", kind=kind, field="OrderQuantity")


@pytest.mark.parametrize("kind", ["list", "object"])
def test_an_identifier_of_the_wrong_type_is_not_taken_for_ours(broker, xts, trader, tap, kind):
    """A row whose OrderUniqueIdentifier is a structure is nobody's order: never converted to text
    to find out, never an event of ours."""
    request, app_order_id = filled_and_settled(broker, xts, trader, tap)
    xts.faults(hostile={"orders": {"kind": kind, "field": "OrderUniqueIdentifier"}})
    started = time.process_time()
    rows, skipped = broker.order_book()
    assert time.process_time() - started < FAST_CPU_SECONDS
    assert all(row.order_id is None for row in rows) and skipped == 0
    assert_unchanged(broker, request, app_order_id, tap)


def test_a_list_where_the_place_answer_object_belongs_is_refused(broker, xts, trader, tap):
    request = claimed(trader)
    xts.faults(hostile={"place": {"kind": "list"}})
    with refused_fast(XtsResponseError) as refused:
        broker.place(request)
    assert "place answered list, not an object" in str(refused.value)
    assert tap.drain() == []


def test_a_giant_login_token_is_refused(xts, app):
    session = XtsSession(sim_account(xts.url), INTERACTIVE, requests.Session(), TokenStore(app.extensions["redis"]))
    xts.faults(hostile={"login": {"kind": "giant", "field": "token", "bytes": 1_000_000}})
    with refused_fast(XtsResponseError) as refused:
        session.login()
    assert "login answered without a token" in str(refused.value)
    assert session.login().token  # the next, ordinary login


# -- size -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["giant", "gzip_bomb"])
def test_a_gigabyte_answer_is_cut_off_at_the_cap(broker, xts, trader, tap, kind):
    """A 1 GiB order book, plain or as a gzip stream of a few kilobytes that inflates to it: read
    up to MAX_ANSWER_BYTES (decompressed), then the connection is dropped."""
    refused = lookup_refused(broker, xts, trader, tap, "orders", kind=kind, bytes=GIB)
    assert f"answer past the {MAX_ANSWER_BYTES} bytes accepted" in refused


# -- raw bytes: a broker of our own -----------------------------------------------------------------
class RawBroker:
    """An HTTP server on a free port that answers each path with the raw bytes (or the writer)
    set for it; anything else is a 404."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server spelling
                self._answer()

            def do_GET(self):  # noqa: N802
                self._answer()

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                route = owner.routes.get(self.path.split("?", 1)[0])
                with contextlib.suppress(OSError):
                    if callable(route):
                        route(self.wfile)
                    else:
                        self.wfile.write(route or b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def raw_broker():
    server = RawBroker()
    yield server
    server.close()


def answer(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
    return head.encode() + body


def login_answer(token: str) -> bytes:
    return answer(b'{"type": "success", "code": "s-user-0001", "description": "ok", "result": {"token": "%s", '
                  b'"userID": "RAW1", "isInvestorClient": true}}' % token.encode())  # fmt: skip


def jwt_with(payload: bytes) -> str:
    """A token shaped like a JWT whose payload is these bytes (no signature is checked for its ttl)."""
    parts = (b'{"alg": "HS256", "typ": "JWT"}', payload, b"sig")
    return ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in parts)


def sim_account(url: str, timeout: float = 2.0) -> XtsAccount:
    return XtsAccount(url=url, app_key=APP_KEY, secret_key=SECRET_KEY, md_app_key=MD_KEY, md_secret_key=MD_SECRET,
                      timeout=timeout)  # fmt: skip


def raw_session(app, raw_broker, api=INTERACTIVE, sleeps=None, timeout: float = 2.0) -> XtsSession:
    store = TokenStore(app.extensions["redis"], f"api10-{uuid.uuid4().hex[:8]}")
    sleep = (lambda seconds: sleeps.append(seconds)) if sleeps is not None else time.sleep
    return XtsSession(sim_account(raw_broker.url, timeout), api, requests.Session(), store, sleep=sleep)


@pytest.mark.parametrize("exp", [b"NaN", b"Infinity", b"1e400", b"9" * 400, b"[[[[1]]]]", b'"tomorrow"'])
def test_a_login_token_with_an_absurd_expiry_still_logs_in_for_the_default_time(app, raw_broker, exp):
    token = jwt_with(b'{"sub": "RAW1", "exp": ' + exp + b"}")
    raw_broker.routes["/interactive/user/session"] = login_answer(token)
    session = raw_session(app, raw_broker)
    started = time.process_time()
    assert session.login().token == token
    assert time.process_time() - started < FAST_CPU_SECONDS
    assert 0 < app.extensions["redis"].ttl(session.key) <= 8 * 3600


@pytest.mark.parametrize("retry_after", ["nan", "inf", HUGE, "-5", "soon"])
def test_a_retry_after_that_is_no_number_of_seconds_waits_the_bounded_backoff(app, raw_broker, retry_after):
    raw_broker.routes["/interactive/user/session"] = login_answer("tok")
    raw_broker.routes["/interactive/orders"] = answer(b"{}", "429 Too Many Requests", f"Retry-After: {retry_after}\r\n")
    sleeps: list[float] = []
    with refused_fast(XtsRateLimited):
        raw_session(app, raw_broker, sleeps=sleeps).call("GET", "/orders")
    assert sleeps and all(0 <= s <= MAX_RETRY_AFTER for s in sleeps), sleeps


def test_a_content_length_past_the_cap_is_refused_before_reading(app, raw_broker):
    raw_broker.routes["/interactive/user/session"] = login_answer("tok")
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {100 * GIB}\r\n\r\n"
    raw_broker.routes["/interactive/orders"] = head.encode() + b'{"type": "success", "result": ['
    with refused_fast(XtsResponseError) as refused:
        raw_session(app, raw_broker).call("GET", "/orders")
    assert f"answer of {100 * GIB} bytes, more than the {MAX_ANSWER_BYTES} accepted" in str(refused.value)


def test_an_answer_dripped_a_byte_at_a_time_is_given_up_at_its_deadline(app, raw_broker):
    """Every byte arrives inside the read timeout, so requests alone would wait for ever: the
    whole body has the call's timeout (1 s here). The drip stops after 20 s either way."""
    stop = threading.Event()

    def drip(out) -> None:
        out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        out.flush()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not stop.is_set():
            out.write(b"1\r\n \r\n")
            out.flush()
            time.sleep(0.2)

    raw_broker.routes["/interactive/user/session"] = login_answer("tok")
    raw_broker.routes["/interactive/orders"] = drip
    started = time.monotonic()
    try:
        with refused_fast(XtsUnavailable) as refused:
            raw_session(app, raw_broker, timeout=1.0).call("GET", "/orders")
    finally:
        stop.set()
    assert "answer still arriving after 1 s" in str(refused.value)
    assert time.monotonic() - started < 5


def test_an_ohlc_bar_time_past_the_calendar_is_refused(app, raw_broker):
    raw_broker.routes["/apimarketdata/auth/login"] = login_answer("tok")
    bars = b"99999999999999|2900|2910|2890|2905|100|0,"
    raw_broker.routes["/apimarketdata/instruments/ohlc"] = answer(
        b'{"type": "success", "code": "s", "description": "ok", "result": {"dataReponse": "%s"}}' % bars
    )
    md = MarketData(raw_session(app, raw_broker, api=MARKETDATA))
    start = time.time()
    with refused_fast(XtsResponseError) as refused:
        md.ohlc("NSECM", 2885, datetime_at(start - 3600), datetime_at(start))
    assert "bar time is not a whole number from 1" in str(refused.value)


def datetime_at(seconds: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC)


# -- the socket streams ---------------------------------------------------------------------------
@pytest.fixture
def streams(app, xts):
    """The bridge's streams of one account, in this process, against the simulator; stopped after."""
    halt = threading.Event()
    running: list[threading.Thread] = []
    order_streams: list[OrderStream] = []
    store = TokenStore(app.extensions["redis"], f"api10-{uuid.uuid4().hex[:8]}")
    http_session = requests.Session()
    outbox = Outbox(make_publisher=lambda: None, flush_interval=1.0)  # never started: events stay in memory

    def orders(eio: int = 4) -> OrderStream:
        stream = OrderStream(XtsSession(sim_account(xts.url), INTERACTIVE, http_session, store), outbox, eio, 0)
        stream.start()
        order_streams.append(stream)
        wait_until(lambda: stream.reconciler.runs >= 1, timeout=15)
        return stream

    def market() -> MarketStream:
        session = XtsSession(sim_account(xts.url), MARKETDATA, http_session, store)
        stream = MarketStream(session, outbox, 4, halt, instrument_id=lambda seg, ex_id: 1 if ex_id == 2885 else None,
                              instrument_keys=lambda: [("NSECM", 2885)])  # fmt: skip
        running.extend(stream.threads())
        running[-1].start()
        wait_until(lambda: stream.counts["touchlines"] >= 1, timeout=15)  # the subscription's own touchline
        return stream

    yield orders, market, outbox
    halt.set()
    for stream in order_streams:
        stream.stop(wait=10)
    for thread in running:
        thread.join(10)
    gc.collect()  # the sockets the Engine.IO clients leave to the collector warn here, not in the next test


# The Engine.IO clients leave a cut connection's socket (and every socket of the EIO 3 client) to the
# garbage collector: its ResourceWarning is theirs, not a leak of ours.
LEAKED_SOCKETS = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
)


def place_at_sim(stream: OrderStream) -> tuple[uuid.UUID, int]:
    """An order of ours (a UUID as orderUniqueIdentifier) placed through the stream's own session."""
    order_id = uuid.uuid4()
    body = {"exchangeSegment": "NSECM", "exchangeInstrumentID": 2885, "productType": "MIS", "orderType": "MARKET",
            "orderSide": "BUY", "timeInForce": "DAY", "disclosedQuantity": 0, "orderQuantity": 10, "limitPrice": 0,
            "stopPrice": 0, "orderUniqueIdentifier": str(order_id)}  # fmt: skip
    return order_id, int(stream.api.place(body)["AppOrderID"])


def fills_of(outbox: Outbox, order_id: uuid.UUID) -> list[dict]:
    with outbox.cond:
        return [e for e in outbox.events if e["type"] == "order.fill" and e["order_id"] == str(order_id)]


def test_an_order_event_with_a_quantity_of_1e1000000_is_refused_fast_and_the_books_read_again(streams, xts):
    orders, _market, outbox = streams
    stream = orders()
    runs = stream.reconciler.runs
    poison = {"count": 10, "kind": "exponent", "field": "OrderQuantity", "events": ["order", "trade"]}
    xts.faults(hostile_events=poison)
    started = time.process_time()
    order_id, _ = place_at_sim(stream)
    wait_until(lambda: stream.counts["order_unreadable"] >= 2 and stream.reconciler.runs > runs, timeout=10)
    assert time.process_time() - started < FAST_CPU_SECONDS
    [fill] = wait_until(lambda: fills_of(outbox, order_id), timeout=10)  # from the books: every event was refused
    assert fill["quantity"] == 10 and Decimal(fill["price"]) > 0


def test_a_touchline_with_a_volume_of_1e1000000_is_refused_fast_and_makes_no_tick(streams, xts):
    _orders, market, outbox = streams
    stream = market()
    ticks_before = len(outbox.ticks)
    xts.faults(hostile_events={"kind": "exponent", "field": "TotalTradedQuantity", "events": ["1501-json-full"]})
    started = time.process_time()
    xts.price("NSECM", 2885, "2950")
    wait_until(lambda: stream.counts["touchline_unreadable"] == 1, timeout=10)
    assert time.process_time() - started < FAST_CPU_SECONDS
    assert len(outbox.ticks) == ticks_before
    xts.price("NSECM", 2885, "2960")  # the next, ordinary touchline is a tick again
    wait_until(lambda: any(Decimal(t["ltp"]) == 2960 for t in outbox.ticks), timeout=10)


@LEAKED_SOCKETS
def test_a_socket_message_past_the_frame_cap_drops_the_connection_which_comes_back(streams, xts):
    """Engine.IO 4: a 2 MiB order event is refused by its frame header, before its payload is read;
    the stream connects again and the books are read again, and nothing of the message was handled."""
    orders, _market, outbox = streams
    stream = orders(eio=4)
    xts.faults(hostile_events={"kind": "giant", "bytes": 2 * MAX_FRAME_BYTES, "events": ["order"]})
    order_id, _ = place_at_sim(stream)
    wait_until(lambda: stream.stream.connections >= 2 and stream.stream.connected.is_set(), timeout=20)
    assert stream.counts["order_unreadable"] == 0  # no handler ever saw it
    wait_until(lambda: fills_of(outbox, order_id), timeout=10)


@LEAKED_SOCKETS
def test_an_eio3_order_event_past_the_payload_cap_is_refused_by_the_handler(streams, xts):
    """Engine.IO 3's client takes no socket class: the handler's cap refuses the payload unparsed."""
    orders, _market, outbox = streams
    stream = orders(eio=3)
    xts.faults(hostile_events={"kind": "giant", "bytes": 2 * MAX_EVENT_CHARS, "events": ["order"]})
    started = time.process_time()
    order_id, _ = place_at_sim(stream)
    wait_until(lambda: stream.counts["order_unreadable"] >= 1, timeout=10)
    assert time.process_time() - started < FAST_CPU_SECONDS
    wait_until(lambda: fills_of(outbox, order_id), timeout=10)


@pytest.mark.parametrize(
    "payload",
    [
        '{"ExchangeSegment": 1, "ExchangeInstrumentID": 2885, "Touchline": {"LastTradedPrice": "1e1000000"}}',
        '{"ExchangeSegment": 1, "ExchangeInstrumentID": 2885, "Touchline": {"LastTradedPrice": -5}}',
        '{"ExchangeSegment": 1, "ExchangeInstrumentID": "9e999", "Touchline": {"LastTradedPrice": 1}}',
        '{"ExchangeSegment": 1, "ExchangeInstrumentID": 2885, '
        '"Touchline": {"LastUpdateTime": 1e15, "LastTradedPrice": 1}}',
        "[" * 5000 + "]" * 5000,
        "x" * (MAX_EVENT_CHARS + 1),
    ],
    ids=["price-exponent", "negative-price", "id-exponent", "time-past-2100", "deep", "giant"],
)
def test_a_hostile_full_touchline_is_a_bad_quote_or_no_time_never_a_crash(payload):
    started = time.process_time()
    try:
        touch = xts_ticks.parse_full(payload)
    except xts_ticks.BadQuote:
        touch = None
    else:
        assert touch.exchange_time is None  # a time past 2100 is no time: the receive time stands
        assert xts_ticks.TickMaker().tick(touch, 1)["ltp"] == "1"
    assert time.process_time() - started < FAST_CPU_SECONDS
