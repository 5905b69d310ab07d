"""The invariants of the order book, checked against the database, the paper exchange's book,
RabbitMQ's dead-letter queue and RQ's failed jobs: what must hold after any crash, restart or
network fault once the system has settled (`flask check-invariants`, the chaos suite).

Each check reads only and reports its violations (the first `limit`, and how many in all):

- orders_settled: every accepted order is final or resting; none left PENDING, SUBMITTED,
  CANCEL_PENDING or MODIFY_PENDING longer than the grace period.
- sent_once: no order sent to the broker twice (one `submitted` transition per order, no two of
  our orders on one broker order).
- broker_agrees: (paper exchange) each order the exchange got has the exchange's status and filled
  quantity; none working or filled here that the exchange never saw.
- fills_match_trades: an order's filled quantity and value are the sums of its trades, within its
  quantity, and each trade is the order's user, instrument and side.
- positions_match_fills: each (user, instrument, product) position is the signed sum of its trades,
  and its realized P&L less its open cost is exactly the cash its trades moved.
- funds_consistent: GET /funds' cash is the starting cash plus the P&L the trades realized, and the
  margin the risk engine blocks (its SQL book) is the margin of the position and order rows; no
  working order has nothing left to fill, no final order keeps a modification's terms.
- audit_complete: each order's audit trail starts with `created`, every row starts from the status
  the one before left, the last one ends at the order's status, one `fill` row per trade.
- dead_letters_explained: each dead-lettered message is a poison message (malformed, an unknown
  order, no valid tick) or an event applied since; each failed order job is one whose order has
  moved on. Anything else is a message or a job lost.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import sqlalchemy as sa
from flask import current_app
from rq.job import Job
from rq.registry import FailedJobRegistry

from tradingapp import events as ev
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.domain import margin
from tradingapp.domain.order_lifecycle import FINAL, Status
from tradingapp.domain.positions import session_day
from tradingapp.extensions import db
from tradingapp.messaging import amqp_connection, topology
from tradingapp.models import Order, OrderEvent, Position, ProcessedEvent, Trade
from tradingapp.models.types import Price, iso, utcnow
from tradingapp.services.accounts import funds as funds_service
from tradingapp.services.market.ticks import check_ticks
from tradingapp.services.orders.jobqueue import DEFAULT, ORDERS, get_queue

TRANSIENT = (Status.PENDING, Status.SUBMITTED, Status.CANCEL_PENDING, Status.MODIFY_PENDING)
WORKING = (Status.OPEN, Status.PARTIALLY_FILLED, Status.CANCEL_PENDING, Status.MODIFY_PENDING)
DEFAULT_GRACE = timedelta(minutes=5)  # the sweeper's re-queues back off up to 300 s
DEFAULT_LIMIT = 20
ZERO = Decimal(0)
_AMOUNT = Price(24, 4)
# Our status an order may have for each status of the paper exchange's book.
PAPER_STATUSES = {
    "open": {Status.SUBMITTED, *WORKING},
    "filled": {Status.FILLED},
    "cancelled": {Status.CANCELLED},
    "rejected": {Status.REJECTED},
    "expired": {Status.EXPIRED},
}


@dataclass
class Result:
    name: str
    checked: int = 0
    violations: list[dict] = field(default_factory=list)
    total: int = 0  # violations in all (only the first `limit` are listed)
    error: str | None = None  # the check could not run (a service out of reach): not a pass

    @property
    def ok(self) -> bool:
        return self.total == 0 and self.error is None

    def add(self, limit: int, **violation) -> None:
        self.total += 1
        if len(self.violations) < limit:
            self.violations.append(violation)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.total,
            "listed": self.violations,
            "error": self.error,
        }


@dataclass
class Report:
    results: list[Result]
    since: datetime | None
    grace: timedelta
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def result(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked_at": iso(self.checked_at),
            "since": iso(self.since),
            "grace_seconds": int(self.grace.total_seconds()),
            "invariants": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class Scope:
    since: datetime | None
    grace: timedelta
    now: datetime
    limit: int

    def orders(self, query: sa.Select) -> sa.Select:
        """Orders created within the window (all of them without --since)."""
        return query if self.since is None else query.where(Order.created_at >= self.since)

    @property
    def settled_before(self) -> datetime:
        return self.now - self.grace


def check_all(
    since: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    limit: int = DEFAULT_LIMIT,
    dead_letters: bool = True,
    now: datetime | None = None,
) -> Report:
    """Every invariant over the orders created since `since` (all without it), and the positions
    and funds of the users who traded in that window. Orders touched within `grace` of now are in
    flight: the checks comparing them with the broker wait for them."""
    scope = Scope(since, grace, now or utcnow(), limit)
    checks: list[tuple[str, Callable[[Scope, Result], None]]] = [
        ("orders_settled", _orders_settled),
        ("sent_once", _sent_once),
        ("broker_agrees", _broker_agrees),
        ("fills_match_trades", _fills_match_trades),
        ("positions_match_fills", _positions_match_fills),
        ("funds_consistent", _funds_consistent),
        ("audit_complete", _audit_complete),
    ]
    if dead_letters:
        checks.append(("dead_letters_explained", _dead_letters_explained))
    results = []
    for name, check in checks:
        result = Result(name)
        try:
            check(scope, result)
        except Exception as exc:  # a service out of reach: reported, and the report is not ok
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            db.session.rollback()
        results.append(result)
    return Report(results, since, grace, scope.now)


# -- orders ----------------------------------------------------------------------------------------
def _orders_settled(scope: Scope, result: Result) -> None:
    result.checked = db.session.scalar(scope.orders(sa.select(sa.func.count()).select_from(Order)))
    stuck = scope.orders(
        sa.select(Order.id, Order.user_id, Order.status, Order.updated_at)
        .where(Order.status.in_([s.value for s in TRANSIENT]), Order.updated_at < scope.settled_before)
        .order_by(Order.updated_at)
    )
    for row in db.session.execute(stuck):
        result.add(
            scope.limit,
            order_id=str(row.id),
            user_id=str(row.user_id),
            status=row.status,
            since=iso(row.updated_at),
            message=f"{row.status} for {_age(scope.now, row.updated_at)}",
        )


def _sent_once(scope: Scope, result: Result) -> None:
    submitted = (
        scope.orders(
            sa.select(OrderEvent.order_id, sa.func.count().label("n"))
            .join(Order, Order.id == OrderEvent.order_id)
            .where(OrderEvent.event == "submitted")
        )
        .group_by(OrderEvent.order_id)
        .subquery()
    )
    result.checked = db.session.scalar(sa.select(sa.func.count()).select_from(submitted))
    for row in db.session.execute(sa.select(submitted).where(submitted.c.n > 1)):
        result.add(scope.limit, order_id=str(row.order_id), message=f"submitted {row.n} times")
    shared = scope.orders(
        sa.select(
            Order.broker, Order.broker_order_id, sa.func.count().label("n"), sa.func.min(Order.id.cast(sa.String))
        )
        .where(Order.broker_order_id.is_not(None))
        .group_by(Order.broker, Order.broker_order_id)
        .having(sa.func.count() > 1)
    )
    for broker, broker_order_id, n, first in db.session.execute(shared):
        result.add(
            scope.limit,
            order_id=first,
            broker_order_id=broker_order_id,
            message=f"{n} of our orders on {broker} order {broker_order_id}",
        )


def _broker_agrees(scope: Scope, result: Result) -> None:
    """The paper exchange's book against ours, for orders neither side touched within the grace
    period (an exchange fill a moment old may still be on its way to us)."""
    submitted = sa.exists().where(OrderEvent.order_id == Order.id, OrderEvent.event == "submitted")
    query = scope.orders(
        sa.select(
            Order.id,
            Order.status,
            Order.filled_quantity,
            PaperOrder.order_id.label("paper_id"),
            PaperOrder.status.label("paper_status"),
            PaperOrder.filled_quantity.label("paper_filled"),
            PaperOrder.quantity.label("paper_quantity"),
        )
        .outerjoin(PaperOrder, PaperOrder.order_id == Order.id)
        .where(
            Order.broker == "paper",
            Order.updated_at < scope.settled_before,
            sa.or_(PaperOrder.updated_at.is_(None), PaperOrder.updated_at < scope.settled_before),
            submitted,
        )
    )
    for row in db.session.execute(query):
        result.checked += 1
        order_id = str(row.id)
        if row.paper_id is None:
            if row.status not in (Status.SUBMITTED, Status.REJECTED, Status.EXPIRED):  # ended before sending
                result.add(scope.limit, order_id=order_id, message=f"{row.status} here, unknown to the exchange")
            continue
        if row.paper_quantity == 0:  # a tombstone: cancelled before the place arrived
            if row.status not in FINAL or row.filled_quantity:
                result.add(scope.limit, order_id=order_id, message=f"{row.status} here, a tombstone at the exchange")
            continue
        if row.status not in PAPER_STATUSES.get(row.paper_status, ()):
            result.add(scope.limit, order_id=order_id, message=f"{row.status} here, {row.paper_status} at the exchange")
        elif row.filled_quantity != row.paper_filled:
            result.add(
                scope.limit,
                order_id=order_id,
                message=f"filled {row.filled_quantity} here, {row.paper_filled} at the exchange",
            )


def _fills_match_trades(scope: Scope, result: Result) -> None:
    query = scope.orders(
        sa.select(
            Order.id,
            Order.quantity,
            Order.pending_quantity,
            Order.filled_quantity,
            sa.type_coerce(Order.filled_value, _AMOUNT).label("filled_value"),
            sa.func.coalesce(sa.func.sum(Trade.quantity), 0).label("traded"),
            sa.type_coerce(sa.func.coalesce(sa.func.sum(Trade.quantity * Trade.price), 0), _AMOUNT).label("value"),
            sa.func.count(Trade.id).label("trades"),
            sa.func.sum(
                sa.case(
                    (
                        sa.or_(
                            Trade.user_id != Order.user_id,
                            Trade.instrument_id != Order.instrument_id,
                            Trade.side != Order.side,
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).label("foreign"),
        )
        .outerjoin(Trade, Trade.order_id == Order.id)
        .group_by(Order.id)
    )
    for row in db.session.execute(query):
        result.checked += 1
        order_id = str(row.id)
        ceiling = max(row.quantity, row.pending_quantity or 0)
        if row.filled_quantity != row.traded:
            result.add(scope.limit, order_id=order_id, message=f"filled {row.filled_quantity}, trades {row.traded}")
        elif (row.filled_value or ZERO) != (row.value or ZERO):
            result.add(scope.limit, order_id=order_id, message=f"filled value {row.filled_value}, trades {row.value}")
        elif row.filled_quantity > ceiling:
            result.add(scope.limit, order_id=order_id, message=f"filled {row.filled_quantity} of {ceiling}")
        elif row.foreign:
            result.add(scope.limit, order_id=order_id, message=f"{row.foreign} trades of another user/instrument/side")


# -- positions and funds ---------------------------------------------------------------------------
@dataclass
class Traded:
    """What one (user, instrument, product)'s trades add up to."""

    quantity: int = 0
    flow: Decimal = ZERO  # cash the trades moved: sells in, buys out
    trades: int = 0


def _traded(scope: Scope) -> dict[tuple, Traded]:
    """The trades' sums by (user, instrument, product), for the users who traded in the window."""
    signed = sa.case((Trade.side == "BUY", Trade.quantity), else_=-Trade.quantity)
    query = (
        sa.select(
            Trade.user_id,
            Trade.instrument_id,
            Order.product,
            sa.func.sum(signed).label("quantity"),
            sa.type_coerce(sa.func.sum(-signed * Trade.price), _AMOUNT).label("flow"),
            sa.func.count().label("trades"),
        )
        .join(Order, Order.id == Trade.order_id)
        .group_by(Trade.user_id, Trade.instrument_id, Order.product)
    )
    if scope.since is not None:
        query = query.where(Trade.user_id.in_(_users_since(scope)))
    return {
        (r.user_id, r.instrument_id, r.product): Traded(int(r.quantity), r.flow, r.trades)
        for r in db.session.execute(query)
    }


def _users_since(scope: Scope) -> sa.Select:
    return sa.select(Order.user_id).where(Order.created_at >= scope.since).distinct()


def _positions(scope: Scope) -> dict[tuple, Position]:
    query = sa.select(Position)
    if scope.since is not None:
        query = query.where(Position.user_id.in_(_users_since(scope)))
    return {(p.user_id, p.instrument_id, p.product): p for p in db.session.scalars(query)}


def _positions_match_fills(scope: Scope, result: Result) -> None:
    traded, positions = _traded(scope), _positions(scope)
    for key in sorted(set(traded) | set(positions), key=str):
        result.checked += 1
        sums, position = traded.get(key, Traded()), positions.get(key)
        where = {"user_id": str(key[0]), "instrument_id": key[1], "product": key[2]}
        if position is None:
            result.add(scope.limit, **where, message=f"{sums.trades} trades and no position row")
            continue
        if position.quantity != sums.quantity:
            result.add(scope.limit, **where, message=f"quantity {position.quantity}, trades {sums.quantity}")
        elif position.realized_pnl - position.cost_basis != sums.flow:
            result.add(
                scope.limit,
                **where,
                message=f"realized {position.realized_pnl} - open cost {position.cost_basis} != cash moved {sums.flow}",
            )
        elif position.quantity == 0 and position.cost_basis != 0:
            result.add(scope.limit, **where, message=f"flat with an open cost of {position.cost_basis}")


def _funds_consistent(scope: Scope, result: Result) -> None:
    traded = _traded(scope)
    day = session_day(scope.now, current_app.config["SESSION_TIMEZONE"])
    users = {key[0] for key in traded} | set(_working_users(scope))
    finals_with_terms = scope.orders(
        sa.select(Order.id, Order.status).where(
            Order.status.in_([s.value for s in FINAL]), Order.pending_quantity.is_not(None)
        )
    )
    for row in db.session.execute(finals_with_terms):
        result.add(scope.limit, order_id=str(row.id), message=f"{row.status} with a modification's terms kept")
    for user_id in sorted(users, key=str):
        result.checked += 1
        account, settings = funds_service.account_and_settings(user_id)
        limits = funds_service.limits_of(account, settings)
        sql_book = funds_service.build_book(account.cash, funds_service.read_book(user_id, day), {}, 0)
        rows_book = _book_from_rows(user_id, account.cash, result, scope)
        realized = sum(
            (sums.flow + _open_cost(user_id, key) for key, sums in traded.items() if key[0] == user_id), ZERO
        )
        shown = margin.funds(sql_book, limits)
        if shown.cash != account.cash + realized:
            result.add(
                scope.limit,
                user_id=str(user_id),
                message=f"cash {shown.cash}, starting cash {account.cash} + P&L of the trades {realized}",
            )
        used_rows = margin.used_margin(rows_book, limits)
        if shown.used_margin != used_rows:
            result.add(
                scope.limit,
                user_id=str(user_id),
                message=f"margin blocked {shown.used_margin}, the rows' margin {used_rows}",
            )


def _working_users(scope: Scope) -> list[uuid.UUID]:
    query = sa.select(Order.user_id).where(
        Order.status.in_([s.value for s in WORKING + (Status.PENDING, Status.SUBMITTED)])
    )
    return db.session.scalars(scope.orders(query).distinct()).all()


def _open_cost(user_id: uuid.UUID, key: tuple) -> Decimal:
    basis = db.session.scalar(
        sa.select(sa.type_coerce(Position.cost_basis, _AMOUNT)).where(
            Position.user_id == user_id, Position.instrument_id == key[1], Position.product == key[2]
        )
    )
    return basis or ZERO


def _book_from_rows(user_id: uuid.UUID, cash: Decimal, result: Result, scope: Scope) -> margin.Book:
    """The user's book rebuilt from the position and order rows in Python (no marks), as a check on
    the risk engine's one-statement SQL book."""
    holdings = tuple(
        margin.Holding(p.instrument_id, p.product, p.quantity, p.average_price, p.realized_pnl, cost_basis=p.cost_basis)
        for p in db.session.scalars(sa.select(Position).where(Position.user_id == user_id))
    )
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0, ZERO])
    working = sa.select(Order).where(Order.user_id == user_id, Order.status.not_in([s.value for s in FINAL]))
    for order in db.session.scalars(working):
        quantity = max(order.quantity, order.pending_quantity or 0)
        remaining = quantity - order.filled_quantity
        if remaining <= 0:
            result.add(
                scope.limit,
                order_id=str(order.id),
                message=f"{order.status} with nothing left to fill ({order.filled_quantity} of {quantity})",
            )
        price = order.limit_price if order.limit_price is not None else order.stop_price
        pending = order.pending_limit_price if order.pending_limit_price is not None else order.pending_stop_price
        if order.status == Status.MODIFY_PENDING and pending is not None and price is not None and pending > price:
            price = pending
        group = groups[(order.instrument_id, order.product, order.side)]
        group[0] += 1
        group[1] += remaining
        group[2] += remaining * price if price is not None else ZERO
    working_rows = tuple(margin.Working(i, p, s, n, q, v) for (i, p, s), (n, q, v) in groups.items())
    return margin.Book(cash, holdings, working_rows, {}, 0, {})


# -- the audit trail --------------------------------------------------------------------------------
def _audit_complete(scope: Scope, result: Result) -> None:
    previous = sa.func.lag(OrderEvent.to_status).over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id)
    number = sa.func.row_number().over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id)
    last = sa.func.row_number().over(partition_by=OrderEvent.order_id, order_by=OrderEvent.id.desc())
    trail = scope.orders(
        sa.select(
            OrderEvent.order_id,
            OrderEvent.id,
            OrderEvent.event,
            OrderEvent.from_status,
            OrderEvent.to_status,
            previous.label("previous"),
            number.label("n"),
            last.label("from_end"),
        ).join(Order, Order.id == OrderEvent.order_id)
    ).subquery()
    broken = sa.or_(
        sa.and_(trail.c.n == 1, trail.c.event != "created"),
        sa.and_(trail.c.n > 1, trail.c.from_status.is_distinct_from(trail.c.previous)),
        sa.and_(trail.c.from_end == 1, trail.c.to_status.is_distinct_from(Order.status)),
    )
    query = (
        sa.select(
            trail.c.order_id,
            trail.c.id,
            trail.c.event,
            trail.c.from_status,
            trail.c.previous,
            trail.c.n,
            trail.c.to_status,
            Order.status,
        )  # fmt: skip
        .join(Order, Order.id == trail.c.order_id)
        .where(broken)
        .order_by(trail.c.order_id, trail.c.id)
    )
    for row in db.session.execute(query):
        if row.n == 1 and row.event != "created":
            message = f"trail starts with {row.event}, not created"
        elif row.n > 1 and row.from_status != row.previous:
            message = f"{row.event} from {row.from_status}, but the row before left {row.previous}"
        else:
            message = f"trail ends at {row.to_status}, the order is {row.status}"
        result.add(scope.limit, order_id=str(row.order_id), event_id=row.id, message=message)
    untraced = scope.orders(
        sa.select(Order.id, Order.status).where(~sa.exists().where(OrderEvent.order_id == Order.id))
    )
    for row in db.session.execute(untraced):
        result.add(scope.limit, order_id=str(row.id), message=f"{row.status} with no audit row")
    fills = (
        sa.select(sa.func.count()).where(OrderEvent.order_id == Order.id, OrderEvent.event == "fill").scalar_subquery()
    )
    trades = sa.select(sa.func.count()).where(Trade.order_id == Order.id).scalar_subquery()
    counts = scope.orders(sa.select(Order.id, fills.label("fills"), trades.label("trades")))
    for row in db.session.execute(counts):
        result.checked += 1
        if row.fills != row.trades:
            result.add(scope.limit, order_id=str(row.id), message=f"{row.fills} fill rows for {row.trades} trades")


# -- dead letters and failed jobs ------------------------------------------------------------------
def _dead_letters_explained(scope: Scope, result: Result) -> None:
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


def _age(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now (90s, 30m, 24h, 7d) or an ISO-8601 time (UTC if no zone)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip()
    if text[:-1].isdigit() and text[-1:].lower() in units:
        return (now or utcnow()) - timedelta(seconds=int(text[:-1]) * units[text[-1].lower()])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a duration such as 30m, 24h, 7d or an ISO-8601 time, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
