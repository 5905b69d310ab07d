"""Every process's /metrics on the real stack (gunicorn.conf.py's multiprocess mode for backend and
websocket, each with two workers; worker, consumer and feed on ports of their own), behind a metrics
token, with JSON logs: the text parses with prometheus_client's parser and carries the build and each
process's own families; both gunicorn workers' requests add up; a killed worker's open sockets stop
counting; the ports listen on METRICS_HOST only; gunicorn's own lines are the app's JSON."""

from __future__ import annotations

import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import websocket
from prometheus_client.mmap_dict import MmapedDict

from tests.support import wait_until
from tests.support.stack import Stack, demo_session, reset_to_demo_data, scrape, started

pytestmark = pytest.mark.e2e

TOKEN = "metrics-token-for-the-exposition-test"
PROCESSES = ("backend", "websocket", "worker", "consumer", "feed")


class MetricsStack(Stack):
    """The stack with the gunicorn servers' metrics under a directory this test can read (each server
    takes <PROMETHEUS_MULTIPROC_DIR>/<its port>), set on those two only, as compose sets it."""

    multiproc_dir: Path = Path()

    def commands(self):
        commands = super().commands()
        for name in ("backend", "websocket"):
            argv, extra = commands[name]
            commands[name] = (argv, {**extra, "PROMETHEUS_MULTIPROC_DIR": str(self.multiproc_dir)})
        return commands


@pytest.fixture(scope="module")
def stack(app, env, tmp_path_factory):
    reset_to_demo_data(app)
    running = MetricsStack(
        {
            **env,
            "FEED_INTERVAL_MS": "250",
            "WEB_CONCURRENCY": "2",
            "METRICS_TOKEN": TOKEN,
            "WS_MAX_SOCKETS_PER_USER": "50",
        },
        json_logs=True,
    )
    running.multiproc_dir = tmp_path_factory.mktemp("multiproc")
    with started(running) as ready:
        yield ready


@pytest.fixture(scope="module")
def traded(stack):
    """A MARKET order filled through every process, and a socket that subscribed: each process has
    done its part of the work once."""
    http = demo_session(stack.base_url)
    ws = websocket.create_connection(f"{stack.ws_url}?token={http.token}", timeout=10)
    try:
        ws.send(json.dumps({"action": "subscribe", "instrument_ids": [1], "mode": "ltp"}))
        assert json.loads(ws.recv())["type"] == "subscribed"
        wait_until(lambda: http.get(f"{stack.base_url}/api/v1/quotes?instrument_ids=1", timeout=5).json()["items"],
                   20, stack.logs)  # fmt: skip
        body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET"}
        placed = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=10)
        assert placed.status_code == 202, placed.text
        order = f"{stack.base_url}/api/v1/orders/{placed.json()['id']}"
        wait_until(lambda: http.get(order, timeout=5).json()["status"] == "FILLED", 20, stack.logs)
        return http
    finally:
        ws.close()


def metrics_of(stack: Stack, name: str):
    return scrape(stack.metrics_url(name), TOKEN)


# -- what each process serves ---------------------------------------------------------------------
# A family only this process fills (every process declares them all: the others show 0 or nothing).
OWN = {
    "backend": ("tradingapp_http_requests_total", {"route": "/api/v1/orders", "method": "POST", "status": "202"}),
    "websocket": ("tradingapp_ws_deliveries_total", {"type": "subscribed"}),
    "worker": ("tradingapp_order_jobs_total", {}),
    "consumer": ("tradingapp_ticks_ingested_total", {}),
    "feed": ("tradingapp_feed_ticks_published_total", {}),
}


@pytest.mark.parametrize("name", PROCESSES)
def test_each_process_serves_the_build_and_its_own_families(stack, traded, name):
    seen = wait_until(
        lambda: (m := metrics_of(stack, name)).value(OWN[name][0], **OWN[name][1]) > 0 and m,
        15,
        lambda: f"{name}: no {OWN[name]}",
    )
    assert seen.value("tradingapp_build_info") == 1
    assert seen.labels("tradingapp_build_info", "python")
    assert seen.labels("tradingapp_process_start_time_seconds", "process") == {name}
    if name == "consumer":
        assert seen.value("tradingapp_tick_ingest_seconds_count") > 0
        assert seen.value("tradingapp_last_tick_timestamp_seconds") > time.time() - 60
    if name == "feed":
        assert seen.samples("tradingapp_stale_instruments") and seen.samples("tradingapp_market_session_open")


def test_the_token_is_wanted_on_every_metrics_endpoint(stack):
    for name in PROCESSES:
        url = stack.metrics_url(name)
        for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": TOKEN}):
            refused = requests.get(url, headers=headers, timeout=5)
            assert refused.status_code == 401, (name, headers)
            assert refused.headers["Content-Type"].startswith("application/json")
            assert refused.json()["error"]["code"] == "unauthorized"
        assert requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5).status_code == 200


def _listening(port: int) -> set[str]:
    """The local addresses a socket listens on `port` at (/proc/net/tcp, state 0A)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":
            found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
    return found


def test_the_process_ports_listen_on_metrics_host_only(stack, env):
    for name in ("worker", "consumer", "feed"):
        assert _listening(stack.metrics_ports[name]) == {"127.0.0.1"}, name  # METRICS_HOST's default: loopback
    # another address, to see the setting is what decides
    other = Stack({**env, "METRICS_HOST": "127.0.0.2"}, log_dir=stack.log_dir / "other")
    other.log_dir.mkdir()
    try:
        argv, extra = other.commands()["feed"]
        other.start_one("feed", argv, extra)
        port = other.metrics_ports["feed"]
        wait_until(lambda: _listening(port), 20, other.logs)
        assert _listening(port) == {"127.0.0.2"}
        assert scrape(f"http://127.0.0.2:{port}/metrics").value("tradingapp_build_info") == 1
    finally:
        other.stop()


# -- gunicorn's multiprocess mode ---------------------------------------------------------------------
def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return sorted(int(pid) for pid in children)


def _health_requests_by_pid(directory: Path) -> dict[int, float]:
    """GET /health requests each worker counted in its own file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        counts[int(path.stem.split("_")[1])] = 0.0
        for key, value, _, _ in MmapedDict.read_all_values_from_file(str(path)):
            _, sample, labels, _ = json.loads(key)  # prometheus_client's mmap key
            if sample == "tradingapp_http_requests_total" and (labels["route"], labels["method"]) == ("/health", "GET"):
                counts[int(path.stem.split("_")[1])] += value
    return counts


def test_both_gunicorn_workers_requests_add_up_on_metrics(stack):
    directory = stack.multiproc_dir / str(stack.http_port)
    workers = _worker_pids(stack.processes["backend"].popen.pid)
    assert len(workers) == 2
    before = metrics_of(stack, "backend").value("tradingapp_http_requests_total", route="/health", method="GET")
    sent = 0

    def both_served():
        nonlocal sent
        with ThreadPoolExecutor(16) as pool:  # a new connection each: either worker may accept it
            codes = list(pool.map(lambda _: requests.get(f"{stack.base_url}/health", timeout=5).status_code, range(32)))
        sent += len(codes)
        assert set(codes) == {200}
        by_pid = _health_requests_by_pid(directory)
        return all(by_pid.get(pid, 0) > 0 for pid in workers) and by_pid

    by_pid = wait_until(both_served, 30, lambda: f"{_health_requests_by_pid(directory)} for workers {workers}")
    total = metrics_of(stack, "backend").value("tradingapp_http_requests_total", route="/health", method="GET")
    assert total == sum(by_pid.values())
    assert total - before == sent


def _sockets_by_pid(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections to `port` each process holds (/proc/net/tcp inodes x its fds)."""
    established = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            established.add(fields[9])
    counts = {}
    for pid in pids:
        fds = Path(f"/proc/{pid}/fd")
        links = [os.readlink(fd) for fd in fds.iterdir() if fd.is_symlink()]
        counts[pid] = sum(1 for link in links if link.startswith("socket:[") and link[8:-1] in established)
    return counts


def test_a_killed_workers_open_sockets_stop_counting(stack, traded):
    open_now = lambda: metrics_of(stack, "websocket").value("tradingapp_ws_open_sockets")  # noqa: E731
    wait_until(lambda: open_now() == 0, 10, lambda: f"open {open_now()}")
    clients = []
    try:
        for _ in range(12):
            ws = websocket.create_connection(f"{stack.ws_url}?token={traded.token}", timeout=10)
            clients.append(ws)
            ws.send('{"action": "ping"}')
            assert json.loads(ws.recv()) == {"type": "pong"}
        wait_until(lambda: open_now() == 12, 10, lambda: f"open {open_now()}")
        workers = _worker_pids(stack.processes["websocket"].popen.pid)
        held = _sockets_by_pid(workers, stack.ws_port)
        assert sum(held.values()) == 12, held
        victim = max(held, key=held.get)
        os.kill(victim, signal.SIGKILL)  # no finally runs in it: only the master's child_exit can tell
        survivors = 12 - held[victim]
        wait_until(lambda: open_now() == survivors, 15, lambda: f"open {open_now()}, expected {survivors} ({held})")
    finally:
        for ws in clients:
            try:
                ws.close(timeout=1)
            except (OSError, websocket.WebSocketException):  # its worker was killed
                pass
            ws.shutdown()
    wait_until(lambda: open_now() == 0, 10, lambda: f"open {open_now()}")
    stack.wait_http(f"http://127.0.0.1:{stack.ws_port}/health", "websocket")  # the master started another


# -- gunicorn's own lines -----------------------------------------------------------------------------
def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def test_gunicorns_lines_are_the_apps_json_with_the_request_id(stack, traded):
    answer = traded.get(f"{stack.base_url}/api/v1/quotes?instrument_ids=1", timeout=5)
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-ID"]

    def access_line():
        lines = _json_lines(stack.log_dir / "backend.log")
        return next((line for line in lines if line.get("request_id") == request_id), None)

    line = wait_until(access_line, 10)
    assert (line["logger"], line["process"], line["event"], line["level"]) == (
        "gunicorn.access", "backend", "http_request", "INFO"
    )  # fmt: skip
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/v1/quotes", 200)
    assert "instrument_ids" not in line["message"] and isinstance(line["duration_ms"], int)
    errors = [line for line in _json_lines(stack.log_dir / "websocket.log") if line["logger"] == "gunicorn.error"]
    assert any(line["message"].startswith("Booting worker") for line in errors)
    assert {line["process"] for line in errors} == {"websocket"}
    # a WebSocket's token travels in its URL's query: never in a line of the websocket process
    text = (stack.log_dir / "websocket.log").read_text()
    assert traded.token not in text, [line for line in text.splitlines() if traded.token in line]


def test_every_line_of_the_gunicorn_servers_is_json(stack, traded):
    for name in ("backend", "websocket"):
        lines = (stack.log_dir / f"{name}.log").read_text().splitlines()
        # Python's own warnings (gevent's, at a worker's start) are printed, not logged
        logged = [line for line in lines if line.strip() and not line.startswith((" ", "/"))]
        assert logged, name
        for line in logged:
            assert json.loads(line)["process"] == name, (name, line)


def test_a_consumer_that_applied_nothing_yet_still_has_its_last_applied_time(app, env, tmp_path):
    """ConsumerStalled compares "last applied" with now: a consumer wedged before its first message
    (restarted on a backlog) must still have the series, set at its start, in its own registry."""
    reset_to_demo_data(app)
    # Also: a PROMETHEUS_MULTIPROC_DIR inherited from the environment (only gunicorn's servers want
    # one) once stopped the worker, consumer and feed at import when its folder was gone.
    lone = Stack({**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "gone")}, log_dir=tmp_path)
    launched = time.time()
    try:
        lone.start(["consumer"])

        def last_applied():
            try:
                families = scrape(lone.metrics_url("consumer")).families
            except requests.ConnectionError:  # not listening yet
                return None
            family = families.get("tradingapp_consumer_last_applied_timestamp_seconds")
            # A scrape may land between the family's registration and its three samples being set.
            return family if family is not None and len(family.samples) == 3 else None

        family = wait_until(last_applied, timeout=20, details=lone.logs)
        stamps = {sample.labels["queue"]: sample.value for sample in family.samples}
        assert set(stamps) == {"events", "ticks", "paper_ticks"}, stamps
        assert all(launched <= stamp <= time.time() for stamp in stamps.values()), stamps
    finally:
        lone.stop()
