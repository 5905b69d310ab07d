"""deploy/prometheus/ and deploy/alertmanager/: the alert rules, their unit tests and the configs, run
through Debian's promtool and amtool (`make prom-tools` installs them; `make test` depends on it).

promtool's own unit tests (deploy/prometheus/tests/*.yml) fire and silence every alert; this module
runs them and holds the suite to that: each alert has a case that fires it and one that does not,
and annotations an operator can act on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml

from tests.support import ROOT
from tests.support.prometheus import declared_series

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# The job names the alerts and dashboards use (README "Operations").
JOBS = {"backend", "websocket", "worker", "consumer", "feed", "xts_bridge"}


def tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/bin/{name}"
    assert os.access(path, os.X_OK), f"{name} is missing: `make prom-tools` installs it"
    return path


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def alerts() -> dict[str, dict]:
    found = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"alert {rule['alert']} defined twice"
                    found[rule["alert"]] = rule
    return found


def test_there_are_rules_and_tests():
    assert RULE_FILES and TEST_FILES
    assert len(alerts()) >= 14


def test_promtool_checks_the_rules():
    result = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = run(tool("promtool"), "test", "rules", *map(str, TEST_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_has_a_case_that_fires_it_and_one_that_does_not():
    fires, silent = set(), set()
    for path in TEST_FILES:
        spec = yaml.safe_load(path.read_text())
        assert [str((path.parent / f).resolve()) for f in spec["rule_files"]] == [str(f) for f in RULE_FILES]
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    names = set(alerts())
    assert names - fires == set(), "alerts without a test that fires them"
    assert names - silent == set(), "alerts without a test where they stay silent"
    assert (fires | silent) - names == set(), "tests of alerts that do not exist"


@pytest.mark.parametrize("name", sorted(alerts()))
def test_every_alert_says_what_it_means_and_what_to_do(name):
    rule = alerts()[name]
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert {"summary", "description", "runbook"} <= set(annotations)
    # A runbook says what it means and the first steps: a few sentences, not a link alone.
    assert len(annotations["runbook"].split(". ")) >= 2 and len(annotations["runbook"]) > 150


def test_alerts_use_only_declared_metrics_and_known_jobs():
    declared = declared_series()
    for name, rule in alerts().items():
        used = set(re.findall(r"\btradingapp_[a-z0-9_]+", rule["expr"]))
        assert used <= declared, (name, used - declared)
        for jobs in re.findall(r'job=~?"([^"]+)"', rule["expr"]):
            assert set(jobs.split("|")) <= JOBS, (name, jobs)


def test_prometheus_config_is_valid_with_its_token_file(tmp_path):
    """The full check (rule files, credentials file): the compose config with the secret's path
    pointed at a file of the test's."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    token = tmp_path / "metrics_token"
    token.write_text("a-token\n")
    jobs = {}
    for job in config["scrape_configs"]:
        jobs[job["job_name"]] = job
        if "authorization" in job:
            assert job["authorization"]["credentials_file"] == "/run/secrets/metrics_token"
            job["authorization"] = {**job["authorization"], "credentials_file": str(token)}
    shutil.copytree(PROMETHEUS_DIR / "rules", tmp_path / "rules")
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = run(tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout + result.stderr
    # Every app process, by its compose service and port, with the token.
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets["backend"] == ["backend:8080"] and targets["websocket"] == ["websocket:8081"]
    assert targets["worker"] == ["worker:9101"] and targets["consumer"] == ["consumer:9102"]
    assert targets["feed"] == ["feed:9103"]
    assert all("authorization" in jobs[name] for name in ("backend", "websocket", "worker", "consumer", "feed"))
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_the_shipped_prometheus_config_parses_as_is():
    result = run(tool("promtool"), "check", "config", "--syntax-only", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_is_valid():
    result = run(tool("amtool"), "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("severity", "receiver"), [("critical", "pager"), ("warning", "operations")])
def test_alertmanager_routes_critical_alerts_to_the_pager(severity, receiver):
    config = f"--config.file={ALERTMANAGER_CONFIG}"
    result = run(tool("amtool"), "config", "routes", "test", config, f"severity={severity}", "alertname=OrdersStuck")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_alertmanager_inhibits_only_alerts_that_exist():
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    names = set(alerts())
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            if matcher.startswith("alertname"):
                value = matcher.split("=", 1)[1].lstrip("~").strip('"')
                assert set(value.split("|")) <= names, matcher


def test_readme_operations_gives_every_alerts_runbook():
    readme = " ".join((ROOT / "README.md").read_text().split())
    operations = readme[readme.index("## Operations") : readme.index("## Security")]
    for name, rule in alerts().items():
        assert f"**`{name}`** ({rule['labels']['severity']};" in operations, name
        assert " ".join(rule["annotations"]["runbook"].split()) in operations, name
