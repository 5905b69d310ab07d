"""Order jobs in a test: the real RQ SimpleWorker run in burst mode in this process."""

import signal
import time

from jobs.worker import Maintenance, build_worker
from tradingapp.services.orders import jobqueue


def run_worker(app) -> None:
    """Run every queued job through a real SimpleWorker, then give pytest its signal handlers back."""
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        build_worker(app).work(burst=True)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def queued() -> list[str]:
    return jobqueue.get_queue().get_job_ids()


def retry_due_jobs(app) -> None:
    """Wait out the first Retry interval (1 s), let RQ's scheduler queue the job again, run it."""
    time.sleep(1.1)
    maintenance = Maintenance(app, [jobqueue.queue_name(jobqueue.ORDERS)])
    maintenance.schedule_once()
    maintenance.scheduler.stop()
    run_worker(app)
