"""Accounts and funds: the account row (created on demand), the user's book as the domain sees
it (positions, working orders, last prices), and the funds summary of GET /funds."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from flask import current_app

from tradingapp.domain import margin
from tradingapp.domain.orders import FINAL
from tradingapp.domain.positions import session_day
from tradingapp.domain.risk_limits import Limits, effective
from tradingapp.extensions import db, get_redis, upsert_insert
from tradingapp.models import Account, Order, Position, RiskSettings
from tradingapp.models.risk import GLOBAL_SETTINGS_ID
from tradingapp.models.types import Price, utcnow
from tradingapp.realtime import last_price, read_quotes

FINAL_STATUSES = sorted(s.value for s in FINAL)


def today() -> date:
    return session_day(utcnow(), current_app.config["SESSION_TIMEZONE"])


def create_account(user_id: uuid.UUID) -> None:
    """Insert the user's account with the configured starting cash, unless it exists."""
    db.session.execute(
        upsert_insert(Account)
        .values(
            user_id=user_id,
            cash=Decimal(current_app.config["ACCOUNT_INITIAL_CASH"]),
            trading_state="ACTIVE",
            limit_overrides={},
            orders_today=0,
            updated_at=utcnow(),
        )
        .on_conflict_do_nothing()
    )


def account_and_settings(user_id: uuid.UUID, lock: bool = False) -> tuple[Account, RiskSettings | None]:
    """The user's account (created if missing; locked FOR UPDATE with `lock`) and the global
    settings row (None until an admin first changes something), in one query."""
    query = (
        sa.select(Account, RiskSettings)
        .outerjoin(RiskSettings, RiskSettings.id == GLOBAL_SETTINGS_ID)
        .where(Account.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    if lock:
        query = query.with_for_update(of=Account)
    row = db.session.execute(query).first()
    if row is None:
        create_account(user_id)
        row = db.session.execute(query).first()
    return row[0], row[1]


def limits_of(account: Account, settings: RiskSettings | None) -> Limits:
    return effective(settings.limits if settings else None, account.limit_overrides)


def load_book(account: Account, day: date, marks: dict[int, Decimal] | None = None) -> margin.Book:
    """The user's positions and working orders (two queries) and the last prices they need
    (one Redis round trip); `marks` already known are not read again."""
    holdings = _holdings(account.user_id, day)
    working, unpriced = _working(account.user_id)
    needed = {h.instrument_id for h in holdings if h.quantity} | {key[0] for key in unpriced}
    marks = dict(marks or {})
    missing = sorted(needed - set(marks))
    if missing:
        quotes = read_quotes(get_redis(), missing)
        for iid in missing:
            if (price := last_price(quotes.get(iid))) is not None:
                marks[iid] = price
    working = tuple(_value_unpriced(w, unpriced, marks) for w in working)
    return margin.Book(account.cash, holdings, working, marks, account.orders_today if account.day == day else 0)


def _holdings(user_id: uuid.UUID, day: date) -> tuple[margin.Holding, ...]:
    rows = db.session.execute(
        sa.select(
            Position.instrument_id,
            Position.product,
            Position.quantity,
            Position.average_price,
            Position.realized_pnl,
            Position.day,
            Position.day_realized_pnl,
        ).where(Position.user_id == user_id)
    ).all()
    return tuple(
        margin.Holding(r.instrument_id, r.product, r.quantity, r.average_price, r.realized_pnl,
                       r.day_realized_pnl if r.day == day else Decimal(0))
        for r in rows
    )  # fmt: skip


def _working(user_id: uuid.UUID) -> tuple[list[margin.Working], dict[tuple, int]]:
    """Open orders grouped by (instrument, product, side): count, remaining quantity, value at
    their limit (else stop) price; the quantity without a price is valued later at the mark."""
    remaining = (
        sa.case(
            (Order.pending_quantity > Order.quantity, Order.pending_quantity),
            else_=Order.quantity,
        )
        - Order.filled_quantity
    )
    price = sa.func.coalesce(Order.limit_price, Order.stop_price)
    unpriced = sa.case((price.is_(None), remaining), else_=0)
    rows = db.session.execute(
        sa.select(
            Order.instrument_id,
            Order.product,
            Order.side,
            sa.func.count(),
            sa.func.sum(remaining),
            sa.type_coerce(sa.func.coalesce(sa.func.sum(remaining * price), 0), Price(24, 4)),
            sa.func.sum(unpriced),
        )
        .where(Order.user_id == user_id, Order.status.not_in(FINAL_STATUSES))
        .group_by(Order.instrument_id, Order.product, Order.side)
    ).all()
    working, unpriced_by_group = [], {}
    for iid, product, side, count, quantity, value, without_price in rows:
        working.append(margin.Working(iid, product, side, count, int(quantity), value))
        if without_price:
            unpriced_by_group[(iid, product, side)] = int(without_price)
    return working, unpriced_by_group


def _value_unpriced(w: margin.Working, unpriced: dict[tuple, int], marks: dict[int, Decimal]) -> margin.Working:
    quantity = unpriced.get((w.instrument_id, w.product, w.side), 0)
    mark = marks.get(w.instrument_id)
    if not quantity or mark is None:
        return w
    return margin.Working(w.instrument_id, w.product, w.side, w.count, w.quantity, w.value + quantity * mark)


def funds_of(user_id: uuid.UUID) -> tuple[margin.Funds, Limits]:
    account, settings = account_and_settings(user_id)
    limits = limits_of(account, settings)
    return margin.funds(load_book(account, today()), limits), limits
