"""Heartbeats of the processes without HTTP: `python -m tradingapp.heartbeat check <process>` (compose's
healthcheck of worker, consumer and feed) on files it is given, then on the real processes, frozen with
SIGSTOP and thawed with SIGCONT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.support import ROOT, wait_until
from tests.support.stack import Stack, reset_to_demo_data
from tradingapp.heartbeat import Heartbeat

# seconds: HEARTBEAT_MAX_AGE of the real processes below. A loop beats about once a second and each
# look starts a Python process: room for both on a loaded two-core machine.
MAX_AGE = 6


def check(env: dict[str, str], process: str, *args: str) -> subprocess.CompletedProcess:
    """The healthcheck's command, as compose runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tradingapp.heartbeat", "check", process, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def aged(path, seconds: float) -> None:
    """The file as a beat `seconds` ago left it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def beats(env, tmp_path):
    """The environment of a check on this test's own heartbeat folder."""
    return {**env, "HEARTBEAT_DIR": str(tmp_path / "heartbeats")}


# -- the CLI ------------------------------------------------------------------------------------------
def test_a_process_that_never_beat_is_unhealthy(beats):
    result = check(beats, "consumer")
    assert result.returncode == 1
    assert result.stderr.strip() == f"consumer: no heartbeat in {beats['HEARTBEAT_DIR']}"


def test_a_fresh_beat_is_healthy(beats):
    Heartbeat(beats["HEARTBEAT_DIR"], "worker").beat()
    result = check(beats, "worker")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("worker: last heartbeat 0.") and result.stdout.endswith(" s ago\n")


def test_a_beat_older_than_heartbeat_max_age_is_unhealthy(beats, tmp_path):
    aged(tmp_path / "heartbeats" / "feed", 90)
    result = check(beats, "feed")  # HEARTBEAT_MAX_AGE: 60 s by default
    assert result.returncode == 1
    assert re.fullmatch(r"feed: last heartbeat 9[01] s ago \(limit 60 s\)", result.stderr.strip()), result.stderr
    assert check({**beats, "HEARTBEAT_MAX_AGE": "2m"}, "feed").returncode == 0


def test_max_age_on_the_command_line_wins_over_the_setting(beats, tmp_path):
    aged(tmp_path / "heartbeats" / "xts_bridge", 10)
    assert check(beats, "xts_bridge").returncode == 0
    strict = check(beats, "xts_bridge", "--max-age", "5")
    assert strict.returncode == 1
    assert re.fullmatch(r"xts_bridge: last heartbeat 1[01] s ago \(limit 5 s\)", strict.stderr.strip()), strict.stderr
    assert check({**beats, "HEARTBEAT_MAX_AGE": "1"}, "xts_bridge", "--max-age", "30").returncode == 0


def test_an_unknown_process_is_a_usage_error(beats):
    result = check(beats, "backend")  # the web servers have /health and /ready instead
    assert result.returncode == 2
    assert "invalid choice: 'backend'" in result.stderr


def test_beat_touches_at_most_once_per_interval_and_clear_removes_the_file(tmp_path):
    heartbeat = Heartbeat(str(tmp_path / "new" / "folder"), "consumer", every=60)
    heartbeat.beat()  # makes the folder
    first = heartbeat.path.stat().st_mtime_ns
    aged(heartbeat.path, 30)
    heartbeat.beat()  # within the interval: no write
    assert heartbeat.path.stat().st_mtime_ns < first
    heartbeat.clear()
    assert not heartbeat.path.exists()
    heartbeat.clear()  # already gone: no error


# -- the real processes ---------------------------------------------------------------------------------
@pytest.fixture
def stack_env(app, env, tmp_path):
    reset_to_demo_data(app)
    return {**env, "HEARTBEAT_DIR": str(tmp_path / "heartbeats"), "HEARTBEAT_MAX_AGE": str(MAX_AGE)}


@pytest.mark.parametrize("process", ["worker", "consumer", "feed"])
def test_a_frozen_process_turns_unhealthy_within_max_age_and_healthy_when_thawed(stack_env, process):
    stack = Stack(stack_env)
    stack.start([process])
    popen = stack.processes[process].popen
    try:

        def verdict() -> int:
            stack.assert_alive()
            return check(stack_env, process).returncode

        def details() -> str:
            return stack.processes[process].tail()

        wait_until(lambda: verdict() == 0, timeout=30, details=details)  # started: it beats
        # An idle process beats often enough for the limit: healthy at every look for longer than it.
        healthy_until = time.monotonic() + MAX_AGE + 1
        while time.monotonic() < healthy_until:
            assert verdict() == 0, details()

        os.killpg(popen.pid, signal.SIGSTOP)  # a wedged main loop: alive, silent
        wait_until(lambda: verdict() == 1, timeout=MAX_AGE + 5, details=details)

        os.killpg(popen.pid, signal.SIGCONT)
        wait_until(lambda: verdict() == 0, timeout=MAX_AGE + 5, details=details)

        stack.stop()  # a clean stop takes its beat along: the next start must earn its own
        assert check(stack_env, process).stderr.strip() == f"{process}: no heartbeat in {stack_env['HEARTBEAT_DIR']}"
    finally:
        try:
            os.killpg(popen.pid, signal.SIGCONT)  # a stopped process would not see the SIGTERM
        except ProcessLookupError:
            pass
        stack.stop()
