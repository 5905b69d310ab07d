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
