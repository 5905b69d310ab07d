"""The margin an order would block, before it is sent (POST /api/v1/orders/estimate).

The request is validated by the order path's own functions (services/orders/placement.py, domain/validation.py:
the same 400s with the same field details), and the margin comes from the risk engine's model
(domain/margin.py) over the same book the risk engine reads (services/accounts/funds.py), valued the way
risk.check_new values it. Nothing is written or queued: no order row, no count of today's orders,
no rate-limit token; even the account row a first request would create is rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import redis

from tradingapp.domain import margin, risk
from tradingapp.domain.errors import Unavailable
from tradingapp.domain.validation import (
    NewOrder,
)
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument
from tradingapp.services.accounts import funds
from tradingapp.services.orders.placement import check_against_the_market, parse_order
from tradingapp.services.orders.risk import RiskRejected

ZERO = Decimal(0)


@dataclass(frozen=True)
class Estimate:
    required_margin: Decimal
    available: Decimal
    sufficient: bool
    price: Decimal


def estimate_order(user_id: uuid.UUID, body: dict) -> Estimate:
    try:
        return _estimate(user_id, body)
    finally:
        db.session.rollback()  # reads only: an account created on the way is not kept


def _estimate(user_id: uuid.UUID, body: dict) -> Estimate:
    instrument, new, last = validated(body)
    price = risk.valuation_price(new.order_type, new.limit_price, new.stop_price, last)
    if price is None:  # what risk.check_new refuses with, for the same reason
        raise RiskRejected(
            "price_unavailable",
            "no last price to value this order; try again when quotes arrive",
            {"rule": "price_unavailable"},
        )
    account, settings = funds.account_and_settings(user_id)
    limits = funds.limits_of(account, settings)
    book = _book(user_id, account.cash, {instrument.id: last} if last is not None else {})
    before = margin.funds(book, limits)
    after = book.with_working(instrument.id, new.product, new.side, 1, new.quantity, new.quantity * price)
    required = max(margin.used_margin(after, limits) - before.used_margin, ZERO)
    # risk._check_funds refuses exactly when required > 0 and required > available.
    sufficient = not (required > 0 and required > before.available)
    return Estimate(required, before.available, sufficient, price)


def validated(body: dict) -> tuple[Instrument, NewOrder, Decimal | None]:
    """The instrument, the valid order and the last price, or the 400 POST /orders answers
    (client_order_id is ignored: an estimate is never an order)."""
    body = {k: v for k, v in body.items() if k != "client_order_id"}
    instrument, new = parse_order(body)
    return instrument, new, check_against_the_market(instrument, new)


def _book(user_id: uuid.UUID, cash: Decimal, known: dict[int, Decimal]) -> margin.Book:
    """The book as risk.check_order reads it (services/orders/risk.py `_book`), without its rate token."""
    day = funds.today()
    rows = funds.read_book(user_id, day)
    ids = rows.instruments_to_mark()
    replies = []
    if ids:
        pipe = get_redis().pipeline(transaction=False)
        funds.queue_marks(pipe, ids)
        try:
            replies = pipe.execute()
        except redis.RedisError:
            raise Unavailable("quote cache unavailable; try again") from None
    marks, closes = funds.marks_and_closes(ids, replies)
    marks.update(known)  # the order's own last price, read just before (as the order path does)
    return funds.build_book(cash, rows, marks, 0, closes)
