"""Read replicas (DB_READ_HOST) for the read-only routes: candles, the order and trade history
lists, an order's audit trail and the admin audit log. Never the order path: only a view wrapped
in `@read_only` reads from a replica, and only for the length of the view.

Each replica is a streaming standby with an engine of its own. Before one serves, its replay lag
is read (and kept for CHECK_EVERY seconds, so a request costs no extra query): 0 when it has
replayed everything it received from a live WAL stream, else the age of the last transaction it
replayed (now() - pg_last_xact_replay_timestamp()), which is the most data it can miss. One more
than DB_READ_MAX_LAG seconds behind, or unreachable, is skipped: the next replica of the list
serves, else the primary. A replica that fails during a view is marked down and the view runs again
on the primary (it only reads, so running it twice is harmless); so does one that finds nothing
(NotFound: the thing may be newer than the replica's replay, e.g. an order just placed)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import wraps

import sqlalchemy as sa
from flask import Flask, current_app

from tradingapp.domain.errors import NotFound
from tradingapp.extensions import READ_BIND, db

log = logging.getLogger(__name__)

CHECK_EVERY = 1.0  # seconds a replica's lag is trusted before it is read again
# A replica found unreachable is left alone this long: a hung host costs the request that checks it
# the connect timeout, which must not come back every second.
DOWN_RECHECK = 15.0
# A replica that stops answering mid-query (a hung host, a cut network) fails the view within
# seconds, which then runs on the primary; libpq's defaults would wait for TCP to give up (hours).
REPLICA_CONNECT_ARGS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,  # ms
    "options": "-c statement_timeout=15000",  # ms: the read-only routes answer in milliseconds
}
LAG_SQL = sa.text(
    """
    SELECT CASE
      WHEN NOT pg_is_in_recovery() THEN 0
      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
           AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0
      ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 'Infinity')
    END
    """
)


@dataclass
class Health:
    lag: float | None  # seconds behind; None: unreachable
    checked_at: float


class Replica:
    def __init__(self, host: str, port: int, url: str, connect_timeout: int):
        self.name = f"{host}:{port}"
        self.engine = sa.create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=10,
            connect_args={"connect_timeout": max(1, min(connect_timeout, 3)), **REPLICA_CONNECT_ARGS},
        )
        self.health: Health | None = None

    def check(self) -> float | None:
        """Seconds this replica is behind, None when it cannot be reached."""
        try:
            with self.engine.connect() as conn:
                return float(conn.execute(LAG_SQL).scalar())
        except sa.exc.DBAPIError:
            return None


class ReplicaSet:
    """The replicas of DB_READ_HOST, in order, each with its last known lag."""

    def __init__(
        self,
        replicas: list[Replica],
        max_lag: float,
        check_every: float = CHECK_EVERY,
        down_recheck: float = DOWN_RECHECK,
    ):
        self.replicas, self.max_lag, self.check_every = replicas, max_lag, check_every
        self.down_recheck = down_recheck
        self._lock = threading.Lock()

    def _due(self, health: Health | None) -> bool:
        if health is None:
            return True
        every = self.check_every if health.lag is not None else max(self.check_every, self.down_recheck)
        return time.monotonic() - health.checked_at >= every

    @classmethod
    def from_config(cls, config) -> ReplicaSet:
        replicas = [
            Replica(host, port, config.database_url(hosts=[(host, port)], read_write=False), config.DB_CONNECT_TIMEOUT)
            for host, port in config.DB_READ_HOSTS
        ]
        return cls(replicas, config.DB_READ_MAX_LAG)

    def usable(self, replica: Replica) -> bool:
        health = replica.health
        if self._due(health) and self._lock.acquire(blocking=False):
            # One check at a time. The others do not wait for it (a hung replica costs its check the
            # connect timeout): they go by the last known state, none yet meaning the primary.
            try:
                if self._due(replica.health):
                    health = Health(replica.check(), time.monotonic())
                    self._note_change(replica, health)
                    replica.health = health
            finally:
                self._lock.release()
        health = replica.health
        return health is not None and health.lag is not None and health.lag <= self.max_lag

    def pick(self) -> Replica | None:
        """The first replica within DB_READ_MAX_LAG, or None: read from the primary."""
        return next((r for r in self.replicas if self.usable(r)), None)

    def mark_down(self, replica: Replica) -> None:
        health = Health(None, time.monotonic())
        self._note_change(replica, health)
        replica.health = health

    def _note_change(self, replica: Replica, health: Health) -> None:
        was = replica.health
        before = None if was is None else (was.lag is not None and was.lag <= self.max_lag)
        now = health.lag is not None and health.lag <= self.max_lag
        if now != before and (before is not None or not now):
            lag = "unreachable" if health.lag is None else f"{health.lag:.1f}s"
            log.log(
                logging.INFO if now else logging.WARNING,
                "event=read_replica_%s replica=%s lag=%s max_lag=%ss",
                "usable" if now else "skipped",
                replica.name,
                lag,
                self.max_lag,
            )

    def dispose(self) -> None:
        for replica in self.replicas:
            replica.engine.dispose()


def replica_set(app: Flask | None = None) -> ReplicaSet | None:
    """The app's replicas (made on first use), None when DB_READ_HOST is empty."""
    app = app or current_app._get_current_object()
    if "tradingapp.replicas" not in app.extensions:
        config = app.extensions["tradingapp.config"]
        replicas = ReplicaSet.from_config(config) if config.is_postgres and config.DB_READ_HOSTS else None
        app.extensions.setdefault("tradingapp.replicas", replicas)
    return app.extensions["tradingapp.replicas"]


def read_only(view):
    """Run `view` against a replica within DB_READ_MAX_LAG (the primary when there is none). For
    views that only read: on a replica's failure the view runs again on the primary."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        replicas = replica_set()
        replica = replicas.pick() if replicas is not None else None
        if replica is None:
            return view(*args, **kwargs)
        session = db.session()
        session.info[READ_BIND] = replica.engine
        try:
            return view(*args, **kwargs)
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            log.warning("event=read_replica_failed replica=%s error=%s", replica.name, type(exc.orig).__name__)
            replicas.mark_down(replica)
            session.info.pop(READ_BIND, None)
            session.rollback()
            return view(*args, **kwargs)
        except NotFound:
            # Read after write: an order placed a moment ago may not be replayed here yet (the lag
            # bound allows seconds). Only the primary may say it does not exist.
            session.info.pop(READ_BIND, None)
            session.rollback()
            return view(*args, **kwargs)
        finally:
            session.info.pop(READ_BIND, None)

    return wrapper
