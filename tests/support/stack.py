"""Starts the real processes of tradingapp (gunicorn backend and websocket, RQ worker, Kombu
consumer, market feed) against the test run's database, Redis db and RabbitMQ namespace.
Used by the end-to-end tests and by bench/.

Each process serves its metrics: backend and websocket on their own port (/metrics), the others on a
free port of their own given to them here (`metrics_url(name)` says where). `json_logs=True` runs
every process with LOG_FORMAT=json and LOG_LEVEL=INFO: `log_dir/<name>.log` then holds JSON lines
(and the Python warnings a process prints, which are not)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import requests
import sqlalchemy as sa
import websocket

from tests.support import ROOT
from tests.support.env import TABLES
from tests.support.net import free_port
from tradingapp.cli import seed_demo_data
from tradingapp.extensions import db, get_redis

BIN = Path(sys.executable).parent
# The setting naming each process's metrics port (backend and websocket serve /metrics on their own).
# With BROKER=xts `python -m jobs.feed` runs the XTS bridge, which serves on the bridge's setting.
METRICS_PORT_SETTINGS = {
    "worker": ("WORKER_METRICS_PORT",),
    "consumer": ("CONSUMER_METRICS_PORT",),
    "feed": ("FEED_METRICS_PORT", "XTS_BRIDGE_METRICS_PORT"),
    "bridge": ("XTS_BRIDGE_METRICS_PORT",),
}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@dataclass
class Stack:
    env: dict[str, str]
    http_port: int = field(default_factory=free_port)
    ws_port: int = field(default_factory=free_port)
    processes: dict[str, Process] = field(default_factory=dict)
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tradingapp-stack-")))
    json_logs: bool = False
    metrics_ports: dict[str, int] = field(default_factory=dict)  # process name -> its metrics port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    def metrics_url(self, name: str) -> str:
        """Where process `name` serves its metrics (a process started again keeps its port)."""
        if name == "backend":
            return f"{self.base_url}/metrics"
        if name == "websocket":
            return f"http://127.0.0.1:{self.ws_port}/metrics"
        return f"http://127.0.0.1:{self.metrics_ports[name]}/metrics"

    def commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        gunicorn = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        return {
            # WEBSOCKET_PORT: the websocket process serves /ws on it (and only it), and /api/v1/meta names it.
            "backend": (
                gunicorn + ["-b", f"127.0.0.1:{self.http_port}"],
                {"PORT": str(self.http_port), "WEBSOCKET_PORT": str(self.ws_port)},
            ),
            "websocket": (
                gunicorn + ["-b", f"127.0.0.1:{self.ws_port}"],
                {"PORT": str(self.ws_port), "WEBSOCKET_PORT": str(self.ws_port)},
            ),
            "worker": ([sys.executable, "-m", "jobs.worker"], {}),
            "consumer": ([sys.executable, "-m", "jobs.consumer"], {}),
            "feed": ([sys.executable, "-m", "jobs.feed"], {}),
        }

    def start(self, names: list[str] | None = None) -> Stack:
        for name, (argv, extra) in self.commands().items():
            if names is None or name in names:
                self.start_one(name, argv, extra)
        for name in ("backend", "websocket"):
            if name in self.processes:
                port = self.http_port if name == "backend" else self.ws_port
                self.wait_http(f"http://127.0.0.1:{port}/health", name)
        return self

    def start_one(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Process:
        log_path = self.log_dir / f"{name}.log"
        env = {**os.environ, **self.env, **self.process_env(name), **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        process = Process(name, popen, log_path)
        self.processes[name] = process
        return process

    def process_env(self, name: str) -> dict[str, str]:
        """What this stack gives process `name` over its env: its metrics port, the JSON log settings."""
        env = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"} if self.json_logs else {}
        settings = METRICS_PORT_SETTINGS.get(name, ())
        if settings:
            port = self.metrics_ports.setdefault(name, free_port())
            env.update(dict.fromkeys(settings, str(port)))
        return env

    def wait_http(self, url: str, name: str, timeout: float = 30) -> None:
        def exited() -> str | None:
            popen = self.processes[name].popen
            return None if popen.poll() is None else f"{name} exited with {popen.returncode}"

        try:
            wait_http_ok(url, exited, timeout)
        except AssertionError as failed:
            raise RuntimeError(f"{failed}:\n{self.processes[name].tail()}") from None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.pop(name)
        _signal_group(process.popen, sig)
        process.popen.wait(timeout=15)

    def stop(self) -> None:
        for process in self.processes.values():
            _signal_group(process.popen, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            try:
                process.popen.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                _signal_group(process.popen, signal.SIGKILL)
                process.popen.wait(timeout=5)
        self.processes.clear()

    def logs(self) -> str:
        return "\n".join(f"----- {p.name} -----\n{p.tail()}" for p in self.processes.values())

    def assert_alive(self) -> None:
        dead = [p for p in self.processes.values() if p.popen.poll() is not None]
        if dead:
            raise AssertionError("processes died:\n" + "\n".join(f"{p.name}:\n{p.tail()}" for p in dead))


def _signal_group(popen: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        pass


DEMO = {"email": "demo@tradingapp.local", "password": "demo-password-123"}


class SocketReader:
    """Collects every message of a WebSocket on a thread, so a test can wait for one."""

    def __init__(self, url: str):
        self.ws = websocket.create_connection(url, timeout=10)
        self.messages: list[dict] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            try:
                raw = self.ws.recv()
            except Exception:
                return
            if not raw:
                return
            with self._cond:
                self.messages.append(orjson.loads(raw))
                self._cond.notify_all()

    def send(self, payload: dict) -> None:
        self.ws.send(orjson.dumps(payload).decode())

    def wait_for(self, predicate, timeout: float = 15.0, what: str = "message") -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {what} within {timeout}s; last messages: {self.messages[-5:]}")
                self._cond.wait(remaining)

    def close(self):
        self.ws.close()


@dataclass
class Scrape:
    """One scrape of a /metrics endpoint, parsed by prometheus_client's own parser."""

    families: dict[str, object]  # family name (a counter's without _total) -> prometheus_client Metric

    def samples(self, sample: str, **labels: str) -> list:
        """The samples named `sample` whose labels include `labels`."""
        return [
            s
            for family in self.families.values()
            for s in family.samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def value(self, sample: str, **labels: str) -> float:
        """The sum of the samples named `sample` whose labels include `labels` (0 when none)."""
        return sum(s.value for s in self.samples(sample, **labels))

    def labels(self, sample: str, label: str) -> set[str]:
        """The values `label` takes among the samples named `sample`."""
        return {s.labels[label] for s in self.samples(sample) if label in s.labels}


def scrape(url: str, token: str = "") -> Scrape:
    """GET a /metrics endpoint (with the metrics token, if any): its families, parsed; AssertionError
    unless it answers 200 with Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = requests.get(url, headers=headers, timeout=5)
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:300]}"
    assert response.headers["Content-Type"].startswith("text/plain"), response.headers["Content-Type"]
    return Scrape({family.name: family for family in text_string_to_metric_families(response.text)})


# scripts/run_stack.py (the `make run` supervisor) loaded from its file, for the tests of its pieces.
RUN_STACK_SCRIPT = ROOT / "scripts" / "run_stack.py"
_spec = importlib.util.spec_from_file_location("run_stack", RUN_STACK_SCRIPT)
run_stack = importlib.util.module_from_spec(_spec)
sys.modules["run_stack"] = run_stack  # dataclasses look their module up while the class is built
_spec.loader.exec_module(run_stack)


def wait_http_ok(url: str, exited=lambda: None, timeout: float = 30) -> None:
    """Poll `url` until it answers 200; AssertionError when `exited()` names a dead process or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (why := exited()) is not None:
            raise AssertionError(f"{why} before {url} answered")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout}s")


def reset_to_demo_data(app, *more_seeds) -> None:
    """Empty the run's database and Redis db, then `flask seed`'s demo users and instruments (and
    whatever `more_seeds` add): the starting point of a stack of real processes."""
    with app.app_context():
        db.session.execute(sa.text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
        db.session.commit()
        get_redis().flushdb()
        seed_demo_data()
        for seed in more_seeds:
            seed()
        db.session.commit()
        db.session.remove()


@contextlib.contextmanager
def started(stack: Stack, ready=lambda stack: None):
    """The stack's processes running for the with-block (after `ready(stack)`), stopped after it."""
    try:
        stack.start()
        ready(stack)
        yield stack
    finally:
        stack.stop()


def demo_session(base_url: str) -> requests.Session:
    """A requests session logged in as the demo trader; its access token on `.token`."""
    response = requests.post(f"{base_url}/api/v1/auth/login", json=DEMO, timeout=10)
    assert response.status_code == 200, response.text
    session = requests.Session()
    session.token = response.json()["access_token"]
    session.headers["Authorization"] = f"Bearer {session.token}"
    return session
