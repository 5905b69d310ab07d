"""A small, genuinely consistent order book made by the real order path in this process: orders
placed through the service, sent by the real RQ worker to the paper exchange, its events applied
by the real consumer. The invariants checker's tests break one thing of it at a time."""

from __future__ import annotations

from dataclasses import dataclass

from tests.support import wait_until
from tests.support.factories import new_order, reload, set_quote
from tests.support.jobs import run_worker
from tradingapp.models import Order
from tradingapp.services.orders.actions import cancel_order

MARKET = "2900.05"


@dataclass
class Book:
    bought: Order  # MARKET BUY 5, filled
    sold: Order  # MARKET SELL 2, filled: a partial close with realized P&L
    resting: Order  # LIMIT BUY 3 below the market, OPEN
    cancelled: Order  # LIMIT BUY 1, cancelled at the exchange


def settle(app, orders: list[Order], statuses: set[str]) -> None:
    run_worker(app)
    wait_until(
        lambda: all(reload(o.id).status in statuses for o in orders),
        15,
        lambda: str({str(o.id): reload(o.id).status for o in orders}),
    )


def trade_a_book(app, user, start_consumer) -> Book:
    """Needs the `start_consumer` fixture (broker events applied on a thread) and a user."""
    set_quote(1, MARKET, bid="2900.00", ask="2900.10", bid_qty=1000, ask_qty=1000)
    start_consumer()
    bought = new_order(user, quantity=5)
    settle(app, [bought], {"FILLED"})
    sold = new_order(user, side="SELL", quantity=2)
    settle(app, [sold], {"FILLED"})
    resting = new_order(user, order_type="LIMIT", limit_price="2800.00", quantity=3)
    cancelled = new_order(user, order_type="LIMIT", limit_price="2790.00", quantity=1)
    settle(app, [resting, cancelled], {"OPEN"})
    cancel_order(user, cancelled.id)
    settle(app, [cancelled], {"CANCELLED"})
    return Book(*(reload(o.id) for o in (bought, sold, resting, cancelled)))
