"""The order worker: `python -m jobs.worker`.

One app per process, built once at start. An RQ SimpleWorker runs the jobs in this process (no
fork per job: the accept -> broker latency is the point of the worker) on the `orders` queue,
then `default`. SIGTERM is RQ's warm shutdown: the job in hand finishes, then the worker exits.

RQ's scheduler (for Retry intervals) and the order sweeper share one plain background thread
(this process is not gevent-patched). The sweeper must run on time whether the worker is busy or
idle, and an idle worker sits blocked in BLPOP, so sweeping "between jobs" would not happen when
it matters most: after a crash, on a quiet market.
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
from tradingapp.extensions import db, get_redis
from tradingapp.services.jobqueue import DEFAULT, ORDERS, enqueue_submit, queue_name
from tradingapp.services.order_worker import find_stale_orders

log = logging.getLogger("jobs.worker")  # not "__main__" under python -m

SCHEDULER_TICK = 1.0  # seconds; Retry intervals are 1, 2 and 5 s


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


# -- sweeper and scheduler ---------------------------------------------------------------------------------
def sweep_once(app: Flask) -> int:
    """Re-enqueue orders a crash left behind; returns how many. One worker sweeps per interval
    (a Redis lock); the unique job ids make a second sweep harmless anyway."""
    interval = app.config["SWEEP_INTERVAL"]
    with app.app_context():
        try:
            namespace = app.config.get("NAMESPACE", "")
            lock = f"{namespace}:orders:sweeper" if namespace else "orders:sweeper"
            if not get_redis().set(lock, "1", nx=True, ex=max(interval - 1, 1)):
                return 0
            stale = find_stale_orders(app.config["SWEEP_PENDING_AFTER"])
            for order_id in stale:
                log.warning("event=sweep_requeue order_id=%s", order_id)
                enqueue_submit(order_id)
            return len(stale)
        finally:
            db.session.remove()


class Maintenance(threading.Thread):
    """The worker's background duties in one plain thread: RQ's scheduler (moves due Retry jobs back
    to their queue, once a second) and the sweeper (every SWEEP_INTERVAL). RQ would fork a scheduler
    process; a thread keeps one process per worker, which a SIGTERM or SIGKILL takes down whole."""

    def __init__(self, app: Flask, queue_names: list[str]):
        super().__init__(name="order-worker-maintenance", daemon=True)
        self.app = app
        self.sweep_interval = app.config["SWEEP_INTERVAL"]
        self.scheduler = RQScheduler(queue_names, connection=app.extensions["redis"],
                                     logging_level=app.config["LOG_LEVEL"])  # fmt: skip
        self._stop_event = threading.Event()

    def schedule_once(self) -> None:
        """One scheduler round, as RQScheduler.work does it: hold the queue locks (one scheduler per
        queue across all workers), then enqueue the jobs that are due."""
        if self.scheduler.should_reacquire_locks:
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


def main() -> int:
    app = create_app()
    worker = build_worker(app)
    maintenance = Maintenance(app, [q.name for q in worker.queues])
    maintenance.start()
    log.info("event=worker_start queues=%s sweep_interval=%s", ",".join(q.name for q in worker.queues),
             maintenance.sweep_interval)  # fmt: skip
    try:
        worker.work(logging_level=app.config["LOG_LEVEL"])
    finally:
        maintenance.stop()
        maintenance.join(timeout=5)
        log.info("event=worker_stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
