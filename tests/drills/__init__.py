"""Drills: lose or fail over a PostgreSQL cluster under the application's real order load, on
throwaway clusters on free ports, and measure what it costs (dr.py: pgBackRest restore, RTO and
RPO; failover.py: Patroni failover). cluster.py and load.py are the shared pieces."""
