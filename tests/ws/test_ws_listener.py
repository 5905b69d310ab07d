"""The Redis listener of a websocket process across a lost subscription: what was published while
it was down never reaches the sockets open meanwhile, so at each re-subscription those sockets are
closed with 1012 and their clients reconnect and re-read (found by the chaos suite: a Redis restart
left the sockets open and their users' views of their orders stale for good)."""

from __future__ import annotations

import redis

from tests.support import wait_until
from tests.support.net import TcpProxy, free_port
from tradingapp.ws.hub import Hub
from tradingapp.ws.listener import CLOSE_RESYNC, Listener


def test_sockets_open_across_a_lost_subscription_are_closed_to_resync(app):
    proxy = TcpProxy(free_port(), ("127.0.0.1", app.config["REDIS_PORT"]))
    proxy.start()
    client = redis.Redis(host="127.0.0.1", port=proxy.port, db=app.config["REDIS_DB"], socket_connect_timeout=1)
    hub = Hub(max_sockets_per_user=5, max_instruments=10, max_events=100)
    listener = Listener(client, hub, "chaos-test:quotes", "chaos-test:events")
    listener.start()
    try:
        assert listener.ready.is_set()
        before, other = hub.register("u1"), hub.register("u2")
        proxy.cut()
        wait_until(lambda: not listener.ready.is_set(), 10)
        assert before.close_code is None  # nothing to tell yet: the feed is down, not back
        during = hub.register("u1")  # a client that reconnected meanwhile read a snapshot the gap may outdate
        proxy.restore()
        wait_until(listener.ready.is_set, 15)
        assert {c.close_code for c in (before, other, during)} == {CLOSE_RESYNC}
        after = hub.register("u1")
        listener.dispatch({"type": "message", "channel": b"chaos-test:events",
                           "data": b'{"user_id": "u1", "type": "order", "order": {}}'})  # fmt: skip
        assert after.close_code is None and after.pending() == 1
    finally:
        listener.stop()
        proxy.close()
        client.close()


def test_the_first_subscription_closes_nothing(app):
    client = redis.Redis(host="127.0.0.1", port=app.config["REDIS_PORT"], db=app.config["REDIS_DB"])
    hub = Hub(max_sockets_per_user=5, max_instruments=10, max_events=100)
    listener = Listener(client, hub, "chaos-test:quotes", "chaos-test:events")
    listener.start()
    try:
        conn = hub.register("u1")
        assert listener.ready.is_set() and conn.close_code is None
    finally:
        listener.stop()
        client.close()
