"""RQ queues for order work. The API enqueues after its commit; `python -m jobs.worker` runs the jobs.

Job ids are deterministic (submit-<order id>, cancel-<order id>, modify-<order id>-<seq>,
reconcile-<order id>; RQ allows no colons) and enqueued with unique=True, so the API, a retry and
the sweeper can all ask for the same order and one job runs. Submit, cancel and modify go to the
`orders` queue; the sweeper's reconciliations go to `default`, which the worker serves only when
`orders` is empty, so a sweep never delays a fresh order.

A job enqueued while serving a request carries that request's id in its meta (`request_id`): the
worker binds it to every line of the job (README "Tracing an order"). A job without one (the
sweeper's, or one queued by an older release) gets the order row's instead.
"""

from __future__ import annotations

import logging
import uuid

from flask import current_app
from redis import Redis
from rq import Queue, Retry
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus

from tradingapp import logs
from tradingapp.extensions import get_redis
from tradingapp.models.types import utcnow

log = logging.getLogger(__name__)

ORDERS, DEFAULT = "orders", "default"
REQUEST_ID = "request_id"  # the job meta key of the request that queued it
# Named, not imported: the backend never loads the worker's code.
SUBMIT_JOB = "jobs.order_jobs.submit_order"
CANCEL_JOB = "jobs.order_jobs.cancel_order"
MODIFY_JOB = "jobs.order_jobs.modify_order"
RECONCILE_JOB = "jobs.order_jobs.reconcile_order"
# Nobody reads an order job's return value, and dropping the finished job frees its id for the
# sweeper at once.
RESULT_TTL = 0
FAILURE_TTL = 7 * 86400  # failed jobs stay a week for an operator to inspect
RETRY_INTERVALS = [1, 2, 5, 30]  # seconds before each retry of a failed job
RETRIES = len(RETRY_INTERVALS)
DONE = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
# A job still marked started this long after its timeout ran out lost its worker (SIGKILL, power
# cut): a live worker interrupts a job at its timeout and records the failure at once.
ABANDONED_AFTER_TIMEOUT = 3  # seconds


def queue_name(base: str) -> str:
    """Queues carry the NAMESPACE prefix, like every other shared name, so stacks never steal jobs."""
    namespace = current_app.config.get("NAMESPACE", "")
    return f"{namespace}.{base}" if namespace else base


def get_queue(base: str = ORDERS, connection: Redis | None = None) -> Queue:
    return Queue(queue_name(base), connection=connection or get_redis())


def submit_job_id(order_id: uuid.UUID | str) -> str:
    return f"submit-{order_id}"


def cancel_job_id(order_id: uuid.UUID | str) -> str:
    return f"cancel-{order_id}"


def modify_job_id(order_id: uuid.UUID | str, seq: int) -> str:
    return f"modify-{order_id}-{seq}"


def reconcile_job_id(order_id: uuid.UUID | str) -> str:
    return f"reconcile-{order_id}"


def enqueue_submit(order_id: uuid.UUID | str) -> Job | None:
    """Queue the broker submission of an order; None when a job for it is already waiting."""
    return _enqueue_unique(SUBMIT_JOB, submit_job_id(order_id), order_id)


def enqueue_cancel(order_id: uuid.UUID | str) -> Job | None:
    """Queue the broker cancel of an order; None when a job for it is already waiting."""
    return _enqueue_unique(CANCEL_JOB, cancel_job_id(order_id), order_id)


def enqueue_modify(order_id: uuid.UUID | str, seq: int) -> Job | None:
    """Queue the broker modification number `seq` of an order; None when it is already waiting."""
    return _enqueue_unique(MODIFY_JOB, modify_job_id(order_id, seq), order_id, seq)


def enqueue_reconcile(order_id: uuid.UUID | str) -> Job | None:
    """Queue a broker lookup of a working order (the sweeper's); None when one is already waiting."""
    return _enqueue_unique(RECONCILE_JOB, reconcile_job_id(order_id), order_id, queue_base=DEFAULT)


def _enqueue_unique(func: str, job_id: str, order_id: uuid.UUID | str, *args, queue_base: str = ORDERS) -> Job | None:
    queue = get_queue(queue_base)
    request_id = logs.current().get("request_id")
    for _attempt in range(2):
        try:
            job = queue.enqueue(
                func,
                str(order_id),
                *args,
                job_id=job_id,
                unique=True,
                job_timeout=current_app.config["ORDER_JOB_TIMEOUT"],
                result_ttl=RESULT_TTL,
                failure_ttl=FAILURE_TTL,
                # Every job is idempotent (the worker claims under a row lock, a resend looks the
                # order up at the broker first, and XTS refuses a resend while an earlier attempt
                # may still land), so a retry never sends an order twice. The last retry comes
                # past XTS's resend horizon (30 s at least); the sweeper re-queues after that.
                retry=Retry(max=RETRIES, interval=RETRY_INTERVALS),
                description=f"{func}({order_id})",
                meta={REQUEST_ID: request_id} if request_id else None,
            )
        except DuplicateJobError:
            if _discard_if_done(queue, job_id):
                continue
            log.info("event=job_already_queued job_id=%s order_id=%s", job_id, order_id)
            return None
        log.info("event=job_enqueued job_id=%s order_id=%s queue=%s", job_id, order_id, queue.name)
        return job
    log.info("event=job_already_queued job_id=%s order_id=%s", job_id, order_id)
    return None


def _discard_if_done(queue: Queue, job_id: str) -> bool:
    """A finished or failed job keeps its id until its TTL ends, and a job whose worker died
    stays "started" for good; when the sweeper asks again the order still needs work, so the old
    record gives way. True when the id is free again."""
    try:
        job = Job.fetch(job_id, connection=queue.connection)
    except NoSuchJobError:
        return True
    status = job.get_status(refresh=True)
    if status not in DONE and not is_abandoned(job):
        return False
    log.info("event=job_replaced job_id=%s status=%s", job_id, status)
    job.delete()
    return True


def is_abandoned(job: Job) -> bool:
    """Started, and past its timeout by more than a live worker would take to record the end.
    RQ's own check (StartedJobRegistry.cleanup) waits a minute longer and runs every 10 minutes."""
    if job.get_status(refresh=False) != JobStatus.STARTED or job.started_at is None or not job.timeout:
        return False
    return (utcnow() - job.started_at).total_seconds() > job.timeout + ABANDONED_AFTER_TIMEOUT
