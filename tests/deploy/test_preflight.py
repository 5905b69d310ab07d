"""Preflight against the real services: what answers passes, what does not is named with a way to start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from config import TestConfig as AppTestConfig
from tests.support import ROOT
from tradingapp.preflight import check_postgres, check_rabbitmq, check_redis, report

BIN = Path(sys.executable).parent


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_preflight(env: dict[str, str], *command: str) -> subprocess.CompletedProcess:
    argv = list(command) or [sys.executable, "-m", "tradingapp.preflight"]
    full_env = {**os.environ, **env, "FLASK_APP": "wsgi"}
    return subprocess.run(argv, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=60)


def test_running_services_pass(env):
    result = run_preflight(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "preflight ok    Redis at 127.0.0.1:" in result.stdout
    assert "preflight ok    RabbitMQ at 127.0.0.1:" in result.stdout


def test_unreachable_redis_is_named_with_its_address_and_start_command(env):
    port = closed_port()
    check = check_redis(AppTestConfig({**env, "REDIS_PORT": str(port)}))
    assert not check.ok
    assert check.address == f"127.0.0.1:{port}"
    assert any(f"redis-server --daemonize yes --bind 127.0.0.1 -::1 --port {port}" in h for h in check.hints)
    assert any("docker compose up -d redis rabbitmq postgres" in h for h in check.hints)


def test_unreachable_rabbitmq_suggests_starting_it(env):
    check = check_rabbitmq(AppTestConfig({**env, "RABBITMQ_PORT": str(closed_port())}))
    assert not check.ok
    assert any("rabbitmq-server -detached" in hint for hint in check.hints)


def test_wrong_rabbitmq_password_is_a_credentials_problem(env):
    check = check_rabbitmq(AppTestConfig({**env, "RABBITMQ_PASSWORD": "not-the-password"}))
    assert (check.ok, check.detail) == (False, "refused the credentials")


def test_unreachable_postgres_suggests_pg_ctlcluster(env):
    check = check_postgres(AppTestConfig({**env, "DB_PORT": str(closed_port())}))
    assert not check.ok
    assert check.detail.startswith("unreachable:")
    assert any("pg_ctlcluster" in hint for hint in check.hints)


def test_postgres_without_the_database_yet_passes(env):
    check = check_postgres(AppTestConfig({**env, "DB_NAME": "tradingapp_never_created"}))
    assert (check.ok, check.detail) == (True, "database not created yet")


def test_postgres_refusing_the_user_is_not_called_unreachable(env):
    check = check_postgres(AppTestConfig({**env, "DB_USER": "no_such_role_here"}))
    assert not check.ok
    assert check.detail.startswith("refused:")


def test_remote_host_points_at_the_host_not_at_local_commands(env):
    check = check_redis(AppTestConfig({**env, "REDIS_HOST": "redis.invalid"}))
    assert not check.ok
    assert check.hints[0].startswith("check that redis.invalid is right")


def test_sqlite_is_reported_without_a_postgres_check(env):
    lines: list[str] = []
    config = AppTestConfig({**env, "DB_HOST": "", "SQLITE_PATH": "/tmp/preflight-test.db"})
    report(config, [], out=lines.append)
    assert lines == ["preflight ok    database: SQLite at /tmp/preflight-test.db (no DB_HOST set)"]


def test_a_service_down_exits_1_without_a_traceback(env):
    result = run_preflight({**env, "REDIS_PORT": str(closed_port())})
    assert result.returncode == 1
    assert "preflight FAIL  Redis at 127.0.0.1:" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_flask_preflight_exits_1_when_a_service_is_down(env):
    result = run_preflight({**env, "RABBITMQ_PORT": str(closed_port())}, str(BIN / "flask"), "preflight")
    assert result.returncode == 1
    assert "preflight FAIL  RabbitMQ at 127.0.0.1:" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_bad_configuration_exits_1_without_a_traceback(env):
    result = run_preflight({**env, "APP_ENV": "staging"})
    assert result.returncode == 1
    assert "preflight FAIL  configuration: APP_ENV must be one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_only_a_service_down_on_this_machine_is_startable(env):
    down = check_redis(AppTestConfig({**env, "REDIS_PORT": str(closed_port())}))
    assert down.startable() == "redis"
    assert check_redis(AppTestConfig({**env, "REDIS_HOST": "redis.invalid"})).startable() is None
    assert check_redis(AppTestConfig(env)).startable() is None  # it answers
    # ensure_services.sh starts the machine's RabbitMQ and PostgreSQL on their standard ports only.
    assert check_rabbitmq(AppTestConfig({**env, "RABBITMQ_PORT": str(closed_port())})).startable() is None
    assert check_rabbitmq(AppTestConfig({**env, "RABBITMQ_PASSWORD": "not-the-password"})).startable() is None


def test_start_brings_up_a_redis_that_is_down_here_then_passes(env):
    port = closed_port()
    try:
        result = run_preflight(
            {**env, "REDIS_PORT": str(port)}, sys.executable, "-m", "tradingapp.preflight", "--start"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "preflight: redis not answering here; starting: ensure_services.sh redis" in result.stdout
        assert f"preflight ok    Redis at 127.0.0.1:{port}" in result.stdout
    finally:
        subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, timeout=10)


def test_start_without_apt_get_says_so_and_the_preflight_names_the_service(env, tmp_path):
    # A machine with neither redis-server nor apt-get: the script stops with a clear line, and the
    # checks after it still give the start and install hints (exit 1, no traceback).
    for tool in ("bash", "timeout", "id"):
        (tmp_path / tool).symlink_to(subprocess.check_output(["which", tool], text=True).strip())
    script = ROOT / "scripts" / "ensure_services.sh"
    bare_env = {"PATH": str(tmp_path), "REDIS_PORT": str(closed_port())}
    result = subprocess.run(
        [str(tmp_path / "bash"), str(script), "redis"], env=bare_env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "redis-server missing and this machine has no apt-get" in result.stderr


def test_terminal_check_names_a_missing_node_and_npm(env, tmp_path):
    result = run_preflight({**env, "PATH": str(tmp_path)}, sys.executable, "-m", "tradingapp.preflight", "--terminal")
    assert result.returncode == 1
    assert "preflight FAIL  Node.js at PATH: node and npm not found (they build the terminal)" in result.stdout
    assert "install Node.js 20.19+ with npm" in result.stdout


def test_terminal_check_refuses_a_node_older_than_vite_needs(env, tmp_path):
    for name, version in (("node", "v18.19.0"), ("npm", "9.2.0")):
        (tmp_path / name).write_text(f"#!/bin/sh\necho {version}\n")
        (tmp_path / name).chmod(0o755)
    result = run_preflight(
        {**env, "PATH": f"{tmp_path}:/bin"}, sys.executable, "-m", "tradingapp.preflight", "--terminal"
    )
    assert result.returncode == 1
    assert "v18.19.0 is older than the terminal needs" in result.stdout


def test_terminal_check_passes_with_this_machines_node(env):
    result = run_preflight(env, sys.executable, "-m", "tradingapp.preflight", "--terminal")
    assert result.returncode == 0, result.stdout
    assert "preflight ok    Node.js at " in result.stdout
