"""Throwaway PostgreSQL, Redis and RabbitMQ for the chaos suite: each on free ports, with its data
in a temporary directory, started, stopped and restarted by the suite alone. The machine's shared
services are never touched (RabbitMQ runs as a second node, `chaos-<id>@localhost`, under its own
Erlang cookie; it shares only epmd, the Erlang port mapper)."""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.net import free_port


def _wait_port(port: int, timeout: float, what: str, alive=lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if not alive():
                raise RuntimeError(f"{what} exited before it listened on {port}") from None
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def _kill_group(popen: subprocess.Popen | None, sig: int, timeout: float = 20) -> None:
    if popen is None or popen.poll() is not None:
        return
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        return
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(timeout=10)


class Postgres:
    """initdb + pg_ctl on a free port. As root, the server runs as the `postgres` user (it refuses
    root). `restart()` is an immediate shutdown (no checkpoint: a crash, WAL recovery at start)."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.dir = root / "postgres"
        self.data = self.dir / "data"
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pwd.getpwnam(self.user)

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd="/")

    def start(self) -> Postgres:
        if not self.data.exists():
            self.dir.mkdir(parents=True)
            if self.user:
                shutil.chown(self.dir, self.user, self.user)
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        # fsync and full page writes only guard against the machine crashing (the OS's cache is
        # lost); a server killed outright keeps what it wrote to the OS. synchronous_commit stays on:
        # off, a commit is answered before its WAL is written and the immediate restart loses it
        # (the chaos suite found exactly that: an order answered 202 and gone).
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options, "-w", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def restart(self) -> None:
        self.stop("immediate")
        self.start()


class Redis:
    """redis-server on a free port without persistence: a restart comes back empty, as a Redis
    lost with its disk would."""

    def __init__(self, root: Path):
        self.port = free_port()
        self.dir = root / "redis"
        self.dir.mkdir(parents=True)
        self.popen: subprocess.Popen | None = None

    def start(self) -> Redis:
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--protected-mode",
            "no",
        ]
        with open(self.dir / "server.log", "ab") as log:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(self.port, 10, "redis-server", lambda: self.popen.poll() is None)
        return self

    def stop(self) -> None:
        _kill_group(self.popen, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


class RabbitMQ:
    """A second RabbitMQ node, `chaos-<id>@localhost`: its own AMQP and distribution ports, mnesia
    and log directories, Erlang cookie and no plugins. `restart()` stops it (SIGTERM: RabbitMQ's
    orderly shutdown) and starts it on the same data, so durable queues and persistent messages stay."""

    SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"

    def __init__(self, root: Path):
        self.port = free_port()
        self.dist_port = free_port()
        self.node = f"chaos-{secrets.token_hex(4)}@localhost"
        self.dir = root / "rabbitmq"
        home = self.dir / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nloopback_users = none\n"
        )
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(home),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.dir / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.popen: subprocess.Popen | None = None

    def start(self) -> RabbitMQ:
        if not Path(self.SERVER).exists():
            raise RuntimeError(f"{self.SERVER} is missing: install rabbitmq-server (make services)")
        with open(self.dir / "server.log", "ab") as log:
            self.popen = subprocess.Popen(
                [self.SERVER], env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir
            )
        _wait_port(self.port, 60, f"rabbitmq node {self.node}", lambda: self.popen.poll() is None)
        return self

    def stop(self) -> None:
        _kill_group(self.popen, signal.SIGTERM, timeout=30)

    def restart(self) -> None:
        self.stop()
        self.start()


class Services:
    """The three, in one temporary directory (kept when `keep`, for the logs)."""

    def __init__(self, keep: bool = False):
        self.root = Path(tempfile.mkdtemp(prefix="tradingapp-chaos-"))
        os.chmod(self.root, 0o755)  # the postgres user walks into it
        self.keep = keep
        self.postgres = Postgres(self.root)
        self.redis = Redis(self.root)
        self.rabbitmq = RabbitMQ(self.root)

    def start(self) -> Services:
        try:
            self.redis.start()
            self.postgres.start()
            self.rabbitmq.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for stop in (self.rabbitmq.stop, self.redis.stop, lambda: self.postgres.stop("immediate")):
            try:
                stop()
            except Exception:  # stop what can be stopped
                pass
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
