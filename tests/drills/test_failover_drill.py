"""The failover drill, small (make failover-drill runs the full one): two Patroni nodes and etcd on
free ports, the real backend, worker, consumer and feed reaching them through a DB_HOST list, an
order load over HTTP; the primary's node is killed. Orders must be accepted again on the new
primary without restarting a process, nothing acknowledged may be lost or reach the exchange twice,
every order must end final, and the old primary must come back as the synchronous standby and lead
again after a switchover (fail back), all under the load."""

from __future__ import annotations

import pytest

from tests.drills.failover import SMALL, Drill, longest_gap, placements, table

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def report():
    report = Drill(SMALL, "small", log=lambda _: None).run()
    print(table(report))
    return report


def test_orders_are_accepted_again_soon_after_the_primary_dies(report):
    assert report.failover_s is not None and report.failover_s < 30, table(report)  # Patroni's ttl is 10 s
    assert report.recovery_s is not None and report.recovery_s < 45, table(report)
    assert report.acknowledged > 30 and report.acknowledged_after_kill > 5, table(report)


def test_nothing_acknowledged_is_lost_or_duplicated(report):
    assert report.lost == [], report.lost
    assert report.duplicated == [], report.duplicated
    # The duplicate count reads the worker's paper_place lines: every order the exchange holds has
    # one, or a zero above would prove nothing.
    assert report.unlogged == [] and report.placements_logged > 0, table(report)


def test_the_placement_log_is_read_as_the_worker_writes_it():
    line = (
        "2026-01-01 00:00:00,000 level=INFO process=worker logger=tradingapp.brokers.paper event=paper_place"
        " order_id={} user_id=u broker_order_id=P1 type=MARKET tif=DAY status=filled filled=1 repeat={}"
        " request_id=r client_order_id=c"
    )
    log = "\n".join([line.format("a", "False"), "other line", line.format("b", "False"), line.format("b", "True")])
    places, repeats = placements(log)
    assert places == {"a": 1, "b": 2} and repeats == {"b"}


def test_every_order_ends_final_and_the_books_hold(report):
    assert report.stuck == [], report.stuck
    assert set(report.final_states) <= {"FILLED", "CANCELLED", "REJECTED"}, report.final_states
    assert report.final_states.get("FILLED", 0) > 0, report.final_states
    assert report.invariants["ok"], report.invariants


def test_the_processes_recovered_without_a_restart(report):
    assert report.restarted == [], table(report)
    assert report.served_after == {"backend": True, "worker": True, "consumer": True, "feed": True}


def test_the_old_primary_rejoins_and_leads_again_after_a_switchover(report):
    assert report.rejoin_s is not None and report.rejoin_s < 60, table(report)
    assert report.switchover_s is not None and report.switchover_s < 30, table(report)
    assert report.switchover_gap_s is not None and report.switchover_gap_s < 15, table(report)


def test_the_longest_gap_counts_the_silence_up_to_the_end():
    # Acknowledged at 1 and 1.5 after a switchover at 0, then nothing until 4: the gap is 2.5.
    assert longest_gap([0.0, 1.0, 1.5, 4.0]) == 2.5
