"""Preflight: is every service the processes need reachable, before any of them starts?

`flask preflight` or `python -m tradingapp.preflight` checks Redis, RabbitMQ and (when DB_HOST
is set) PostgreSQL with short timeouts. For each one down it says where it looked and how to
start it, then exits 1 — a newcomer reads one line instead of five processes' tracebacks.
`--start` (make run) first starts, or installs, a service that is down on this machine at its
standard port with scripts/ensure_services.sh, then checks again. `--terminal` also checks for
the Node.js and npm that build the terminal (frontend/).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from kombu import Connection

from config import Config, ConfigError, load_config

TIMEOUT = 3.0
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
# Compose keeps the data services on an internal network; this override publishes them on 127.0.0.1.
COMPOSE_HINT = (
    "COMPOSE_FILE=docker-compose.yml:deploy/compose.data-ports.yml docker compose up -d redis rabbitmq postgres"
)
ENSURE_SERVICES = Path(__file__).resolve().parent.parent / "scripts" / "ensure_services.sh"
# What scripts/ensure_services.sh starts: the machine's PostgreSQL and RabbitMQ on their standard
# ports, Redis on REDIS_PORT (None: any port).
STARTABLE = {"PostgreSQL": ("postgres", "5432"), "Redis": ("redis", None), "RabbitMQ": ("rabbitmq", "5672")}
SUDO = "" if os.geteuid() == 0 else "sudo "
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port {port} --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


@dataclass
class Check:
    service: str
    address: str
    ok: bool
    detail: str = ""
    hints: tuple[str, ...] = ()

    def startable(self) -> str | None:
        """ensure_services.sh's name for this service when it is down here, where the script starts it."""
        if self.service not in STARTABLE:
            return None
        name, port = STARTABLE[self.service]
        host, _, address_port = self.address.rpartition(":")
        down = not self.ok and self.detail.startswith("unreachable")
        return name if down and host in LOCAL_HOSTS and port in (None, address_port) else None


def _hints(host: str, start: list[str], installed: bool, package: str) -> tuple[str, ...]:
    """What to do, phrased for this machine: start it locally, install it first, or use compose."""
    if host not in LOCAL_HOSTS:
        return (f"check that {host} is right and the service runs there, or run it here: {COMPOSE_HINT}",)
    lines = [] if installed else [f"install it: {SUDO}apt-get install -y {package}"]
    lines += [f"start it:   {SUDO}{command}" for command in start]
    return (*lines, f"or with Docker: {COMPOSE_HINT}")


def _postgres_start_command() -> str:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    version = versions[-1] if versions else "<version>"
    return f"pg_ctlcluster --skip-systemctl-redirect {version} main start"


def check_redis(config: Config) -> Check:
    address = f"{config.REDIS_HOST}:{config.REDIS_PORT}"
    client = redis.Redis.from_url(config.redis_url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        client.ping()
        return Check("Redis", address, True)
    except redis.AuthenticationError as exc:
        return Check("Redis", address, False, f"refused the credentials: {exc}", ("check REDIS_PASSWORD",))
    except redis.RedisError as exc:
        start = [REDIS_START.format(port=config.REDIS_PORT)]
        hints = _hints(config.REDIS_HOST, start, bool(shutil.which("redis-server")), "redis-server")
        return Check("Redis", address, False, f"unreachable: {_reason(exc)}", hints)
    finally:
        client.close()


def check_rabbitmq(config: Config) -> Check:
    address = f"{config.RABBITMQ_HOST}:{config.RABBITMQ_PORT}"
    try:
        with Connection(config.amqp_url, ssl=config.amqp_ssl, connect_timeout=TIMEOUT) as conn:
            conn.connect()
        return Check("RabbitMQ", address, True)
    except Exception as exc:  # kombu surfaces socket, DNS and AMQP errors under many types
        if "ACCESS_REFUSED" in str(exc) or "403" in str(exc):
            hints = ("check RABBITMQ_USER, RABBITMQ_PASSWORD and RABBITMQ_VHOST",)
            return Check("RabbitMQ", address, False, "refused the credentials", hints)
        installed = bool(shutil.which("rabbitmq-server"))
        hints = _hints(config.RABBITMQ_HOST, ["rabbitmq-server -detached"], installed, "rabbitmq-server")
        return Check("RabbitMQ", address, False, f"unreachable: {_reason(exc)}", hints)


def check_postgres(config: Config) -> Check:
    address = ",".join(f"{host}:{port}" for host, port in config.DB_HOSTS)
    params = config.libpq_params() | {"connect_timeout": str(int(TIMEOUT))}
    if len(config.DB_HOSTS) > 1:
        params["target_session_attrs"] = "read-write"
    try:
        psycopg.connect(**params).close()
        return Check("PostgreSQL", address, True)
    except psycopg.OperationalError as exc:
        # libpq's first line names the failure ("... failed: Connection refused"); the rest is advice.
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if f'database "{config.DB_NAME}" does not exist' in str(exc):
            # The server answers; `flask create-db` makes the database next.
            return Check("PostgreSQL", address, True, "database not created yet")
        if "FATAL" in str(exc):  # the server answered but refused this user, password or database
            return Check(
                "PostgreSQL", address, False, f"refused: {message}", ("check DB_USER, DB_PASSWORD and DB_NAME",)
            )
        installed = Path("/etc/postgresql").is_dir()
        hints = _hints(config.DB_HOSTS[0][0], [_postgres_start_command()], installed, "postgresql")
        return Check("PostgreSQL", address, False, f"unreachable: {message}", hints)


NODE_MINIMUM = (20, 19)  # Vite's floor


def check_node() -> Check:
    """Node.js and npm, which build the terminal; a prerequisite like Python, never installed here."""
    hints = (
        f"install Node.js {NODE_MINIMUM[0]}.{NODE_MINIMUM[1]}+ with npm (nodejs.org, or your package manager; "
        "Debian 12's nodejs is too old)",
    )
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if not path)
        return Check("Node.js", "PATH", False, f"{missing} not found (they build the terminal)", hints)
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    try:
        numbers = tuple(int(part) for part in version.lstrip("v").split(".")[:2])
    except ValueError:
        numbers = (0, 0)
    if numbers < NODE_MINIMUM:
        return Check("Node.js", node, False, f"{version or 'unknown version'} is older than the terminal needs", hints)
    return Check("Node.js", node, True, version)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_checks(config: Config) -> list[Check]:
    checks = [check_redis(config), check_rabbitmq(config)]
    if config.is_postgres:
        checks.append(check_postgres(config))
    return checks


def report(config: Config, checks: list[Check], out=print) -> bool:
    """Print one line per service (plus how to start a missing one); True when all answer."""
    for check in checks:
        if check.ok:
            note = f" ({check.detail})" if check.detail else ""
            out(f"preflight ok    {check.service} at {check.address}{note}")
        else:
            out(f"preflight FAIL  {check.service} at {check.address}: {check.detail}")
            for hint in check.hints:
                out(f"                {hint}")
    if not config.is_postgres:
        out(f"preflight ok    database: SQLite at {config.SQLITE_PATH} (no DB_HOST set)")
    return all(check.ok for check in checks)


def start_local(checks: list[Check], out=print) -> bool:
    """Start (installing when missing) the services down on this machine; True when the script ran."""
    names = [name for check in checks if (name := check.startable())]
    if not names:
        return False
    out(f"preflight: {', '.join(names)} not answering here; starting: {ENSURE_SERVICES.name} {' '.join(names)}")
    # The script says what it does before any apt-get install; a failure is reported by the checks after it.
    sys.stdout.flush()  # our line before the script's, when the output is a pipe or a file
    subprocess.run(["bash", str(ENSURE_SERVICES), *names], check=False)
    return True


def main(argv: list[str] | None = None, env: dict[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="preflight", description="check that the services answer")
    parser.add_argument("--start", action="store_true", help="start or install a local service that is down")
    parser.add_argument("--terminal", action="store_true", help="check for Node.js and npm too")
    args = parser.parse_args(argv)
    try:
        config = load_config(env)
    except ConfigError as exc:
        print(f"preflight FAIL  configuration: {exc}", file=sys.stderr)
        return 1
    checks = run_checks(config)
    if args.start and start_local(checks):
        checks = run_checks(config)
    if args.terminal:
        checks.append(check_node())
    return 0 if report(config, checks) else 1


if __name__ == "__main__":
    sys.exit(main())
