"""`make run-xts`: scripts/run_stack.py --xts-sim runs the XTS simulator as the stack's first process
and every other process with BROKER=xts pointing at it (the specs, and a real run of the simulator
and the worker)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from config import Config
from tests.support import ROOT
from tests.support.net import free_port, listening
from tradingapp.extensions import db as _db
from tradingapp.models import Instrument

SCRIPT = ROOT / "scripts" / "run_stack.py"
_spec = importlib.util.spec_from_file_location("run_stack_xts", SCRIPT)
run_stack = importlib.util.module_from_spec(_spec)
sys.modules["run_stack_xts"] = run_stack
_spec.loader.exec_module(run_stack)


def test_the_simulator_starts_first_and_the_stack_trades_through_it():
    env = run_stack.xts_sim_env(9300)
    config = Config({**env, "PORT": "9000", "WEBSOCKET_PORT": "9001"})
    specs = run_stack.specs(config, Path("/venv/bin"), xts_sim_port=9300)
    assert [s.name for s in specs] == ["xts-sim", "backend", "websocket", "worker", "consumer", "bridge"]
    sim = specs[0]
    assert sim.argv == ["/venv/bin/python", "-m", "tradingapp.simulators.xts", "--host", "127.0.0.1", "--port", "9300"]
    assert sim.ready_url == "http://127.0.0.1:9300/_sim/state"
    assert specs[-1].argv == ["/venv/bin/python", "-m", "jobs.xts_bridge"]
    assert all(s.ready_url is None for s in specs[1:])


def test_every_process_gets_the_simulators_url_and_credentials():
    assert run_stack.xts_sim_env(9300) == {
        "BROKER": "xts",
        "XTS_API_URL": "http://127.0.0.1:9300",
        "XTS_CLIENT_ID": "",
        "XTS_API_KEY": "sim-app-key",
        "XTS_API_SECRET": "sim-secret-key",
        "XTS_MD_API_KEY": "sim-md-key",
        "XTS_MD_API_SECRET": "sim-md-secret",
    }


def test_without_the_flag_there_is_no_simulator():
    specs = run_stack.specs(Config({"BROKER": "xts"}), Path("/venv/bin"))
    assert "xts-sim" not in [s.name for s in specs]


def test_the_banner_names_the_simulator():
    config = Config(run_stack.xts_sim_env(9300))
    text = run_stack.banner(config, 9300)
    assert "broker=xts" in text and "XTS sim    http://127.0.0.1:9300" in text


class Output:
    """The supervisor's output, read in a thread, waited on line by line."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc) -> None:
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 40) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, line in enumerate(self.lines):
                if text in line:
                    return index
            time.sleep(0.1)
        raise AssertionError(f"no {text!r} in:\n" + "\n".join(self.lines[-60:]))


def test_run_xts_starts_the_simulator_then_the_worker_which_reconciles_and_syncs(env, db):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--grace", "10", "--xts-sim", "--xts-sim-port", str(port), "--only",
         "xts-sim,worker"],
        cwd=ROOT, env={**os.environ, **env, "LOG_LEVEL": "INFO"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output = Output(proc)
    try:
        ready = output.wait_for("run     | xts-sim is ready")
        assert ready < output.wait_for("run     | started worker")
        output.wait_for("event=reconcile_done accounts=0")
        output.wait_for("event=instruments_synced segments=NSECM,NSEFO in_master=7 inserted=1 updated=6")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        output.thread.join(5)
        proc.stdout.close()
    assert code == 0, "\n".join(output.lines[-40:])
    assert not listening(port)
    _db.session.rollback()
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(Instrument)) == 7
