"""The REST API's request and response shapes, declared once (pydantic v2): the OpenAPI document is
built from them (api/openapi.py) and every declared response goes out through its shape (`dump`).
Enumerations and limits come from the domain, the quote from domain/quotes.py.

Request bodies are checked by the domain's and services' validators, whose messages clients rely
on; the body shapes here document them (tests/api/test_openapi.py holds the field names together).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from tradingapp.domain import margin
from tradingapp.domain.order_lifecycle import Status
from tradingapp.domain.quotes import Quote as QuoteShape
from tradingapp.domain.risk import TradingState
from tradingapp.domain.risk_limits import Limits
from tradingapp.domain.validation import ORDER_TYPES, PRODUCTS, SIDES, TIMES_IN_FORCE
from tradingapp.models.broker_accounts import BROKERS
from tradingapp.models.users import ROLES
from tradingapp.services.accounts import broker_accounts, users, watchlists


def one_of(values) -> Any:
    return Literal[tuple(str(v) for v in values)]


Dec = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["101.25"])]
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
Uuid = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
Object = dict[str, Any]
Side = one_of(SIDES)
Role = one_of(ROLES)
State = one_of(TradingState)


class Shape(BaseModel):
    """A body as clients see it: nothing undeclared."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def dump(cls, data: Any) -> dict:
        """`data` checked against this shape and made JSON-ready. A mismatch is a bug in the code
        that built `data` (a 500); every route's tests go through here."""
        return cls.model_validate(data).model_dump(mode="json", by_alias=True, exclude_unset=True)


def items_of(item: Any, name: str, page: bool = False, **more: Any) -> type[Shape]:
    fields = {"items": (list[item], ...), **more}
    if page:
        fields["next_cursor"] = (str | None, ...)
    return create_model(name, __base__=Shape, **fields)


# -- errors, users, tokens ------------------------------------------------------------------------
class ErrorBody(Shape):
    code: str
    message: str
    details: Object


class Error(Shape):
    error: ErrorBody


class User(Shape):
    id: Uuid
    email: str
    name: str
    role: Role


class AdminUser(User):
    active: bool
    created_at: Time


class Tokens(Shape):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class Register(Shape):
    email: Annotated[str, Field(max_length=users.MAX_EMAIL)]
    password: Annotated[str, Field(min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD)]
    name: Annotated[str, Field(max_length=users.MAX_NAME)] = None


class Login(BaseModel):  # other fields are ignored
    email: str
    password: str


class UserChange(Shape):
    role: Role = None
    active: bool = None


# -- instruments, candles, quotes -----------------------------------------------------------------
class Instrument(Shape):
    id: int
    exchange_segment: str
    exchange_instrument_id: int
    symbol: str
    name: str
    series: str
    lot_size: int
    tick_size: Dec
    expiry: Day | None
    strike: Dec | None
    option_type: str | None
    freeze_quantity: int | None
    active: bool = Field(description="false: no longer in the broker's instrument master; no new orders")


class Candle(Shape):
    ts: Time
    open: Dec
    high: Dec
    low: Dec
    close: Dec
    volume: int


_QUOTE_NOTES = {
    "close": "the previous session's close, the reference of the day's change: change = ltp - close, % change ="
    " change / close x 100 (XTS: the touchline's Close, from which XTS computes its own PercentChange; paper"
    " feed: the last price of the previous UTC day the feed ran, else its opening price)",
}


def _quote_field(name: str, kind: Any) -> tuple:
    shape = {str: Time if name == "ts" else Dec, str | None: Dec | None}.get(kind, kind)
    return shape, Field(description=_QUOTE_NOTES.get(name))


# GET /quotes' item: the domain's Quote, and whether its feed has gone silent.
Quote = create_model(
    "Quote",
    __base__=Shape,
    **{name: _quote_field(name, kind) for name, kind in get_type_hints(QuoteShape).items()},
    stale=(bool, Field(description="the feed has been silent past QUOTE_STALE_AFTER")),
)


# -- orders, trades, positions --------------------------------------------------------------------
class NewOrder(Shape):
    instrument_id: int
    side: Side
    quantity: Annotated[int, Field(ge=1)]
    order_type: one_of(ORDER_TYPES)
    limit_price: Dec = None
    stop_price: Dec = None
    product: one_of(PRODUCTS) = None
    time_in_force: one_of(TIMES_IN_FORCE) = None
    client_order_id: Annotated[str, Field(max_length=64)] = None


class ModifyOrder(Shape):
    quantity: Annotated[int, Field(ge=1)] = None
    limit_price: Dec = None
    stop_price: Dec = None


class Order(Shape):
    id: Uuid
    client_order_id: str | None
    broker_order_id: str | None
    instrument_id: int
    symbol: str
    exchange_segment: str
    side: Side
    quantity: int
    filled_quantity: int
    average_price: Dec | None
    order_type: str
    limit_price: Dec | None
    stop_price: Dec | None
    product: str
    time_in_force: str
    status: one_of(Status)
    reject_reason: str | None
    created_at: Time
    updated_at: Time


class OrderEvent(Shape):
    id: int
    order_id: Uuid
    ts: Time
    actor: Literal["user", "system", "broker"]
    actor_id: str | None
    event: str
    from_status: str | None
    to_status: str | None
    reason: str | None
    details: Object


class OrderEstimate(Shape):
    required_margin: Dec = Field(description="margin the order adds (0 for the part that closes)")
    available: Dec
    sufficient: bool = Field(description="the risk engine's funds rule would pass")
    price: Dec = Field(description="the price the order is valued at (limit, stop, else last)")


class Trade(Shape):
    id: Uuid
    order_id: Uuid
    instrument_id: int
    side: Side
    quantity: int
    price: Dec
    traded_at: Time


class Position(Shape):
    instrument_id: int
    symbol: str
    product: str
    quantity: int
    average_price: Dec
    last_price: Dec | None
    realized_pnl: Dec
    unrealized_pnl: Dec | None


class DayPosition(Shape):
    instrument_id: int
    symbol: str
    product: str
    day: Day
    buy_quantity: int
    buy_value: Dec
    buy_average_price: Dec | None
    sell_quantity: int
    sell_value: Dec
    sell_average_price: Dec | None
    quantity: int
    realized_pnl: Dec
    last_price: Dec | None


# -- funds, account, risk limits ------------------------------------------------------------------
Funds = create_model("Funds", __base__=Shape, **{f.name: (Dec, ...) for f in dataclasses.fields(margin.Funds)})


def _limit(name: str, kind: Any) -> Any:
    if kind is int:
        return Annotated[int, Field(ge=1)]
    if kind is Decimal:
        return Dec
    return list[one_of(PRODUCTS)] if name == "allowed_products" else list[str]


_LIMITS = {name: _limit(name, kind) for name, kind in get_type_hints(Limits).items()}
RiskLimits = create_model("RiskLimits", __base__=Shape, **{name: (kind, ...) for name, kind in _LIMITS.items()})
RiskLimitOverrides = create_model(
    "RiskLimitOverrides", __base__=Shape, **{name: (kind | None, None) for name, kind in _LIMITS.items()}
)


class RiskLimitsView(Shape):
    defaults: RiskLimits
    global_: RiskLimits = Field(alias="global")
    users: dict[str, RiskLimitOverrides]


class RiskLimitsChange(Shape):
    global_: RiskLimitOverrides = Field(None, alias="global")
    users: dict[str, RiskLimitOverrides | None] = None


class TradingStateChange(Shape):
    active: bool = None
    state: State = None
    user_id: Uuid = None
    reason: Annotated[str, Field(max_length=200)] = None


class Account(Shape):
    user_id: Uuid
    trading_state: State
    user_trading_state: State
    global_trading_state: State
    state_reason: str | None
    global_state_reason: str | None
    session_day: Day
    orders_today: int
    limits: RiskLimits


# -- broker accounts ------------------------------------------------------------------------------
def _credential(name: str, secret: bool = False) -> Any:
    low, high = broker_accounts.LENGTHS[name]
    extra = {"writeOnly": True} if secret else None
    pattern = f"^{broker_accounts.VISIBLE_ASCII.pattern}$"
    return Annotated[str, Field(pattern=pattern, min_length=low, max_length=high, json_schema_extra=extra)]


class BrokerAccount(Shape):
    id: Uuid
    broker: one_of(BROKERS)
    label: str
    app_key_masked: str = Field(examples=["****a1b2"])
    has_secret: bool
    client_id: str | None
    md_app_key_masked: str | None
    has_md_secret: bool
    active: bool
    created_at: Time
    updated_at: Time


class NewBrokerAccount(Shape):
    broker: one_of(BROKERS) = BROKERS[0]
    app_key: _credential("app_key")
    secret_key: _credential("secret_key", secret=True)
    client_id: _credential("client_id") = None
    md_app_key: _credential("md_app_key") = None
    md_secret_key: _credential("md_secret_key", secret=True) = None
    label: Annotated[str, Field(max_length=broker_accounts.LABEL_MAX)] = None


class BrokerAccountSecrets(Shape):
    app_key: _credential("app_key") = None
    secret_key: _credential("secret_key", secret=True) = None
    md_app_key: _credential("md_app_key") = None
    md_secret_key: _credential("md_secret_key", secret=True) = None


# -- watchlists -----------------------------------------------------------------------------------
WatchlistName = Annotated[str, Field(min_length=1, max_length=watchlists.NAME_MAX)]


class Watchlist(Shape):
    id: Uuid
    name: WatchlistName
    position: int
    instruments: Annotated[list[Instrument], Field(max_length=watchlists.MAX_INSTRUMENTS)]


class NewWatchlist(Shape):
    name: WatchlistName


class WatchlistChange(Shape):
    name: WatchlistName = None
    instrument_ids: Annotated[
        list[int], Field(max_length=watchlists.MAX_INSTRUMENTS, json_schema_extra={"uniqueItems": True})
    ] = None


# -- server ---------------------------------------------------------------------------------------
class MarketSession(Shape):
    open: bool
    opens_at: Time = Field(description="start of the session under way, else of the next")
    closes_at: Time = Field(description="end of the session under way, else of the next")


class Meta(Shape):
    server_time: Time = Field(description="the server's clock, UTC with milliseconds")
    timezone: str = Field(examples=["Asia/Kolkata"], description="SESSION_TIMEZONE")
    market: MarketSession
    registration_open: bool
    broker: Literal["paper", "xts"]
    websocket_url: str | None = Field(
        description="WEBSOCKET_PUBLIC_URL; null: ws(s)://<the page's host>:websocket_port/ws"
    )
    websocket_port: int
    version: str


class StaleQuotes(Shape):
    count: int
    instrument_ids: list[int]


class Readiness(Shape):
    status: str
    checks: dict[str, str]
    stale_quotes: StaleQuotes | None


# -- lists and pages ------------------------------------------------------------------------------
InstrumentPage = items_of(Instrument, "InstrumentPage", page=True)
OrderPage = items_of(Order, "OrderPage", page=True)
TradePage = items_of(Trade, "TradePage", page=True)
CandleList = items_of(Candle, "CandleList")
OrderEventList = items_of(OrderEvent, "OrderEventList")
PositionList = items_of(Position | DayPosition, "PositionList")
AdminUserList = items_of(AdminUser, "AdminUserList")
BrokerAccountList = items_of(BrokerAccount, "BrokerAccountList")
WatchlistList = items_of(Watchlist, "WatchlistList")
QuoteList = items_of(Quote, "QuoteList", missing=(list[int], ...))


class CancelledOrders(Shape):
    cancelled: list[Uuid]


class ClosedPositions(Shape):
    orders: list[Order]
    skipped: list[Object]
