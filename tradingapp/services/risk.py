"""Pre-trade risk checks on the order path: load the user's book under a lock, run the domain
rules, count the order. Called inside the caller's transaction; never commits.

Cost per check: one locked SELECT of the account (joined with the global settings), one of the
positions, one aggregate of the working orders, one Redis script call (the rate bucket) and at
most one Redis pipeline of last prices.
"""

from __future__ import annotations

import logging
import math
import uuid
from datetime import date
from decimal import Decimal

import redis
from flask import current_app

from tradingapp.domain import risk
from tradingapp.domain.validation import NewOrder
from tradingapp.errors import APIError
from tradingapp.extensions import get_redis
from tradingapp.models import Account, Instrument, Order, RiskSettings, User
from tradingapp.services.funds import account_and_settings, limits_of, load_book, today

log = logging.getLogger(__name__)

CODES = {422: "risk_rejected", 423: "trading_halted", 429: "rate_limited"}

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


class RiskRejected(APIError):
    """A refusal: 422 risk_rejected, 423 trading_halted or 429 rate_limited (with Retry-After).
    `details` name the rule and its numbers: limit, requested, current."""

    def __init__(self, rule: str, message: str, details: dict, status: int = 422, retry_after: int | None = None):
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        super().__init__(status, CODES[status], message, details, headers)
        self.rule = rule
        self.retry_after = retry_after


def check_order(user: User, instrument: Instrument, new: NewOrder, last_price: Decimal | None) -> None:
    """Raise RiskRejected if the new order breaks a rule; otherwise count it for today."""
    account, settings, limits, day = _lock(user.id)
    book = load_book(account, day, {instrument.id: last_price} if last_price is not None else None)
    _note_loss_breach(account, book, limits)
    price = risk.valuation_price(new.order_type, new.limit_price, new.stop_price, last_price)
    intent = risk.OrderIntent(instrument.id, instrument.exchange_segment, new.product, new.side, new.quantity, price)
    try:
        risk.check_new(book, limits, _state(account, settings), intent)
    except risk.RiskViolation as violation:
        raise _rejected(violation, user.id) from None
    account.day = day
    account.orders_today = book.orders_today + 1


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
    account, settings, limits, day = _lock(user.id)
    book = load_book(account, day, {order.instrument_id: last_price} if last_price is not None else None)
    _note_loss_breach(account, book, limits)
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
        risk.check_amendment(book, limits, _state(account, settings), change)
    except risk.RiskViolation as violation:
        raise _rejected(violation, user.id, order.id) from None


def _lock(user_id: uuid.UUID):
    """Lock the account (serialising this user's orders), roll it to today, take a rate token."""
    account, settings = account_and_settings(user_id, lock=True)
    limits = limits_of(account, settings)
    day = today()
    _roll_day(account, day)
    take_token(user_id, limits.orders_per_second, limits.order_burst)
    return account, settings, limits, day


def _roll_day(account: Account, day: date) -> None:
    """A new trading day: today's count starts at zero and a daily-loss REDUCING ends."""
    if account.day == day:
        return
    account.day = day
    account.orders_today = 0
    if account.trading_state == risk.TradingState.REDUCING and account.state_reason == risk.DAILY_LOSS_REASON:
        account.trading_state = risk.TradingState.ACTIVE.value
        account.state_reason = None
        log.info("event=trading_state_reset user_id=%s state=ACTIVE reason=new_day", account.user_id)


def _state(account: Account, settings: RiskSettings | None) -> risk.TradingState:
    return risk.stricter(account.trading_state, settings.trading_state if settings else "ACTIVE")


def _note_loss_breach(account: Account, book, limits) -> None:
    """A breached daily loss limit puts the user in REDUCING (persisted when the caller commits)."""
    if account.trading_state == risk.TradingState.ACTIVE and risk.loss_breached(book, limits):
        account.trading_state = risk.TradingState.REDUCING.value
        account.state_reason = risk.DAILY_LOSS_REASON
        log.warning(
            "event=daily_loss_breached user_id=%s loss=%s limit=%s state=REDUCING",
            account.user_id,
            risk.daily_loss(book),
            limits.max_daily_loss,
        )


def _rejected(violation: risk.RiskViolation, user_id: uuid.UUID, order_id=None) -> RiskRejected:
    log.info("event=risk_rejected user_id=%s order_id=%s rule=%s", user_id, order_id or "-", violation.rule)
    status = 423 if violation.halted else 422
    return RiskRejected(violation.rule, violation.message, violation.details, status)


def _bucket_key(user_id: uuid.UUID) -> str:
    ns = current_app.config.get("NAMESPACE", "")
    return f"{ns}:risk:bucket:{user_id}" if ns else f"risk:bucket:{user_id}"


def take_token(user_id: uuid.UUID, rate: int, capacity: int) -> None:
    """One token from the user's order bucket, or 429 with Retry-After (whole seconds)."""
    script = current_app.extensions.get("tradingapp.risk_bucket")
    if script is None:
        script = current_app.extensions["tradingapp.risk_bucket"] = get_redis().register_script(TOKEN_BUCKET)
    try:
        allowed, wait_ms = script(keys=[_bucket_key(user_id)], args=[rate, capacity])
    except redis.RedisError as exc:
        log.warning("event=rate_limit_unavailable user_id=%s error=%s", user_id, type(exc).__name__)
        raise APIError(503, "unavailable", "order rate limiter unavailable; try again") from None
    if not allowed:
        retry_after = max(1, math.ceil(int(wait_ms) / 1000))
        log.info("event=risk_rejected user_id=%s rule=orders_per_second", user_id)
        raise RiskRejected(
            "orders_per_second",
            f"more than {rate} orders a second (burst {capacity}); retry in {retry_after}s",
            {"rule": "orders_per_second", "limit": rate, "burst": capacity, "retry_after": retry_after},
            status=429,
            retry_after=retry_after,
        )
