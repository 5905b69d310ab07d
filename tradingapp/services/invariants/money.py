"""Positions equal to their fills and funds consistent with the trades and the risk engine's book."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from tradingapp.domain import margin
from tradingapp.domain.order_lifecycle import FINAL, Status
from tradingapp.domain.positions import session_day
from tradingapp.extensions import db
from tradingapp.models import Order, Position, Trade
from tradingapp.services.accounts import funds as funds_service
from tradingapp.services.invariants.base import AMOUNT, WORKING, ZERO, Result, Scope


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
            sa.type_coerce(sa.func.sum(-signed * Trade.price), AMOUNT).label("flow"),
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


def positions_match_fills(scope: Scope, result: Result) -> None:
    """Each (user, instrument, product) position is the signed sum of its trades, and its realized
    P&L less its open cost is exactly the cash its trades moved."""
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


def funds_consistent(scope: Scope, result: Result) -> None:
    """GET /funds' cash is the starting cash plus the P&L the trades realized, and the margin the
    risk engine blocks (its SQL book) is the margin of the position and order rows; no working order
    has nothing left to fill, no final order keeps a modification's terms."""
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
        sa.select(sa.type_coerce(Position.cost_basis, AMOUNT)).where(
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
