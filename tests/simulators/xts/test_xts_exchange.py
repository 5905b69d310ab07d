"""The XTS simulator's plain parts on their own: matching, RMS, knobs, rate limits, sessions, bars."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tradingapp.simulators.xts.exchange import Exchange, OrderError
from tradingapp.simulators.xts.faults import EventFaults, FaultError, Faults, RateLimiter
from tradingapp.simulators.xts.instruments import default_universe
from tradingapp.simulators.xts.market import Market, ohlc_bars, parse_ohlc_time
from tradingapp.simulators.xts.sessions import Sessions, default_accounts

NOW = datetime(2026, 1, 5, 5, 0, tzinfo=UTC)


@pytest.fixture
def exchange():
    market = Market(default_universe(NOW.date()), random.Random(1), lambda: NOW)
    published: list[tuple[str, dict]] = []
    ex = Exchange(market, lambda: NOW, lambda kind, login, row: published.append((kind, row)))
    ex.published = published
    return ex


def touch(ex, key=("NSECM", 2885), bid="2899.95", ask="2900.05", size=1000):
    book = ex.market.book(*key)
    book.bid, book.ask, book.bid_size, book.ask_size = Decimal(bid), Decimal(ask), size, size
    return book


def place(ex, key=("NSECM", 2885), **overrides):
    params = {
        "orderSide": "BUY",
        "orderType": "MARKET",
        "productType": "MIS",
        "timeInForce": "DAY",
        "orderQuantity": 10,
        "disclosedQuantity": 0,
        "limitPrice": Decimal(0),
        "stopPrice": Decimal(0),
        "orderUniqueIdentifier": "u1",
    } | overrides
    order = ex.accept("SIMUSER1", "SIMUSER1", ex.market.book(*key).instrument, params)
    ex.process(order)
    return order


def test_a_marketable_limit_fills_at_the_touch_and_a_resting_one_at_its_limit(exchange):
    touch(exchange)
    improved = place(exchange, orderType="LIMIT", limitPrice=Decimal("2901"))
    assert (improved.status, improved.avg_price) == ("Filled", Decimal("2900.05"))
    resting = place(exchange, orderType="LIMIT", limitPrice=Decimal("2890"))
    assert resting.status == "New" and resting.resting
    touch(exchange, bid="2879.95", ask="2880.05")
    exchange.match(("NSECM", 2885))
    assert (resting.status, resting.avg_price) == ("Filled", Decimal("2890"))


def test_orders_share_the_displayed_size_oldest_first(exchange):
    book = touch(exchange, size=1000)
    first = place(exchange, orderType="LIMIT", limitPrice=Decimal("2800"), orderQuantity=6)
    second = place(exchange, orderType="LIMIT", limitPrice=Decimal("2800"), orderQuantity=6)
    touch(exchange, ask="2799.95", size=8)
    exchange.match(book.instrument.key)
    assert (first.cum_qty, first.status) == (6, "Filled")
    assert (second.cum_qty, second.status) == (2, "PartiallyFilled")


def test_lots_fill_whole(exchange):
    key = ("NSEFO", 35001)
    touch(exchange, key, bid="23999.90", ask="24000.10", size=100)  # one lot and a bit shows
    order = place(exchange, key, orderQuantity=150, productType="NRML")
    assert (order.cum_qty, order.leaves_qty) == (75, 75)


def test_a_fill_during_a_pending_modify_wins_and_the_modify_is_dropped(exchange):
    touch(exchange)
    order = place(exchange, orderType="LIMIT", limitPrice=Decimal("2890"))
    change = {
        "modifiedProductType": "MIS",
        "modifiedOrderType": "LIMIT",
        "modifiedOrderQuantity": 10,
        "modifiedDisclosedQuantity": 0,
        "modifiedLimitPrice": Decimal("2880"),
        "modifiedStopPrice": Decimal(0),
        "modifiedTimeInForce": "DAY",
    }
    exchange.request_modify(order, change)
    touch(exchange, ask="2885.00")
    exchange.match(("NSECM", 2885))
    assert order.status == "Filled"
    exchange.complete_modify(order)
    assert order.status == "Filled" and order.limit_price == Decimal("2890")
    with pytest.raises(OrderError):
        exchange.request_cancel(order)


def test_a_cancel_racing_a_full_fill_publishes_no_cancelled(exchange):
    touch(exchange)
    order = place(exchange, orderType="LIMIT", limitPrice=Decimal("2890"))
    exchange.request_cancel(order)
    touch(exchange, ask="2885.00")
    exchange.match(("NSECM", 2885))
    exchange.complete_cancel(order)
    statuses = [row["OrderStatus"] for kind, row in exchange.published if kind == "order"]
    assert statuses == ["PendingNew", "New", "PendingCancel", "Filled"]


def test_a_stop_limit_triggers_then_rests_as_a_limit(exchange):
    touch(exchange)
    order = place(exchange, orderType="STOPLIMIT", stopPrice=Decimal("2950"), limitPrice=Decimal("2955"))
    exchange.match(("NSECM", 2885))
    assert (order.status, order.triggered) == ("New", False)
    book = touch(exchange, bid="2959.95", ask="2960.05")
    book.ltp = Decimal("2960")
    exchange.match(("NSECM", 2885))
    assert (order.status, order.triggered) == ("New", True)  # triggered, but the ask is above its limit
    touch(exchange, bid="2954.90", ask="2955.00")
    exchange.match(("NSECM", 2885))
    assert (order.status, order.avg_price) == ("Filled", Decimal("2955"))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"orderType": "LIMIT", "limitPrice": Decimal("2900.03")}, "tick size"),
        ({"orderType": "LIMIT", "limitPrice": Decimal("100")}, "Price out of range"),
        ({"orderQuantity": 200000}, "freeze quantity"),
    ],
)
def test_rms_rejects_with_a_reason(exchange, overrides, reason):
    order = place(exchange, **overrides)
    assert order.status == "Rejected" and reason in order.reason


def test_reject_next_rejects_that_many_orders(exchange):
    touch(exchange)
    exchange.risk.reject_next = 1
    assert place(exchange).status == "Rejected"
    assert place(exchange).status == "Filled"


def test_event_faults_use_counts_before_probabilities_and_only_for_their_kinds():
    faults = EventFaults(drop_next=1, duplicate_prob=1.0, kinds=["order"])
    rng = random.Random(0)
    assert [faults.decide("order", rng), faults.decide("order", rng), faults.decide("trade", rng)] == [
        "drop",
        "duplicate",
        "send",
    ]


def test_failures_fire_before_or_after_the_work_as_set():
    faults = Faults()
    faults.update({"fail_next": {"place": {"count": 1, "status": 502, "after": True}, "*": 1}})
    assert faults.take_failure("place", after=False) == 500  # the "*" entry
    assert faults.take_failure("place", after=False) is None
    assert faults.take_failure("place", after=True) == 502
    with pytest.raises(FaultError):
        faults.update({"fail_next": {"place": {"status": 200}}})


def test_rate_limiter_windows_are_one_second_and_per_group():
    now = [100.0]
    limiter = RateLimiter(lambda: now[0])
    faults = Faults()
    assert [limiter.allow("u", "place", faults) for _ in range(11)].count(True) == 10
    assert limiter.allow("u", "orders", faults) and not limiter.allow("u", "orders", faults)
    now[0] += 1.0
    assert limiter.allow("u", "cancel", faults) and limiter.allow("u", "orders", faults)


def test_sessions_expire_with_their_ttl():
    now = [1000.0]
    sessions = Sessions(default_accounts("k", "s", "mk", "ms"), lambda: now[0], ttl=60)
    session = sessions.login("interactive", "k", "s", single_session=True)
    assert sessions.check(session.token, "interactive") is session
    assert sessions.check(session.token, "marketdata") is None
    now[0] += 60
    assert sessions.check(session.token, "interactive") is None


def test_ohlc_bars_are_deterministic_and_only_in_session():
    book = Market(default_universe(NOW.date()), random.Random(1), lambda: NOW).book("NSECM", 2885)
    start, end = parse_ohlc_time("Dec 06 2019 150000"), parse_ohlc_time("Dec 09 2019 092000")  # Fri -> Mon
    bars = ohlc_bars(book, start, end, 300, seed=3)
    assert bars == ohlc_bars(book, start, end, 300, seed=3) and bars.endswith(",")
    stamps = [int(b.split("|")[0]) for b in bars.split(",") if b]
    assert len(stamps) == 7  # 15:00-15:25 Friday, 09:15 Monday
    daily = [b for b in ohlc_bars(book, start, end, "D", seed=3).split(",") if b]
    assert len(daily) == 2
