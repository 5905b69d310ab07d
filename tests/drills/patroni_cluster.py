"""A throwaway Patroni cluster on this machine: one etcd (Debian's etcd-server) and Patroni nodes
(Debian's patroni) running PostgreSQL 15, every port free and every data directory temporary.

As root, Patroni (and so PostgreSQL) runs as the `postgres` user; etcd runs as whoever we are.
The timings are short (ttl 10 s, loop_wait 1 s) so a drill fails over in seconds; production's are
in deploy/patroni/patroni.yml. fsync is off: a node killed outright (SIGKILL) keeps what it wrote to
the OS, and the drill never crashes the machine; synchronous replication still waits for the
standby to have written each commit. full_page_writes stays on: pg_rewind needs it to bring the
old primary back."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from tests.support.env import timescaledb_preload
from tests.support.net import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PATRONI = shutil.which("patroni") or "/usr/bin/patroni"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
REPLICATION_PASSWORD = "drill-replication"


def _kill(pid: int | None, sig: int = signal.SIGKILL) -> None:
    if pid:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class Etcd:
    def __init__(self, root: Path):
        self.client_port, self.peer_port = free_port(), free_port()
        self.dir = root / "etcd"
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    def start(self) -> Etcd:
        self.dir.mkdir(parents=True)
        peer = f"http://127.0.0.1:{self.peer_port}"
        argv = [
            ETCD,
            "--name=drill",
            f"--data-dir={self.dir / 'data'}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=drill={peer}",
            f"--initial-cluster-token=drill-{secrets.token_hex(4)}",
            "--unsafe-no-fsync",
        ]
        with open(self.dir / "etcd.log", "ab") as log:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"etcd exited:\n{(self.dir / 'etcd.log').read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).json().get("health") == "true":
                    return self
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError("etcd did not become healthy within 20 s")

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            _kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)


@dataclass
class Node:
    name: str
    root: Path
    scope: str
    etcd_url: str
    synchronous_mode: bool = True
    strict: bool = False
    port: int = field(default_factory=free_port)
    rest_port: int = field(default_factory=free_port)
    popen: subprocess.Popen | None = None

    @property
    def dir(self) -> Path:
        return self.root / self.name

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def config(self) -> dict:
        return {
            "scope": self.scope,
            "name": self.name,
            "log": {"dir": str(self.dir), "level": "INFO"},
            "restapi": {"listen": f"127.0.0.1:{self.rest_port}", "connect_address": f"127.0.0.1:{self.rest_port}"},
            "etcd3": {"hosts": [self.etcd_url.removeprefix("http://")]},
            "bootstrap": {
                "dcs": {
                    "ttl": 10,
                    "loop_wait": 1,
                    "retry_timeout": 4,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": self.synchronous_mode,
                    "synchronous_mode_strict": self.strict,
                    "postgresql": {
                        "use_pg_rewind": True,
                        "use_slots": True,
                        "parameters": {
                            "wal_level": "replica",
                            "hot_standby": "on",
                            "wal_log_hints": "on",
                            "max_wal_senders": 10,
                            "max_replication_slots": 10,
                            "max_connections": 200,
                            "fsync": "off",
                            # As the suite's database and the dr drill's cluster: TimescaleDB where
                            # this machine has it, so the migrations take the same path.
                            **({"shared_preload_libraries": preload} if (preload := timescaledb_preload()) else {}),
                        },
                    },
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "trust"}],
                "pg_hba": [
                    "local all all trust",
                    "host replication replicator 127.0.0.1/32 trust",
                    "host all all 127.0.0.1/32 trust",
                ],
            },
            "postgresql": {
                "listen": f"127.0.0.1:{self.port}",
                "connect_address": f"127.0.0.1:{self.port}",
                "data_dir": str(self.data),
                "bin_dir": str(PG_BIN),
                "pgpass": str(self.dir / "pgpass"),
                "remove_data_directory_on_rewind_failure": True,
                "authentication": {
                    "superuser": {"username": "postgres"},
                    "replication": {"username": "replicator", "password": REPLICATION_PASSWORD},
                    "rewind": {"username": "postgres"},
                },
                "parameters": {"unix_socket_directories": str(self.dir)},
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def start(self) -> Node:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "patroni.yml"
        path.write_text(json.dumps(self.config(), indent=2))  # YAML is a superset of JSON
        argv = [PATRONI, str(path)]
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(path, "postgres", "postgres")
            argv = ["runuser", "-u", "postgres", "--", *argv]
        with open(self.dir / "patroni.out", "ab") as log:
            self.popen = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir
            )
        return self

    def status(self) -> dict:
        """Patroni's view of this node (GET /patroni), {} when it does not answer."""
        try:
            return requests.get(f"{self.rest}/patroni", timeout=1).json()
        except (requests.RequestException, ValueError):
            return {}

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def patroni_pid(self) -> int | None:
        """The Patroni process itself (under runuser when we are root)."""
        if self.popen is None or self.popen.poll() is not None:
            return None
        children = Path(f"/proc/{self.popen.pid}/task/{self.popen.pid}/children")
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:
            pids = []
        return pids[0] if pids and os.geteuid() == 0 else self.popen.pid

    def kill(self) -> None:
        """The node is lost: Patroni and its postmaster, SIGKILL, at once (the backends follow the
        postmaster). Patroni alone would restart a killed postmaster and keep the leader key."""
        postmaster, patroni = self.postmaster_pid(), self.patroni_pid()
        _kill(patroni)
        _kill(postmaster)
        if self.popen is not None:
            _kill(self.popen.pid)
            self.popen.wait(timeout=10)
        deadline = time.monotonic() + 10
        while postmaster and Path(f"/proc/{postmaster}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        """Patroni stops its PostgreSQL on SIGTERM; whatever is left is killed."""
        if self.popen is not None and self.popen.poll() is None:
            _kill(self.patroni_pid(), signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


class Cluster:
    """etcd and `size` Patroni nodes in one temporary directory (kept when `keep`, for the logs)."""

    def __init__(self, size: int = 2, synchronous_mode: bool = True, strict: bool = False, keep: bool = False):
        missing = [tool for tool in (PATRONI, ETCD, str(PG_BIN / "postgres")) if not Path(tool).exists()]
        if missing:
            raise RuntimeError(f"missing {', '.join(missing)}: `make drill-tools` installs patroni and etcd-server")
        self.root = Path(tempfile.mkdtemp(prefix="tradingapp-patroni-"))
        os.chmod(self.root, 0o755)  # the postgres user walks into it
        self.keep = keep
        self.etcd = Etcd(self.root)
        scope = f"drill-{secrets.token_hex(3)}"
        self.nodes = [
            Node(f"node{i + 1}", self.root, scope, self.etcd.url, synchronous_mode, strict) for i in range(size)
        ]
        if os.geteuid() == 0:
            pwd.getpwnam("postgres")

    @property
    def hosts(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", node.port) for node in self.nodes]

    @property
    def db_host(self) -> str:
        """The DB_HOST setting that lists every node."""
        return ",".join(f"{host}:{port}" for host, port in self.hosts)

    def start(self, timeout: float = 90) -> Cluster:
        try:
            self.etcd.start()
            self.nodes[0].start()
            self.wait_leader(timeout)
            for node in self.nodes[1:]:
                node.start()
            self.wait_streaming(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def leader(self, among: list[Node] | None = None) -> Node | None:
        """The node that runs as the primary and says so (role master/primary, state running)."""
        for node in among or self.nodes:
            status = node.status()
            if status.get("role") in ("master", "primary") and status.get("state") == "running":
                return node
        return None

    def wait_leader(self, timeout: float, among: list[Node] | None = None) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (node := self.leader(among)) is not None and self.writable(node):
                return node
            self._check_alive(among)
            time.sleep(0.1)
        raise RuntimeError(f"no leader within {timeout}s:\n{self.logs()}")

    def writable(self, node: Node) -> bool:
        try:
            with psycopg.connect(host="127.0.0.1", port=node.port, user="postgres", dbname="postgres",
                                 connect_timeout=2) as conn:  # fmt: skip
                return not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        except psycopg.Error:
            return False

    def streaming(self, leader: Node) -> list[dict]:
        """The leader's replication rows (pg_stat_replication) of the standbys streaming from it."""
        try:
            with psycopg.connect(host="127.0.0.1", port=leader.port, user="postgres", dbname="postgres",
                                 connect_timeout=2) as conn:  # fmt: skip
                rows = conn.execute("SELECT application_name, state, sync_state FROM pg_stat_replication").fetchall()
        except psycopg.Error:
            return []
        return [{"name": r[0], "state": r[1], "sync_state": r[2]} for r in rows if r[1] == "streaming"]

    def wait_streaming(self, timeout: float, count: int | None = None, sync: bool | None = None) -> list[dict]:
        """Wait for `count` standbys (all but the leader by default) streaming from the leader,
        one of them synchronous when the cluster is in synchronous mode."""
        count = len(self.nodes) - 1 if count is None else count
        sync = self.nodes[0].synchronous_mode if sync is None else sync
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                rows = self.streaming(leader)
                if len(rows) >= count and (not sync or any(r["sync_state"] == "sync" for r in rows)):
                    return rows
            time.sleep(0.1)
        raise RuntimeError(f"{count} standby(s) not streaming within {timeout}s:\n{self.logs()}")

    def _check_alive(self, among: list[Node] | None) -> None:
        for node in among or self.nodes:
            if node.popen is not None and node.popen.poll() is not None:
                raise RuntimeError(f"patroni {node.name} exited:\n{self.logs()}")

    def logs(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.root.rglob("*.log")) + sorted(self.root.rglob("patroni.out")):
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            out.append(f"----- {path.relative_to(self.root)} -----\n" + "\n".join(text))
        return "\n".join(out)

    def stop(self) -> None:
        for node in self.nodes:
            try:
                node.stop()
            except Exception:  # stop what can be stopped
                pass
        self.etcd.stop()
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
