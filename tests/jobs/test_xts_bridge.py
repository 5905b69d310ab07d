"""The XTS event bridge (`python -m jobs.xts_bridge`) as a real process, against the XTS simulator
process (real HTTP and socket.io), real RabbitMQ, and the real consumer run in-process.

Orders are placed at the simulator with our order id as orderUniqueIdentifier, through the XTS
client's session with the token the bridge shares in Redis (as the worker does: a login of our
own would end the bridge's session, XTS allows one per user).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from kombu.exceptions import OperationalError

from jobs.consumer import EVENTS, TICKS
from tests.support import ROOT, wait_until
from tests.support.consumer import consumer_thread
from tests.support.factories import make_order
from tests.support.taps import Tap
from tradingapp.brokers.xts.session import INTERACTIVE, MARKETDATA, TokenStore, XtsAccount, XtsSession
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.messaging import Publisher
from tradingapp.models import Instrument, Order, ProcessedEvent, Tick, Trade
from tradingapp.process import StopFlag

# tests/conftest.py collect_module_garbage
LEAKS_PLAIN_SOCKETS = "python-engineio's clients leave a cut connection's socket to the garbage collector"


# -- the bridge process -----------------------------------------------------------------------
class BridgeProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path):
        self.proc, self.log_path = proc, log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"bridge did not stop in {timeout}s:\n{self.log()[-3000:]}") from None
        return self.proc.returncode


def sim_keys():
    """The simulator's app keys (imported late: the fixture module is loaded as a plugin first)."""
    from tests.support.xts_sim import APP_KEY, MD_KEY, MD_SECRET, SECRET_KEY

    return APP_KEY, SECRET_KEY, MD_KEY, MD_SECRET


def bridge_env(base: dict[str, str], url: str, **overrides) -> dict[str, str]:
    app_key, secret_key, md_key, md_secret = sim_keys()
    env = {
        **os.environ,
        **base,
        "BROKER": "xts",
        "XTS_API_URL": url,
        "XTS_API_KEY": app_key,
        "XTS_API_SECRET": secret_key,
        "XTS_MD_API_KEY": md_key,
        "XTS_MD_API_SECRET": md_secret,
        "XTS_TICK_FLUSH_MS": "50",
        "XTS_RECONCILE_INTERVAL": "0",
        "XTS_TIMEOUT": "5",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


@pytest.fixture
def start_bridge(app, db, env, xts, tmp_path):
    running: list[BridgeProcess] = []

    def start(market_data: bool = True, wait: bool = True, module: str = "jobs.xts_bridge", **overrides):
        process_env = bridge_env(env, xts.url, **overrides)
        if not market_data:
            process_env.update(XTS_MD_API_KEY="", XTS_MD_API_SECRET="")
        log_path = tmp_path / f"bridge-{len(running)}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=process_env, stdout=log,
                                    stderr=subprocess.STDOUT)  # fmt: skip
        bridge = BridgeProcess(proc, log_path)
        running.append(bridge)
        if wait:
            wait_for_sockets(xts, bridge, marketdata=market_data)
        return bridge

    yield start
    for bridge in running:
        if bridge.proc.poll() is None:
            bridge.proc.kill()
            bridge.proc.wait(5)


def wait_for_sockets(sim, bridge: BridgeProcess, marketdata: bool = True, count: int = 1, timeout: float = 20):
    """Until the simulator sees the bridge's sockets (and the bridge has reconciled since)."""
    wanted = {"interactive"} | ({"marketdata"} if marketdata else set())

    def ready():
        apis = [s["api"] for s in sim.state()["sockets"]]
        return wanted <= set(apis) and bridge.log().count("event=xts_reconciled") >= count

    wait_until(ready, timeout, lambda: f"bridge log:\n{bridge.log()[-4000:]}")


# -- placing at the broker with the shared session ----------------------------------------------
@pytest.fixture
def broker_session(app, db, xts):
    app_key, secret_key, _, _ = sim_keys()
    account = XtsAccount(url=xts.url, app_key=app_key, secret_key=secret_key, timeout=5.0)
    store = TokenStore(get_redis(), app.config["NAMESPACE"])
    session = XtsSession(account, INTERACTIVE, requests.Session(), store)
    yield session
    session.http.close()


def place(session: XtsSession, order: Order, segment="NSECM", ex_id=2885, **overrides) -> int:
    body = {
        "exchangeSegment": segment,
        "exchangeInstrumentID": ex_id,
        "productType": "MIS",
        "orderType": order.order_type,
        "orderSide": order.side,
        "timeInForce": "DAY",
        "disclosedQuantity": 0,
        "orderQuantity": order.quantity,
        "limitPrice": float(order.limit_price or 0),
        "stopPrice": 0,
        "orderUniqueIdentifier": str(order.id),
    } | overrides
    return int(session.call("POST", "/orders", body)["AppOrderID"])


def sim_orders(sim) -> list[dict]:
    return requests.get(f"{sim.url}/_sim/orders", timeout=5).json()["orders"]


def reliance() -> int:
    return _db.session.scalar(sa.select(Instrument.id).where(Instrument.exchange_instrument_id == 2885))


# -- taps and the consumer ----------------------------------------------------------------------
class TickTap(Tap):
    """Every tick message the bridge published on market.ticks, kept across drains."""

    def __init__(self, app):
        super().__init__(app, "market_ticks")
        self.messages: list[tuple[str, dict]] = []

    def drain(self) -> list[tuple[str, dict]]:
        self.messages += self.received()
        return self.messages

    def ticks(self) -> list[dict]:
        return [tick for _key, body in self.drain() for tick in body["ticks"]]


@pytest.fixture
def tick_tap(app, db):
    tap = TickTap(app)
    yield tap
    tap.close()


@pytest.fixture
def consumer(app, db):
    """The real consumer (broker events and ticks) in a thread of this process."""
    with consumer_thread(app, {EVENTS, TICKS}) as running:
        yield running


def fresh(order: Order) -> Order:
    _db.session.expire_all()
    found = _db.session.get(Order, order.id)
    _db.session.rollback()
    return found


def trades_of(order: Order) -> list[Trade]:
    rows = _db.session.scalars(sa.select(Trade).where(Trade.order_id == order.id).order_by(Trade.id)).all()
    _db.session.rollback()
    return list(rows)


def of_order(events: list[dict], order: Order) -> list[dict]:
    return [e for e in events if e["order_id"] == str(order.id)]


def xts_order(trader, quantity=10, order_type="MARKET", limit_price=None, status="SUBMITTED") -> Order:
    order = make_order(trader, instrument_id=reliance(), status=status, quantity=quantity, order_type=order_type,
                       limit_price=limit_price)  # fmt: skip
    order.broker = "xts"
    _db.session.commit()
    return order


@pytest.fixture(autouse=True)
def _quiet_socket_gc():
    """python-engineio's client leaves a cut connection's socket to the garbage collector."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


# -- order and trade events -------------------------------------------------------------------
@pytest.mark.parametrize("eio", ["4", "3"])
def test_order_and_trade_events_arrive_on_broker_events_with_deterministic_ids(
    start_bridge, broker_session, tap, trader, xts, eio
):
    bridge = start_bridge(market_data=False, XTS_SOCKETIO_EIO=eio)
    order = xts_order(trader)
    app_order_id = place(broker_session, order)
    events = wait_until(lambda: _have(tap, order, {"order.accepted", "order.fill"}), 10, bridge.log)
    accepted = next(e for e in events if e["type"] == "order.accepted")
    fill = next(e for e in events if e["type"] == "order.fill")
    assert accepted["event_id"] == f"xts:accepted:{app_order_id}"
    assert accepted["broker"] == "xts" and accepted["broker_order_id"] == str(app_order_id)
    execution_id = fill["execution_id"]
    assert fill["event_id"] == f"xts:fill:{app_order_id}:{execution_id}"
    assert fill["quantity"] == 10 and Decimal(fill["price"]) > 0
    assert f"eio={eio}" in bridge.log()
    assert broker_session.login().token not in bridge.log()  # the bridge's own session, shared in Redis
    assert bridge.stop() == 0


@pytest.mark.parametrize("eio", [4, 3])
def test_the_session_token_never_reaches_the_logs(broker_session, xts, caplog, eio):
    """The socket clients log their connect URL (token in the query) at INFO; processes log at INFO."""
    from tradingapp.brokers.xts.order_stream import OrderStream
    from tradingapp.brokers.xts.outbox import Outbox

    caplog.set_level(logging.INFO)
    token = broker_session.login().token
    stream = OrderStream(broker_session, Outbox(lambda: None, 1.0), eio=eio, interval=0)
    thread = threading.Thread(target=stream.stream.run)
    thread.start()
    try:
        assert stream.stream.connected.wait(10)
    finally:
        stream.halt.set()
        thread.join(10)
    assert "event=xts_stream_connected" in caplog.text
    assert [r.name for r in caplog.records if token in r.getMessage()] == []


FOREIGN_ROW = {
    "LoginID": "SIMUSER1", "ClientID": "SIMUSER1", "AppOrderID": 1200000001, "ExchangeSegment": "NSECM",
    "ExchangeInstrumentID": 2885, "OrderSide": "Buy", "OrderType": "Limit", "ProductType": "CNC",
    "OrderPrice": 2800.0, "OrderQuantity": 5, "OrderStopPrice": 0.0, "OrderStatus": "New",
    "OrderAverageTradedPrice": "", "LeavesQuantity": 5, "CumulativeQuantity": 0,
    "LastUpdateDateTime": "2026-11-24T10:00:00.0000000", "ExchangeTransactTime": "2026-11-24T10:00:00+05:30",
    "CancelRejectReason": "", "OrderUniqueIdentifier": "", "MessageCode": 9004, "SequenceNumber": 7,
}  # fmt: skip


@pytest.mark.parametrize("variant", [{"OrderType": "SL"}, {"OrderStatus": "Triggered"},
                                     {"OrderUniqueIdentifier": None}, {"OrderPrice": None}])  # fmt: skip
def test_an_unreadable_row_of_someone_elses_order_is_counted_as_foreign(broker_session, caplog, variant):
    """Orders placed at the broker's terminal: no error, no reconcile of the whole account per event."""
    from tradingapp.brokers.xts.order_stream import OrderStream, book_events
    from tradingapp.brokers.xts.outbox import Outbox

    stream = OrderStream(broker_session, Outbox(lambda: None, 1.0), eio=4, interval=0)
    stream.on_order(json.dumps(FOREIGN_ROW | variant))
    stream.on_trade(json.dumps(FOREIGN_ROW | variant | {"ExecutionID": "1"}))
    assert not stream.reconciler.wake.is_set()
    assert (stream.counts["order_foreign"], stream.counts["trade_foreign"], stream.counts["order_unreadable"]) == (
        1, 1, 0)  # fmt: skip
    assert book_events([FOREIGN_ROW | variant], []) == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    stream.on_order(json.dumps(FOREIGN_ROW | {"OrderType": "SL", "OrderUniqueIdentifier": str(uuid.uuid4())}))
    assert stream.counts["order_unreadable"] == 1 and stream.reconciler.wake.is_set()  # one of ours: read again


_seen: dict[int, list[dict]] = {}


def _have(tap, order, types: set[str]) -> list[dict] | None:
    """Events of `order` drained so far (kept across calls), once they include every type."""
    got = _seen.setdefault(id(tap), [])
    got += tap.drain()
    mine = of_order(got, order)
    return mine if types <= {e["type"] for e in mine} else None


# -- market data ------------------------------------------------------------------------------
@pytest.mark.parametrize("eio", ["4", "3"])
def test_touchlines_become_ticks_on_market_ticks_with_our_instrument_ids(start_bridge, tick_tap, xts, eio):
    bridge = start_bridge(XTS_SOCKETIO_EIO=eio)
    wait_until(lambda: sum(map(len, xts.state()["subscriptions"].values())) == 6, 10, bridge.log)
    xts.price("NSECM", 2885, "2950.55")
    xts.price("NSEFO", 35001, "24100.1")
    ours = {(i.exchange_segment, i.exchange_instrument_id): i.id for i in _db.session.scalars(sa.select(Instrument))}

    def priced():
        ticks = tick_tap.ticks()
        latest = {t["instrument_id"]: t for t in ticks}
        got = latest.get(ours["NSECM", 2885]), latest.get(ours["NSEFO", 35001])
        return (ticks, *got) if all(t and t["ltp"] in ("2950.55", "24100.1") for t in got) else None

    ticks, reliance_tick, nifty_tick = wait_until(priced, 10, bridge.log)
    assert reliance_tick["exchange_instrument_id"] == 2885 and nifty_tick["exchange_segment"] == "NSEFO"
    assert {t["instrument_id"] for t in ticks} == set(ours.values())  # the subscription snapshot too
    keys = {key for key, _ in tick_tap.messages}
    assert keys == {"ticks.NSECM", "ticks.NSEFO"}  # one message per segment per flush
    for body_key, body in tick_tap.messages:
        assert {t["exchange_segment"] for t in body["ticks"]} == {body_key.split(".", 1)[1]}
    assert bridge.stop() == 0


@pytest.fixture
def md_session(app, db, xts):
    app_key, secret_key, md_key, md_secret = sim_keys()
    account = XtsAccount(url=xts.url, app_key=app_key, secret_key=secret_key, md_app_key=md_key,
                         md_secret_key=md_secret, timeout=5.0)  # fmt: skip
    session = XtsSession(account, MARKETDATA, requests.Session(), TokenStore(get_redis(), app.config["NAMESPACE"]))
    yield session
    session.http.close()


def test_a_reconnect_finds_its_instruments_subscribed_and_fetches_their_quotes(md_session, xts):
    """XTS keeps a user's subscriptions: a reconnect's batch is refused as a whole (e-session-0002).
    Not one request per instrument: one refused batch, one quotes call for its touchlines."""
    from tradingapp.brokers.xts.market_stream import MarketStream
    from tradingapp.brokers.xts.outbox import Outbox

    keys = [("NSECM", i) for i in (2885, 11536, 1594, 1333, 3045)]
    outbox = Outbox(lambda: None, 1.0)

    def stream() -> MarketStream:
        return MarketStream(md_session, outbox, 4, threading.Event(), lambda s, i: i, lambda: keys)

    def calls() -> dict:
        requests_ = xts.state()["requests"]
        return {name: requests_.get(name, 0) for name in ("subscribe", "unsubscribe", "quotes")}

    first = stream()
    first.subscribe(keys)  # the first connect
    assert calls() == {"subscribe": 1, "unsubscribe": 0, "quotes": 0}
    assert sorted(t["instrument_id"] for t in outbox.ticks) == sorted(i for _, i in keys)
    outbox.ticks.clear()
    first.subscribe(keys)  # its next connect, same session
    assert calls() == {"subscribe": 2, "unsubscribe": 0, "quotes": 1}
    assert sorted(t["instrument_id"] for t in outbox.ticks) == sorted(i for _, i in keys)  # current quotes
    outbox.ticks.clear()
    # A new process of the same user (the bridge restarted): its batch, one instrument more, was
    # subscribed in part by the last one: unsubscribed and subscribed again in one go.
    wider = [*keys, ("NSEFO", 35001)]
    stream().subscribe(wider)
    assert calls() == {"subscribe": 4, "unsubscribe": 1, "quotes": 1}
    assert sorted(t["instrument_id"] for t in outbox.ticks) == sorted(i for _, i in wider)
    [subscribed] = xts.state()["subscriptions"].values()
    assert sorted(i for _, i, _ in subscribed) == sorted(i for _, i in wider)


def test_ticks_reach_the_consumer(start_bridge, consumer, xts):
    bridge = start_bridge()
    xts.price("NSECM", 2885, "2961.05")

    def stored():
        count = _db.session.scalar(sa.select(sa.func.count()).select_from(Tick).where(Tick.ltp == Decimal("2961.05")))
        _db.session.rollback()
        return count

    wait_until(stored, 10, bridge.log)
    assert bridge.stop() == 0


# -- faults -----------------------------------------------------------------------------------
def settled(order: Order, status: str, filled: int):
    def check():
        found = fresh(order)
        return found if found.status == status and found.filled_quantity == filled else None

    return check


def test_fills_during_a_socket_outage_are_recovered_by_the_reconcile_and_applied_once(
    start_bridge, broker_session, consumer, tap, trader, xts
):
    bridge = start_bridge(market_data=False)
    before = xts_order(trader)
    place(broker_session, before)
    wait_until(settled(before, "FILLED", 10), 10, bridge.log)
    live = of_order(tap.drain(), before)

    xts.control("sockets/disconnect", {"mode": "drop", "refuse_seconds": 1.5})
    wait_until(lambda: not xts.state()["sockets"], 5)
    during = xts_order(trader, quantity=20)
    app_order_id = place(broker_session, during)
    wait_until(lambda: any(o["CumulativeQuantity"] == 20 for o in sim_orders(xts)), 5)
    assert xts.state()["events"]["sent"] > 0 and not xts.state()["sockets"]  # sent to nobody: lost

    wait_for_sockets(xts, bridge, marketdata=False, count=2)  # reconnected and reconciled again
    found = wait_until(settled(during, "FILLED", 20), 10, bridge.log)
    assert found.broker_order_id == str(app_order_id)
    replayed = tap.drain()
    fills = [e for e in of_order(replayed, during) if e["type"] == "order.fill"]
    assert fills and all(e["event_id"] == f"xts:fill:{app_order_id}:{e['execution_id']}" for e in fills)
    # The reconcile re-published the first order's events under the ids they had live ...
    assert {e["event_id"] for e in live} <= {e["event_id"] for e in of_order(replayed, before)}
    # ... and the consumer applied each fact once.
    assert [t.quantity for t in trades_of(before)] == [10] and sum(t.quantity for t in trades_of(during)) == 20
    assert fresh(before).filled_quantity == 10
    assert "reason=connected" in bridge.log() and bridge.stop() == 0


def test_duplicate_and_reordered_socket_events_are_applied_once(
    start_bridge, broker_session, consumer, tap, trader, xts
):
    bridge = start_bridge(market_data=False)
    xts.faults(events={"duplicate_next": 4, "reorder_next": 2})
    orders = [xts_order(trader, quantity=q) for q in (5, 7)]
    for order in orders:
        place(broker_session, order)
    for order in orders:
        wait_until(settled(order, "FILLED", order.quantity), 10, bridge.log)
    state = xts.state()["events"]
    assert state["duplicated"] == 4 and state["reordered"] >= 1
    events = tap.drain()
    ids = [e["event_id"] for e in events]
    assert len(ids) > len(set(ids))  # the duplicates did reach RabbitMQ
    for order in orders:
        assert [t.quantity for t in trades_of(order)] == [order.quantity]
        applied = _db.session.scalar(
            sa.select(sa.func.count()).select_from(ProcessedEvent)
            .where(ProcessedEvent.event_id.in_({e["event_id"] for e in of_order(events, order)}))
        )  # fmt: skip
        _db.session.rollback()
        assert applied == len({e["event_id"] for e in of_order(events, order)})
    assert bridge.stop() == 0


@pytest.mark.parametrize("eio", ["4", "3"])
def test_session_expiry_logs_in_again_and_reconnects(start_bridge, broker_session, tap, trader, xts, eio):
    bridge = start_bridge(XTS_SOCKETIO_EIO=eio)
    xts.control("sessions/expire", {})
    wait_for_sockets(xts, bridge, count=2)
    log = bridge.log()
    assert "event=xts_interactive_logout" in log
    assert log.count("event=xts_login api=interactive") == 2 and log.count("event=xts_login api=marketdata") == 2
    # The new session works: an order's events still come through.
    order = xts_order(trader)
    app_order_id = place(broker_session, order)
    events = wait_until(lambda: _have(tap, order, {"order.accepted", "order.fill"}), 10, bridge.log)
    assert events[0]["broker_order_id"] == str(app_order_id)
    assert bridge.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_bridge_cleanly(start_bridge, xts, sig):
    bridge = start_bridge()
    started = time.monotonic()
    assert bridge.stop(sig) == 0
    assert time.monotonic() - started < 10
    log = bridge.log()
    assert "event=xts_bridge_stopped" in log and "Traceback" not in log
    wait_until(lambda: not xts.state()["sockets"], 5)  # its sockets were closed


def test_a_fill_ahead_of_its_acknowledgement_is_applied(start_bridge, broker_session, consumer, tap, trader, xts):
    bridge = start_bridge(market_data=False)
    xts.faults(events={"drop_next": 2, "kinds": ["order"]})  # PendingNew and New never come
    order = xts_order(trader)
    place(broker_session, order)
    wait_until(settled(order, "FILLED", 10), 10, bridge.log)
    types = [e["type"] for e in of_order(tap.drain(), order)]
    assert types.index("order.fill") < types.index("order.accepted")  # the Filled row's, after the trade
    assert [t.quantity for t in trades_of(order)] == [10]
    assert bridge.stop() == 0


def test_a_trade_event_lost_while_connected_is_recovered_by_the_periodic_reconcile(
    start_bridge, broker_session, consumer, tap, trader, xts
):
    bridge = start_bridge(market_data=False, XTS_RECONCILE_INTERVAL="1")
    xts.faults(events={"drop_next": 1, "kinds": ["trade"]})
    order = xts_order(trader)
    app_order_id = place(broker_session, order)
    wait_until(settled(order, "FILLED", 10), 10, bridge.log)
    assert xts.state()["events"]["dropped"] == 1 and xts.state()["sockets"]
    fills = [e for e in of_order(tap.drain(), order) if e["type"] == "order.fill"]
    assert fills and fills[0]["event_id"].startswith(f"xts:fill:{app_order_id}:")
    assert "reason=interval" in bridge.log() and [t.quantity for t in trades_of(order)] == [10]
    assert bridge.stop() == 0


# -- how it is run ----------------------------------------------------------------------------
def test_with_broker_xts_the_feed_command_runs_the_bridge(start_bridge, xts):
    bridge = start_bridge(module="jobs.feed")
    assert "event=xts_bridge_started" in bridge.log() and bridge.stop() == 0


def test_make_run_starts_the_bridge_in_place_of_the_simulated_feed():
    from tests.support.stack import run_stack  # scripts/run_stack.py, loaded from its file

    for broker, name, module in (("xts", "bridge", "jobs.xts_bridge"), ("paper", "feed", "jobs.feed")):
        config = run_stack.Config({"BROKER": broker})
        specs = {spec.name: spec for spec in run_stack.specs(config, Path("/venv/bin"))}
        assert list(specs)[-1] == name and specs[name].argv == ["/venv/bin/python", "-m", module]


# -- RabbitMQ down ----------------------------------------------------------------------------
class TcpProxy:
    """A TCP relay to RabbitMQ that the test can cut (every connection closed, new ones closed at
    once) and restore: an outage of the broker's link as the bridge sees it."""

    def __init__(self, port: int):
        self.target = ("127.0.0.1", port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open, self.closed = True, False
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            conns, self.conns = self.conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.closed = True
        self.cut()
        self.listener.close()


@pytest.fixture
def rabbit_proxy(app):
    proxy = TcpProxy(int(app.config["RABBITMQ_PORT"]))
    yield proxy
    proxy.close()


def test_order_events_wait_while_rabbitmq_is_down_and_go_out_when_it_is_back(
    start_bridge, broker_session, consumer, tap, trader, xts, rabbit_proxy
):
    bridge = start_bridge(market_data=False, RABBITMQ_PORT=str(rabbit_proxy.port))
    first = xts_order(trader)
    place(broker_session, first)
    wait_until(settled(first, "FILLED", 10), 10, bridge.log)

    rabbit_proxy.cut()
    order = xts_order(trader, quantity=30)
    app_order_id = place(broker_session, order)
    wait_until(lambda: "event=xts_publish_failed" in bridge.log(), 15, bridge.log)
    wait_until(lambda: any(o["AppOrderID"] == app_order_id and o["OrderStatus"] == "Filled" for o in sim_orders(xts)))
    time.sleep(0.5)
    assert of_order(tap.drain(), order) == [] and fresh(order).filled_quantity == 0  # nothing got through

    rabbit_proxy.restore()
    wait_until(settled(order, "FILLED", 30), 30, bridge.log)
    log = bridge.log()
    assert "event=xts_publish_recovered" in log and "reason=publish_recovered" in log
    assert sum(t.quantity for t in trades_of(order)) == 30 and [t.quantity for t in trades_of(first)] == [10]
    assert "event=xts_outbox_overflow" not in log and bridge.stop() == 0


def test_a_publish_fails_in_seconds_when_rabbitmq_goes_away_and_works_again_after(app, rabbit_proxy):
    """messaging.Publisher's inner retry was kombu's default (reconnect forever): a publish on a
    lost connection hung its caller for the whole outage."""
    url = app.config["AMQP_URL"].replace(f":{app.config['RABBITMQ_PORT']}/", f":{rabbit_proxy.port}/")
    publisher = Publisher(url, app.config["NAMESPACE"])
    try:
        publisher.publish("market_ticks", "ticks.TEST", {"ticks": []})
        rabbit_proxy.cut()
        started = time.monotonic()
        with pytest.raises(OperationalError):
            publisher.publish("market_ticks", "ticks.TEST", {"ticks": []})
        assert time.monotonic() - started < 10
        rabbit_proxy.restore()
        publisher.publish("market_ticks", "ticks.TEST", {"ticks": []})
    finally:
        publisher.close()


# -- linked accounts ----------------------------------------------------------------------------
DEALER = {"broker": "xts", "app_key": "sim-dealer-key", "secret_key": "sim-dealer-secret", "client_id": "CLIENT1"}


def link_dealer(client, trader_headers) -> str:
    response = client.post("/api/v1/broker-accounts", json=DEALER, headers=trader_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_a_linked_accounts_orders_come_back_through_a_stream_of_its_own(
    start_bridge, client, trader_headers, trader, tap, app, xts
):
    link_dealer(client, trader_headers)
    bridge = start_bridge(market_data=False, wait=False)
    wait_until(lambda: sorted(s["user"] for s in xts.state()["sockets"]) == ["SIMDEALER", "SIMUSER1"], 20, bridge.log)
    dealer = XtsAccount(url=xts.url, app_key=DEALER["app_key"], secret_key=DEALER["secret_key"], client_id="CLIENT1",
                        timeout=5.0)  # fmt: skip
    session = XtsSession(dealer, INTERACTIVE, requests.Session(), TokenStore(get_redis(), app.config["NAMESPACE"]))
    order = xts_order(trader)
    app_order_id = place(session, order)
    events = wait_until(lambda: _have(tap, order, {"order.accepted", "order.fill"}), 10, bridge.log)
    assert {e["broker_order_id"] for e in events} == {str(app_order_id)}
    assert bridge.stop() == 0


def test_streams_follow_the_linked_accounts(app, client, trader_headers, xts, monkeypatch):
    from jobs.xts_bridge import Bridge

    app_key, secret_key, _, _ = sim_keys()
    for key, value in {"XTS_API_URL": xts.url, "XTS_API_KEY": app_key, "XTS_API_SECRET": secret_key,
                       "XTS_MD_API_KEY": "", "XTS_MD_API_SECRET": "", "BROKER": "xts"}.items():  # fmt: skip
        monkeypatch.setitem(app.config, key, value)
    bridge = Bridge(app, StopFlag())
    try:
        bridge.refresh_accounts()
        assert list(bridge.orders) == ["default"]
        account_id = link_dealer(client, trader_headers)
        bridge.refresh_accounts()
        assert list(bridge.orders) == ["default", account_id]
        wait_until(lambda: len(xts.state()["sockets"]) == 2, 10)
        assert client.delete(f"/api/v1/broker-accounts/{account_id}", headers=trader_headers).status_code in (200, 204)
        bridge.refresh_accounts()
        assert list(bridge.orders) == ["default"]
        wait_until(lambda: [s["user"] for s in xts.state()["sockets"]] == ["SIMUSER1"], 10)
    finally:
        for orders in bridge.orders.values():
            orders.stop(wait=5)
        bridge.http.close()


def test_the_outbox_keeps_its_bound_and_asks_for_a_reconcile_after_an_overflow(app, rabbit_proxy, tap):
    from tradingapp.brokers.xts.outbox import Outbox

    url = app.config["AMQP_URL"].replace(f":{app.config['RABBITMQ_PORT']}/", f":{rabbit_proxy.port}/")
    recovered = []
    outbox = Outbox(lambda: Publisher(url, app.config["NAMESPACE"]), flush_interval=0.05,
                    on_recovered=recovered.append, max_events=3)  # fmt: skip
    thread = threading.Thread(target=outbox.run)
    thread.start()
    try:
        outbox.add_event({"event_id": "warm-up", "type": "order.accepted", "order_id": "o"})
        wait_until(lambda: outbox.stats["events"] == 1, 10)
        rabbit_proxy.cut()
        for n in range(5):
            outbox.add_event({"event_id": f"e{n}", "type": "order.accepted", "order_id": "o"})
        assert outbox.pending_events() <= 3 and outbox.stats["events_dropped"] >= 2
        wait_until(lambda: outbox.stats["failures"] >= 1, 15)
        rabbit_proxy.restore()
        wait_until(lambda: outbox.pending_events() == 0 and recovered, 30)
    finally:
        outbox.stop()
        thread.join(20)
    published = [e["event_id"] for e in tap.drain()]
    assert published[0] == "warm-up" and published[-3:] == ["e2", "e3", "e4"]  # the newest kept, in order
    assert recovered == ["publish_recovered"]  # the reconcile brings back what the bound let go


def test_a_reconcile_never_queues_an_event_still_waiting_in_the_outbox(broker_session, xts, trader):
    """Through a RabbitMQ outage each periodic reconcile re-reads the same books: what still waits
    is not added again (socket events still go in as they come: the consumer dedupes)."""
    from tests.support.xts import wait_sim_status
    from tradingapp.brokers.xts.order_stream import INTERVAL, OrderStream
    from tradingapp.brokers.xts.outbox import Outbox

    outbox = Outbox(lambda: None, flush_interval=1.0)  # not running: RabbitMQ is "down"
    stream = OrderStream(broker_session, outbox, eio=4, interval=0)
    wait_sim_status(xts, place(broker_session, xts_order(trader)), "Filled")
    assert stream.reconcile(INTERVAL) == 2
    for reason in (INTERVAL, INTERVAL, "connected"):
        assert stream.reconcile(reason) == 0
    assert outbox.pending_events() == 2  # accepted and the fill, once each
    event = outbox.events[0]
    assert outbox.add_event(dict(event)) is True  # a socket event: as it comes
    assert outbox.add_event(dict(event), unless_queued=True) is False


def test_a_stop_during_a_rabbitmq_outage_ends_in_seconds(start_bridge, broker_session, trader, xts, rabbit_proxy):
    bridge = start_bridge(market_data=False, RABBITMQ_PORT=str(rabbit_proxy.port))
    place(broker_session, xts_order(trader))  # connects the publisher (through the relay)
    wait_until(lambda: rabbit_proxy.conns, 10, bridge.log)
    rabbit_proxy.cut()
    place(broker_session, xts_order(trader))
    wait_until(lambda: "event=xts_publish_failed" in bridge.log(), 15, bridge.log)
    started = time.monotonic()
    assert bridge.stop(timeout=30) == 0
    assert time.monotonic() - started < 15
    assert "event=xts_outbox_stopped_with_events" in bridge.log()  # said, and left to the next start's reconcile


def test_a_periodic_reconcile_publishes_only_what_is_new_and_a_reconnect_everything(
    start_bridge, broker_session, tap, trader, xts
):
    bridge = start_bridge(market_data=False, XTS_RECONCILE_INTERVAL="1")
    order = xts_order(trader)
    place(broker_session, order)
    first = wait_until(lambda: _have(tap, order, {"order.accepted", "order.fill"}), 10, bridge.log)
    runs = bridge.log().count("reason=interval")
    wait_until(lambda: bridge.log().count("reason=interval") >= runs + 2, 10, bridge.log)
    assert of_order(tap.drain(), order) == []  # the books were read again; nothing went out twice
    xts.control("sockets/disconnect", {"mode": "drop"})
    again: list[dict] = []
    wanted = {e["event_id"] for e in first}
    wait_until(lambda: again.extend(of_order(tap.drain(), order)) or wanted <= {e["event_id"] for e in again}, 10,
               bridge.log)  # fmt: skip
    assert bridge.stop() == 0
