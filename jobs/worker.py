"""The order worker (`python -m jobs.worker`): an RQ SimpleWorker runs the jobs (jobs/order_jobs.py)
in this process, on the `orders` queue, then `default` (no fork per job: the accept -> broker
latency is the point of the worker). SIGTERM is RQ's warm shutdown: the job in hand finishes.

Beside it, plain threads (this process is not gevent-patched): RQ's scheduler with the order
sweeper (services/orders/sweeper.py), tick retention (services/market/retention.py) and, with
BROKER=xts, the book reconcile and the instrument sync (brokers/xts/upkeep.py).
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask
from rq import SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from tradingapp import create_app
from tradingapp.extensions import db
from tradingapp.process import Periodic
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
    """RQ's scheduler (moves due Retry jobs back to their queue, once a second) and the sweeper (every
    SWEEP_INTERVAL) in one plain thread. The sweeper must run on time whether the worker is busy or
    idle: an idle worker sits blocked in BLPOP, so sweeping "between jobs" would not happen when it
    matters most, after a crash, on a quiet market. RQ would fork a scheduler process; a thread keeps
    one process per worker, which a SIGTERM or SIGKILL takes down whole."""

    def __init__(self, app: Flask, queue_names: list[str]):
        super().__init__(name="order-worker-maintenance", daemon=True)
        self.app = app
        self.sweep_interval = app.config["SWEEP_INTERVAL"]
        self.queue_names = set(queue_names)
        self.scheduler = RQScheduler(
            queue_names, connection=app.extensions["redis"], logging_level=app.config["LOG_LEVEL"]
        )
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


# -- broker upkeep ---------------------------------------------------------------------------------------
def broker_upkeep(app: Flask) -> list[Periodic]:
    """The threads of the broker's duties: BROKER=xts's (brokers/xts/upkeep.py), its book reconcile
    ours (services/orders/reconcile.py); the paper exchange has none."""
    if app.config["BROKER"] != "xts":
        return []
    from tradingapp.brokers.xts.upkeep import upkeep_threads
    from tradingapp.services.orders.reconcile import reconcile_books

    return upkeep_threads(app, reconcile_books)


def main() -> int:
    app = create_app()
    worker = build_worker(app)
    maintenance = Maintenance(app, [q.name for q in worker.queues])
    threads = [maintenance, TickRetention(app), *broker_upkeep(app)]
    for thread in threads:
        thread.start()
    log.info(
        "event=worker_start queues=%s sweep_interval=%s",
        ",".join(q.name for q in worker.queues),
        maintenance.sweep_interval,
    )
    try:
        worker.work(logging_level=app.config["LOG_LEVEL"])
    finally:
        for thread in threads:
            thread.stop()
        for thread in threads:
            thread.join(timeout=5)
        log.info("event=worker_stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
