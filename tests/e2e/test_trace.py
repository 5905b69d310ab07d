"""One order traced across the real processes by its request id (README "Tracing an order"), and
the order path's figures read from the worker's and the consumer's metrics ports.

The stack runs with LOG_FORMAT=json and LOG_LEVEL=INFO; each process's output is its file in
stack.log_dir. A MARKET order placed with a chosen X-Request-ID is found, by that id alone, in the
backend's accept, the worker's claim and broker call, and the consumer's application of the ack and
the fill. No line of any process holds the password or the bearer token."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import wait_until
from tests.support.net import listening
from tests.support.stack import DEMO, Stack, demo_session, reset_to_demo_data, started
from tradingapp.extensions import get_redis
from tradingapp.heartbeat import age
from tradingapp.realtime import read_quotes

pytestmark = pytest.mark.e2e

ORDER = {"instrument_id": 2, "side": "BUY", "quantity": 1, "order_type": "MARKET"}


@pytest.fixture(scope="module")
def stack(app, env, tmp_path_factory):
    reset_to_demo_data(app)
    heartbeats = str(tmp_path_factory.mktemp("heartbeats"))
    # json_logs: LOG_FORMAT=json and LOG_LEVEL=INFO for every process; each gets a metrics port.
    running = Stack({**env, "FEED_INTERVAL_MS": "250", "HEARTBEAT_DIR": heartbeats}, json_logs=True)
    with started(running) as stack:
        with app.app_context():  # a MARKET order needs the feed's first quote
            wait_until(lambda: read_quotes(get_redis(), [ORDER["instrument_id"]]), 20, stack.logs)
        for name in ("worker", "consumer"):  # their metrics are served once the process has started
            wait_until(lambda name=name: listening(stack.metrics_ports[name]), 20, stack.logs)
        yield stack


@pytest.fixture(scope="module")
def http(stack):
    session = demo_session(stack.base_url)
    yield session
    session.close()


def place_and_fill(stack, http, headers: dict) -> tuple[str, str]:
    """(order id, the request id the answer names) of a MARKET order, once FILLED."""
    response = http.post(f"{stack.base_url}/api/v1/orders", json=ORDER, headers=headers, timeout=10)
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]

    def filled():
        return http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()["status"] == "FILLED"

    wait_until(filled, 20, stack.logs)
    return order_id, response.headers["X-Request-ID"]


def json_lines(stack) -> dict[str, list[dict]]:
    """Every JSON line of every process, by process (gunicorn's own lines are not the app's JSON)."""
    found = {}
    for name, process in stack.processes.items():
        parsed = []
        for raw in process.log_path.read_text(errors="replace").splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                parsed.append(line)
        found[name] = parsed
    return found


def traced(stack, request_id: str) -> dict[str, list[dict]]:
    return {name: [line for line in lines if line.get("request_id") == request_id]
            for name, lines in json_lines(stack).items()}  # fmt: skip


def the_trace_is_complete(stack, request_id: str, order_id: str) -> dict[str, list[dict]]:
    """Waits until the consumer has logged the fill (its line follows its commit by a hair)."""

    def complete():
        lines = traced(stack, request_id)
        applied = [line["message"] for line in lines["consumer"] if line.get("event") == "broker_event_applied"]
        return lines if any("type=order.fill" in message for message in applied) else None

    lines = wait_until(complete, 10, lambda: str(traced(stack, request_id)))
    for process in ("backend", "worker", "consumer"):
        assert all(line.get("order_id", order_id) == order_id for line in lines[process]), lines[process]
    return lines


def events(lines: list[dict]) -> list[str]:
    return [line.get("event") for line in lines]


def test_one_order_is_found_in_every_process_by_its_request_id(stack, http):
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    order_id, echoed = place_and_fill(stack, http, {"X-Request-ID": request_id})
    assert echoed == request_id
    lines = the_trace_is_complete(stack, request_id, order_id)

    [accepted] = [line for line in lines["backend"] if line.get("event") == "order_accepted"]
    assert accepted["process"] == "backend" and accepted["user_id"] and accepted["logger"].endswith("placement")

    worker = lines["worker"]
    assert {"job_claimed", "broker_call", "submitted"} <= set(events(worker)), events(worker)
    assert all(line["process"] == "worker" for line in worker)
    [call] = [line for line in worker if line.get("event") == "broker_call"]
    assert "operation=place" in call["message"] and "broker=paper" in call["message"]
    [submitted] = [line for line in worker if line.get("event") == "submitted"]
    assert "outcome=ok" in submitted["message"] and submitted["broker_order_id"]
    assert submitted["broker_order_id"] in submitted["message"]

    applied = [line for line in lines["consumer"] if line.get("event") == "broker_event_applied"]
    assert [line["message"].split()[1] for line in applied] == ["type=order.accepted", "type=order.fill"]
    for line in applied:  # the request id read from the order row: the broker's event carries none of ours
        assert line["process"] == "consumer" and line["event_id"] and line["user_id"] == accepted["user_id"]
        assert line["broker_order_id"] == submitted["broker_order_id"]
    assert "status=FILLED" in applied[-1]["message"]


def test_a_request_without_an_id_gets_one_and_is_traced_by_it(stack, http):
    order_id, generated = place_and_fill(stack, http, {})
    assert len(generated) == 32 and int(generated, 16) >= 0  # uuid4's hex
    lines = the_trace_is_complete(stack, generated, order_id)
    assert "order_accepted" in events(lines["backend"]) and "submitted" in events(lines["worker"])


def test_a_bad_id_is_replaced_and_the_order_traced_by_the_new_one(stack, http):
    order_id, replaced = place_and_fill(stack, http, {"X-Request-ID": "no spaces; allowed"})
    assert replaced != "no spaces; allowed" and len(replaced) == 32
    the_trace_is_complete(stack, replaced, order_id)


def test_no_line_of_any_process_holds_the_password_or_a_token(stack, http):
    place_and_fill(stack, http, {"X-Request-ID": "secrets-check"})
    login = requests.post(f"{stack.base_url}/api/v1/auth/login", json=DEMO, timeout=10).json()
    secrets = [DEMO["password"], http.token, login["access_token"], login["refresh_token"]]
    for name, process in stack.processes.items():
        text = process.log_path.read_text(errors="replace")
        assert text, f"{name} wrote nothing"
        for secret in secrets:
            assert secret not in text, f"{name}'s log holds a secret"


# -- the figures of the real processes -----------------------------------------------------------
def scrape(url: str) -> dict[tuple[str, tuple], float]:
    text = requests.get(url, timeout=5).text
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}  # fmt: skip


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_the_worker_and_the_consumer_serve_the_order_path_figures(stack, http):
    worker_url, consumer_url = stack.metrics_url("worker"), stack.metrics_url("consumer")
    before_worker, before_consumer = scrape(worker_url), scrape(consumer_url)
    place_and_fill(stack, http, {"X-Request-ID": "metrics-check"})

    def counted(url: str, before: dict, name: str, **labels) -> float:
        return sample(scrape(url), name, **labels) - sample(before, name, **labels)

    stage = "tradingapp_order_stage_seconds_count"
    # The job counts itself done after the fill may already be applied: wait for it.
    wait_until(
        lambda: counted(worker_url, before_worker, "tradingapp_order_jobs_total", task="submit", outcome="ok"), 10
    )
    assert counted(worker_url, before_worker, "tradingapp_order_jobs_total", task="submit", outcome="ok") == 1
    assert counted(worker_url, before_worker, stage, stage="claimed") == 1
    assert counted(worker_url, before_worker, stage, stage="placed") == 1
    ok = {"broker": "paper", "operation": "place", "outcome": "ok"}
    assert counted(worker_url, before_worker, "tradingapp_broker_calls_total", **ok) == 1
    wait_until(lambda: counted(consumer_url, before_consumer, stage, stage="filled") == 1, 10)
    assert counted(consumer_url, before_consumer, stage, stage="acknowledged") == 1
    applied = {"queue": "events", "outcome": "applied"}
    assert counted(consumer_url, before_consumer, "tradingapp_consumer_events_total", **applied) == 2
    final = {"status": "FILLED", "reason": "none"}
    assert counted(consumer_url, before_consumer, "tradingapp_orders_final_total", **final) == 1

    worker = scrape(worker_url)
    assert ("tradingapp_rq_queue_depth", (("queue", "orders"),)) in worker  # the collector ran at the scrape
    assert ("tradingapp_rq_failed_jobs", (("queue", "default"),)) in worker
    assert 0 <= sample(scrape(consumer_url), "tradingapp_consumer_lag_seconds", queue="events") < 5
    wait_until(lambda: ("tradingapp_rabbitmq_queue_messages", (("queue", "dead_letter"),)) in scrape(consumer_url), 15)
    sampled = {labels for name, labels in scrape(consumer_url) if name == "tradingapp_rabbitmq_queue_messages"}
    assert {(("queue", q),) for q in ("events", "ticks", "paper_ticks", "dead_letter")} <= sampled


def test_the_worker_and_the_consumer_beat_their_heartbeats_while_idle(stack):
    folder = Path(stack.env["HEARTBEAT_DIR"])
    for process in ("worker", "consumer"):
        path = folder / process
        first = wait_until(lambda path=path: path.exists() and path.stat().st_mtime_ns)
        # Beaten again within seconds by the process's own loop, with nothing to do.
        wait_until(lambda path=path, first=first: path.stat().st_mtime_ns > first, 5, stack.logs)
        assert age(str(folder), process) < 2
