"""The /ws route: authenticate, register with the hub, then read commands until the socket ends.
Parsing lives in `protocol`, routing in `hub`, Redis in `listener`, bytes on the wire in `transport`,
the per-user socket limit shared by every websocket process in `slots`. Only the websocket process
(PORT = WEBSOCKET_PORT) serves /ws; on the REST process it is a 404."""

from __future__ import annotations

import functools
import gc
import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from flask import Blueprint, Flask, abort, current_app, request
from flask_jwt_extended import decode_token
from simple_websocket import ConnectionClosed

from tradingapp import metrics, realtime
from tradingapp.extensions import db, get_redis, sock
from tradingapp.security.auth import revoked_sessions, user_from_token
from tradingapp.ws.hub import (
    CLOSE_OVERFLOW,
    OVERFLOW_REASON,
    Connection,
    Hub,
    TooManyConnections,
    TooManyInstruments,
    count_quotes,
    shape_quote,
)
from tradingapp.ws.listener import Listener
from tradingapp.ws.protocol import Command, ProtocolError, parse_message
from tradingapp.ws.slots import SocketSlots
from tradingapp.ws.transport import Flusher, SerializedSocket, encode

log = logging.getLogger(__name__)

# How frames go out: a socket's queued frames go out in one write; the process's flusher writes
# every socket that got something in a burst, in one pass and without waiting; a socket whose client
# is not reading fast enough is handed to its own sender loop, which waits for it (and closes the
# socket when asked). One watcher per process re-checks every socket's session (expired or revoked:
# close 4401) and stalled sends, renews the sockets' places under the per-user limit and marks quotes
# stale.

CLOSE_NORMAL = 1000
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY = 4429
RECEIVE_TICK = 1.0  # seconds between checks of the close flag by the receive loop
CLOSE_WAIT = 2.0  # seconds to wait for the client's close reply before the socket is dropped
CLOSE_POLICY = 1008
FLOOD_REASON = "messages arrive faster than they are handled"
# simple-websocket queues every received message without bound while the handler works through
# them. Pipelined commands are fine (one 4 KB read holds ~170 pings); a client that keeps sending
# faster than it is served is closed before its backlog costs the process memory.
MAX_PENDING_MESSAGES = 256  # below this the backlog is not even measured
MAX_PENDING_BYTES = 1 << 20
STALE_CHECK = 1.0  # seconds between looks for instruments whose feed went silent

bp = Blueprint("ws", __name__)
_start_lock = threading.Lock()


@dataclass(frozen=True)
class Settings:
    auth_timeout: float
    revocation_check: float
    max_message_bytes: int
    send_timeout: float

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(
            config["WS_AUTH_TIMEOUT"],
            config["WS_REVOCATION_CHECK"],
            config["WS_MAX_MESSAGE_BYTES"],
            config["WS_SEND_TIMEOUT"],
        )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


def serves_websocket(config) -> bool:
    """Whether this process is the websocket server: it runs on WEBSOCKET_PORT (as under make run,
    compose and the test stacks); the REST process runs on PORT."""
    return config["PORT"] == config["WEBSOCKET_PORT"]


@bp.before_request
def _websocket_process_only() -> None:
    if not serves_websocket(current_app.config):
        abort(404, f"the WebSocket feed is served on port {current_app.config['WEBSOCKET_PORT']}")


@bp.before_request
def _no_compression() -> None:
    """Decline permessage-deflate: it costs a zlib context and a compression per socket for every
    message, where an uncompressed frame is encoded once for all sockets."""
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


def get_hub() -> Hub:
    """This process's hub; the first call also starts the Redis listener feeding it, the flusher
    writing its sockets and the watcher."""
    app = current_app._get_current_object()
    hub = app.extensions.get("ws_hub")
    if hub is not None:
        return hub
    with _start_lock:
        if "ws_hub" not in app.extensions:
            config = app.config
            hub = Hub(
                config["WS_MAX_SOCKETS_PER_USER"],
                config["WS_MAX_INSTRUMENTS"],
                config["WS_MAX_QUEUED_EVENTS"],
                encode=encode,
                stale_after=config["QUOTE_STALE_AFTER"],
            )
            listener = Listener(get_redis(), hub, realtime.quotes_channel(), realtime.user_events_channel())
            listener.start()
            watcher = threading.Thread(target=_watch, args=(app, hub), name="ws-watcher", daemon=True)
            watcher.start()
            flusher = Flusher()
            threading.Thread(target=flusher.run, name="ws-flusher", daemon=True).start()
            app.extensions["ws_flusher"] = flusher
            app.extensions["ws_slots"] = SocketSlots(
                get_redis(), config["NAMESPACE"], config["WS_MAX_SOCKETS_PER_USER"], config["WS_SLOT_LEASE"]
            )
            app.extensions["ws_listener"] = listener
            app.extensions["ws_hub"] = hub
            _tune_gc()
    return app.extensions["ws_hub"]


def _tune_gc() -> None:
    """Keep the cyclic collector's pauses off the feed. A full collection walks every object of the
    process and stops every socket meanwhile: with the defaults, objects in flight at each young
    collection (a sender's wait, a receive timer) were promoted, full collections came every few
    seconds and took 50-300 ms with 1,000 sockets, which was the whole p99. So the objects alive now
    (the app, its modules) leave the collector's view for good, and young collections run every
    50,000 allocations instead of 700, late enough that those objects are gone. Garbage without
    cycles is freed by reference counting as before; only cycles wait a little longer."""
    gc.freeze()
    gc.set_threshold(50_000)


@sock.route("/ws", bp=bp)
def feed(ws) -> None:
    """One socket, counted open for as long as its handler runs (the gauge always comes down, in a
    finally) and its close counted by code: the code the server closed it with, else the client's
    (1005: none given, or the connection dropped)."""
    metrics.WS_OPEN.inc()
    ended = Ended()
    try:
        _serve(ws, ended)
    finally:
        metrics.WS_OPEN.dec()
        code = ended.code if ended.code is not None else int(ws.close_reason or 1005)
        metrics.WS_CLOSES.labels(close_code_label(code)).inc()


# The close codes counted by name; a client may send any code from 1000 to 4999, and each one would
# be a series of its own (for ever, in gunicorn's multiprocess files).
KNOWN_CLOSE_CODES = frozenset({1000, 1001, 1005, 1006, 1008, 1009, 1011, 1012, 1013, 4401, 4429})


def close_code_label(code: int) -> str:
    return str(code) if code in KNOWN_CLOSE_CODES else "other"


@dataclass
class Ended:
    code: int | None = None  # the close code the server chose, None when the client went first


def _serve(ws, ended: Ended) -> None:
    ws.sock = SerializedSocket(ws.sock)  # before simple-websocket's own greenlet first runs
    settings = Settings.from_config(current_app.config)
    try:
        user_id, claims = _authenticate(ws, settings)
    finally:
        db.session.remove()  # sockets live long; never hold a pooled DB connection
    if user_id is None:
        ended.code = CLOSE_UNAUTHORIZED
        _close(ws, CLOSE_UNAUTHORIZED, "unauthorized")
        return
    hub = get_hub()
    slots: SocketSlots = current_app.extensions["ws_slots"]
    slot = slots.new_id()
    try:
        if not slots.take(user_id, slot):
            raise TooManyConnections(user_id)
        conn = hub.register(user_id, claims)
    except TooManyConnections:
        slots.give_back(user_id, slot)
        ws.sock.sendall(encode({"type": "error", "code": "too_many_connections", "message": "too many open sockets"}))
        ended.code = CLOSE_TOO_MANY
        _close(ws, CLOSE_TOO_MANY, "too many connections")
        return
    conn.slot = slot
    log.info("event=ws_connected user_id=%s conn=%s", user_id, conn.id)
    conn.on_ready = functools.partial(current_app.extensions["ws_flusher"].mark, out=ws.sock)
    sender = threading.Thread(target=_send_loop, args=(ws, conn), name=f"ws-sender-{conn.id}", daemon=True)
    sender.start()
    try:
        while not conn.closing:
            data = ws.receive(timeout=RECEIVE_TICK)
            if data is not None:
                _handle(data, conn, hub, settings)
                if flooding(ws.input_buffer):
                    log.warning(
                        "event=ws_client_flooding user_id=%s conn=%s pending=%d", user_id, conn.id, len(ws.input_buffer)
                    )
                    ws.input_buffer.clear()
                    conn.close(CLOSE_POLICY, FLOOD_REASON)
    finally:
        ended.code = conn.close_code  # set: the server closed it (or saw the client gone); None: the client did
        hub.unregister(conn)
        slots.give_back(user_id, slot)
        conn.close(CLOSE_NORMAL, "bye")
        sender.join(timeout=CLOSE_WAIT + 1)
        if sender.is_alive():  # blocked writing to a client that stopped reading
            _abort(ws)
            sender.join(timeout=1)
        log.info("event=ws_disconnected user_id=%s conn=%s code=%s", user_id, conn.id, conn.close_code)


def flooding(pending: list) -> bool:
    """Whether the messages received and not yet handled are past what a socket may hold."""
    if len(pending) <= MAX_PENDING_MESSAGES:
        return False
    return len(pending) > 16 * MAX_PENDING_MESSAGES or sum(len(m) for m in pending) > MAX_PENDING_BYTES


def _authenticate(ws, settings: Settings) -> tuple[str | None, dict | None]:
    """The user id and claims of the query token or of a first `auth` message, else (None, None)."""
    token = request.args.get("token")
    if not token:
        data = ws.receive(timeout=settings.auth_timeout)
        try:
            command = parse_message(data, settings.max_message_bytes)
        except ProtocolError:
            return None, None
        if command.action != "auth":
            return None, None
        token = command.token
    user = user_from_token(token)
    if user is None:
        return None, None
    return str(user.id), decode_token(token)


def _handle(data, conn: Connection, hub: Hub, settings: Settings) -> None:
    try:
        command = parse_message(data, settings.max_message_bytes)
        if command.action == "ping":
            conn.send({"type": "pong"})
        elif command.action == "subscribe":
            _subscribe(conn, hub, command)
        elif command.action == "unsubscribe":
            hub.unsubscribe(conn, list(command.instrument_ids))
            conn.send({"type": "unsubscribed", "instrument_ids": list(command.instrument_ids)})
        else:
            raise ProtocolError("already_authenticated", "this socket is already authenticated")
    except ProtocolError as exc:
        conn.send(exc.as_message())


def _subscribe(conn: Connection, hub: Hub, command: Command) -> None:
    ids = list(command.instrument_ids)
    try:
        hub.subscribe(conn, ids, command.mode)
    except TooManyInstruments as exc:
        raise ProtocolError("too_many_instruments", f"at most {exc.args[0]} instruments per socket") from None
    conn.send({"type": "subscribed", "instrument_ids": ids, "mode": command.mode})
    try:
        snapshot = realtime.read_quotes(get_redis(), ids)
    except redis.RedisError as exc:
        log.warning("event=ws_snapshot_failed user_id=%s error=%s", conn.user_id, type(exc).__name__)
        return
    now, stale_after = datetime.now(UTC), current_app.config["QUOTE_STALE_AFTER"]
    for iid, cached in snapshot.items():
        quote = hub.remember(cached)  # or the live quote routed meanwhile, if newer
        message = shape_quote(quote, command.mode, realtime.is_stale(quote, now, stale_after))
        conn.push_quote(iid, hub.encode(message), replace=False)  # never over a live quote still queued
    count_quotes(len(snapshot), 0)


def _send_loop(ws, conn: Connection) -> None:
    """The slow path: what the flusher could not write without waiting, written as the client reads
    it; then the close, with the connection's code, when asked."""
    try:
        while not conn.closing:
            conn.wait()  # woken by the flusher or on close
            conn.sending_since = time.monotonic()
            # taken once the write lock is ours, so nothing newer goes first; parked bytes first,
            # even when nothing new came
            ws.sock.write_wait(conn.take_now)
            conn.sending_since = None
        _close(ws, conn.close_code, conn.close_reason)
    except (ConnectionClosed, OSError):
        conn.close(CLOSE_NORMAL, "client gone")  # the receive loop sees it on its next tick
    except Exception:  # never leave the socket half-alive
        log.exception("event=ws_sender_failed user_id=%s conn=%s", conn.user_id, conn.id)
        conn.close(CLOSE_NORMAL, "sender failed")


def _watch(app: Flask, hub: Hub) -> None:
    """Every socket's session every WS_REVOCATION_CHECK (expired or revoked: 4401), stalled sends
    (blocked past WS_SEND_TIMEOUT: 1013), the sockets' leases (renewed three times a WS_SLOT_LEASE),
    and instruments gone silent, checked by one loop per process."""
    settings = Settings.from_config(app.config)
    next_session_check = time.monotonic() + settings.revocation_check
    renew_every = app.config["WS_SLOT_LEASE"] / 3
    next_renewal = time.monotonic() + renew_every
    while True:
        time.sleep(min(STALE_CHECK, settings.revocation_check, renew_every))
        try:
            hub.mark_stale()
            conns = hub.connections()
            now = time.monotonic()
            for conn in conns:
                if conn.stalled(now, settings.send_timeout):
                    log.info("event=ws_client_too_slow user_id=%s conn=%s", conn.user_id, conn.id)
                    conn.close(CLOSE_OVERFLOW, OVERFLOW_REASON, dropped="send_timeout")
            if now >= next_renewal:
                next_renewal = now + renew_every
                _renew_slots(app, conns)
            if now >= next_session_check:
                next_session_check = now + settings.revocation_check
                with app.app_context():
                    _end_sessions(conns)
        except Exception:  # the watcher must outlive a Redis outage or a bug in one round
            log.exception("event=ws_watcher_error")


def _renew_slots(app: Flask, conns: list[Connection]) -> None:
    """Keep this process's sockets' places under the per-user limit (their leases would lapse)."""
    try:
        app.extensions["ws_slots"].renew((conn.user_id, conn.slot) for conn in conns if conn.slot and not conn.closing)
    except redis.RedisError as exc:
        log.warning("event=ws_slots_renew_failed error=%s", type(exc).__name__)


def _end_sessions(conns: list[Connection]) -> None:
    """Close with 4401 every socket whose token expired or was revoked (logout, deactivation)."""
    now = time.time()
    live = [conn for conn in conns if not conn.closing]
    try:
        revoked = revoked_sessions([conn.session for conn in live])
    except redis.RedisError:
        revoked = [False] * len(live)  # Redis down: expiry still applies; the next round decides the rest
    for conn, is_revoked in zip(live, revoked, strict=True):
        if is_revoked or conn.session.get("exp", 0) <= now:
            log.info("event=ws_session_ended user_id=%s conn=%s", conn.user_id, conn.id)
            conn.close(CLOSE_UNAUTHORIZED, "session ended")


def _close(ws, code: int, reason: str) -> None:
    """Send the close frame and let the client answer it: the server dropping the TCP
    connection at once can reset it before the client has read the close code."""
    ws.close(reason=code, message=reason)
    ws.thread.join(timeout=CLOSE_WAIT)


def _abort(ws) -> None:
    """Shut the TCP socket down: wakes a send blocked on a full buffer (it raises OSError)."""
    try:
        ws.sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
