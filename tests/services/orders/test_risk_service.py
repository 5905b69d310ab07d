"""The risk service on real Postgres and Redis: accounts, states, counters, the rate bucket,
the book it reads from the database, and serialisation of one user's orders."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.factories import make_order
from tradingapp.domain.risk import DAILY_LOSS_REASON
from tradingapp.domain.validation import NewOrder
from tradingapp.errors import headers_of, status_of
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Account, Instrument, RiskSettings
from tradingapp.models.risk import GLOBAL_SETTINGS_ID
from tradingapp.realtime import store_quote
from tradingapp.services.accounts import funds
from tradingapp.services.accounts.positions import apply_fill_to_position
from tradingapp.services.orders import risk

D = Decimal


def new_order(side="BUY", qty=10, order_type="LIMIT", price="100", product="MIS", instrument_id=1) -> NewOrder:
    limit = D(price) if order_type == "LIMIT" else None
    return NewOrder(instrument_id, side, qty, order_type, limit, None, product, "DAY", None)


def check(user, order=None, last="100"):
    instrument = _db.session.get(Instrument, (order or new_order()).instrument_id)
    risk.check_order(user, instrument, order or new_order(), D(last) if last else None)


def rejected(user, order=None, last="100") -> risk.RiskRejected:
    with pytest.raises(risk.RiskRejected) as info:
        check(user, order, last)
    _db.session.rollback()
    return info.value


def account(user) -> Account:
    return _db.session.get(Account, user.id, populate_existing=True)


def set_overrides(user, **limits):
    funds.create_account(user.id)
    account(user).limit_overrides = limits
    _db.session.commit()


def set_global_state(state: str):
    _db.session.merge(RiskSettings(id=GLOBAL_SETTINGS_ID, trading_state=state, limits={}, updated_at=datetime.now(UTC)))
    _db.session.commit()


def quote(instrument_id: int, ltp: str):
    pipe = get_redis().pipeline()
    store_quote(pipe, {"instrument_id": instrument_id, "ltp": ltp, "bid": ltp, "ask": ltp}, 60)
    pipe.execute()


def hold(user, qty: int, price="100", product="MIS", instrument_id=1, traded_at=None):
    """A position built by a real fill through the consumer's function."""
    order = make_order(user, instrument_id=instrument_id, side="BUY" if qty > 0 else "SELL", quantity=abs(qty),
                       status="FILLED", limit_price=price)  # fmt: skip
    order.product = product
    apply_fill_to_position(order, abs(qty), D(price), traded_at or datetime.now(UTC))
    _db.session.commit()


# -- accounts and counting ----------------------------------------------------------------------
def test_the_first_check_creates_the_account_with_the_configured_cash(app, trader):
    check(trader)
    _db.session.commit()
    assert account(trader).cash == D(app.config["ACCOUNT_INITIAL_CASH"])


def test_a_passing_order_counts_for_today(trader):
    check(trader)
    check(trader)
    _db.session.commit()
    assert (account(trader).orders_today, account(trader).day) == (2, funds.today())


def test_a_refused_order_is_not_counted(trader):
    check(trader)
    _db.session.commit()
    rejected(trader, new_order(qty=10**6))
    assert account(trader).orders_today == 1


def test_a_new_day_starts_the_count_afresh(trader):
    funds.create_account(trader.id)
    acc = account(trader)
    acc.day, acc.orders_today = funds.today() - timedelta(days=1), 99
    acc.limit_overrides = {"max_orders_per_day": 5}
    _db.session.commit()
    check(trader)
    _db.session.commit()
    assert account(trader).orders_today == 1


def test_a_process_with_a_lagging_clock_never_takes_the_day_back(trader):
    funds.create_account(trader.id)
    acc = account(trader)
    tomorrow = funds.today() + timedelta(days=1)  # another process already rolled over
    acc.day, acc.orders_today = tomorrow, 3
    _db.session.commit()
    check(trader)  # this process still thinks it is today
    _db.session.commit()
    assert (account(trader).day, account(trader).orders_today) == (tomorrow, 4)


# -- states ---------------------------------------------------------------------------------------
def test_a_global_halt_refuses_with_423_trading_halted(trader):
    set_global_state("HALTED")
    exc = rejected(trader)
    assert (status_of(exc), exc.code, exc.rule) == (423, "trading_halted", "trading_halted")


def test_a_user_halt_refuses_only_that_user(trader, make_user):
    funds.create_account(trader.id)
    account(trader).trading_state = "HALTED"
    _db.session.commit()
    assert status_of(rejected(trader)) == 423
    check(make_user())


def test_global_reducing_is_stricter_than_an_active_user(trader):
    set_global_state("REDUCING")
    exc = rejected(trader)
    assert (status_of(exc), exc.code, exc.rule) == (422, "risk_rejected", "reducing_only")


def test_reducing_passes_an_order_that_closes_a_position(trader):
    hold(trader, 50)
    set_global_state("REDUCING")
    check(trader, new_order("SELL", 50))


def test_reducing_counts_the_users_open_closing_orders_from_the_database(trader):
    hold(trader, 50)
    make_order(trader, side="SELL", quantity=30, status="OPEN")
    set_global_state("REDUCING")
    assert rejected(trader, new_order("SELL", 21)).rule == "reducing_only"
    check(trader, new_order("SELL", 20))


# -- daily loss --------------------------------------------------------------------------------------
def test_a_daily_loss_breach_moves_the_user_to_reducing(trader):
    hold(trader, 100, "100")
    set_overrides(trader, max_daily_loss="500")
    quote(1, "94")  # unrealized -600
    with pytest.raises(risk.RiskRejected) as info:
        check(trader, new_order("BUY", 1, price="94"), last="94")
    _db.session.commit()  # as the caller does: it keeps the refusal (and the new state)
    assert info.value.rule == "max_daily_loss"
    assert info.value.details["trading_state"] == "REDUCING"
    assert (account(trader).trading_state, account(trader).state_reason) == ("REDUCING", DAILY_LOSS_REASON)


def test_a_daily_loss_reducing_ends_with_the_day(trader):
    funds.create_account(trader.id)
    acc = account(trader)
    acc.trading_state, acc.state_reason, acc.day = "REDUCING", DAILY_LOSS_REASON, date(2020, 1, 1)
    _db.session.commit()
    check(trader)
    _db.session.commit()
    assert account(trader).trading_state == "ACTIVE"


def test_an_admin_reducing_does_not_end_with_the_day(trader):
    funds.create_account(trader.id)
    acc = account(trader)
    acc.trading_state, acc.state_reason, acc.day = "REDUCING", "set by an admin", date(2020, 1, 1)
    _db.session.commit()
    assert rejected(trader).rule == "reducing_only"


def test_yesterdays_realized_loss_does_not_count_today(trader):
    yesterday = datetime.now(UTC) - timedelta(days=1, hours=1)
    hold(trader, 100, "100", traded_at=yesterday)
    order = make_order(trader, side="SELL", quantity=100, status="FILLED")
    apply_fill_to_position(order, 100, D("90"), yesterday)  # -1000 realized yesterday
    _db.session.commit()
    set_overrides(trader, max_daily_loss="500")
    check(trader)


# -- limits from the database --------------------------------------------------------------------------
def test_user_overrides_beat_global_limits(trader):
    _db.session.merge(RiskSettings(id=GLOBAL_SETTINGS_ID, trading_state="ACTIVE", limits={"max_order_quantity": 5},
                                   updated_at=datetime.now(UTC)))  # fmt: skip
    _db.session.commit()
    assert rejected(trader, new_order(qty=10)).details["limit"] == 5
    set_overrides(trader, max_order_quantity=20)
    check(trader, new_order(qty=10))


def test_open_orders_are_counted_from_the_database(trader):
    set_overrides(trader, max_open_orders=2)
    make_order(trader, status="OPEN")
    make_order(trader, status="PARTIALLY_FILLED", filled_quantity=3)
    make_order(trader, status="FILLED")
    exc = rejected(trader)
    assert (exc.rule, exc.details["current"]) == ("max_open_orders", 2)


def test_a_working_market_order_is_valued_at_the_last_price(trader):
    set_overrides(trader, margin_mis_percent="100")
    funds.create_account(trader.id)
    account(trader).cash = D(10_000)
    _db.session.commit()
    make_order(trader, instrument_id=2, status="OPEN", order_type="MARKET", limit_price=None, quantity=40)
    quote(2, "200")  # the MARKET order blocks 40 x 200 = 8000
    summary, _ = funds.funds_of(trader.id)
    assert summary.used_margin == D(8000)
    assert rejected(trader, new_order(qty=21, price="100")).rule == "available_funds"


def test_a_market_order_without_a_last_price_is_refused(trader):
    exc = rejected(trader, new_order(order_type="MARKET"), last=None)
    assert exc.rule == "price_unavailable"


# -- the rate bucket --------------------------------------------------------------------------------------
def test_orders_beyond_the_burst_get_429_with_retry_after(trader):
    set_overrides(trader, orders_per_second=1, order_burst=2)
    check(trader)
    check(trader)
    exc = rejected(trader)
    assert (status_of(exc), exc.code, exc.rule) == (429, "rate_limited", "orders_per_second")
    assert exc.retry_after == 1 and headers_of(exc)["Retry-After"] == "1"


def test_the_bucket_refills_at_the_rate(trader):
    set_overrides(trader, orders_per_second=20, order_burst=1)
    check(trader)
    assert status_of(rejected(trader)) == 429
    time.sleep(0.06)
    check(trader)


def test_each_user_has_a_bucket_of_their_own(trader, make_user):
    set_overrides(trader, orders_per_second=1, order_burst=1)
    check(trader)
    check(make_user())


def test_the_bucket_script_is_loaded_again_when_redis_does_not_know_it(app, trader):
    check(trader)
    # As after a Redis restart (without flushing the scripts other test runs share the server with).
    app.extensions["tradingapp.risk_bucket_sha"] = "0" * 40
    check(trader)
    assert app.extensions["tradingapp.risk_bucket_sha"] != "0" * 40


# -- modifications ------------------------------------------------------------------------------------------
def test_a_halted_user_may_shrink_a_working_order(trader):
    order = make_order(trader, status="OPEN", quantity=10)
    set_global_state("HALTED")
    risk.check_modify(trader, order, 5, order.limit_price, None, D(100))


def test_a_halted_user_may_not_grow_a_working_order(trader):
    order = make_order(trader, status="OPEN", quantity=10)
    set_global_state("HALTED")
    with pytest.raises(risk.RiskRejected) as info:
        risk.check_modify(trader, order, 20, order.limit_price, None, D(100))
    assert status_of(info.value) == 423


def test_a_modified_closing_order_may_use_its_own_quantity(trader):
    hold(trader, 10)
    order = make_order(trader, side="SELL", status="OPEN", quantity=10)
    set_global_state("REDUCING")
    risk.check_modify(trader, order, 10, D("99"), None, D(100))
    with pytest.raises(risk.RiskRejected):
        risk.check_modify(trader, order, 11, D("99"), None, D(100))


# -- serialisation -------------------------------------------------------------------------------------------
def test_concurrent_orders_of_one_user_cannot_both_pass_a_limit(app, trader):
    """The first check holds the account lock until its order is committed; the second waits,
    then sees that order and is refused."""
    set_overrides(trader, max_open_orders=1)
    user_id, first_locked, results = trader.id, threading.Event(), {}

    def place(name: str, hold_for: float):
        with app.app_context():
            from tradingapp.models import User

            user = _db.session.get(User, user_id)
            try:
                check(user)
                first_locked.set()
                time.sleep(hold_for)
                make_order(user, status="PENDING")  # writes the order and commits, as place_order does
                results[name] = "passed"
            except risk.RiskRejected as exc:
                results[name] = exc.rule
            finally:
                _db.session.rollback()
                _db.session.remove()

    first = threading.Thread(target=place, args=("first", 0.3))
    first.start()
    assert first_locked.wait(5)
    second = threading.Thread(target=place, args=("second", 0))
    second.start()
    first.join(10)
    second.join(10)
    assert results == {"first": "passed", "second": "max_open_orders"}
