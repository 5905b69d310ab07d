"""The request id (tradingapp/http.py): taken from a sane X-Request-ID or made, returned on every
answer (errors too), bound to the request's log lines with the user once known, stored on the
order it places and carried by the order's job. The same id through the real processes:
tests/e2e/test_trace.py."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from rq.job import Job

from tests.support.factories import set_quote
from tradingapp import logs
from tradingapp.extensions import get_redis
from tradingapp.models import Order
from tradingapp.services.orders import jobqueue

GENERATED = re.compile(r"[0-9a-f]{32}")
ORDER = {"instrument_id": 1, "side": "BUY", "quantity": 5, "order_type": "MARKET"}


@pytest.fixture
def lines():
    """JSON lines of the order path's loggers, with the platform's context filter (as a process logs)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.json_formatter())
    logger = logging.getLogger("tradingapp.services.orders")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(previous)
    handler.close()


def test_a_sane_client_id_is_echoed(client):
    response = client.get("/health", headers={"X-Request-ID": "terminal-01.abc:42_x"})
    assert response.headers["X-Request-ID"] == "terminal-01.abc:42_x"


@pytest.mark.parametrize("sent", [None, "", "a" * 65, "has space", "semi;colon", "new\u2028line", "é"])
def test_a_missing_or_bad_id_is_replaced_not_refused(client, sent):
    headers = {} if sent is None else {"X-Request-ID": sent}
    response = client.get("/health", headers=headers)
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_every_answer_carries_one_a_fresh_one_each_time(client):
    first = client.get("/health").headers["X-Request-ID"]
    assert first != client.get("/health").headers["X-Request-ID"]


def test_error_answers_carry_the_id_too(client, trader_headers):
    cases = [
        client.get("/api/v1/orders", headers={"X-Request-ID": "r-401"}),  # no token
        client.get("/api/v1/nowhere", headers={"X-Request-ID": "r-404"}),
        client.post(
            "/api/v1/orders",
            data="{",
            headers={**trader_headers, "X-Request-ID": "r-400", "Content-Type": "application/json"},
        ),  # fmt: skip
        client.get("/api/v1/orders", headers={**trader_headers, "X-Request-ID": "r-nul", "X-Other": "a\x00b"}),
    ]
    assert [r.status_code for r in cases] == [401, 404, 400, 400]
    assert [r.headers["X-Request-ID"] for r in cases] == ["r-401", "r-404", "r-400", "r-nul"]


def test_cors_lets_the_terminal_send_and_read_the_id(make_app, db):
    web = make_app(CORS_ALLOWED_ORIGINS="https://terminal.example").test_client()
    preflight = web.options(
        "/api/v1/orders",
        headers={
            "Origin": "https://terminal.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "X-Request-ID",
        },  # fmt: skip
    )
    assert "X-Request-ID" in preflight.headers["Access-Control-Allow-Headers"]
    answer = web.get("/health", headers={"Origin": "https://terminal.example"})
    assert answer.headers["Access-Control-Expose-Headers"] == "X-Request-ID"


def test_the_placed_order_and_its_job_carry_the_request_id(client, trader, trader_headers, lines):
    set_quote(1, "2900.05")
    response = client.post("/api/v1/orders", json=ORDER, headers={**trader_headers, "X-Request-ID": "place-1"})
    assert response.status_code == 202 and response.headers["X-Request-ID"] == "place-1"
    order_id = response.get_json()["id"]
    order = client.application.extensions["sqlalchemy"].session.get(Order, order_id)
    assert order.request_id == "place-1"
    job = Job.fetch(jobqueue.submit_job_id(order_id), connection=get_redis())
    assert job.meta == {"request_id": "place-1"}
    [accepted] = [line for line in lines() if line.get("event") == "order_accepted"]
    assert (accepted["request_id"], accepted["order_id"], accepted["user_id"]) == ("place-1", order_id, str(trader.id))


def test_a_cancel_queues_its_job_under_its_own_request(client, trader_headers):
    set_quote(1, "2800.00")
    body = {**ORDER, "order_type": "LIMIT", "limit_price": "2790.00"}
    order_id = client.post("/api/v1/orders", json=body, headers=trader_headers).get_json()["id"]
    order = client.application.extensions["sqlalchemy"].session.get(Order, order_id)
    order.status = "OPEN"  # as if the broker had acknowledged it
    client.application.extensions["sqlalchemy"].session.commit()
    response = client.delete(f"/api/v1/orders/{order_id}", headers={**trader_headers, "X-Request-ID": "cancel-1"})
    assert response.status_code == 202
    job = Job.fetch(jobqueue.cancel_job_id(order_id), connection=get_redis())
    assert job.meta == {"request_id": "cancel-1"}


def test_nothing_stays_bound_after_a_request(client):
    client.get("/health", headers={"X-Request-ID": "gone-after"})
    assert logs.current() == {}
