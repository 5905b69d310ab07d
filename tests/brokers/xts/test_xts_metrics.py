"""What the XTS client and the event bridge count: logins by session and outcome, the session gauges
and socket reconnects, against the XTS simulator process. The client's counts in this process's
registry; the bridge's on its own /metrics port, with its heartbeat."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import requests
from prometheus_client import REGISTRY

from tests.support import ROOT, wait_until
from tests.support.net import free_port
from tests.support.stack import scrape
from tests.support.xts_sim import APP_KEY, MD_KEY, MD_SECRET, SECRET_KEY
from tradingapp import metrics
from tradingapp.brokers.xts.errors import XtsAuthError
from tradingapp.brokers.xts.session import INTERACTIVE, MARKETDATA, TokenStore, XtsAccount, XtsSession
from tradingapp.extensions import get_redis

# tests/conftest.py collect_module_garbage
LEAKS_PLAIN_SOCKETS = "python-engineio's clients leave a cut connection's socket to the garbage collector"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0


@pytest.fixture
def session(app, db, xts):
    """session(api, secret=...) -> an XtsSession of this process on the simulator (closed after)."""
    metrics.configure(True)  # another test's app may have switched them off
    made = []

    def factory(api: str = INTERACTIVE, secret: str = SECRET_KEY) -> XtsSession:
        account = XtsAccount(url=xts.url, app_key=APP_KEY, secret_key=secret, md_app_key=MD_KEY,
                             md_secret_key=MD_SECRET, timeout=5.0)  # fmt: skip
        made.append(XtsSession(account, api, requests.Session(), TokenStore(get_redis(), app.config["NAMESPACE"])))
        return made[-1]

    yield factory
    for each in made:
        each.http.close()


@pytest.mark.parametrize("api", [INTERACTIVE, MARKETDATA])
def test_a_login_is_counted_and_the_session_is_up(session, api):
    logins = sample("tradingapp_xts_logins_total", session=api, outcome="ok")
    session(api).login()
    assert sample("tradingapp_xts_logins_total", session=api, outcome="ok") == logins + 1
    assert sample("tradingapp_xts_session_up", session=api) == 1
    # another process's session, shared through Redis: up, and no login of ours
    session(api).login()
    assert sample("tradingapp_xts_logins_total", session=api, outcome="ok") == logins + 1


def test_a_refused_login_is_counted_failed_and_the_session_is_down(session):
    session(INTERACTIVE).login()
    failed = sample("tradingapp_xts_logins_total", session=INTERACTIVE, outcome="failed")
    with pytest.raises(XtsAuthError):
        session(INTERACTIVE, secret="not-the-secret").login()
    assert sample("tradingapp_xts_logins_total", session=INTERACTIVE, outcome="failed") == failed + 1
    assert sample("tradingapp_xts_session_up", session=INTERACTIVE) == 0


def test_an_expired_session_logs_in_again_and_is_up(session, xts):
    current = session(INTERACTIVE)
    current.login()
    logins = sample("tradingapp_xts_logins_total", session=INTERACTIVE, outcome="ok")
    xts.control("sessions/expire", {})
    current.call("GET", "/user/profile")
    assert sample("tradingapp_xts_logins_total", session=INTERACTIVE, outcome="ok") == logins + 1
    assert sample("tradingapp_xts_session_up", session=INTERACTIVE) == 1


# -- the bridge process ---------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _quiet_socket_gc():
    """python-engineio's client leaves a cut connection's socket to the garbage collector."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        yield


@pytest.fixture
def bridge(app, db, env, xts, tmp_path):
    """`python -m jobs.xts_bridge` on the simulator, its metrics on a free port and its heartbeat in
    this test's folder: (process, metrics url, heartbeat file)."""
    port, beats = free_port(), tmp_path / "heartbeats"
    process_env = {
        **os.environ, **env, "BROKER": "xts", "XTS_API_URL": xts.url, "XTS_API_KEY": APP_KEY,
        "XTS_API_SECRET": SECRET_KEY, "XTS_MD_API_KEY": MD_KEY, "XTS_MD_API_SECRET": MD_SECRET,
        "XTS_TICK_FLUSH_MS": "50", "XTS_RECONCILE_INTERVAL": "0", "XTS_TIMEOUT": "5",
        "XTS_BRIDGE_METRICS_PORT": str(port), "HEARTBEAT_DIR": str(beats), "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    log_path = tmp_path / "bridge.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.xts_bridge"], cwd=ROOT, env=process_env, stdout=log,
                                stderr=subprocess.STDOUT)  # fmt: skip
    proc.log = lambda: log_path.read_text(errors="replace")[-4000:]
    try:
        yield proc, f"http://127.0.0.1:{port}/metrics", Path(beats) / "xts_bridge"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_the_bridge_serves_its_sessions_reconnects_and_ticks_and_beats(bridge, xts):
    proc, url, heartbeat = bridge

    def both_up():
        try:
            seen = scrape(url)
        except requests.ConnectionError:  # not serving yet
            return None
        ups = [seen.value("tradingapp_xts_session_up", session=api) for api in (INTERACTIVE, MARKETDATA)]
        return seen if ups == [1, 1] and seen.value("tradingapp_feed_ticks_published_total") > 0 else None

    # the subscription's snapshot is the first touchlines: ticks published
    first = wait_until(both_up, 20, proc.log)
    assert first.value("tradingapp_build_info") == 1
    assert first.labels("tradingapp_process_start_time_seconds", "process") == {"xts_bridge"}
    assert first.value("tradingapp_market_session_open") in (0, 1)
    assert first.value("tradingapp_xts_logins_total", session=INTERACTIVE, outcome="ok") >= 1
    assert heartbeat.exists()
    xts.control("sessions/expire", {})  # the broker ends the sessions: the streams reconnect, log in again

    def reconnected():
        seen = scrape(url)
        return all(seen.value("tradingapp_xts_reconnects_total", stream=s) >= 1 for s in (INTERACTIVE, MARKETDATA))

    wait_until(reconnected, 20, proc.log)
    wait_until(lambda: scrape(url).value("tradingapp_xts_session_up", session=INTERACTIVE) == 1, 20, proc.log)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.log()
    assert not heartbeat.exists()  # cleared at a clean stop
