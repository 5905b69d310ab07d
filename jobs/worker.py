"""The order worker: `python -m jobs.worker`.

One app per process, built once at start. An RQ SimpleWorker runs the jobs in this process (no
fork per job: the accept -> broker latency is the point of the worker) on the `orders` queue,
then `default`. SIGTERM is RQ's warm shutdown: the job in hand finishes, then the worker exits.

RQ's scheduler (for Retry intervals) and the order sweeper share one plain background thread
(this process is not gevent-patched). The sweeper must run on time whether the worker is busy or
idle, and an idle worker sits blocked in BLPOP, so sweeping "between jobs" would not happen when
it matters most: after a crash, on a quiet market.

Tick retention (TICK_RETENTION_DAYS, without TimescaleDB) runs hourly in a thread of its own. With
BROKER=xts two more duties have threads of their own (each a broker round trip or a long download
that must not hold up the scheduler): the order reconcile against XTS's order and trade books at
start and every RECONCILE_INTERVAL (services/reconcile.py; it replaces the sweeper's per-order
lookups, which XTS's one-request-a-second book limit cannot serve), and the daily instrument sync
at INSTRUMENT_SYNC_TIME (services/instrument_sync.py). One worker runs each round (Redis locks).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask
from rq import SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from tradingapp import create_app
from tradingapp.extensions import db
from tradingapp.process import claim_round
from tradingapp.services.market.retention import TickRetention
from tradingapp.services.orders.jobqueue import DEFAULT, ORDERS, queue_name
from tradingapp.services.orders.sweeper import sweep_once

log = logging.getLogger("jobs.worker")  # not "__main__" under python -m

SCHEDULER_TICK = 1.0  # seconds; Retry intervals are 1, 2, 5 and 30 s (jobqueue.RETRY_INTERVALS)


class AppJob(Job):
    """Runs each job inside the worker's app context and returns its DB connection afterwards
    (the flask-rq FlaskJob idea). Bind it to an app with `job_class_for(app)`."""

    app: Flask | None = None

    def perform(self):
        if self.app is None:
            raise RuntimeError("AppJob is not bound to an app: use job_class_for(app)")
        with self.app.app_context():
            try:
                return super().perform()
            finally:
                db.session.remove()


def job_class_for(app: Flask) -> type[AppJob]:
    return type("AppJob", (AppJob,), {"app": app})


def build_worker(app: Flask) -> SimpleWorker:
    with app.app_context():
        queues = [queue_name(ORDERS), queue_name(DEFAULT)]
    return SimpleWorker(queues, connection=app.extensions["redis"], job_class=job_class_for(app))


# -- scheduler and sweeper ---------------------------------------------------------------------------------
class Maintenance(threading.Thread):
    """The worker's background duties in one plain thread: RQ's scheduler (moves due Retry jobs back
    to their queue, once a second) and the sweeper (every SWEEP_INTERVAL). RQ would fork a scheduler
    process; a thread keeps one process per worker, which a SIGTERM or SIGKILL takes down whole."""

    def __init__(self, app: Flask, queue_names: list[str]):
        super().__init__(name="order-worker-maintenance", daemon=True)
        self.app = app
        self.sweep_interval = app.config["SWEEP_INTERVAL"]
        self.queue_names = set(queue_names)
        self.scheduler = RQScheduler(queue_names, connection=app.extensions["redis"],
                                     logging_level=app.config["LOG_LEVEL"])  # fmt: skip
        self._stop_event = threading.Event()

    def schedule_once(self) -> None:
        """One scheduler round, as RQScheduler.work does it: hold the queue locks (one scheduler per
        queue across all workers), then enqueue the jobs that are due."""
        # Try for any lock not held every round, not RQ's every 120 s: after a crash the dead
        # worker's lock expires within a minute, and due retries must not wait a minute more.
        if set(self.scheduler.acquired_locks) != self.queue_names:
            self.scheduler.acquire_locks()
        self.scheduler.heartbeat()
        self.scheduler.enqueue_scheduled_jobs()

    def run(self) -> None:
        self.scheduler.register_birth()
        next_sweep = time.monotonic() + self.sweep_interval
        while not self._stop_event.wait(SCHEDULER_TICK):
            # Postgres or Redis away for a moment must not end the thread: try again next round.
            try:
                self.schedule_once()
            except Exception:
                log.exception("event=scheduler_failed")
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.sweep_interval
                try:
                    sweep_once(self.app)
                except Exception:
                    log.exception("event=sweep_failed")
        self.scheduler.stop()

    def stop(self) -> None:
        self._stop_event.set()


# -- broker upkeep (BROKER=xts) -------------------------------------------------------------------------------
SYNC_CHECK_INTERVAL = 60  # seconds between checks whether the daily instrument sync is due


class Periodic(threading.Thread):
    """A duty in a thread of its own: at start, then every `interval` seconds (0: only at start)."""

    def __init__(self, name: str, interval: float):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()

    def duty(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.duty()
            except Exception:  # Postgres, Redis or the broker away for a moment: next round
                log.exception("event=%s_failed", self.name)
            if not self.interval or self._stop_event.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop_event.set()


class BookReconciler(Periodic):
    """Our working orders against XTS's order and trade books (services/reconcile.py), with a broker
    of its own (its connection pools are not shared with the job thread's)."""

    def __init__(self, app: Flask):
        super().__init__("order-reconcile", app.config["RECONCILE_INTERVAL"])
        self.app, self.broker = app, None

    def duty(self) -> None:
        reconcile_round(self.app, self.get_broker)

    def get_broker(self):
        from tradingapp.brokers.xts.broker import XtsBroker

        if self.broker is None:
            self.broker = XtsBroker.from_app(self.app)
        return self.broker

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.broker is not None:
                self.broker.close()


def reconcile_round(app: Flask, broker: Callable):
    """One book reconcile (`broker()` gives the XtsBroker), by one worker per RECONCILE_INTERVAL (a
    Redis lock); None when another worker holds the round."""
    from tradingapp.services.reconcile import reconcile_books

    interval = app.config["RECONCILE_INTERVAL"]
    with app.app_context():
        try:
            if not claim_round("reconcile-books", max(interval - 1, 1) if interval else 30):
                return None
            return reconcile_books(broker())
        finally:
            db.session.remove()


class InstrumentSync(Periodic):
    """The daily instrument master sync: checked every minute, run when INSTRUMENT_SYNC_TIME passed
    on a day not yet synced (services/instrument_sync.scheduled_sync; one worker: its lock)."""

    def __init__(self, app: Flask, interval: float = SYNC_CHECK_INTERVAL):
        super().__init__("instrument-sync", interval)
        self.app = app

    def duty(self) -> None:
        from tradingapp.services.instrument_sync import scheduled_sync

        with self.app.app_context():
            try:
                scheduled_sync()
            finally:
                db.session.remove()


def broker_upkeep(app: Flask) -> list[Periodic]:
    """The threads of BROKER=xts's duties (none for paper)."""
    if app.config["BROKER"] != "xts":
        return []
    threads: list[Periodic] = [BookReconciler(app)]
    if app.config["XTS_MD_API_KEY"] and app.config["XTS_MD_API_SECRET"]:
        threads.append(InstrumentSync(app))
    else:
        log.warning("event=instruments_sync_off reason=no_market_data_app (XTS_MD_API_KEY/XTS_MD_API_SECRET)")
    return threads


def main() -> int:
    app = create_app()
    worker = build_worker(app)
    maintenance = Maintenance(app, [q.name for q in worker.queues])
    maintenance.start()
    retention = TickRetention(app)
    retention.start()
    upkeep = broker_upkeep(app)
    for thread in upkeep:
        thread.start()
    log.info("event=worker_start queues=%s sweep_interval=%s", ",".join(q.name for q in worker.queues),
             maintenance.sweep_interval)  # fmt: skip
    try:
        worker.work(logging_level=app.config["LOG_LEVEL"])
    finally:
        maintenance.stop()
        retention.stop()
        for thread in upkeep:
            thread.stop()
        maintenance.join(timeout=5)
        retention.join(timeout=5)
        for thread in upkeep:
            thread.join(timeout=5)
        log.info("event=worker_stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
