"""Our models, one module per aggregate; importing this package registers them all. The paper
exchange's own book is tradingapp/brokers/paper/models.py (migrations/env.py registers it too)."""

from tradingapp.models.broker_accounts import BrokerAccount, BrokerAccountEvent
from tradingapp.models.instruments import Instrument
from tradingapp.models.market import Candle1m, Tick
from tradingapp.models.order_records import Order, OrderEvent
from tradingapp.models.risk import Account, AdminAction, RiskSettings
from tradingapp.models.trading import Position, ProcessedEvent, Trade
from tradingapp.models.users import ROLES, RevokedSession, User
from tradingapp.models.watchlists import Watchlist, WatchlistItem

__all__ = [
    "Account",
    "AdminAction",
    "BrokerAccount",
    "BrokerAccountEvent",
    "Candle1m",
    "Instrument",
    "Order",
    "OrderEvent",
    "Position",
    "ProcessedEvent",
    "ROLES",
    "RevokedSession",
    "RiskSettings",
    "Tick",
    "Trade",
    "User",
    "Watchlist",
    "WatchlistItem",
]
