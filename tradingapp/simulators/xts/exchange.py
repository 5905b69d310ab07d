"""The simulated broker and exchange: orders, their XTS life cycle, matching at the touch,
RMS rejects, fills and positions. Plain Python, no I/O, no timers.

The caller drives it: `accept` (the place call: an AppOrderID, nothing published yet), then
`process` (PendingNew, then Rejected by RMS or New and a first match), `request_modify` /
`complete_modify` (PendingReplace -> Replaced, the AppOrderID kept), `request_cancel` /
`complete_cancel` (PendingCancel -> Cancelled), and `match` after every price move. Every change
is published through `publish(kind, login_id, row)` with kind "order", "trade" or "position",
in the order it happened, and kept in the order's history (the order-history call).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from tradingapp.simulators.xts import rows
from tradingapp.simulators.xts.instruments import Instrument
from tradingapp.simulators.xts.market import Book, Market
from tradingapp.simulators.xts.orders import Fill, Order, Position

WORKING = {"New", "PartiallyFilled", "Replaced", "PendingReplace", "PendingCancel"}
MODIFIABLE = {"New", "PartiallyFilled", "Replaced"}
TERMINAL = {"Filled", "Cancelled", "Rejected"}
MARGIN_RATE = {"MIS": Decimal("0.2"), "NRML": Decimal("1"), "CNC": Decimal("1")}


class OrderError(Exception):
    """A request the broker refuses outright (HTTP 400), nothing changed."""


@dataclass
class RiskSettings:
    """RMS knobs: what makes an accepted order come back Rejected."""

    margin_available: Decimal = Decimal("10000000")
    max_notional: Decimal | None = None
    reject_instruments: set[tuple[str, int]] = field(default_factory=set)
    reject_next: int = 0


class Exchange:
    def __init__(self, market: Market, clock: Callable[[], datetime], publish, style: rows.RowStyle | None = None):
        self.market = market
        self.clock = clock
        self.publish = publish
        self.style = style or rows.RowStyle()
        self.risk = RiskSettings()
        self.orders: dict[int, Order] = {}
        self.trades: list[dict] = []
        self.positions: dict[tuple, Position] = {}
        self._seq = 1_000_000_000
        self._app_id = 1_100_000_000
        self._exchange_id = 1_000_000_000_000_000
        self._exec_id = 50_000_000

    # ---- publishing ------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _publish_order(self, order: Order) -> None:
        order.updated_at = self.clock()
        row = rows.order_row(order, self.style, self._next_seq())
        order.history.append(row)
        self.publish("order", order.login_id, row)

    def current_row(self, order: Order) -> dict:
        return order.history[-1] if order.history else rows.order_row(order, self.style, self._seq)

    # ---- place -----------------------------------------------------------------------------------
    def accept(self, login_id: str, client_id: str, instrument: Instrument, params: dict) -> Order:
        """The place call: the broker takes the request and answers with an AppOrderID."""
        self._app_id += 1
        now = self.clock()
        order = Order(
            app_order_id=self._app_id,
            login_id=login_id,
            client_id=client_id,
            instrument=instrument,
            side=params["orderSide"],
            order_type=params["orderType"],
            product=params["productType"],
            tif=params["timeInForce"],
            quantity=params["orderQuantity"],
            disclosed_qty=params["disclosedQuantity"],
            limit_price=params["limitPrice"],
            stop_price=params["stopPrice"],
            unique_id=params["orderUniqueIdentifier"],
            created_at=now,
            updated_at=now,
        )
        self.orders[order.app_order_id] = order
        return order

    def process(self, order: Order) -> None:
        """RMS, then the exchange: PendingNew, then Rejected or New and a first match."""
        if order.status != "PendingNew":
            return
        self._publish_order(order)
        reason = self._rms_reason(order)
        if reason:
            order.status, order.reason = "Rejected", reason
            self._publish_order(order)
            return
        self._exchange_id += 1
        order.status = "New"
        order.exchange_order_id = str(self._exchange_id)
        order.exchange_time = self.clock()
        self._publish_order(order)
        self.match(order.instrument.key)

    def _rms_reason(self, order: Order) -> str:
        ins = order.instrument
        book = self.market.book(*ins.key)
        if order.quantity % ins.lot_size:
            return f"RMS : Quantity should be in multiples of lot size {ins.lot_size}"
        if order.quantity > ins.freeze_qty:
            return f"RMS : Quantity exceeds freeze quantity {ins.freeze_qty}"
        for price in (order.limit_price, order.stop_price):
            if price and (price % ins.tick_size):
                return f"RMS : Price should be in multiples of tick size {ins.tick_size}"
        high, low = book.price_band()
        if order.order_type in ("LIMIT", "STOPLIMIT") and not (low <= order.limit_price <= high):
            return f"RMS : Price out of range, Price band {low} - {high}"
        price = order.limit_price if order.order_type in ("LIMIT", "STOPLIMIT") else book.ltp
        notional = price * order.quantity
        required = notional * MARGIN_RATE.get(order.product, Decimal(1))
        risk = self.risk
        over_notional = risk.max_notional is not None and notional > risk.max_notional
        blocked = ins.key in risk.reject_instruments
        if risk.reject_next > 0 or over_notional or blocked or required > risk.margin_available:
            risk.reject_next = max(risk.reject_next - 1, 0)
            return (
                f"RMS : Margin Exceeds for Client {order.client_id}, Required: {rows.money(required, self.style)}, "
                f"Available: {rows.money(risk.margin_available, self.style)} [Cash]"
            )
        return ""

    # ---- modify / cancel -------------------------------------------------------------------------
    def find(self, app_order_id: int, client_id: str) -> Order:
        order = self.orders.get(app_order_id)
        if order is None or order.client_id != client_id:
            raise OrderError("Order Not Found")
        return order

    def request_modify(self, order: Order, change: dict) -> None:
        if order.status not in MODIFIABLE:
            raise OrderError(f"Order is in {order.status} state, modification not allowed")
        if change["modifiedOrderQuantity"] <= order.cum_qty:
            raise OrderError("Modified quantity must be greater than the traded quantity")
        order.pending_change = change
        order.status = "PendingReplace"
        self._publish_order(order)

    def complete_modify(self, order: Order) -> None:
        change, order.pending_change = order.pending_change, None
        if change is None or order.status != "PendingReplace":
            return  # filled (or cancelled) while the modification was in flight
        order.product = change["modifiedProductType"]
        order.order_type = change["modifiedOrderType"]
        order.quantity = change["modifiedOrderQuantity"]
        order.disclosed_qty = change["modifiedDisclosedQuantity"]
        order.limit_price = change["modifiedLimitPrice"]
        order.stop_price = change["modifiedStopPrice"]
        order.tif = change["modifiedTimeInForce"]
        order.status, order.resting, order.triggered = "Replaced", False, False
        self._publish_order(order)
        self.match(order.instrument.key)

    def request_cancel(self, order: Order) -> None:
        if order.status not in MODIFIABLE and order.status != "PendingReplace":
            raise OrderError(f"Order is in {order.status} state, cancellation not allowed")
        order.status = "PendingCancel"
        self._publish_order(order)

    def complete_cancel(self, order: Order, reason: str = "") -> None:
        if order.status in TERMINAL:
            return  # filled in full before the cancel reached the exchange
        order.status, order.reason, order.pending_change = "Cancelled", reason, None
        self._publish_order(order)

    def open_orders(self, login_id: str, client_id: str, key: tuple[str, int] | None = None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.login_id == login_id
            and o.client_id == client_id
            and o.status in MODIFIABLE
            and (key is None or o.instrument.key == key)
        ]

    # ---- matching --------------------------------------------------------------------------------
    def match(self, key: tuple[str, int]) -> None:
        """Fill what the touch allows, oldest order first; IOC remainders are cancelled."""
        book = self.market.book(*key)
        for order in [o for o in self.orders.values() if o.instrument.key == key and o.status in WORKING]:
            self._match_one(order, book)
            if order.tif == "IOC" and order.status not in TERMINAL and not order.is_stop:
                self.complete_cancel(order, "IOC order: unfilled quantity cancelled")
            elif order.status not in TERMINAL:
                order.resting = True

    def _match_one(self, order: Order, book: Book) -> None:
        if order.is_stop and not order.triggered:
            hit = book.ltp >= order.stop_price if order.side == "BUY" else book.ltp <= order.stop_price
            if not hit:
                return
            order.triggered, order.resting = True, False
        buying = order.side == "BUY"
        touch, size = (book.ask, book.ask_size) if buying else (book.bid, book.bid_size)
        if size <= 0:
            return
        if order.order_type in ("LIMIT", "STOPLIMIT"):
            crossed = touch <= order.limit_price if buying else touch >= order.limit_price
            if not crossed:
                return
            price = order.limit_price if order.resting else touch
        else:
            price = touch
        lots = min(order.leaves_qty, size) // order.instrument.lot_size
        qty = lots * order.instrument.lot_size
        if qty <= 0:
            return
        if buying:
            book.ask_size -= qty
        else:
            book.bid_size -= qty
        self._fill(order, price, qty)

    def _fill(self, order: Order, price: Decimal, qty: int) -> None:
        now = self.clock()
        order.avg_price = (order.avg_price * order.cum_qty + price * qty) / (order.cum_qty + qty)
        order.cum_qty += qty
        if order.leaves_qty == 0:
            order.status = "Filled"
        elif order.status not in ("PendingCancel", "PendingReplace"):
            order.status = "PartiallyFilled"
        order.exchange_time = now
        self._exec_id += 1
        fill = Fill(str(self._exec_id), price, qty, now, order.status, order.cum_qty, order.leaves_qty, order.avg_price)
        order.fills.append(fill)
        trade = rows.trade_row(order, fill, self.style, self._next_seq())
        self.trades.append(trade)
        self.publish("trade", order.login_id, trade)
        self._publish_order(order)
        position = self._book_position(order, price, qty)
        self.publish("position", order.login_id, self.position_row(position))

    # ---- positions -------------------------------------------------------------------------------
    def _book_position(self, order: Order, price: Decimal, qty: int) -> Position:
        key = (order.login_id, order.client_id, order.instrument.key, order.product)
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Position(order.login_id, order.client_id, order.instrument, order.product)
        if order.side == "BUY":
            pos.buy_qty += qty
            pos.buy_amount += price * qty
        else:
            pos.sell_qty += qty
            pos.sell_amount += price * qty
        return pos

    def position_row(self, pos: Position) -> dict:
        ltp = self.market.book(*pos.instrument.key).ltp
        return rows.position_row(pos, ltp, self.style, self._next_seq())

    def client_positions(self, login_id: str, client_id: str) -> list[dict]:
        return [
            self.position_row(p) for p in self.positions.values() if p.login_id == login_id and p.client_id == client_id
        ]
