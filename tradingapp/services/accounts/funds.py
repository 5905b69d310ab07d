"""Accounts and funds: the account row (created by the first write that needs it; a read before
that sees the account a user starts with), the user's book as the domain sees it (positions,
working orders, last prices), and what GET /funds and GET /account show.

The order path uses Core statements built once (`lock_account`, `read_book`): one round trip
each, without ORM overhead, since they run on every order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property

import redis
import sqlalchemy as sa
from flask import current_app

from tradingapp.domain import margin
from tradingapp.domain.order_lifecycle import FINAL
from tradingapp.domain.positions import average_price, session_day
from tradingapp.domain.risk import DAILY_LOSS_REASON, stricter
from tradingapp.domain.risk_limits import Limits, effective
from tradingapp.extensions import db, get_redis, upsert_insert
from tradingapp.models import Account, Order, Position, RiskSettings
from tradingapp.models.risk import GLOBAL_SETTINGS_ID
from tradingapp.models.types import Price, utcnow
from tradingapp.realtime import last_price, quote_key

ZERO = Decimal(0)


def today() -> date:
    return session_day(utcnow(), current_app.config["SESSION_TIMEZONE"])


def _starting_values(user_id: uuid.UUID) -> dict:
    return {
        "user_id": user_id,
        "cash": Decimal(current_app.config["ACCOUNT_INITIAL_CASH"]),
        "trading_state": "ACTIVE",
        "limit_overrides": {},
        "orders_today": 0,
    }


def create_account(user_id: uuid.UUID) -> None:
    """Insert the user's account with the configured starting cash, unless it exists."""
    db.session.execute(
        upsert_insert(Account).values(**_starting_values(user_id), updated_at=utcnow()).on_conflict_do_nothing()
    )


def new_account(user_id: uuid.UUID) -> Account:
    """The account a user starts with, not added to the session: what a read shows until a write
    (the first order, an admin's change) creates the row with the same values."""
    return Account(**_starting_values(user_id), state_reason=None, day=None)


@dataclass(frozen=True)
class AccountSnapshot:
    """The account as the order path read it, with the global settings beside it."""

    user_id: uuid.UUID
    cash: Decimal
    trading_state: str
    state_reason: str | None
    limit_overrides: dict
    orders_today: int  # including the order being checked
    global_state: str
    global_limits: dict | None

    @cached_property
    def limits(self) -> Limits:
        return effective(self.global_limits, self.limit_overrides)


_A = Account.__table__
_S = RiskSettings.__table__
# Only forwards: a process whose clock lags around midnight must not take the day back (and reset
# the count, or lift a daily-loss REDUCING, a second time).
_NEW_DAY = sa.or_(_A.c.day.is_(None), _A.c.day < sa.bindparam("day", type_=sa.Date()))
_LOSS_RESET = sa.and_(_NEW_DAY, _A.c.state_reason == DAILY_LOSS_REASON)
_GLOBAL = sa.select(_S.c.trading_state).where(_S.c.id == GLOBAL_SETTINGS_ID).scalar_subquery()
_GLOBAL_LIMITS = sa.select(_S.c.limits).where(_S.c.id == GLOBAL_SETTINGS_ID).scalar_subquery()
# Locks the row (serialising the user's orders), counts the order, starts a new day (today's
# count from zero, a daily-loss REDUCING lifted) and reads what the rules need: one round trip.
LOCK_AND_COUNT = (
    sa.update(_A)
    .where(_A.c.user_id == sa.bindparam("uid", type_=sa.Uuid()))
    .values(
        orders_today=sa.case((_NEW_DAY, 0), else_=_A.c.orders_today) + sa.bindparam("count", type_=sa.Integer()),
        trading_state=sa.case((_LOSS_RESET, "ACTIVE"), else_=_A.c.trading_state),
        state_reason=sa.case((_LOSS_RESET, None), else_=_A.c.state_reason),
        day=sa.case((_NEW_DAY, sa.bindparam("day", type_=sa.Date())), else_=_A.c.day),
    )
    .returning(
        _A.c.user_id,
        _A.c.cash,
        _A.c.trading_state,
        _A.c.state_reason,
        _A.c.limit_overrides,
        _A.c.orders_today,
        _GLOBAL.label("global_state"),
        _GLOBAL_LIMITS.label("global_limits"),
    )
)


def lock_account(user_id: uuid.UUID, day: date, count: int) -> AccountSnapshot:
    """Lock the account FOR the rest of the caller's transaction and add `count` to today's orders."""
    params = {"uid": user_id, "day": day, "count": count}
    row = db.session.execute(LOCK_AND_COUNT, params).first()
    if row is None:
        create_account(user_id)
        row = db.session.execute(LOCK_AND_COUNT, params).first()
    return AccountSnapshot(
        row.user_id,
        row.cash,
        row.trading_state,
        row.state_reason,
        row.limit_overrides or {},
        row.orders_today,
        row.global_state or "ACTIVE",
        row.global_limits,
    )


def uncount_order(user_id: uuid.UUID) -> None:
    """Undo lock_account's count: the order was refused."""
    db.session.execute(sa.update(_A).where(_A.c.user_id == user_id).values(orders_today=_A.c.orders_today - 1))


def set_user_state(user_id: uuid.UUID, state: str, reason: str | None) -> None:
    db.session.execute(sa.update(_A).where(_A.c.user_id == user_id).values(trading_state=state, state_reason=reason))


def account_and_settings(user_id: uuid.UUID) -> tuple[Account, RiskSettings | None]:
    """The user's account (new_account's when it has no row yet) and the global settings row (None
    until an admin first changes something), for reading outside the order path: writes nothing."""
    query = (
        sa.select(Account, RiskSettings)
        .outerjoin(RiskSettings, RiskSettings.id == GLOBAL_SETTINGS_ID)
        .where(Account.user_id == user_id)
    )
    row = db.session.execute(query).first()
    if row is None:
        return new_account(user_id), db.session.get(RiskSettings, GLOBAL_SETTINGS_ID)
    return row[0], row[1]


@dataclass(frozen=True)
class AccountView:
    """GET /account: the trading states (the user's, the global one and the effective stricter
    one), today's order count as of the session day, and the effective limits."""

    user_id: uuid.UUID
    trading_state: str
    user_trading_state: str
    global_trading_state: str
    state_reason: str | None  # the user's own state's reason
    global_state_reason: str | None  # the global (kill switch) state's reason
    session_day: date
    orders_today: int
    limits: Limits


def account_view(user_id: uuid.UUID) -> AccountView:
    account, settings = account_and_settings(user_id)
    global_state = settings.trading_state if settings else "ACTIVE"
    day = today()
    return AccountView(
        user_id=account.user_id,
        trading_state=stricter(account.trading_state, global_state).value,
        user_trading_state=account.trading_state,
        global_trading_state=global_state,
        state_reason=account.state_reason,
        global_state_reason=settings.state_reason if settings else None,
        session_day=day,
        # The count is of the row's day: a new session day starts at zero (the order path rolls the
        # row over when it next counts; a read only shows it).
        orders_today=account.orders_today if account.day == day else 0,
        limits=limits_of(account, settings),
    )


def limits_of(account: Account, settings: RiskSettings | None) -> Limits:
    return effective(settings.limits if settings else None, account.limit_overrides)


# -- the book ---------------------------------------------------------------------------------
_P = Position.__table__
_O = Order.__table__
_REMAINING = (
    sa.case((_O.c.pending_quantity > _O.c.quantity, _O.c.pending_quantity), else_=_O.c.quantity) - _O.c.filled_quantity
)
_TERMS_PRICE = sa.func.coalesce(_O.c.limit_price, _O.c.stop_price)
_PENDING_PRICE = sa.func.coalesce(_O.c.pending_limit_price, _O.c.pending_stop_price)
# While a modification is in flight either terms may trade: value the order at the larger price
# (and, above, the larger quantity).
_ORDER_PRICE = sa.case(
    (sa.and_(_O.c.status == "MODIFY_PENDING", _PENDING_PRICE > _TERMS_PRICE), _PENDING_PRICE), else_=_TERMS_PRICE
)
_AMOUNT = Price(24, 4)
# Inline (not an expanding parameter): the same predicate as the partial index ix_orders_user_open.
_NOT_FINAL = sa.text(f"orders.status NOT IN ({', '.join(repr(s.value) for s in sorted(FINAL))})")
# Positions and working orders (grouped by instrument, product, side) in one statement.
BOOK = sa.union_all(
    sa.select(
        sa.literal("p").label("kind"),
        _P.c.instrument_id,
        _P.c.product,
        sa.cast(sa.null(), sa.String).label("side"),
        sa.literal(0).label("count"),
        _P.c.quantity,
        sa.type_coerce(_P.c.cost_basis, _AMOUNT).label("value"),
        sa.type_coerce(_P.c.realized_pnl, _AMOUNT).label("realized"),
        _P.c.day,
        sa.type_coerce(_P.c.day_realized_pnl, _AMOUNT).label("day_realized"),
        sa.literal(0).label("unpriced"),
        _P.c.day_buy_quantity.label("day_bought"),
        _P.c.day_sell_quantity.label("day_sold"),
        sa.type_coerce(_P.c.day_sell_value - _P.c.day_buy_value, _AMOUNT).label("day_flow"),
    ).where(_P.c.user_id == sa.bindparam("uid", type_=sa.Uuid())),
    sa.select(
        sa.literal("w"),
        _O.c.instrument_id,
        _O.c.product,
        _O.c.side,
        sa.func.count(),
        sa.func.sum(_REMAINING),
        sa.func.coalesce(sa.func.sum(_REMAINING * _ORDER_PRICE), 0),
        sa.literal(0),
        sa.cast(sa.null(), sa.Date),
        sa.literal(0),
        sa.func.sum(sa.case((_ORDER_PRICE.is_(None), _REMAINING), else_=0)),
        sa.literal(0),
        sa.literal(0),
        sa.literal(0),
    )
    .where(
        _O.c.user_id == sa.bindparam("uid", type_=sa.Uuid()),
        _NOT_FINAL,
    )
    .group_by(_O.c.instrument_id, _O.c.product, _O.c.side),
)


@dataclass(frozen=True)
class BookRows:
    holdings: tuple[margin.Holding, ...]
    working: tuple[margin.Working, ...]
    unpriced: dict[tuple, int]  # working quantity without a price, valued at the mark

    def instruments_to_mark(self) -> list[int]:
        held = {h.instrument_id for h in self.holdings if h.quantity or h.start_of_day_quantity}
        return sorted(held | {key[0] for key in self.unpriced})


def read_book(user_id: uuid.UUID, day: date) -> BookRows:
    holdings, working, unpriced = [], [], {}
    for r in db.session.execute(BOOK, {"uid": user_id}):
        if r.kind == "p":
            today_ = r.day == day  # the day columns describe today only if the row was touched today
            average = average_price(r.value, r.quantity)
            holdings.append(
                margin.Holding(
                    r.instrument_id,
                    r.product,
                    r.quantity,
                    average,
                    r.realized,
                    r.day_realized if today_ else ZERO,
                    r.value,
                    r.day_bought if today_ else 0,
                    r.day_sold if today_ else 0,
                    r.day_flow if today_ else ZERO,
                )
            )
        else:
            working.append(margin.Working(r.instrument_id, r.product, r.side, r.count, int(r.quantity), r.value))
            if r.unpriced:
                unpriced[(r.instrument_id, r.product, r.side)] = int(r.unpriced)
    return BookRows(tuple(holdings), tuple(working), unpriced)


def queue_marks(pipe: redis.client.Pipeline, instrument_ids: list[int]) -> None:
    """The last price and the previous session's close of each instrument, from the quote cache."""
    for iid in instrument_ids:
        pipe.hmget(quote_key(iid), "ltp", "close")


def marks_and_closes(instrument_ids: list[int], replies: list) -> tuple[dict, dict]:
    """(last prices, previous closes) by instrument from queue_marks' replies; missing ones left out."""
    marks, closes = {}, {}
    for iid, (ltp, close) in zip(instrument_ids, replies, strict=True):
        for raw, into in ((ltp, marks), (close, closes)):
            if raw and (price := last_price({"ltp": raw.decode()})) is not None:
                into[iid] = price
    return marks, closes


def build_book(
    cash: Decimal, rows: BookRows, marks: dict[int, Decimal], orders_today: int, closes: dict | None = None
) -> margin.Book:
    working = []
    for w in rows.working:
        quantity, mark = rows.unpriced.get((w.instrument_id, w.product, w.side), 0), marks.get(w.instrument_id)
        if quantity and mark is not None:
            w = margin.Working(w.instrument_id, w.product, w.side, w.count, w.quantity, w.value + quantity * mark)
        working.append(w)
    return margin.Book(cash, rows.holdings, tuple(working), marks, orders_today, closes or {})


def load_book(user_id: uuid.UUID, cash: Decimal, day: date, orders_today: int = 0) -> margin.Book:
    """The whole book with its marks, outside the order path (GET /funds)."""
    rows = read_book(user_id, day)
    ids = rows.instruments_to_mark()
    replies = []
    if ids:
        pipe = get_redis().pipeline(transaction=False)
        queue_marks(pipe, ids)
        replies = pipe.execute()
    marks, closes = marks_and_closes(ids, replies)
    return build_book(cash, rows, marks, orders_today, closes)


def funds_of(user_id: uuid.UUID) -> tuple[margin.Funds, Limits]:
    account, settings = account_and_settings(user_id)
    limits = limits_of(account, settings)
    return margin.funds(load_book(user_id, account.cash, today()), limits), limits
