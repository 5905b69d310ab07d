"""The REST API's request and response shapes, declared once (pydantic v2): the OpenAPI document is
built from them (api/openapi.py), every request body and query is checked against its shape before
the view runs (400 when it does not match), and every declared response goes out through its shape
(`dump`). Enumerations and limits come from the domain, the quote from domain/quotes.py.

A request that matches its shape may still be refused by the domain's and services' rules that
depend on stored data (a lot size, a tick size, a known user): that is a 422 (README, "API").
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Annotated, Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from tradingapp.api.pagination import MAX_LIMIT
from tradingapp.domain import margin, risk_limits, validation
from tradingapp.domain.candles import INTERVALS
from tradingapp.domain.order_lifecycle import Status
from tradingapp.domain.quotes import Quote as QuoteShape
from tradingapp.domain.risk import TradingState
from tradingapp.domain.risk_limits import Limits
from tradingapp.domain.validation import ORDER_TYPES, PRODUCTS, SIDES, TIMES_IN_FORCE
from tradingapp.models.broker_accounts import BROKERS
from tradingapp.models.users import ROLES
from tradingapp.services.accounts import broker_accounts, users, watchlists
from tradingapp.services.accounts.positions import VIEWS


def one_of(values) -> Any:
    return Literal[tuple(str(v) for v in values)]


Dec = Annotated[str, Field(pattern=r"^-?\d+(\.\d+)?$", examples=["101.25"])]


def positive_decimal(high: int, places: int, zero: bool = False) -> Any:
    """A decimal string above 0 (or from 0, `zero`) up to `high` (a power of ten) with at most
    `places` decimals, as the domain reads one: the range spelled as a pattern, since JSON Schema
    bounds only numbers."""
    digits = len(str(high)) - 1
    fraction = rf"(\.[0-9]{{1,{places}}})?"
    below_one = "|".join(
        rf"0\.{'0' * zeros}[1-9]" + (f"[0-9]{{0,{places - zeros - 1}}}" if zeros < places - 1 else "")
        for zeros in range(places)
    )
    parts = [rf"[1-9][0-9]{{0,{digits - 1}}}{fraction}", rf"{high}(\.0{{1,{places}}})?"]
    parts.append(rf"0{fraction}" if zero else below_one)
    return Annotated[str, Field(pattern=f"^({'|'.join(parts)})$", examples=["101.25"])]


Price = positive_decimal(int(validation.MAX_PRICE), validation.PRICE_DECIMALS)
Amount = positive_decimal(int(risk_limits.MAX_AMOUNT), risk_limits.AMOUNT_DECIMALS)
Percent = positive_decimal(100, risk_limits.AMOUNT_DECIMALS, zero=True)
InstrumentId = Annotated[int, Field(ge=1, le=validation.MAX_ID)]
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"  # no control characters (Unicode category Cc)
NO_NUL = r"^[^\x00]*$"  # no field takes a NUL (tradingapp/http.py refuses it in any body or query)
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
Day = Annotated[str, Field(json_schema_extra={"format": "date"})]
Uuid = Annotated[
    str, Field(pattern=r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$", json_schema_extra={"format": "uuid"})
]
Object = dict[str, Any]
Side = one_of(SIDES)
Role = one_of(ROLES)
State = one_of(TradingState)


class Shape(BaseModel):
    """A body as clients see it: nothing undeclared, and no null where a field is not nullable."""

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


# An address as services/accounts/users.py reads one: trimmed, then EMAIL_RE (and no control character).
EMAIL = r"^\s*[^@\s\x00-\x1f\x7f]+@[^@\s.\x00-\x1f\x7f]+(\.[^@\s.\x00-\x1f\x7f]+)+\s*$"


class Register(Shape):
    email: Annotated[str, Field(max_length=users.MAX_EMAIL, pattern=EMAIL)]
    password: Annotated[str, Field(min_length=users.MIN_PASSWORD, max_length=users.MAX_PASSWORD, pattern=NO_NUL)]
    name: Annotated[str, Field(max_length=users.MAX_NAME, pattern=NO_NUL)] = None


class RegisterAccepted(Shape):
    """The same for a new email and a taken one: the answer reveals no account."""

    status: Literal["accepted"]
    message: str


class Login(Shape):
    email: Annotated[str, Field(min_length=1, pattern=NO_NUL)]
    password: Annotated[str, Field(min_length=1, pattern=NO_NUL)]


class UserChange(Shape):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

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
Quantity = Annotated[int, Field(ge=1, le=validation.MAX_QUANTITY)]
ClientOrderId = Annotated[str, Field(pattern=validation.CLIENT_ORDER_ID.pattern)]


def _prices_by_order_type() -> list[dict]:
    """Which of limit_price and stop_price each order type requires and forbids (domain/validation.py)."""
    rules = []
    for order_type in ORDER_TYPES:
        needs = [f"{kind}_price" for kind in ("limit", "stop") if kind in order_type.lower().split("_")]
        forbids = [name for name in ("limit_price", "stop_price") if name not in needs]
        then: dict = {"required": needs}
        if forbids:
            then["not"] = {"anyOf": [{"required": [name]} for name in forbids]}
        rules.append({"if": {"properties": {"order_type": {"const": order_type}}}, "then": then})
    return rules


class NewOrder(Shape):
    model_config = ConfigDict(json_schema_extra={"allOf": _prices_by_order_type()})

    instrument_id: InstrumentId
    side: Side
    quantity: Quantity
    order_type: one_of(ORDER_TYPES)
    limit_price: Price = None
    stop_price: Price = None
    product: one_of(PRODUCTS) = None
    time_in_force: one_of(TIMES_IN_FORCE) = None
    client_order_id: ClientOrderId = None


class ModifyOrder(Shape):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    quantity: Quantity = None
    limit_price: Price = None
    stop_price: Price = None


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
    """A limit as domain/risk_limits.py parses it: its parser (PARSERS) by name."""
    if kind is int:
        return Annotated[int, Field(ge=1, le=risk_limits.MAX_INT)]
    if kind is Decimal:
        return Percent if name.endswith("_percent") else Amount
    if name == "allowed_products":
        return Annotated[list[one_of(PRODUCTS)], Field(min_length=1)]
    segment = Annotated[str, Field(pattern=risk_limits.SEGMENT_RE.pattern)]
    return Annotated[list[segment], Field(min_length=1)]


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
    users: dict[Uuid, RiskLimitOverrides | None] = None


class TradingStateChange(Shape):
    """Exactly one of active and state."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["active"]}, {"required": ["state"]}]})

    active: bool = None
    state: State = None
    user_id: Uuid = None
    reason: Annotated[str, Field(max_length=200, pattern=NO_NUL)] = None


class TradingStateEntry(Shape):
    trading_state: State
    reason: str | None


class UserTradingState(TradingStateEntry):
    user_id: Uuid


class TradingStates(Shape):
    global_: TradingStateEntry = Field(alias="global")
    users: list[UserTradingState] = Field(description="every user not ACTIVE")


class TradingStateSet(Shape):
    user_id: Uuid | None = Field(description="null: the global state")
    trading_state: State
    previous: State
    reason: str


class AdminAction(Shape):
    id: int
    ts: Time
    admin_id: Uuid
    action: str
    target: str
    before: Object | None
    after: Object | None


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
    """md_app_key and md_secret_key come together."""

    model_config = ConfigDict(
        json_schema_extra={"dependentRequired": {"md_app_key": ["md_secret_key"], "md_secret_key": ["md_app_key"]}}
    )

    broker: one_of(BROKERS) = BROKERS[0]
    app_key: _credential("app_key")
    secret_key: _credential("secret_key", secret=True)
    client_id: _credential("client_id") = None
    md_app_key: _credential("md_app_key") = None
    md_secret_key: _credential("md_secret_key", secret=True) = None
    label: Annotated[str, Field(max_length=broker_accounts.LABEL_MAX, pattern=NO_CONTROL)] = None


class BrokerAccountSecrets(Shape):
    """secret_key (with app_key when it changed) and/or md_secret_key (with md_app_key)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": ["secret_key"]}, {"required": ["md_secret_key"]}],
            "dependentRequired": {"app_key": ["secret_key"], "md_app_key": ["md_secret_key"]},
        }
    )

    app_key: _credential("app_key") = None
    secret_key: _credential("secret_key", secret=True) = None
    md_app_key: _credential("md_app_key") = None
    md_secret_key: _credential("md_secret_key", secret=True) = None


# -- watchlists -----------------------------------------------------------------------------------
# 1 to NAME_MAX characters once trimmed, no control characters (services/accounts/watchlists.py).
_NAME_CHAR, _NAME_EDGE = r"[^\x00-\x1f\x7f-\x9f]", r"[^\x00-\x1f\x7f-\x9f\s]"
WatchlistName = Annotated[
    str, Field(pattern=rf"^\s*{_NAME_EDGE}({_NAME_CHAR}{{0,{watchlists.NAME_MAX - 2}}}{_NAME_EDGE})?\s*$")
]


class Watchlist(Shape):
    id: Uuid
    name: WatchlistName
    position: int
    instruments: Annotated[list[Instrument], Field(max_length=watchlists.MAX_INSTRUMENTS)]


class NewWatchlist(Shape):
    name: WatchlistName


class WatchlistChange(Shape):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: WatchlistName = None
    instrument_ids: Annotated[
        list[InstrumentId], Field(max_length=watchlists.MAX_INSTRUMENTS, json_schema_extra={"uniqueItems": True})
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


# -- query parameters -----------------------------------------------------------------------------
MAX_QUOTE_IDS = 100


class Query(Shape):
    """Every query parameter of the API, by name: a route names the ones it takes (`@doc(params=)`);
    a field without a default is required wherever it is taken. An array goes as one comma-separated
    value (style form, explode false)."""

    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = None
    cursor: Annotated[str, Field(pattern=NO_NUL, description="next_cursor of the previous page")] = None
    status: Annotated[list[one_of(Status)], Field(min_length=1)] = None
    instrument_id: InstrumentId = None
    order_id: Uuid = None
    view: one_of(VIEWS) = None
    q: Annotated[str, Field(pattern=NO_NUL, description="text in the symbol or name")] = None
    exchange_segment: Annotated[str, Field(pattern=NO_NUL)] = None
    include_inactive: bool = None
    interval: one_of(INTERVALS) = None
    start: Time = None
    end: Time = None
    instrument_ids: Annotated[list[InstrumentId], Field(min_length=1, max_length=MAX_QUOTE_IDS)]


# -- lists and pages ------------------------------------------------------------------------------
InstrumentPage = items_of(Instrument, "InstrumentPage", page=True)
OrderPage = items_of(Order, "OrderPage", page=True)
TradePage = items_of(Trade, "TradePage", page=True)
CandleList = items_of(Candle, "CandleList")
OrderEventList = items_of(OrderEvent, "OrderEventList")
PositionList = items_of(Position | DayPosition, "PositionList")
AdminUserList = items_of(AdminUser, "AdminUserList")
AdminActionList = items_of(AdminAction, "AdminActionList")
BrokerAccountList = items_of(BrokerAccount, "BrokerAccountList")
WatchlistList = items_of(Watchlist, "WatchlistList")
QuoteList = items_of(Quote, "QuoteList", missing=(list[int], ...))


class CancelledOrders(Shape):
    cancelled: list[Uuid]


class ClosedPositions(Shape):
    orders: list[Order]
    skipped: list[Object]
