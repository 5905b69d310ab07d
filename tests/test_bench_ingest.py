"""bench/ingest.py's CPU accounting: a process that comes or goes during a phase (another job's
throwaway RabbitMQ node on this shared machine) is left out rather than making a figure negative."""

from bench.ingest import cpu_since


def test_cpu_since_counts_only_processes_alive_at_both_readings():
    before = {10: 4.0, 11: 100.0}  # 11 exits during the phase
    after = {10: 4.75, 12: 3.0}  # 12 starts during it
    assert cpu_since(before, after) == 0.75


def test_cpu_since_nothing_in_common_is_zero():
    assert cpu_since({1: 2.0}, {2: 9.0}) == 0
