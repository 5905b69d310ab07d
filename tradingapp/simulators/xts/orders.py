"""The records the simulated broker keeps: an order (its XTS life cycle's fields), its fills, and a
position. The exchange (exchange.py) changes them; rows.py prints them in XTS's shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradingapp.simulators.xts.instruments import Instrument


@dataclass
class Fill:
    execution_id: str
    price: Decimal
    quantity: int
    time: datetime
    status: str
    cum_qty: int
    leaves_qty: int
    avg_price: Decimal


@dataclass
class Order:
    app_order_id: int
    login_id: str
    client_id: str
    instrument: Instrument
    side: str
    order_type: str
    product: str
    tif: str
    quantity: int
    disclosed_qty: int
    limit_price: Decimal
    stop_price: Decimal
    unique_id: str
    created_at: datetime
    updated_at: datetime
    status: str = "PendingNew"
    exchange_order_id: str = ""
    exchange_time: datetime | None = None
    cum_qty: int = 0
    avg_price: Decimal = Decimal(0)
    reason: str = ""
    triggered: bool = False
    resting: bool = False
    pending_change: dict | None = None
    history: list[dict] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)

    @property
    def leaves_qty(self) -> int:
        return self.quantity - self.cum_qty

    @property
    def is_stop(self) -> bool:
        return self.order_type in ("STOPMARKET", "STOPLIMIT")


@dataclass
class Position:
    login_id: str
    client_id: str
    instrument: Instrument
    product: str
    buy_qty: int = 0
    sell_qty: int = 0
    buy_amount: Decimal = Decimal(0)
    sell_amount: Decimal = Decimal(0)
