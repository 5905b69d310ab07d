"""scripts/run_stack.py, the `make run` supervisor: real child processes, real signals."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from config import Config
from tests.support import ROOT, wait_until
from tests.support.net import free_port, listening
from tests.support.stack import RUN_STACK_SCRIPT as SCRIPT
from tests.support.stack import run_stack, scrape


@pytest.fixture
def web_env(env, tmp_path):
    """Backend and websocket on free ports over a throwaway SQLite file (only /health is asked)."""
    return {**os.environ, **env, "DB_HOST": "", "SQLITE_PATH": str(tmp_path / "run.db"),
            "PORT": str(free_port()), "WEBSOCKET_PORT": str(free_port())}  # fmt: skip


def start_script(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), "--grace", "10", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip


def wait_healthy(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine
            time.sleep(0.1)
    raise AssertionError(f"no /health on port {port}")


def finish(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError("supervisor did not exit:\n" + output) from None
    return proc.returncode, output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_stops_every_process_and_exits_0(web_env, sig):
    ports = int(web_env["PORT"]), int(web_env["WEBSOCKET_PORT"])
    proc = start_script(web_env, "--only", "backend,websocket")
    for port in ports:
        wait_healthy(proc, port)
    proc.send_signal(sig)
    code, output = finish(proc)
    assert code == 0, output
    assert "backend stopped" in output and "websocket stopped" in output
    assert not any(listening(port) for port in ports)


def test_each_line_is_prefixed_with_its_process_name(web_env):
    proc = start_script(web_env, "--only", "backend,websocket")
    wait_healthy(proc, int(web_env["PORT"]))
    wait_healthy(proc, int(web_env["WEBSOCKET_PORT"]))
    proc.terminate()
    _, output = finish(proc)
    assert 'backend   | event=http_request remote=127.0.0.1 method=GET path="/health" status=200' in output
    assert 'websocket | event=http_request remote=127.0.0.1 method=GET path="/health" status=200' in output


def test_a_process_that_dies_is_named_and_the_rest_stopped_with_exit_1(web_env):
    with socket.socket() as taken:  # backend cannot bind: gunicorn gives up and exits
        taken.bind(("0.0.0.0", int(web_env["PORT"])))
        taken.listen()
        proc = start_script(web_env, "--only", "backend,websocket")
        code, output = finish(proc, timeout=60)
    assert code == 1, output
    assert "backend exited with code 1; stopping the other processes" in output
    assert "websocket stopped" in output
    assert not listening(int(web_env["WEBSOCKET_PORT"]))


def test_unknown_process_name_is_refused(web_env):
    code, output = finish(start_script(web_env, "--only", "frontend"))
    assert code == 2
    assert "names no process" in output


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period():
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    out = io.StringIO()
    supervisor = run_stack.Supervisor(
        [run_stack.Spec("stubborn", [sys.executable, "-c", stubborn])], grace=0.5, out=out
    )
    supervisor.start(dict(os.environ))
    while "stubborn | up" not in out.getvalue():
        time.sleep(0.05)
    started = time.monotonic()
    supervisor.stop_requested.set()
    assert supervisor.wait() == 0
    assert time.monotonic() - started < 5
    assert supervisor.procs["stubborn"].returncode == -signal.SIGKILL
    assert "stubborn still running after 0.5s; killing it" in out.getvalue()


def test_the_five_processes_share_one_app_and_the_websocket_gets_its_port():
    config = Config({"PORT": "9000", "WEBSOCKET_PORT": "9001"})
    specs = {spec.name: spec for spec in run_stack.specs(config, Path("/venv/bin"))}
    assert list(specs) == ["backend", "websocket", "worker", "consumer", "feed"]
    assert (
        specs["backend"].argv == specs["websocket"].argv == ["/venv/bin/gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    )
    assert (specs["backend"].env, specs["websocket"].env) == ({"PORT": "9000"}, {"PORT": "9001"})
    assert specs["feed"].argv == ["/venv/bin/python", "-m", "jobs.feed"]


def test_banner_gives_the_urls_and_the_demo_login():
    text = run_stack.banner(Config({}))
    assert "terminal   http://localhost:8080/  (open it in a browser" in text
    for expected in ("http://localhost:8080", "ws://localhost:8081/ws", "http://localhost:8080/health",
                     "http://localhost:8080/ready", "demo@tradingapp.local / demo-password-123"):  # fmt: skip
        assert expected in text


def test_banner_says_where_each_process_serves_its_metrics():
    text = run_stack.banner(Config({}))
    for expected in ("backend http://localhost:8080/metrics", "websocket http://localhost:8081/metrics",
                     "worker http://127.0.0.1:9101/metrics", "consumer http://127.0.0.1:9102/metrics",
                     "feed http://127.0.0.1:9103/metrics"):  # fmt: skip
        assert expected in text
    assert "Bearer" not in text and "9104" not in text
    xts = run_stack.banner(Config({"BROKER": "xts", "METRICS_TOKEN": "t0ken", "METRICS_HOST": "10.0.0.5"}))
    assert "bridge http://10.0.0.5:9104/metrics" in xts and "9103" not in xts
    assert "each wants Authorization: Bearer <METRICS_TOKEN>" in xts and "t0ken" not in xts
    assert "metrics    off (METRICS_ENABLED=false)" in run_stack.banner(Config({"METRICS_ENABLED": "false"}))


def test_make_run_serves_every_processs_metrics_where_the_banner_says(app, web_env):
    ports = {name: str(free_port()) for name in ("WORKER", "CONSUMER", "FEED")}
    env = {**web_env, **{f"{name}_METRICS_PORT": port for name, port in ports.items()}}
    proc = start_script(env)
    banner = []
    while not banner or "Ctrl-C stops everything." not in banner[-1]:
        line = proc.stdout.readline()
        assert line, "".join(banner)
        banner.append(line)
    urls = re.findall(r"(\w+) (http://[\w.:]+/metrics)", "".join(banner))
    assert [name for name, _ in urls] == ["backend", "websocket", "worker", "consumer", "feed"]
    urls = [url.replace("localhost", "127.0.0.1") for _, url in urls]
    assert {url.rsplit(":", 1)[1].split("/")[0] for url in urls[2:]} == set(ports.values())

    def serves(url: str) -> bool:
        try:
            return scrape(url).value("tradingapp_build_info") == 1
        except requests.ConnectionError:  # not up yet
            return False

    try:
        for url in urls:
            wait_until(lambda url=url: serves(url), 30, lambda url=url: f"{url} never answered")
    finally:
        proc.terminate()
        code, output = finish(proc)
    assert code == 0, output
