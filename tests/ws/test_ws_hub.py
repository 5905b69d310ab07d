"""The WebSocket hub and message parsing on their own: no Flask, no Redis, no sockets."""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from datetime import UTC, datetime

import gevent
import gevent.event
import gevent.thread
import orjson
import pytest
from gevent import socket as gsocket

from tradingapp.ws.hub import (
    BURST_FACTOR,
    CLOSE_OVERFLOW,
    Connection,
    Hub,
    TooManyConnections,
    TooManyInstruments,
    shape_quote,
)
from tradingapp.ws.listener import Listener
from tradingapp.ws.protocol import ProtocolError, parse_message
from tradingapp.ws.transport import Flusher, SerializedSocket, encode

QUOTE = {
    "instrument_id": 7, "ltp": "101.25", "ltq": 5, "bid": "101.20", "ask": "101.30", "bid_qty": 40,
    "ask_qty": 60, "open": "100.00", "high": "102.00", "low": "99.50", "close": "100.10",
    "volume": 12000, "ts": "2024-05-02T09:15:01.000000+00:00",
}  # fmt: skip


def quote(iid: int = 7, ltp: str = "101.25") -> dict:
    return {**QUOTE, "instrument_id": iid, "ltp": ltp}


def now_iso(offset: float = 0.0) -> str:
    return datetime.fromtimestamp(time.time() + offset, UTC).isoformat()


def received(conn, timeout: float = 0) -> list[dict]:
    """The messages a socket's sender would write now (the hub encodes them once, as JSON here)."""
    return [orjson.loads(data) for data in conn.take(timeout)]


@pytest.fixture
def hub():
    return Hub(max_sockets_per_user=3, max_instruments=4, max_events=5)


def test_quote_reaches_only_subscribers_of_its_instrument(hub):
    watcher, other = hub.register("u1"), hub.register("u2")
    hub.subscribe(watcher, [7], "ltp")
    hub.subscribe(other, [8], "ltp")
    assert hub.route_quote(quote(7)) == 1
    assert received(watcher) == [{"type": "quote", "instrument_id": 7, "ltp": "101.25", "ts": QUOTE["ts"]}]
    assert received(other) == []


def test_quote_mode_adds_depth_fields_but_not_ohlc(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "quote")
    hub.route_quote(quote())
    [message] = received(conn)
    assert set(message) == {"type", "instrument_id", "ltp", "ltq", "bid", "ask", "bid_qty", "ask_qty", "volume", "ts"}
    assert message["bid"] == "101.20" and message["ask_qty"] == 60


def test_full_mode_has_every_field_and_stale_flag(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "full")
    fresh = {**quote(), "ts": now_iso()}
    hub.route_quote(fresh)
    [message] = received(conn)
    assert message == {"type": "quote", **fresh, "stale": False}


def test_a_quote_older_than_stale_after_arrives_stale(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "full")
    hub.route_quote({**quote(), "ts": now_iso(-11)})  # the hub's stale_after is 10 s
    assert received(conn)[0]["stale"] is True


def test_silent_instrument_is_marked_stale_once_to_full_mode_subscribers(hub):
    full, light = hub.register("u1"), hub.register("u2")
    hub.subscribe(full, [7], "full")
    hub.subscribe(light, [7], "ltp")
    hub.route_quote({**quote(), "ts": now_iso()})
    received(full), received(light)
    assert hub.mark_stale(time.time() + 5) == 0
    assert hub.mark_stale(time.time() + 11) == 1
    [message] = received(full)
    assert message["stale"] is True and message["ltp"] == "101.25"
    assert received(light) == []  # ltp mode has no stale field: nothing changed for it
    assert hub.mark_stale(time.time() + 30) == 0  # once
    hub.route_quote({**quote(ltp="102.00"), "ts": now_iso()})
    assert [(m["ltp"], m["stale"]) for m in received(full)] == [("102.00", False)]


def test_a_snapshot_quote_is_marked_stale_when_nothing_follows_it(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "full")
    hub.remember({**quote(), "ts": now_iso()})
    assert hub.mark_stale(time.time() + 11) == 1
    assert received(conn)[0]["stale"] is True


def test_unsubscribed_instrument_is_no_longer_watched_for_staleness(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "full")
    hub.route_quote({**quote(), "ts": now_iso()})
    hub.unsubscribe(conn, [7])
    assert hub.mark_stale(time.time() + 11) == 0


def test_cached_string_quantities_become_integers():
    cached = {k: str(v) for k, v in QUOTE.items()}
    message = shape_quote(cached, "quote")
    assert message["instrument_id"] == 7 and message["ltq"] == 5 and message["volume"] == 12000
    assert message["ltp"] == "101.25"


def test_each_socket_gets_its_own_mode(hub):
    light, heavy = hub.register("u1"), hub.register("u1")
    hub.subscribe(light, [7], "ltp")
    hub.subscribe(heavy, [7], "full")
    hub.route_quote(quote())
    assert "bid" not in received(light)[0]
    assert received(heavy)[0]["close"] == "100.10"


def test_slow_consumer_gets_latest_quote_per_instrument(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7, 8], "ltp")
    for i in range(1000):
        hub.route_quote(quote(7, f"{100 + i}.00"))
        hub.route_quote(quote(8, f"{200 + i}.00"))
    assert conn.pending() == 2
    assert [(m["instrument_id"], m["ltp"]) for m in received(conn)] == [(7, "1099.00"), (8, "1199.00")]
    assert not conn.closing


def test_snapshot_does_not_replace_a_queued_live_quote(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "ltp")
    hub.route_quote(quote(7, "105.00"))
    conn.push_quote(7, orjson.dumps(shape_quote(quote(7, "101.00"), "ltp")), replace=False)
    assert [m["ltp"] for m in received(conn)] == ["105.00"]


def test_user_event_goes_only_to_its_owner(hub):
    mine_a, mine_b, theirs = hub.register("u1"), hub.register("u1"), hub.register("u2")
    delivered = hub.route_user_event({"user_id": "u1", "type": "order", "order": {"id": "o1"}})
    assert delivered == 2
    assert received(mine_a) == received(mine_b) == [{"type": "order", "order": {"id": "o1"}}]
    assert received(theirs) == []


def test_user_events_keep_their_order_and_precede_quotes(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "ltp")
    hub.route_quote(quote())
    for kind in ("order", "trade", "position"):
        hub.route_user_event({"user_id": "u1", "type": kind, kind: {"n": kind}})
    assert [m["type"] for m in received(conn)] == ["order", "trade", "position", "quote"]


def test_malformed_user_event_is_refused(hub):
    with pytest.raises(ValueError):
        hub.route_user_event({"user_id": "u1", "type": "secret", "secret": {}})


def test_unsubscribe_stops_quotes_and_drops_queued_ones(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7, 8], "ltp")
    hub.route_quote(quote(7))
    hub.unsubscribe(conn, [7])
    hub.route_quote(quote(7))
    assert received(conn) == []
    assert hub.subscriber_count(7) == 0 and hub.subscriber_count(8) == 1


def test_unregister_removes_every_subscription(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7, 8], "quote")
    hub.unregister(conn)
    assert hub.subscriber_count(7) == hub.subscriber_count(8) == 0
    assert hub.connections("u1") == []


def test_event_overflow_marks_socket_for_closing_and_bounds_memory(hub):
    conn = hub.register("u1")
    conn.sending_since = time.monotonic()  # its sender is blocked writing: the client is behind
    for i in range(20):
        hub.route_user_event({"user_id": "u1", "type": "trade", "trade": {"n": i}})
    assert conn.closing and conn.close_code == CLOSE_OVERFLOW
    assert conn.pending() == 0 and received(conn) == []


def test_a_burst_past_the_event_limit_to_a_socket_that_keeps_up_is_queued_whole(hub):
    # Regression: the listener routes every message Redis has already sent before the flusher's next
    # pass, so a burst of more than max_events for one user closed a reader that was not behind (1013)
    # and lost every event of the burst.
    conn = hub.register("u1")
    burst = hub.max_events * 3
    for i in range(burst):
        hub.route_user_event({"user_id": "u1", "type": "order", "order": {"n": i}})
    assert not conn.closing
    assert [m["order"]["n"] for m in received(conn)] == list(range(burst))


def test_a_socket_that_keeps_up_is_still_closed_past_the_burst_bound(hub):
    conn = hub.register("u1")
    for i in range(hub.max_events * BURST_FACTOR + 1):
        hub.route_user_event({"user_id": "u1", "type": "order", "order": {"n": i}})
    assert conn.closing and conn.close_code == CLOSE_OVERFLOW and conn.pending() == 0


def test_per_user_socket_limit(hub):
    for _ in range(3):
        hub.register("u1")
    with pytest.raises(TooManyConnections):
        hub.register("u1")
    hub.register("u2")


def test_instrument_limit_is_all_or_nothing(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [1, 2, 3], "ltp")
    with pytest.raises(TooManyInstruments):
        hub.subscribe(conn, [4, 5], "ltp")
    assert sorted(conn.subscriptions) == [1, 2, 3]
    hub.subscribe(conn, [1, 2, 3, 4], "full")  # resubscribing changes the mode, not the count
    assert set(conn.subscriptions.values()) == {"full"}


def test_take_blocks_until_a_message_arrives(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "ltp")
    timer = threading.Timer(0.05, hub.route_quote, args=(quote(),))
    timer.start()
    assert received(conn, 2.0)[0]["instrument_id"] == 7
    timer.join()


def test_close_wakes_a_waiting_sender(hub):
    conn = hub.register("u1")
    timer = threading.Timer(0.05, conn.close, args=(4401, "session ended"))
    timer.start()
    assert received(conn, 2.0) == []
    assert conn.close_code == 4401
    timer.join()


def test_listener_dispatch_routes_by_channel_and_drops_garbage(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "ltp")
    listener = Listener(client=None, hub=hub, quotes_channel="q", user_events_channel="e")
    listener.dispatch({"type": "message", "channel": b"q", "data": orjson.dumps(quote())})
    listener.dispatch({"type": "message", "channel": b"e", "data": b'{"user_id": "u1", "type": "order"}'})
    listener.dispatch({"type": "message", "channel": b"q", "data": b"not json"})
    assert [m["type"] for m in received(conn)] == ["quote"]


@pytest.mark.parametrize(
    "frame, code",
    [
        (b'{"action": "ping"}', "unsupported_frame"),
        ("{not json", "validation_error"),
        ("[1, 2]", "validation_error"),
        ('{"action": "dance"}', "unknown_action"),
        ('{"action": "subscribe", "instrument_ids": "1"}', "validation_error"),
        ('{"action": "subscribe", "instrument_ids": []}', "validation_error"),
        ('{"action": "subscribe", "instrument_ids": [0]}', "validation_error"),
        ('{"action": "subscribe", "instrument_ids": [1.5]}', "validation_error"),
        ('{"action": "subscribe", "instrument_ids": [true]}', "validation_error"),
        ('{"action": "subscribe", "instrument_ids": [1], "mode": "depth"}', "validation_error"),
        ('{"action": "auth", "token": 5}', "validation_error"),
        ('{"action": "ping", "pad": "' + "x" * 20000 + '"}', "message_too_large"),
    ],
)
def test_bad_messages_are_refused_with_a_code(frame, code):
    with pytest.raises(ProtocolError) as caught:
        parse_message(frame, 16 * 1024)
    assert caught.value.code == code


def test_subscribe_defaults_to_ltp_and_dedupes_ids():
    command = parse_message('{"action": "subscribe", "instrument_ids": [3, 1, 3]}', 1024)
    assert (command.action, command.instrument_ids, command.mode) == ("subscribe", (3, 1), "ltp")


def test_a_send_blocked_past_the_limit_counts_as_stalled(hub):
    conn = hub.register("u1")
    assert not conn.stalled(now=100.0, limit=30)
    conn.sending_since = 60.0
    assert not conn.stalled(now=80.0, limit=30)
    assert conn.stalled(now=100.0, limit=30)


def test_serialized_socket_writes_whole_frames_where_a_bare_send_may_cut_them():
    writer, reader = socket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    writer.settimeout(5)
    cut = writer.send(b"x" * 300_000)
    assert cut < 300_000  # the hazard: a bare send writes what fits and the caller must resend the rest
    assert len(reader.recv(cut, socket.MSG_WAITALL)) == cut
    blobs = [bytes([n]) * 300_000 for n in (1, 2)]
    received = bytearray()

    def read() -> None:
        while len(received) < 600_000:
            received.extend(reader.recv(65536))

    wrapped = SerializedSocket(writer)
    threads = [threading.Thread(target=read)] + [threading.Thread(target=wrapped.send, args=(b,)) for b in blobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert bytes(received) in (blobs[0] + blobs[1], blobs[1] + blobs[0])  # each write whole, never interleaved
    writer.close()
    reader.close()


def test_resubscribing_in_another_mode_moves_the_socket(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "ltp")
    hub.subscribe(conn, [7], "full")
    assert hub.route_quote({**quote(), "ts": now_iso()}) == 1
    [message] = received(conn)
    assert message["close"] == "100.10" and hub.subscriber_count(7) == 1


def test_a_write_the_client_cannot_take_yet_is_parked_and_sent_before_anything_else():
    writer, reader = gsocket.socketpair()  # gevent sockets, as the server's: non-blocking underneath
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    out = SerializedSocket(writer)
    big = b"a" * 300_000
    assert out.write_nowait(lambda: [big]) is False and out.backlogged  # what fit went; the rest waits
    assert out.write_nowait(lambda: pytest.fail("nothing is taken while bytes are parked")) is False

    def read_all() -> bytes:
        data = bytearray()
        while len(data) < len(big) + 4:
            data += reader.recv(65536)
        return bytes(data)

    reading = gevent.spawn(read_all)
    out.sendall(b"tail")
    assert reading.get(timeout=5) == big + b"tail" and not out.backlogged
    writer.close()
    reader.close()


def test_on_ready_announces_a_socket_once_per_batch(hub):
    conn = hub.register("u1")
    announced = []
    conn.on_ready = announced.append
    hub.subscribe(conn, [7, 8], "ltp")
    hub.route_quote(quote(7))
    hub.route_quote(quote(8))
    assert announced == [conn]
    assert len(conn.take_now()) == 2
    hub.route_quote(quote(7))
    assert announced == [conn, conn]


def test_a_closed_socket_is_never_written_even_when_its_descriptor_was_reused():
    writer, reader = gsocket.socketpair()
    out = SerializedSocket(writer)
    number = writer.fileno()
    writer.close()
    reader.close()
    reused, peer = gsocket.socketpair()  # the kernel hands out the lowest free numbers again
    with pytest.raises(OSError):
        out.write_nowait(lambda: [b"someone else's quote"])
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(100)  # nothing arrived on the connection that took the number over
    assert number in (reused.fileno(), peer.fileno())
    reused.close()
    peer.close()


def test_event_overflow_wakes_the_sender_to_close(hub):
    conn = hub.register("u1")
    conn.on_ready = lambda c: None  # as in the server: the flusher, not the sender, hears of new frames
    conn.sending_since = time.monotonic()  # a write blocked on the client
    for i in range(6):
        hub.route_user_event({"user_id": "u1", "type": "trade", "trade": {"n": i}})
    started = time.monotonic()
    assert conn.take(timeout=2) == [] and conn.close_code == CLOSE_OVERFLOW
    assert time.monotonic() - started < 1  # woken at once, not at the timeout


def test_flusher_writes_each_socket_once_per_burst_and_hands_a_full_one_to_its_sender():
    hub, flusher = Hub(encode=encode), Flusher()
    (fast_out, fast_in), (full_out, full_in) = pairs = [gsocket.socketpair() for _ in range(2)]
    full_out.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fast, full = hub.register("u1"), hub.register("u2")
    for conn, out in ((fast, fast_out), (full, full_out)):
        conn.on_ready = functools.partial(flusher.mark, out=SerializedSocket(out))
        hub.subscribe(conn, [7, 8], "ltp")
    hub.route_quote(quote(7))
    hub.route_quote(quote(8))
    full.push(encode({"type": "order", "order": {"note": "x" * 300_000}}))  # more than its buffers take
    flusher.flush()
    fast_in.settimeout(2)
    assert fast_in.recv(65536) == encode(shape_quote(quote(7), "ltp")) + encode(shape_quote(quote(8), "ltp"))
    started = time.monotonic()
    assert full.take(timeout=2) == [] and time.monotonic() - started < 1  # its sender was woken
    for out, into in pairs:
        out.close()
        into.close()


def test_a_snapshot_older_than_a_live_quote_already_routed_gives_way_to_it(hub):
    conn = hub.register("u1")
    hub.subscribe(conn, [7], "ltp")
    live = {**quote(ltp="105.00"), "ts": now_iso()}
    hub.route_quote(live)  # sent while the subscription's cache read was in flight
    assert hub.remember({**quote(ltp="101.00"), "ts": now_iso(-1)}) == live
    newer_cached = {**quote(ltp="106.00"), "ts": now_iso(1)}
    assert hub.remember(newer_cached) == newer_cached


def test_a_sender_waiting_for_the_write_lock_is_not_overtaken_by_the_flusher():
    # Regression: the sender took its frames, then waited for the write lock (held by simple-websocket's
    # thread writing a ping to a slow client). A released gevent lock resumes its waiter in a later
    # callback and a non-blocking acquire meanwhile succeeds, so a flusher pass landing in between wrote
    # newer frames before the sender's older ones: user events and quotes out of order.
    from types import SimpleNamespace

    from tradingapp.ws.routes import _send_loop

    writer, reader = gsocket.socketpair()
    writer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    out, flusher = SerializedSocket(writer), Flusher()
    out._write = gevent.thread.allocate_lock()  # threading.Lock in the server, which gevent patches
    conn = Connection("u1", encode=lambda message: message["x"].encode())
    conn._ready = gevent.event.Event()  # likewise threading.Event
    conn.on_ready = functools.partial(flusher.mark, out=out)
    filler = 0
    try:
        while True:
            filler += os.write(writer.fileno(), b"f" * 4096)
    except BlockingIOError:
        pass

    def ping_then_flush_pass() -> None:  # simple-websocket's thread, then the flusher's next pass
        out.sendall(b"P" * 64)
        flusher.flush()

    pinging = gevent.spawn(ping_then_flush_pass)
    gevent.sleep(0)  # the ping holds the write lock, waiting for the client
    sender = gevent.spawn(_send_loop, SimpleNamespace(sock=out), conn)
    conn.send({"x": "A"})
    flusher.flush()  # the lock is busy: the sender is woken instead
    gevent.sleep(0)  # the sender takes A and waits for the lock
    conn.send({"x": "B"})  # newer: marked for the flusher's next pass
    stream = bytearray()
    reader.settimeout(2)
    while stream.count(b"A") + stream.count(b"B") < 2:
        stream += reader.recv(65536)
    pinging.join(2)
    sender.kill()
    writer.close()
    reader.close()
    assert stream[filler:].replace(b"P", b"") == b"AB"


def test_a_mode_change_drops_the_quote_queued_in_the_old_mode(hub):
    # Regression: a quote queued in ltp mode stayed queued after a switch to full mode, so the socket
    # got an ltp-shaped quote after "subscribed ... full", and the full snapshot (pushed without
    # replacing a queued quote) was never sent.
    conn = hub.register("u1")
    hub.subscribe(conn, [7, 8], "ltp")
    hub.route_quote({**quote(7), "ts": now_iso()})
    hub.route_quote({**quote(8), "ts": now_iso()})
    hub.subscribe(conn, [7], "full")
    conn.push_quote(7, hub.encode(shape_quote(quote(7), "full")), replace=False)  # the snapshot
    messages = {m["instrument_id"]: m for m in received(conn)}
    assert "close" in messages[7] and "stale" in messages[7]  # full mode
    assert set(messages[8]) == {"type", "instrument_id", "ltp", "ts"}  # unchanged: still ltp


def test_a_backlog_of_unhandled_messages_is_flooding_past_its_bounds():
    from tradingapp.ws.routes import MAX_PENDING_BYTES, MAX_PENDING_MESSAGES, flooding

    ping = '{"action": "ping"}'
    assert not flooding([ping] * MAX_PENDING_MESSAGES)  # pipelined commands: never measured
    assert not flooding([ping] * (MAX_PENDING_MESSAGES + 1))  # a few KB: fine
    assert flooding([ping] * (16 * MAX_PENDING_MESSAGES + 1))  # too many, however small
    big = "x" * (MAX_PENDING_BYTES // MAX_PENDING_MESSAGES + 1)
    assert flooding([big] * (MAX_PENDING_MESSAGES + 1))  # past the byte bound
