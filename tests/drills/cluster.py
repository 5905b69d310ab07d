"""Throwaway PostgreSQL clusters for the drills: initdb in a temporary directory, a free port, a
Unix socket in that directory, settings of the drill's choosing; started, crashed (kill -9 of the
postmaster and every backend), destroyed (the data directory removed) and started again on the
same port. As root, the server and the tools that touch its files (initdb, pg_ctl, pgbackrest)
run as the `postgres` user: PostgreSQL refuses root. The machine's shared PostgreSQL is never used.

TimescaleDB is preloaded when the machine has it (tests.support.env.timescaledb_preload(), or the
library in PostgreSQL's lib directory), so the migrations take the same path as the suite's."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from tests.support.net import free_port

PG_BIN = Path(os.environ.get("PG_BIN") or sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])


def run_as_postgres() -> str | None:
    """The user the server and its tools run as: `postgres` when this process is root, else None
    (this user)."""
    if os.geteuid() != 0:
        return None
    pwd.getpwnam("postgres")
    return "postgres"


def as_server_user(argv: list[str]) -> list[str]:
    user = run_as_postgres()
    return ["runuser", "-u", user, "--", *argv] if user else argv


def own(path: Path) -> Path:
    """Hand `path` to the server's user (a directory it writes: data, socket, repository)."""
    user = run_as_postgres()
    if user:
        shutil.chown(path, user, user)
    return path


def temp_root(prefix: str) -> Path:
    """A temporary directory the server's user can walk into."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(root, 0o755)
    return root


def timescaledb_preload() -> str:
    """shared_preload_libraries for a drill's cluster: the suite's own answer (tests.support.env),
    else 'timescaledb' when the library is installed for this PostgreSQL, else ''."""
    try:
        from tests.support.env import timescaledb_preload as suite_answer
    except ImportError:
        return "timescaledb" if (PG_BIN.parent / "lib" / "timescaledb.so").exists() else ""
    return suite_answer() or ""


class Cluster:
    """One PostgreSQL cluster under `root/name`: `data` (PGDATA), the socket and server.log beside it.

    `settings` go into postgresql.conf (so a backup carries them, and a restore starts with them);
    `start()` passes only the port and socket directory on the command line."""

    def __init__(self, root: Path, name: str = "pg", port: int | None = None, settings: dict | None = None):
        self.root = root
        self.name = name
        self.port = port or free_port()
        self.settings = dict(settings or {})
        if preload := timescaledb_preload():
            self.settings.setdefault("shared_preload_libraries", preload)
        self.dir = root / name
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    # -- commands -------------------------------------------------------------------------------------
    def run(self, *argv: str, check: bool = True, timeout: float = 300, env: dict | None = None):
        """A PostgreSQL binary (a bare name: from PG_BIN) or any tool, as the server's user."""
        command = [str(PG_BIN / argv[0]) if "/" not in argv[0] and (PG_BIN / argv[0]).exists() else argv[0]]
        command = as_server_user([*command, *argv[1:]])
        done = subprocess.run(
            command, capture_output=True, text=True, cwd="/", timeout=timeout, env={**os.environ, **(env or {})}
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def initdb(self) -> Cluster:
        self.dir.mkdir(parents=True, exist_ok=True)
        own(self.dir)
        self.run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        self.write_settings()
        return self

    def write_settings(self, extra: dict | None = None) -> None:
        """Append the drill's settings to postgresql.conf (the last occurrence of a name wins)."""
        settings = {**self.settings, **(extra or {})}
        lines = ["", "# set by tests/drills/cluster.py"]
        lines += [f"{name} = {_quote(value)}" for name, value in settings.items()]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def start(self, timeout: float = 120) -> Cluster:
        """Start on this cluster's port (and wait until it accepts connections: after a restore, when
        recovery has replayed the archive and promoted)."""
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        for attempt in range(3):
            done = self.run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", str(int(timeout)),
                "start", check=False,
            )  # fmt: skip
            if done.returncode == 0:
                return self
            # A busy machine: another process may hold the port for a moment (a client's ephemeral
            # port while the server was down). Anything else is a real failure.
            if "could not bind" not in self.log_tail(10) or attempt == 2:
                break
            time.sleep(1 + attempt)
        raise RuntimeError(f"{self.name}: pg_ctl start exited {done.returncode}:\n{done.stdout}\n{self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def crash(self) -> None:
        """kill -9 of the postmaster and of every process it started (backends, archiver, WAL writer)."""
        pid = self.postmaster_pid()
        if pid is None:
            return
        children = _children(pid)
        for victim in [pid, *children]:
            try:
                os.kill(victim, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in [pid, *children]):
            time.sleep(0.05)
        # The socket's lock file names the dead postmaster's pid, which the machine may give to
        # another process before the restore starts: a new machine would not have it either.
        for lock in self.dir.glob(f".s.PGSQL.{self.port}*"):
            lock.unlink(missing_ok=True)

    def destroy(self) -> None:
        """The disk is gone: crash, then remove the data directory."""
        self.crash()
        shutil.rmtree(self.data, ignore_errors=True)

    # -- clients --------------------------------------------------------------------------------------
    def connect(self, dbname: str = "postgres", **kwargs) -> psycopg.Connection:
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, **kwargs)

    def wait_writable(self, timeout: float = 120, dbname: str = "postgres") -> float:
        """Seconds until the server accepts a write transaction (not in recovery)."""
        started = time.monotonic()
        while True:
            try:
                with self.connect(dbname) as conn:
                    if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                        return time.monotonic() - started
            except psycopg.OperationalError:
                pass
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"{self.name} not writable within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _quote(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int | float):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _children(pid: int) -> list[int]:
    found = []
    for status in glob.glob("/proc/[0-9]*/status"):
        try:
            text = Path(status).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("PPid:") and int(line.split()[1]) == pid:
                found.append(int(status.split("/")[2]))
                break
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"
