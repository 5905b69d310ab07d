"""The runtime is what the locks say: every dependency declared, pinned and hashed, installed the
same way by `make` and the images, and the stack runs from the runtime lock alone (no dev tools)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid

import psycopg
import pytest
import requests

from tests.support.env import PG
from tests.support.env import test_env as make_test_env
from tests.support.net import free_port
from tests.support.runtime_venv import DOCKERFILES, ROOT, dockerfile_pip_args, runtime_venv
from tests.support.stack import wait_http_ok

REQUIREMENT = re.compile(r"^([A-Za-z0-9._-]+)(?:\[[^\]]+\])?==([^\s;]+)", re.MULTILINE)
LOCK_ENTRY = re.compile(
    r"^([a-z0-9._-]+)==([^\s;]+)[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}[ \\]*\n)*)", re.MULTILINE
)
DEMO = {"email": "demo@tradingapp.local", "password": "demo-password-123"}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str) -> dict[str, str]:
    return {normalize(name): version for name, version in REQUIREMENT.findall((ROOT / path).read_text())}


def lock(path: str) -> dict[str, tuple[str, str]]:
    """name -> (version, its hash lines) of a lock file."""
    text = (ROOT / path).read_text()
    return {normalize(name): (version, hashes) for name, version, hashes in LOCK_ENTRY.findall(text)}


@pytest.mark.parametrize(
    ("declared", "locked"),
    [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")],
)
def test_the_lock_holds_every_declared_pin_at_its_version(declared, locked):
    entries = lock(locked)
    missing = {name: version for name, version in pins(declared).items() if entries.get(name, ("",))[0] != version}
    assert not missing, f"{locked} is out of date with {declared} (run make lock): {missing}"


@pytest.mark.parametrize("locked", ["requirements.lock", "requirements-dev.lock"])
def test_every_locked_package_is_pinned_with_a_hash(locked):
    text = (ROOT / locked).read_text()
    requirement_lines = [line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    entries = lock(locked)
    assert len(entries) == len(requirement_lines) > 0
    assert all(hashes.count("--hash=sha256:") >= 1 for _, hashes in entries.values())


def test_the_gevent_worker_dependencies_are_locked_for_the_runtime():
    # gunicorn declares `packaging` only under its gevent extra, which the gevent worker imports.
    assert "gunicorn[gevent]" in (ROOT / "requirements.txt").read_text()
    assert {"gunicorn", "gevent", "packaging"} <= set(lock("requirements.lock"))


def test_the_dev_lock_keeps_every_runtime_version_and_hash():
    runtime, dev = lock("requirements.lock"), lock("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_the_images_install_the_runtime_lock_with_hashes(dockerfile):
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^COPY requirements\.lock \.$", text, re.MULTILINE)
    assert dockerfile_pip_args(dockerfile) == ["--require-hashes", "-r", "requirements.lock"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"requirements.lock", "*.lock"} & set(ignored)


@pytest.mark.parametrize(
    ("target", "locked"), [("install", "requirements.lock"), ("install-dev", "requirements-dev.lock")]
)
def test_make_installs_from_the_locks_with_hashes(target, locked):
    dry_run = subprocess.run(
        ["make", "-n", "-B", target, "VENV=/nonexistent-venv"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"--require-hashes -r {locked}" in dry_run.stdout


# -- the stack from the runtime lock alone -------------------------------------------------------


@pytest.fixture
def runtime_env():
    """make run's environment (APP_ENV development, paper broker, simulated feed) on a database,
    Redis db and namespace of its own, at free ports."""
    env = make_test_env(
        APP_ENV="development",
        DB_NAME=f"tradingapp_runtime_{uuid.uuid4().hex[:8]}",
        NAMESPACE=f"rt{uuid.uuid4().hex[:8]}",
        PORT=str(free_port()),
        WEBSOCKET_PORT=str(free_port()),
        BROKER="paper",
        FEED_INTERVAL_MS="200",
        LOG_LEVEL="INFO",
        FLASK_APP="wsgi",
    )
    yield {**{k: v for k, v in os.environ.items() if not k.startswith(("DB_", "REDIS_", "RABBITMQ_"))}, **env}
    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{env["DB_NAME"]}" WITH (FORCE)')


def wait_ok(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    wait_http_ok(url, lambda: None if proc.poll() is None else f"the stack exited with {proc.returncode}", timeout)


@pytest.mark.e2e
def test_the_runtime_lock_alone_serves_the_stack_and_fills_an_order(runtime_env, tmp_path):
    bin_dir = runtime_venv()
    for step in (["create-db"], ["db", "upgrade"], ["seed"]):  # make run's set-up, in the runtime venv
        subprocess.run([str(bin_dir / "flask"), *step], cwd=ROOT, env=runtime_env, check=True, timeout=120)
    log = open(tmp_path / "run.log", "w+b")  # noqa: SIM115 (read back on failure)
    argv = [str(bin_dir / "python"), "scripts/run_stack.py"]
    proc = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=runtime_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api, ws = (f"http://127.0.0.1:{runtime_env[port]}" for port in ("PORT", "WEBSOCKET_PORT"))
    try:
        for base in (api, ws):
            wait_ok(f"{base}/health", proc)
            wait_ok(f"{base}/ready", proc)
        http = requests.Session()
        login = http.post(f"{api}/api/v1/auth/login", json=DEMO, timeout=10)
        assert login.status_code == 200, login.text
        http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET"}
        placed = http.post(f"{api}/api/v1/orders", json=body, timeout=10)
        assert placed.status_code == 202, placed.text
        order = placed.json()
        deadline = time.monotonic() + 30
        while order["status"] != "FILLED" and time.monotonic() < deadline:
            time.sleep(0.1)
            order = http.get(f"{api}/api/v1/orders/{order['id']}", timeout=5).json()
        assert order["status"] == "FILLED" and order["filled_quantity"] == 1, order

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
        print(output[-6000:])  # shown by pytest only when the test fails
