"""XTS order and trade rows -> our broker events (tradingapp/events.py). Pure functions, no I/O.
Tolerant of what deployments vary in, strict about the rest (XtsResponseError); event ids are
deterministic per broker fact; fills come from trade rows only. The id table and the reasons:
docs/xts.md, "XTS rows to broker events".
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from tradingapp import events as ev
from tradingapp.brokers.xts import untrusted
from tradingapp.brokers.xts.errors import XtsResponseError
from tradingapp.brokers.xts.untrusted import MAX_ID

BROKER = "xts"
IST = timezone(timedelta(hours=5, minutes=30), "IST")
ORDER_MESSAGE, TRADE_MESSAGE = 9004, 9005

# XTS statuses by their lower-case spelling.
PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED = "PendingNew", "New", "PartiallyFilled", "Filled"
CANCELLED, REJECTED, EXPIRED = "Cancelled", "Rejected", "Expired"
PENDING_CANCEL, PENDING_REPLACE, REPLACED = "PendingCancel", "PendingReplace", "Replaced"
STATUSES = {
    s.lower(): s
    for s in (
        PENDING_NEW,
        NEW,
        PARTIALLY_FILLED,
        FILLED,
        CANCELLED,
        REJECTED,
        EXPIRED,
        PENDING_CANCEL,
        PENDING_REPLACE,
        REPLACED,
    )
}
# The broker holds the order: order.accepted. PendingNew too, as the place's own answer ("Request
# sent", the order still PendingNew) is the acknowledgement; an RMS reject follows as order.rejected.
HELD = {PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED, PENDING_CANCEL, PENDING_REPLACE, REPLACED}
TERMINAL_EVENTS = {REJECTED: ev.REJECTED, CANCELLED: ev.CANCELLED, EXPIRED: ev.EXPIRED}
TERMINAL = {FILLED, *TERMINAL_EVENTS}
# BrokerOrder.status words (jobs/order_jobs.py reads filled/cancelled/rejected/expired as finished).
STATUS_WORDS = {
    PENDING_NEW: "pending",
    FILLED: "filled",
    CANCELLED: "cancelled",
    REJECTED: "rejected",
    EXPIRED: "expired",
}

# Order types: ours <-> XTS. STOP is a stop-market order.
TO_XTS_ORDER_TYPE = {"MARKET": "MARKET", "LIMIT": "LIMIT", "STOP": "STOPMARKET", "STOP_LIMIT": "STOPLIMIT"}
FROM_XTS_ORDER_TYPE = {xts.lower(): ours for ours, xts in TO_XTS_ORDER_TYPE.items()}
SIDES = {"buy": "BUY", "sell": "SELL"}
WITH_LIMIT, WITH_STOP = {"LIMIT", "STOP_LIMIT"}, {"STOP", "STOP_LIMIT"}

UNSET_DATES = ("1980-01-01", "01-01-1980")
REASON_CHARS = 200  # a CancelRejectReason kept (events and logs carry it)
_ISO = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$")
_DMY = re.compile(r"^(\d{2})-(\d{2})-(\d{4})[ T](\d{2}):(\d{2}):(\d{2})$")
_SEPARATORS = re.compile(r"[\s_\-]")


# -- values ----------------------------------------------------------------------------------
def parse_time(value: object) -> datetime | None:
    """An XTS time as aware UTC: ISO-like ('2020-12-29T13:12:36.8657664', optionally with an offset)
    or '14-05-2021 11:17:29'; no offset means IST. The unset time (1980-01-01) and '' are None."""
    text = untrusted.text(value, "time", limit=64)
    if not text or text.startswith(UNSET_DATES):
        return None
    match = _ISO.match(text)
    if match:
        year, month, day, hour, minute, second, fraction, offset = match.groups()
    else:
        match = _DMY.match(text)
        if not match:
            raise XtsResponseError(f"unreadable time {text[:40]!r}")
        day, month, year, hour, minute, second = match.groups()
        fraction = offset = None
    try:
        zone = IST if not offset else _offset(offset)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, zone)
    except ValueError:
        raise XtsResponseError(f"unreadable time {text[:40]!r}") from None
    return moment.astimezone(UTC)


def _offset(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def to_int(value: object, name: str, minimum: int = 0, maximum: int = untrusted.MAX_QUANTITY) -> int:
    """An integer sent as a number or a string ('10', '10.0' too), from `minimum` to `maximum`;
    bools, fractions, and anything past the bounds refused before it is converted."""
    return untrusted.whole(value, name, minimum, maximum)


def to_decimal(value: object, name: str, blank_ok: bool = False) -> Decimal | None:
    """A price sent as a number or a string, thousands separators allowed ('2,853.50'); '' is None
    where the field may be empty (OrderAverageTradedPrice before a fill). Never negative."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if blank_ok:
            return None
        raise XtsResponseError(f"{name} is missing")
    number = untrusted.number(value, name)
    if number < 0:
        raise XtsResponseError(f"{name} is negative: {untrusted.shown(value)}")
    return number


def enum(value: object, table: dict[str, str], name: str) -> str:
    key = _SEPARATORS.sub("", untrusted.text(value, name, limit=40)).lower()
    if key not in table:
        raise XtsResponseError(f"unknown {name} {untrusted.shown(value)}")
    return table[key]


def our_order_id(value: object) -> uuid.UUID | None:
    """The order id we sent as orderUniqueIdentifier, or None for anyone else's identifier (or for
    a value that is no identifier at all: a list, an object, a number)."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip()
    try:
        order_id = uuid.UUID(text)
    except ValueError:
        return None
    return order_id if str(order_id) == text.lower() else None


def plain(value: Decimal | None) -> str:
    """A decimal as the same text whatever its exponent (2850, 2850.0 and '2850.00' alike)."""
    if value is None:
        return "-"
    return format(value.normalize(), "f")


# -- rows ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderRow:
    app_order_id: int
    order_id: uuid.UUID | None  # ours; None for an order that is not ours
    status: str  # canonical XTS spelling (STATUSES)
    side: str  # BUY | SELL
    order_type: str  # ours: MARKET | LIMIT | STOP | STOP_LIMIT
    quantity: int
    filled_quantity: int  # CumulativeQuantity
    limit_price: Decimal
    stop_price: Decimal
    average_price: Decimal | None
    reason: str
    sequence: int | None
    updated_at: datetime | None
    exchange_time: datetime | None
    exchange_segment: str
    exchange_instrument_id: int | None

    @property
    def broker_order_id(self) -> str:
        return str(self.app_order_id)

    @property
    def terms(self) -> tuple[int, Decimal | None, Decimal | None]:
        """(quantity, limit price, stop price) as our order holds them: prices only where they apply."""
        limit = self.limit_price if self.order_type in WITH_LIMIT else None
        stop = self.stop_price if self.order_type in WITH_STOP else None
        return self.quantity, limit, stop

    def order_key(self) -> tuple:
        """Freshness: SequenceNumber, else the update time."""
        return (self.sequence if self.sequence is not None else -1, self.updated_at or datetime.min.replace(tzinfo=UTC))


@dataclass(frozen=True)
class TradeRow:
    order: OrderRow
    execution_id: str
    price: Decimal
    quantity: int
    traded_at: datetime | None


def _loads(raw: object) -> dict:
    """A row as the REST answer or the socket sends it (a JSON string of at most MAX_EVENT_CHARS):
    a dict with lower-case keys."""
    if isinstance(raw, str | bytes):
        raw = untrusted.loads(raw, "row", limit=untrusted.MAX_EVENT_CHARS)
    if not isinstance(raw, dict):
        raise XtsResponseError(f"row is not an object but {type(raw).__name__}")
    return {str(k).lower(): v for k, v in raw.items()}


def _need(row: dict, name: str) -> object:
    value = row.get(name.lower())
    if value is None:
        raise XtsResponseError(f"row has no {name}")
    return value


def parse_order_row(raw: object) -> OrderRow:
    """An order row (trade rows carry the same fields). Raises XtsResponseError when unreadable."""
    row = _loads(raw)
    try:
        app_order_id = to_int(_need(row, "AppOrderID"), "AppOrderID", 1, MAX_ID)
        quantity = to_int(_need(row, "OrderQuantity"), "OrderQuantity", 1)
        filled = to_int(_need(row, "CumulativeQuantity"), "CumulativeQuantity")
        ex_id, sequence = row.get("exchangeinstrumentid"), row.get("sequencenumber")
        parsed = OrderRow(
            app_order_id=app_order_id,
            order_id=our_order_id(_need(row, "OrderUniqueIdentifier")),
            status=enum(_need(row, "OrderStatus"), STATUSES, "OrderStatus"),
            side=enum(_need(row, "OrderSide"), SIDES, "OrderSide"),
            order_type=enum(_need(row, "OrderType"), FROM_XTS_ORDER_TYPE, "OrderType"),
            quantity=quantity,
            filled_quantity=filled,
            limit_price=to_decimal(row.get("orderprice", 0), "OrderPrice"),
            stop_price=to_decimal(row.get("orderstopprice", 0), "OrderStopPrice"),
            average_price=to_decimal(row.get("orderaveragetradedprice"), "OrderAverageTradedPrice", blank_ok=True),
            reason=untrusted.text(row.get("cancelrejectreason"), "CancelRejectReason")[:REASON_CHARS],
            sequence=None if sequence in (None, "") else to_int(sequence, "SequenceNumber", 0, MAX_ID),
            updated_at=parse_time(_need(row, "LastUpdateDateTime")),
            exchange_time=parse_time(row.get("exchangetransacttime")),
            exchange_segment=untrusted.text(row.get("exchangesegment"), "ExchangeSegment", limit=16),
            exchange_instrument_id=None if ex_id in (None, "") else to_int(ex_id, "ExchangeInstrumentID", 1, MAX_ID),
        )
    except XtsResponseError as exc:
        raise XtsResponseError(f"order row {untrusted.shown(row.get('apporderid'))}: {exc}") from None
    if filled > quantity:
        raise XtsResponseError(f"order row {app_order_id}: CumulativeQuantity {filled} > OrderQuantity {quantity}")
    return parsed


def parse_trade_row(raw: object) -> TradeRow:
    """A trade row: the order's fields plus ExecutionID, LastTradedPrice, LastTradedQuantity."""
    order = parse_order_row(raw)
    row = _loads(raw)
    try:
        execution_id = untrusted.text(_need(row, "ExecutionID"), "ExecutionID", limit=64)
        if not execution_id:
            raise XtsResponseError("ExecutionID is empty")
        price = to_decimal(_need(row, "LastTradedPrice"), "LastTradedPrice")
        quantity = to_int(_need(row, "LastTradedQuantity"), "LastTradedQuantity", 1)
        if price <= 0:
            raise XtsResponseError(f"LastTradedPrice is not positive: {price}")
        traded_at = parse_time(row.get("lastexecutiontransacttime")) or order.exchange_time or order.updated_at
    except XtsResponseError as exc:
        raise XtsResponseError(f"trade row of order {order.app_order_id}: {exc}") from None
    return TradeRow(order=order, execution_id=execution_id, price=price, quantity=quantity, traded_at=traded_at)


# -- events ----------------------------------------------------------------------------------
def _event(type_: str, row: OrderRow, event_id: str, ts: datetime | None, **extra) -> dict:
    return ev.make_event(type_, row.order_id, BROKER, row.broker_order_id, event_id, ts=ts, **extra)


def accepted_event(row: OrderRow) -> dict:
    return _event(ev.ACCEPTED, row, f"xts:accepted:{row.app_order_id}", row.exchange_time or row.updated_at)


def modified_event(row: OrderRow) -> dict:
    if row.updated_at is None:
        raise XtsResponseError(f"order row {row.app_order_id}: Replaced without LastUpdateDateTime")
    quantity, limit, stop = row.terms
    if quantity <= 0 or (limit is not None and limit <= 0) or (stop is not None and stop <= 0):
        raise XtsResponseError(f"order row {row.app_order_id}: Replaced with terms {quantity} {limit} {stop}")
    stamp = int(row.updated_at.timestamp())
    event_id = f"xts:modified:{row.app_order_id}:{quantity}:{plain(limit)}:{plain(stop)}:{stamp}"
    return _event(ev.MODIFIED, row, event_id, row.updated_at, quantity=quantity, limit_price=limit, stop_price=stop)


def terminal_event(row: OrderRow) -> dict:
    type_ = TERMINAL_EVENTS[row.status]
    reason = row.reason or (f"{row.status.lower()} by the broker" if row.status == REJECTED else None)
    return _event(type_, row, f"xts:{type_.split('.', 1)[1]}:{row.app_order_id}", row.updated_at, reason=reason)


def fill_event(trade: TradeRow) -> dict:
    row = trade.order
    return _event(
        ev.FILL,
        row,
        f"xts:fill:{row.app_order_id}:{trade.execution_id}",
        trade.traded_at,
        execution_id=trade.execution_id,
        quantity=trade.quantity,
        price=trade.price,
    )


def order_row_events(row: OrderRow) -> list[dict]:
    """The events one order row states (a socket `order` event): accepted while the broker holds
    the order, modified for Replaced, rejected/cancelled/expired for those; never a fill (fills come
    from trade rows); nothing for someone else's order."""
    if row.order_id is None:
        return []
    if row.status in TERMINAL_EVENTS:
        return [terminal_event(row)]
    events = [accepted_event(row)] if row.status in HELD else []
    if row.status == REPLACED:
        events.append(modified_event(row))
    return events


def trade_row_events(trade: TradeRow) -> list[dict]:
    """The fill of one trade row (a socket `trade` event); nothing for someone else's order."""
    return [] if trade.order.order_id is None else [fill_event(trade)]


def row_order_id(raw: object) -> uuid.UUID | None:
    """Our order id from a row's OrderUniqueIdentifier, read before (and without) the strict parse:
    None for a row of someone else's order (placed at the broker's terminal), whatever else it
    holds. XtsResponseError only when the payload is not an object at all (it may be ours)."""
    return our_order_id(_loads(raw).get("orderuniqueidentifier"))


def book_rows(result: object, what: str) -> list:
    """A book's rows (order book, order history, trade book): a list, or the one list some
    deployments wrap in an object."""
    if isinstance(result, list):
        return result
    if isinstance(result, dict):
        lists = [value for value in result.values() if isinstance(value, list)]
        if len(lists) == 1:
            return lists[0]
    raise XtsResponseError(f"{what} answered {type(result).__name__}, not a list of rows")


def socket_events(name: str, payload: object) -> list[dict] | None:
    """Events of one interactive socket event ('order' or 'trade', payload as sent: a JSON string).
    None when the row is not one of our orders (count it: checked before the strict parse, so a
    foreign row we could not read is not an error of ours); XtsResponseError when unreadable."""
    if name in ("order", "trade") and row_order_id(payload) is None:
        return None
    if name == "order":
        row = parse_order_row(payload)
        return None if row.order_id is None else order_row_events(row)
    if name == "trade":
        trade = parse_trade_row(payload)
        return None if trade.order.order_id is None else trade_row_events(trade)
    raise XtsResponseError(f"no order events in a {name!r} socket event")


# -- one order's rows (a lookup) ---------------------------------------------------------------
@dataclass(frozen=True)
class Summary:
    app_order_id: int
    status: str  # BrokerOrder.status word: pending | open | filled | cancelled | rejected | expired
    filled_quantity: int
    latest: OrderRow


def order_events(rows: list[OrderRow], trades: list[TradeRow]) -> list[dict]:
    """Every event one order's history rows and trade rows state, in the broker's order, for a
    re-publish after a lookup. Only the latest Replaced row gives a modified event: an older one
    (an event the socket missed) would set terms the order no longer has."""
    if not rows or rows[0].order_id is None:
        return []
    ordered = sorted(rows, key=OrderRow.order_key)
    keyed: list[tuple[tuple, int, dict]] = []
    held = [r for r in ordered if r.status in HELD]
    if held:
        keyed.append((held[0].order_key(), 0, accepted_event(held[0])))
    replaced = [r for r in ordered if r.status == REPLACED]
    if replaced:
        keyed.append((replaced[-1].order_key(), 1, modified_event(replaced[-1])))
    final = [r for r in ordered if r.status in TERMINAL_EVENTS]
    if final:
        keyed.append((final[0].order_key(), 3, terminal_event(final[0])))
    seen = set()
    for trade in sorted(trades, key=lambda t: t.order.order_key()):
        if trade.execution_id not in seen and trade.order.order_id is not None:
            seen.add(trade.execution_id)
            keyed.append((trade.order.order_key(), 2, fill_event(trade)))
    return [event for _key, _rank, event in sorted(keyed, key=lambda k: (k[0], k[1]))]


def summarize(rows: list[OrderRow], trades: list[TradeRow]) -> Summary:
    """The order's standing at the broker from rows that may lag: a final status seen in any row
    wins over a later, staler one, and the filled quantity never goes below what any row or the
    trades show."""
    if not rows:
        raise XtsResponseError("no rows for the order")
    latest = max(rows, key=OrderRow.order_key)
    final = [r for r in rows if r.status in TERMINAL]
    standing = max(final, key=OrderRow.order_key) if final else latest
    traded = sum({t.execution_id: t.quantity for t in trades}.values())
    filled = max([traded, *(r.filled_quantity for r in rows)])
    status = STATUS_WORDS.get(standing.status, "open")
    return Summary(app_order_id=latest.app_order_id, status=status, filled_quantity=filled, latest=latest)
