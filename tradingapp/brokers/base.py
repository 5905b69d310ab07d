"""The broker interface. Implementations: the paper exchange (paper/) and XTS (xts/).

A broker is told to place, cancel or look up an order; everything the broker decides later
(acknowledgement, fills, rejects, cancels) comes back as events on the `broker.events`
exchange — see tradingapp/events.py — never as return values, exactly as with a real broker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class OrderRequest:
    """What a broker needs to place one order: plain values, no ORM."""

    order_id: uuid.UUID  # ours; travels as the broker's unique client identifier
    user_id: uuid.UUID
    instrument_id: int
    exchange_segment: str
    exchange_instrument_id: int
    side: str  # BUY | SELL
    quantity: int
    order_type: str  # MARKET | LIMIT
    limit_price: Decimal | None
    stop_price: Decimal | None
    product: str
    time_in_force: str


@dataclass(frozen=True)
class ModifyRequest:
    """New terms for a working order. `seq` numbers the order's modifications (1, 2, ...), so the
    broker's answer to each one has a deterministic event id."""

    order_id: uuid.UUID
    seq: int
    quantity: int  # the new total quantity (filled part included), as XTS modifiedOrderQuantity
    limit_price: Decimal | None
    stop_price: Decimal | None


@dataclass(frozen=True)
class BrokerOrder:
    """The broker's view of one of our orders (for lookups before any resend)."""

    order_id: uuid.UUID
    broker_order_id: str
    status: str  # broker's own words, e.g. open | filled | cancelled | rejected
    filled_quantity: int


class BrokerError(Exception):
    """The broker could not be reached or answered ambiguously: the outcome is unknown."""


class QuoteSource(Protocol):
    """Optional broker hook: a REST quote for when the feed is stale or silent (GET /quotes uses it).
    The paper broker has none (its only prices are the feed's)."""

    def quote(self, instrument) -> dict | None:
        """The latest quote of an Instrument row, shaped like the cache's (decimal strings for
        prices, ints for quantities, ISO-8601 `ts`), or None when the broker has none.
        Raises BrokerError when the broker cannot be reached."""


class TickListener(Protocol):
    """Optional broker hook: the market's ticks as the consumer receives them, for a broker that
    trades against them (the paper exchange matches its resting orders). A real broker has its
    own market and needs none."""

    def on_ticks(self, ticks: list[dict]) -> None:
        """Apply one message's ticks; what they cause goes out as events. Raises on a transient
        failure (the consumer retries the message)."""


class Broker(Protocol):
    """A broker may also implement QuoteSource and TickListener."""

    name: str

    def place(self, request: OrderRequest) -> str:
        """Send the order; returns the broker order id. Not every broker dedupes on request.order_id
        (paper does, XTS does not): the caller looks the order up before any resend, and a broker
        that cannot dedupe refuses a resend (BrokerError) while an earlier attempt may still land."""

    def cancel(self, order_id: uuid.UUID) -> None:
        """Ask the broker to cancel; the answer arrives as an event."""

    def modify(self, request: ModifyRequest) -> None:
        """Ask the broker to change a working order; `order.modified` or `order.modify_rejected` answers."""

    def lookup(self, order_id: uuid.UUID) -> BrokerOrder | None:
        """The broker's record of our order, or None when it never arrived."""
