"""Dead-lettered messages and failed order jobs, each explained or reported as lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import sqlalchemy as sa
from rq.job import Job
from rq.registry import FailedJobRegistry

from tradingapp import events as ev
from tradingapp.domain.order_lifecycle import Status
from tradingapp.extensions import db
from tradingapp.messaging import amqp_connection, topology
from tradingapp.models import Order, ProcessedEvent, Trade
from tradingapp.models.types import iso
from tradingapp.services.invariants.base import Result, Scope
from tradingapp.services.market.ticks import check_ticks
from tradingapp.services.orders.jobqueue import DEFAULT, ORDERS, get_queue


def dead_letters_explained(scope: Scope, result: Result) -> None:
    """Each dead-lettered message is a poison message (malformed, an unknown order, no valid tick)
    or an event applied since; each failed order job is one whose order has moved on. Anything else
    is a message or a job lost."""
    for body, queue, when, headers in peek_dead_letters():
        if scope.since is not None and when is not None and when < scope.since:
            continue
        result.checked += 1
        why = explain_dead_letter(body, queue, when)
        if why is None:
            result.add(
                scope.limit,
                queue=queue,
                dead_lettered_at=iso(when),
                message_id=headers.get("message_id"),
                message="a valid message dead-lettered and never applied",
            )
    for job_id, queue, ended_at in failed_jobs():
        if scope.since is not None and ended_at is not None and ended_at < scope.since:
            continue
        result.checked += 1
        why = explain_failed_job(job_id)
        if why is not None:
            result.add(scope.limit, job_id=job_id, queue=queue, failed_at=iso(ended_at), message=why)


def peek_dead_letters(maximum: int = 10_000) -> list[tuple[object, str, datetime | None, dict]]:
    """(body, original queue, when it was dead-lettered, properties) of each message in the
    dead-letter queue, read without taking any: every message is got unacknowledged, and closing
    the channel puts them all back in their order."""
    names = topology().names
    found = []
    with amqp_connection() as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(queue=names["q_dead"], passive=True)
        except connection.channel_errors as exc:
            if getattr(exc, "reply_code", None) == 404:  # never declared: nothing was ever dead-lettered
                return []
            raise
        try:
            while len(found) < maximum:
                message = channel.basic_get(queue=names["q_dead"], no_ack=False)
                if message is None:
                    break
                headers = message.properties.get("application_headers") or {}
                death = (headers.get("x-death") or [{}])[0]
                when = death.get("time")
                if isinstance(when, datetime) and when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                found.append((_decoded(message.body), str(death.get("queue", "")), when, dict(message.properties)))
        finally:
            channel.close()  # the unacknowledged messages go back to the queue
    return found


def _decoded(body) -> object:
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return None


def explain_dead_letter(body: object, queue: str, when: datetime | None) -> str | None:
    """Why a dead-lettered message may rest there (None: it should not be there)."""
    names = topology().names
    if queue == names["q_broker_events"]:
        try:
            event = ev.parse_event(body)
        except ev.MalformedEvent as exc:
            return f"malformed event: {exc}"
        if db.session.get(Order, event.order_id) is None:
            return f"names unknown order {event.order_id}"
        if db.session.get(ProcessedEvent, event.event_id) is not None:
            return "applied since from another delivery"
        if event.type == ev.FILL and db.session.scalar(
            sa.select(sa.func.count()).where(Trade.order_id == event.order_id, Trade.execution_id == event.execution_id)
        ):
            return "its fill is booked"
        return None
    if queue in (names["q_ticks"], names["q_paper_ticks"]):
        ticks = body.get("ticks") if isinstance(body, dict) else None
        if not isinstance(ticks, list):
            return "not a tick message"
        if not check_ticks(ticks, now=when).rows:
            return "no valid tick"
        return None
    return None


def failed_jobs() -> list[tuple[str, str, datetime | None]]:
    """(job id, queue, when it failed) of every order job RQ gave up on."""
    found = []
    for base in (ORDERS, DEFAULT):
        queue = get_queue(base)
        registry = FailedJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            job = Job.fetch(job_id, connection=queue.connection) if Job.exists(job_id, queue.connection) else None
            ended = job.ended_at if job is not None else None
            if ended is not None and ended.tzinfo is None:
                ended = ended.replace(tzinfo=UTC)
            found.append((job_id, queue.name, ended))
    return found


def explain_failed_job(job_id: str) -> str | None:
    """None when the failed job's work was done another way (the order moved on), else why not."""
    kind, _, rest = job_id.partition("-")
    try:
        order_id = uuid.UUID(rest[:36])
    except ValueError:
        return "not an order job"
    order = db.session.get(Order, order_id)
    if order is None:
        return f"{kind} of unknown order {order_id}"
    if kind == "submit" and (
        order.status == Status.PENDING or (order.status == Status.SUBMITTED and not order.broker_order_id)
    ):
        return f"submission failed and the order is still {order.status}"
    if kind == "cancel" and order.status == Status.CANCEL_PENDING:
        return "cancel failed and the order is still CANCEL_PENDING"
    if kind == "modify" and order.status == Status.MODIFY_PENDING and rest[37:] == str(order.modify_seq):
        return f"modification {order.modify_seq} failed and the order still waits for it"
    if kind not in ("submit", "cancel", "modify", "reconcile"):
        return f"unknown job kind {kind}"
    return None
