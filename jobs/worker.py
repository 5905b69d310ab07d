"""The order worker (`python -m jobs.worker`): an RQ SimpleWorker runs the jobs (jobs/order_jobs.py)
in this process, on the `orders` queue, then `default` (no fork per job: the accept -> broker
latency is the point of the worker). SIGTERM is RQ's warm shutdown: the job in hand finishes.

Beside it, plain threads (this process is not gevent-patched): RQ's scheduler with the order
sweeper (services/orders/sweeper.py), tick retention (services/market/retention.py) and, with
BROKER=xts, the book reconcile and the instrument sync (brokers/xts/upkeep.py).

What it shows an operator: its metrics on WORKER_METRICS_PORT (the queues' depth and failed jobs
refreshed at each scrape), a heartbeat file beaten from RQ's own loop (`python -m tradingapp.heartbeat
check worker`), and on each job's lines the order's ids and the request id that queued it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from flask import Flask
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.scheduler import RQScheduler

from tradingapp import create_app, logs, metrics
from tradingapp.extensions import db
from tradingapp.heartbeat import Heartbeat
from tradingapp.process import Periodic
from tradingapp.services.market.retention import TickRetention
from tradingapp.services.orders.jobqueue import DEFAULT, ORDERS, REQUEST_ID, queue_name
from tradingapp.services.orders.sweeper import sweep_once

log = logging.getLogger("jobs.worker")  # not "__main__" under python -m

SCHEDULER_TICK = 1.0  # seconds; Retry intervals are 1, 2, 5 and 30 s (jobqueue.RETRY_INTERVALS)
# How long RQ's loop waits on the queues before it turns again (RQ's own: 405 s). Each turn beats the
# heartbeat, so an idle worker beats every second (a BLPOP and RQ's own heartbeat: 3 Redis commands)
# and a wedged one goes quiet within HEARTBEAT_MAX_AGE, however short that is set.
DEQUEUE_TIMEOUT = 1


class AppJob(Job):
    """Runs each job inside the worker's app context and returns its DB connection afterwards
    (the flask-rq FlaskJob idea), with the job's ids bound to its lines and its outcome counted.
    Bind it to an app with `job_class_for(app)`."""

    app: Flask | None = None

    def perform(self):
        if self.app is None:
            raise RuntimeError("AppJob is not bound to an app: use job_class_for(app)")
        kind = job_kind(self.func_name)
        order_id = self.args[0] if self.args else None
        # A job queued by an older release has no meta: its request id is the order row's (order_jobs).
        with self.app.app_context(), logs.bind(request_id=(self.meta or {}).get(REQUEST_ID), order_id=order_id):
            log.info(
                "event=job_claimed job=%s job_id=%s order_id=%s retries_left=%s",
                kind,
                self.id,
                order_id,
                self.retries_left,
            )
            try:
                result = super().perform()
            except BaseException as exc:
                # RQ retries it while retries are left (jobqueue.RETRY_INTERVALS); then it is failed.
                outcome = "retried" if self.retries_left else "failed"
                metrics.ORDER_JOBS.labels(kind, outcome).inc()
                error = type(exc).__name__
                log.warning("event=job_failed job=%s job_id=%s outcome=%s error=%s", kind, self.id, outcome, error)
                raise
            finally:
                db.session.remove()
            metrics.ORDER_JOBS.labels(kind, "ok").inc()
            return result


def job_kind(func_name: str) -> str:
    """submit, cancel, modify, reconcile (jobs.order_jobs.submit_order -> submit): a bounded label."""
    name = func_name.rsplit(".", 1)[-1]
    return name.removesuffix("_order") if name.endswith("_order") else "other"


def job_class_for(app: Flask) -> type[AppJob]:
    return type("AppJob", (AppJob,), {"app": app})


class OrderWorker(SimpleWorker):
    """RQ's SimpleWorker, beating the process's heartbeat from its own loop: RQ calls heartbeat()
    before each wait on the queues, at each wait's timeout and after each job. A job running
    (at most ORDER_JOB_TIMEOUT) holds the loop and the beat, as it should."""

    beat: Heartbeat | None = None

    @property
    def dequeue_timeout(self) -> int:
        return DEQUEUE_TIMEOUT

    @property
    def connection_timeout(self) -> int:
        # RQ raises the Redis client's socket timeout to at least this (RQ's own: 415 s): the wait
        # plus a margin, which the client's own 10 s already is.
        return max(DEQUEUE_TIMEOUT + 5, 10)

    def heartbeat(self, *args, **kwargs):
        super().heartbeat(*args, **kwargs)
        if self.beat is not None:
            self.beat.beat()


def build_worker(app: Flask, beat: Heartbeat | None = None) -> OrderWorker:
    with app.app_context():
        queues = [queue_name(ORDERS), queue_name(DEFAULT)]
    worker = OrderWorker(queues, connection=app.extensions["redis"], job_class=job_class_for(app))
    worker.beat = beat
    return worker


def queue_collector(worker: SimpleWorker) -> Callable[[], None]:
    """Refreshes the queues' depth and failed jobs when the worker's metrics are scraped (labelled
    orders / default, without the NAMESPACE prefix)."""
    queues: list[Queue] = list(worker.queues)

    def collect() -> None:
        for queue in queues:
            label = queue.name.rsplit(".", 1)[-1]
            metrics.RQ_QUEUE_DEPTH.labels(label).set(queue.count)
            metrics.RQ_FAILED_JOBS.labels(label).set(queue.failed_job_registry.get_job_count(cleanup=False))

    return collect


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
    logs.set_process("worker")
    app = create_app()
    config = app.extensions["tradingapp.config"]
    beat = Heartbeat(config.HEARTBEAT_DIR, "worker")
    worker = build_worker(app, beat)
    metrics.serve(
        "worker", config.METRICS_HOST, config.WORKER_METRICS_PORT, config.METRICS_TOKEN, [queue_collector(worker)]
    )
    maintenance = Maintenance(app, [q.name for q in worker.queues])
    threads = [maintenance, TickRetention(app), *broker_upkeep(app)]
    for thread in threads:
        thread.start()
    log.info(
        "event=worker_start queues=%s sweep_interval=%s metrics_port=%s",
        ",".join(q.name for q in worker.queues),
        maintenance.sweep_interval,
        config.WORKER_METRICS_PORT,
    )
    try:
        worker.work(logging_level=app.config["LOG_LEVEL"])
    finally:
        for thread in threads:
            thread.stop()
        for thread in threads:
            thread.join(timeout=5)
        beat.clear()
        log.info("event=worker_stop")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
