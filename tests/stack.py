"""Starts the real processes of tradingapp (gunicorn backend and websocket, RQ worker, Kombu
consumer, market feed) against the test run's database, Redis db and RabbitMQ namespace.
Used by the end-to-end tests and by bench/."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    def commands(self) -> dict[str, tuple[list[str], dict[str, str]]]:
        gunicorn = [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
        return {
            "backend": (gunicorn + ["-b", f"127.0.0.1:{self.http_port}"], {"PORT": str(self.http_port)}),
            "websocket": (gunicorn + ["-b", f"127.0.0.1:{self.ws_port}"], {"PORT": str(self.ws_port)}),
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
        env = {**os.environ, **self.env, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        process = Process(name, popen, log_path)
        self.processes[name] = process
        return process

    def wait_http(self, url: str, name: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.popen.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.popen.returncode}:\n{process.tail()}")
            try:
                if requests.get(url, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not answer {url} within {timeout}s:\n{self.processes[name].tail()}")

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
