"""XTS Interactive REST API of one account: every path it calls, one method each (shared/xts-api.md).

The order book, an order's history and the trade book come back as their raw rows (a list, or the
one list some deployments wrap in an object): each caller parses them as strictly as it must.
"""

from __future__ import annotations

import uuid

from tradingapp.brokers.xts.mapping import book_rows
from tradingapp.brokers.xts.session import XtsAccount, XtsSession


class Interactive:
    def __init__(self, session: XtsSession):
        self.session = session

    @property
    def account(self) -> XtsAccount:
        return self.session.account

    # -- orders ------------------------------------------------------------------------------
    def place(self, body: dict) -> object:
        return self.session.call("POST", "/orders", body)

    def modify(self, body: dict) -> object:
        return self.session.call("PUT", "/orders", body)

    def cancel(self, app_order_id: int | str, order_id: uuid.UUID) -> object:
        params = {"appOrderID": app_order_id, "orderUniqueIdentifier": str(order_id)}
        return self.session.call("DELETE", "/orders", params)

    # -- books -------------------------------------------------------------------------------
    def order_book(self) -> list:
        """Every order row of the day (one per order, its latest state)."""
        return book_rows(self.session.call("GET", "/orders"), "order book")

    def order_history(self, app_order_id: int | str) -> list:
        """One order's rows, oldest first."""
        return book_rows(self.session.call("GET", "/orders", {"appOrderID": app_order_id}), "order history")

    def trade_book(self) -> list:
        """Every trade row of the day (one per fill)."""
        return book_rows(self.session.call("GET", "/orders/trades"), "trade book")

    # -- portfolio and user ------------------------------------------------------------------
    def positions(self, day_or_net: str = "NetWise") -> object:
        return self.session.call("GET", "/portfolio/positions", {"dayOrNet": day_or_net})

    def balance(self) -> object:
        return self.session.call("GET", "/user/balance")

    def profile(self) -> object:
        """A cheap call that tells whether the session is alive (and renews it if not)."""
        return self.session.call("GET", "/user/profile")
