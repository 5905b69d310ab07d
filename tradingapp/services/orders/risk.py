"""Pre-trade risk checks on the order path: load the user's book under a lock, run the domain
rules, count the order. Called inside the caller's transaction; never commits.

Cost per check: two database round trips (lock-and-count the account, reading the global
settings in the same statement; positions and working orders in one statement) and one Redis
round trip (the rate bucket's script and the last prices the book needs).
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import date
from decimal import Decimal

import redis
from flask import current_app

from tradingapp import metrics
from tradingapp.domain import risk
from tradingapp.domain.errors import Refused, Unavailable
from tradingapp.domain.validation import NewOrder
from tradingapp.extensions import get_redis
from tradingapp.models import Instrument, Order, User
from tradingapp.services.accounts.funds import (
    AccountSnapshot,
    build_book,
    lock_account,
    marks_and_closes,
    queue_marks,
    read_book,
    set_user_state,
    today,
    uncount_order,
)

log = logging.getLogger(__name__)

# Token bucket: `rate` tokens a second up to `capacity`; one order takes one. Atomic in Redis, so
# every web process shares the user's bucket. Returns {allowed, milliseconds until a token}.
TOKEN_BUCKET = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate / 1000)
local allowed = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return {allowed, wait_ms}
"""


class RiskRejected(Refused):
    """A refusal by a risk rule: code risk_rejected, trading_halted (a HALTED state) or rate_limited
    (with retry_after). `details` name the rule and its numbers: limit, requested, current."""

    def __init__(
        self, rule: str, message: str, details: dict, code: str = "risk_rejected", retry_after: int | None = None
    ):
        super().__init__(message, details, code=code, retry_after=retry_after)
        self.rule = rule


def check_order(
    user: User, instrument: Instrument, new: NewOrder, last_price: Decimal | None, close_only: bool = False
) -> None:
    """Raise RiskRejected if the new order breaks a rule; otherwise it counts for today.
    `close_only`: the order must only close (part of) a position, judged under the account lock."""
    day = today()
    account = lock_account(user.id, day, count=1)
    try:
        book = _book(account, day, {instrument.id: last_price} if last_price is not None else {}, counted=1)
        price = risk.valuation_price(new.order_type, new.limit_price, new.stop_price, last_price)
        intent = risk.OrderIntent(
            instrument.id, instrument.exchange_segment, new.product, new.side, new.quantity, price, close_only
        )
        risk.check_new(book, account.limits, _state(account, book), intent)
    except risk.RiskViolation as violation:
        uncount_order(user.id)
        raise _rejected(violation, user.id) from None
    # A rate-limit refusal (RiskRejected 429) is not uncounted: the caller rolls the whole
    # transaction back, count included.


def check_modify(
    user: User,
    order: Order,
    quantity: int,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    last_price: Decimal | None,
) -> None:
    """Raise RiskRejected if the order's new terms (`quantity` is the new total; the prices are
    the resulting ones) break a rule."""
    day = today()
    account = lock_account(user.id, day, count=0)
    book = _book(account, day, {order.instrument_id: last_price} if last_price is not None else {}, counted=0)
    change = risk.Amendment(
        instrument_id=order.instrument_id,
        product=order.product,
        side=order.side,
        old_remaining=order.quantity - order.filled_quantity,
        old_price=risk.valuation_price(order.order_type, order.limit_price, order.stop_price, last_price),
        new_quantity=quantity,
        new_remaining=quantity - order.filled_quantity,
        new_price=risk.valuation_price(order.order_type, limit_price, stop_price, last_price),
        prices_changed=(limit_price, stop_price) != (order.limit_price, order.stop_price),
    )
    try:
        risk.check_amendment(book, account.limits, _state(account, book), change)
    except risk.RiskViolation as violation:
        raise _rejected(violation, user.id, order.id) from None


def _book(account: AccountSnapshot, day: date, known: dict[int, Decimal], counted: int):
    """The user's book; the rate token and the missing last prices come in one Redis round trip."""
    rows = read_book(account.user_id, day)
    # Held instruments give their last price and previous close (the daily loss needs both).
    ids = rows.instruments_to_mark()
    limits = account.limits
    (allowed, wait_ms), *replies = _redis_round_trip(account.user_id, limits, ids)
    if not allowed:
        raise _rate_limited(account.user_id, limits, int(wait_ms))
    marks, closes = marks_and_closes(ids, replies)
    marks.update(known)  # the order's own last price, read just before
    return build_book(account.cash, rows, marks, account.orders_today - counted, closes)


def _state(account: AccountSnapshot, book) -> risk.TradingState:
    """The effective state; a breached daily loss limit first moves an ACTIVE user to REDUCING
    (written now, kept when the caller commits)."""
    state = account.trading_state
    limits = account.limits
    if state == risk.TradingState.ACTIVE and risk.loss_breached(book, limits):
        state = risk.TradingState.REDUCING.value
        set_user_state(account.user_id, state, risk.DAILY_LOSS_REASON)
        log.warning(
            "event=daily_loss_breached user_id=%s loss=%s limit=%s state=REDUCING",
            account.user_id,
            risk.daily_loss(book),
            limits.max_daily_loss,
        )
    return risk.stricter(state, account.global_state)


def _rejected(violation: risk.RiskViolation, user_id: uuid.UUID, order_id=None) -> RiskRejected:
    log.info("event=risk_rejected user_id=%s order_id=%s rule=%s", user_id, order_id or "-", violation.rule)
    metrics.RISK_REFUSALS.labels(violation.rule).inc()
    code = "trading_halted" if violation.halted else "risk_rejected"
    return RiskRejected(violation.rule, violation.message, violation.details, code)


def _bucket_key(user_id: uuid.UUID) -> str:
    ns = current_app.config.get("NAMESPACE", "")
    return f"{ns}:risk:bucket:{user_id}" if ns else f"risk:bucket:{user_id}"


def _redis_round_trip(user_id: uuid.UUID, limits, mark_ids: list[int]) -> list:
    """[token reply, last price of each of mark_ids] from one pipeline (EVALSHA, not the
    pipeline's own script support, which asks SCRIPT EXISTS on every execute)."""
    client = get_redis()
    sha = current_app.extensions.get("tradingapp.risk_bucket_sha")
    try:
        for attempt in (1, 2):
            if sha is None:
                sha = current_app.extensions["tradingapp.risk_bucket_sha"] = client.script_load(TOKEN_BUCKET)
            pipe = client.pipeline(transaction=False)
            pipe.evalsha(sha, 1, _bucket_key(user_id), limits.orders_per_second, limits.order_burst)
            queue_marks(pipe, mark_ids)
            try:
                return pipe.execute()
            except redis.exceptions.NoScriptError:
                if attempt == 2:
                    raise
                sha = None  # Redis restarted or flushed its scripts: load it again
    except redis.RedisError as exc:
        log.warning("event=risk_redis_unavailable user_id=%s error=%s", user_id, type(exc).__name__)
        raise Unavailable("order rate limiter unavailable; try again") from None
    raise AssertionError("unreachable")


def _rate_limited(user_id: uuid.UUID, limits, wait_ms: int) -> RiskRejected:
    retry_after = max(1, math.ceil(wait_ms / 1000))
    log.info("event=risk_rejected user_id=%s rule=orders_per_second", user_id)
    metrics.RISK_REFUSALS.labels("orders_per_second").inc()
    rate, burst = limits.orders_per_second, limits.order_burst
    return RiskRejected(
        "orders_per_second",
        f"more than {rate} orders a second (burst {burst}); retry in {retry_after}s",
        {"rule": "orders_per_second", "limit": rate, "burst": burst, "retry_after": retry_after},
        code="rate_limited",
        retry_after=retry_after,
    )
