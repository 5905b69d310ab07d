"""deploy/grafana/: the provisioning and the dashboards, and every panel's PromQL run against a real
Prometheus (Debian's binary, `make prom-tools`) that scraped the real processes after some orders.

The Prometheus here runs deploy/prometheus/prometheus.yml itself with the compose targets swapped for
the test stack's (every 1 s, the metrics token from a file as in compose) and the alert rules loaded:
each panel's query must parse, the order path's must return series, and every rule must evaluate
against real data without an error. Grafana itself does not run here: its variables are replaced as
Grafana would for a short range.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import yaml

from tests.support import ROOT, wait_until
from tests.support.net import free_port
from tests.support.prometheus import declared_series
from tests.support.stack import SocketReader, Stack, demo_session, reset_to_demo_data, started

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DATASOURCE_UID = "prometheus"
ORDER_PATH = "order-path.json"
# Grafana's variables, as Grafana fills them for the last few minutes at a 1 s scrape.
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}
# Series no tradingapp module declares: Prometheus' own, and prometheus-client's process collector.
STANDARD_SERIES = {"up", "ALERTS", "scrape_duration_seconds", "process_cpu_seconds_total",
                   "process_resident_memory_bytes", "process_open_fds"}  # fmt: skip
STACK_JOBS = ("backend", "websocket", "worker", "consumer", "feed")
# Panels with no series in a healthy paper stack (they fill under faults or with BROKER=xts); every
# other panel of every dashboard must return series here.
MAY_BE_EMPTY = {
    ("overview.json", "Broker calls not ok"): "no broker error or refusal",
    ("overview.json", "Firing alerts"): "no alert fires",
    ("market-websocket.json", "Ticks skipped by reason"): "no tick refused",
    ("market-websocket.json", "Deliveries dropped by reason"): "no slow socket",
    ("market-websocket.json", "XTS sessions"): "BROKER=xts",
    ("market-websocket.json", "XTS logins by outcome"): "BROKER=xts",
    ("market-websocket.json", "XTS socket reconnects"): "BROKER=xts",
    ("infrastructure.json", "Reconcile rounds"): "BROKER=xts",
    ("infrastructure.json", "Reconcile differences"): "BROKER=xts",
}
METRICS_TOKEN = "dashboards-test-metrics-token"


def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARDS}


def panels(dashboard: dict) -> list[dict]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every panel target."""
    return [
        (name, panel["title"], target["expr"])
        for name, dashboard in dashboards().items()
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]


def with_grafana_variables(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace("${" + variable[1:] + "}", value).replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test does not fill: {expr}"
    return expr


# -- the files ------------------------------------------------------------------------------------
def test_the_four_dashboards_are_there():
    assert sorted(dashboards()) == ["infrastructure.json", "market-websocket.json", "order-path.json", "overview.json"]


def test_the_datasource_is_provisioned_with_the_uid_the_dashboards_use():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = provisioned["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090" and source["isDefault"] is True
    # $__rate_interval needs the scrape interval: the same as prometheus.yml's.
    scrape = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape


def test_the_dashboards_are_provisioned_from_a_read_only_folder():
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())
    (provider,) = provisioned["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == "/etc/grafana/dashboards"
    assert provider["allowUiUpdates"] is False


@pytest.mark.parametrize("name", [path.name for path in DASHBOARDS])
def test_a_dashboard_is_valid_and_uses_the_provisioned_datasource(name):
    dashboard = dashboards()[name]
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    assert dashboard["id"] is None  # provisioned by uid; an id from another Grafana would clash
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in panels(dashboard):
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
        assert panel["targets"] and panel.get("description"), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, panel["title"]
            assert target["expr"].strip(), panel["title"]


def test_dashboard_uids_and_titles_are_unique():
    boards = dashboards().values()
    assert len({board["uid"] for board in boards}) == len({board["title"] for board in boards}) == len(DASHBOARDS)


def test_dashboards_use_only_declared_metrics():
    known = declared_series() | STANDARD_SERIES
    for name, title, expr in queries():
        used = set(re.findall(r"\b(?:tradingapp_[a-z0-9_]+|process_[a-z_]+|scrape_[a-z_]+)\b", expr))
        assert used <= known, (name, title, used - known)


# -- a real Prometheus over the real processes ----------------------------------------------------
@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen
    log_path: Path

    def query(self, expr: str) -> dict:
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        return response.json()

    def values(self, expr: str) -> list[float]:
        answer = self.query(expr)
        assert answer["status"] == "success", answer
        return [float(item["value"][1]) for item in answer["data"]["result"]]

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-30:])


def prometheus_binary() -> str:
    path = shutil.which("prometheus") or "/usr/bin/prometheus"
    assert Path(path).exists(), "prometheus is missing: `make prom-tools` installs it"
    return path


def prometheus_config(stack: Stack, workdir: Path, port: int) -> Path:
    """deploy/prometheus/prometheus.yml with the stack's addresses, a 1 s scrape and the token file."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update({"scrape_interval": "2s", "scrape_timeout": "2s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    config.pop("alerting")  # no alertmanager here
    token = workdir / "metrics_token"
    token.write_text(METRICS_TOKEN + "\n")
    jobs = []
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name in STACK_JOBS:
            url = urlsplit(stack.metrics_url(name))
            assert url.path == job.get("metrics_path", "/metrics")
            job["static_configs"] = [{"targets": [url.netloc]}]
            job["authorization"] = {**job["authorization"], "credentials_file": str(token)}
            jobs.append(job)
        elif name == "prometheus":
            job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
            jobs.append(job)
    config["scrape_configs"] = jobs
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def stack(app, env):
    reset_to_demo_data(app)
    # The token guards every /metrics, as with METRICS_TOKEN in .env; the sweeper looks every second.
    settings = {**env, "FEED_INTERVAL_MS": "250", "METRICS_TOKEN": METRICS_TOKEN, "SWEEP_INTERVAL": "1s"}
    with started(Stack(settings)) as running:
        yield running


@pytest.fixture(scope="module")
def prometheus(stack, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = prometheus_config(stack, workdir, port)
    log_path = workdir / "prometheus.log"
    argv = [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = Prometheus(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_until(lambda: _ready(server), timeout=30, details=server.log_tail)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _ready(server: Prometheus) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"prometheus exited with {server.process.returncode}:\n{server.log_tail()}")
    try:
        return requests.get(f"{server.url}/-/ready", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _wait_status(stack: Stack, http, order_id: str, statuses: set[str]) -> dict:
    def reached():
        order = http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json()
        return order if order["status"] in statuses else None

    return wait_until(reached, timeout=20, details=stack.logs)


@pytest.fixture(scope="module")
def traded(stack, prometheus):
    """Orders through the real processes: MARKET orders filled, a LIMIT order rested and cancelled, one
    refused by the risk engine, with a terminal's socket watching; then Prometheus has scraped it all."""
    http = demo_session(stack.base_url)
    socket = SocketReader(f"{stack.ws_url}?token={http.token}")
    socket.send({"action": "subscribe", "instrument_ids": [1, 2, 3], "mode": "full"})
    socket.wait_for(lambda m: m.get("type") == "quote", what="quote")
    orders = f"{stack.base_url}/api/v1/orders"
    filled = []
    for instrument_id in (1, 2, 3):
        body = {"instrument_id": instrument_id, "side": "BUY", "quantity": 2, "order_type": "MARKET"}
        response = http.post(orders, json=body, timeout=10)
        assert response.status_code == 202, response.text
        filled.append(response.json()["id"])
    for order_id in filled:
        _wait_status(stack, http, order_id, {"FILLED"})
    quotes = f"{stack.base_url}/api/v1/quotes?instrument_ids=1"
    ltp = Decimal(wait_until(lambda: http.get(quotes, timeout=5).json()["items"], timeout=10)[0]["ltp"])
    tick = Decimal("0.05")
    below = (ltp * Decimal("0.85") / tick).to_integral_value() * tick  # inside the 20 % band, far off
    body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": str(below)}
    response = http.post(orders, json=body, timeout=10)
    assert response.status_code == 202, response.text
    resting = response.json()["id"]
    _wait_status(stack, http, resting, {"OPEN"})
    assert http.delete(f"{orders}/{resting}", timeout=10).status_code == 202
    _wait_status(stack, http, resting, {"CANCELLED"})
    refused = http.post(orders, json={**body, "quantity": 10_000_000}, timeout=10)
    assert refused.status_code == 422, refused.text
    socket.wait_for(lambda m: m.get("type") == "order" and m["order"]["id"] == resting, what="order event")
    socket.close()
    http.close()

    def scraped() -> bool:
        up = prometheus.values(f'up{{job=~"{"|".join(STACK_JOBS)}"}}')
        final = prometheus.values('sum(tradingapp_orders_final_total{status="CANCELLED"})')
        refusals = prometheus.values("sum(tradingapp_risk_refusals_total)")
        closes = prometheus.values("sum(tradingapp_ws_closes_total)")
        return len(up) == len(STACK_JOBS) and all(up) and final == [1] and refusals == [1] and closes == [1]

    done = time.monotonic()
    wait_until(scraped, timeout=30, details=lambda: prometheus.query("up")["data"])

    # rate() and increase() want two samples of a series in their window: three scrapes of every
    # process since the last order (Prometheus applies new targets only every 5 s, so its first
    # scrapes may come late).
    def scraped_thrice_since() -> bool:
        window = int(time.monotonic() - done) + 1
        counts = prometheus.values(f'count_over_time(up{{job=~"{"|".join(STACK_JOBS)}"}}[{window}s])')
        return len(counts) == len(STACK_JOBS) and min(counts) >= 3

    wait_until(scraped_thrice_since, timeout=20)
    stack.assert_alive()
    return filled


@pytest.mark.e2e
def test_every_panel_query_parses_and_returns_series(prometheus, traded, stack):
    """Each query parses; the order path's all return series, and so does every other panel but
    those that only fill under faults or with BROKER=xts (MAY_BE_EMPTY)."""
    failed, empty = [], []
    for name, title, expr in queries():
        answer = prometheus.query(with_grafana_variables(expr))
        if answer["status"] != "success":
            failed.append((name, title, expr, answer.get("error")))
        elif not answer["data"]["result"] and (name == ORDER_PATH or (name, title) not in MAY_BE_EMPTY):
            empty.append((name, title, expr))
    assert failed == [], failed
    assert empty == [], f"queries without series; the processes' logs:\n{stack.logs()}"
    assert {name for name, _ in MAY_BE_EMPTY} <= set(dashboards()) and ORDER_PATH not in dict(MAY_BE_EMPTY)


@pytest.mark.e2e
def test_every_alert_rule_evaluates_against_the_real_series(prometheus, traded):
    def evaluated():
        groups = requests.get(f"{prometheus.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if all(rule["lastEvaluation"] > "2000" for rule in rules) else None

    rules = wait_until(evaluated, timeout=15)
    assert len(rules) >= 14
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []


@pytest.mark.e2e
def test_the_alerts_label_values_match_the_real_series(prometheus, traded):
    """The selectors and joins of the rules meet what the processes export."""
    # DeadLetterQueueNotEmpty watches the consumer's sample of the dead-letter queue.
    assert prometheus.values('tradingapp_rabbitmq_queue_messages{queue="dead_letter"}') == [0]
    # ConsumerStalled joins the consumer's last-applied time with RabbitMQ's count on `queue` (the
    # consumer samples RabbitMQ every 10 s: a queue declared after a round shows at the next).
    joined = "tradingapp_consumer_last_applied_timestamp_seconds and on (queue) tradingapp_rabbitmq_queue_messages"
    applied = "tradingapp_consumer_last_applied_timestamp_seconds"

    def every_queue_joins() -> bool:
        return len(prometheus.values(joined)) == len(prometheus.values(applied)) >= 2

    wait_until(every_queue_joins, timeout=25, details=lambda: prometheus.query(joined))
    # TargetDown and ConsumerDown name the jobs; SweeperFindingOrdersRepeatedly the resubmit action.
    assert len(prometheus.values('up{job=~"backend|websocket|worker|consumer|feed"}')) == len(STACK_JOBS)
    assert prometheus.values('tradingapp_sweeper_orders_found_total{action="resubmit"}')
    assert prometheus.values("tradingapp_market_session_open")
    assert prometheus.values("tradingapp_last_tick_timestamp_seconds")
    # An unauthorised scrape is refused: Prometheus got in with the token only.
    assert requests.get(stack_metrics_url(prometheus), timeout=5).status_code == 401


def stack_metrics_url(prometheus: Prometheus) -> str:
    targets = requests.get(f"{prometheus.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    return next(target["scrapeUrl"] for target in targets if target["labels"]["job"] == "worker")
