"""The chaos suite's short run inside make test (make chaos runs every fault): a steady order load
from three traders over real HTTP and WebSocket while the real worker and consumer are killed
with SIGKILL, the throwaway Redis is restarted empty and the app is cut off from the throwaway
PostgreSQL. Nothing accepted may be lost or reach the exchange twice, every invariant must hold,
every socket's view must end as the database, and a revoked token must stay refused after Redis
is lost."""

from __future__ import annotations

import pytest

from tests.chaos.runner import FAST_SWEEPS, SHORT, Chaos, table

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def report():
    return Chaos(
        SHORT, users=3, rate=2.0, settle=4.0, sweeps=FAST_SWEEPS, recovery_timeout=60, log=lambda _: None
    ).run()


def test_short_schedule_loses_and_duplicates_nothing(report):
    print(table(report))
    assert [row["fault"] for row in report["faults"]] == [
        "none (steady load)", "kill -9 worker", "kill -9 consumer", "restart redis", "cut app<->postgres 3s",
    ]  # fmt: skip
    assert all(row["recovery_s"] is not None for row in report["faults"]), table(report)
    assert report["totals"]["accepted"] > 50, report["totals"]
    assert (report["totals"]["lost"], report["totals"]["duplicated"]) == (0, 0), report["lost_orders"]
    assert report["totals"]["quiesced_s"] is not None


def test_short_schedule_keeps_every_invariant(report):
    invariants = report["invariants"]
    assert invariants["ok"] and invariants["exit_status"] == 0, invariants


def test_every_socket_ends_with_the_database_view_of_its_orders(report):
    sockets = report["websocket"]
    assert sockets["orders"] > 0 and sockets["updates_from_socket"] > 0, sockets
    assert (sockets["missed"], sockets["wrong"]) == (0, 0), sockets


def test_a_revoked_token_stays_refused_when_redis_is_lost(report):
    assert report["revocation"] == {"logout": 204, "after logout": 401, "after redis restart": 401}
