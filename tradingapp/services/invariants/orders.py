"""Orders settled, sent once, agreed with the paper exchange's book, filled as their trades say."""

from __future__ import annotations

import sqlalchemy as sa

from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.domain.order_lifecycle import FINAL, Status
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent, Trade
from tradingapp.models.types import iso
from tradingapp.services.invariants.base import AMOUNT, TRANSIENT, WORKING, ZERO, Result, Scope, age

# Our status an order may have for each status of the paper exchange's book.
PAPER_STATUSES = {
    "open": {Status.SUBMITTED, *WORKING},
    "filled": {Status.FILLED},
    "cancelled": {Status.CANCELLED},
    "rejected": {Status.REJECTED},
    "expired": {Status.EXPIRED},
}


def orders_settled(scope: Scope, result: Result) -> None:
    """Every accepted order is final or resting; none left PENDING, SUBMITTED, CANCEL_PENDING or
    MODIFY_PENDING longer than the grace period."""
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
            message=f"{row.status} for {age(scope.now, row.updated_at)}",
        )


def sent_once(scope: Scope, result: Result) -> None:
    """No order sent to the broker twice (one `submitted` transition per order, no two of our orders
    on one broker order)."""
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


def broker_agrees(scope: Scope, result: Result) -> None:
    """(Paper exchange) each order the exchange got has the exchange's status and filled quantity;
    none working or filled here that the exchange never saw. The paper exchange's book against ours,
    for orders neither side touched within the grace period (an exchange fill a moment old may still
    be on its way to us)."""
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


def fills_match_trades(scope: Scope, result: Result) -> None:
    """An order's filled quantity and value are the sums of its trades, within its quantity, and
    each trade is the order's user, instrument and side."""
    query = scope.orders(
        sa.select(
            Order.id,
            Order.quantity,
            Order.pending_quantity,
            Order.filled_quantity,
            sa.type_coerce(Order.filled_value, AMOUNT).label("filled_value"),
            sa.func.coalesce(sa.func.sum(Trade.quantity), 0).label("traded"),
            sa.type_coerce(sa.func.coalesce(sa.func.sum(Trade.quantity * Trade.price), 0), AMOUNT).label("value"),
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
