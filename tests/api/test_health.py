"""/health and /ready (per process: backend and websocket), error envelopes, /metrics, the proxy."""

import requests

from tests.support import wait_until
from tests.support.net import TcpProxy, free_port
from tests.support.stack import SocketReader, Stack
from tradingapp.api.health import PROBE_SECONDS
from tradingapp.extensions import get_redis
from tradingapp.realtime import quotes_channel, user_events_channel
from tradingapp.security.auth import issue_tokens
from tradingapp.ws.hub import Hub
from tradingapp.ws.listener import Listener


def test_health_answers_ok_without_auth(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_reports_every_service_ok(client):
    response = client.get("/ready")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok", "rabbitmq": "ok"}


def test_unknown_route_is_a_json_404(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(client):
    response = client.put("/health")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


def test_metrics_are_prometheus_text(client):
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert b"http_requests_total" in response.data


def test_trusted_proxy_supplies_the_client_address(env):
    from flask import request

    from config import TestConfig
    from tradingapp import create_app

    proxied = create_app(TestConfig({**env, "TRUSTED_PROXY_COUNT": "1"}))

    @proxied.get("/_test/remote-addr")
    def remote_addr():
        return {"addr": request.remote_addr}

    response = proxied.test_client().get(
        "/_test/remote-addr", headers={"X-Forwarded-For": "203.0.113.9"}, environ_base={"REMOTE_ADDR": "10.0.0.2"}
    )
    assert response.get_json() == {"addr": "203.0.113.9"}


# -- readiness per process -----------------------------------------------------------------------------
def test_ready_of_the_websocket_process_checks_its_pubsub_feed_not_rabbitmq(make_app, db):
    # The websocket process runs on WEBSOCKET_PORT; it never uses RabbitMQ, so a broker outage leaves it
    # ready, and its probe is a pub/sub round trip until the first socket starts its listener.
    websocket_app = make_app(PORT="8081", WEBSOCKET_PORT="8081", RABBITMQ_PORT=str(free_port()))
    response = websocket_app.test_client().get("/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok", "pubsub": "ok"}


def test_ready_of_the_websocket_process_follows_its_redis_listener(make_app, db):
    websocket_app = make_app(PORT="8081", WEBSOCKET_PORT="8081")
    client = websocket_app.test_client()
    with websocket_app.app_context():
        hub = Hub(max_sockets_per_user=3, max_instruments=4, max_events=5)
        listener = Listener(get_redis(), hub, quotes_channel(), user_events_channel())
    websocket_app.extensions["ws_listener"] = listener  # as the first socket leaves it (ws/routes.py)

    response = client.get("/ready")  # started by no socket yet, or reconnecting: not subscribed
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok", "pubsub": "unavailable"}
    listener.start()
    try:
        assert listener.ready.is_set()
        assert client.get("/ready").get_json()["checks"]["pubsub"] == "ok"
    finally:
        listener.stop()
    assert client.get("/ready").status_code == 503


def test_ready_of_the_websocket_process_fails_when_redis_goes_away(make_app, db, env):
    proxy = TcpProxy(free_port(), target=(env["REDIS_HOST"], int(env["REDIS_PORT"])))
    proxy.start()
    try:
        websocket_app = make_app(PORT="8081", WEBSOCKET_PORT="8081", REDIS_PORT=str(proxy.port))
        client = websocket_app.test_client()
        assert client.get("/ready").status_code == 200
        proxy.cut()
        # The pub/sub probe's result is kept for PROBE_SECONDS: the outage shows within that.
        wait_until(lambda: client.get("/ready").get_json()["checks"].get("pubsub") == "unavailable",
                   timeout=PROBE_SECONDS + 5)  # fmt: skip
        response = client.get("/ready")
        assert response.status_code == 503
        assert response.get_json()["error"]["message"] == "redis, pubsub unavailable"
    finally:
        proxy.close()


def test_ready_of_the_real_websocket_process_follows_its_listener(app, env, make_user):
    """The gunicorn websocket process: ready before any socket (a pub/sub round trip), then its
    listener's own state once a socket started it: Redis cut, unready; Redis back, ready again."""
    proxy = TcpProxy(free_port(), target=(env["REDIS_HOST"], int(env["REDIS_PORT"])))
    proxy.start()
    stack = Stack({**env, "REDIS_PORT": str(proxy.port)})
    reader = None
    try:
        stack.start(["websocket"])
        ready_url = f"http://127.0.0.1:{stack.ws_port}/ready"
        response = requests.get(ready_url, timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == {"database": "ok", "redis": "ok", "pubsub": "ok"}

        user = make_user()
        with app.test_request_context():
            token = issue_tokens(user)["access_token"]
        reader = SocketReader(f"{stack.ws_url}?token={token}")
        reader.send({"action": "ping"})
        reader.wait_for(lambda m: m.get("type") == "pong", what="pong")  # the listener is up

        proxy.cut()
        wait_until(lambda: requests.get(ready_url, timeout=10).status_code == 503, timeout=15)
        assert requests.get(ready_url, timeout=10).json()["checks"]["pubsub"] == "unavailable"
        proxy.restore()
        wait_until(lambda: requests.get(ready_url, timeout=10).status_code == 200, timeout=20, details=stack.logs)
    finally:
        if reader is not None:
            reader.close()
            reader.ws.shutdown()  # the server closed it first (1012 at the resubscription): close() leaves it open
        stack.stop()
        proxy.close()
