"""Order, trade and position rows in XTS's shapes, with its quirks on purpose.

`OrderAverageTradedPrice` is a string ("" before the first fill, thousands separators when asked);
`OrderSide` is "Buy"/"Sell"; order types are spelt "Market", "Limit", "StopMarket", "StopLimit";
`OrderGeneratedDateTime` is IST without an offset, `ExchangeTransactTime` carries "+05:30", an
unset time is 1980-01-01T00:00:00; `*API` twins carry "dd-mm-yyyy HH:MM:SS". A deployment that
prints dates as "14-05-2021 11:17:29" is the `date_style="dmy"` setting. Positions print numbers
as strings, amounts with thousands separators.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from tradingapp.simulators.xts.orders import Fill, Order, Position

IST = timezone(timedelta(hours=5, minutes=30), "IST")
XTS_EPOCH_OFFSET = 315513000  # Unix time = XTS exchange time + this (1980-01-01 00:00 IST)
UNSET_TIME = "1980-01-01T00:00:00"
ORDER_TYPE_NAMES = {"MARKET": "Market", "LIMIT": "Limit", "STOPMARKET": "StopMarket", "STOPLIMIT": "StopLimit"}
SIDE_NAMES = {"BUY": "Buy", "SELL": "Sell"}


@dataclass
class RowStyle:
    """Deployment-dependent printing, switchable at run time."""

    date_style: str = "iso"  # iso | dmy
    thousands: bool = True  # "2,853.50" in OrderAverageTradedPrice and position amounts
    positions_shape: str = "positionList"  # positionList | flat


def xts_exchange_seconds(moment: datetime) -> int:
    return int(moment.timestamp()) - XTS_EPOCH_OFFSET


def _ist(moment: datetime) -> datetime:
    return moment.astimezone(IST)


def _row_time(moment: datetime | None, style: RowStyle, iso_tail) -> str:
    """IST wall clock as the row style writes it: '29-12-2020 13:12:36', or ISO with `iso_tail(ist)`."""
    if moment is None:
        return UNSET_TIME
    ist = _ist(moment)
    if style.date_style == "dmy":
        return ist.strftime("%d-%m-%Y %H:%M:%S")
    return f"{ist:%Y-%m-%dT%H:%M:%S}{iso_tail(ist)}"


def local_time(moment: datetime | None, style: RowStyle) -> str:
    """IST wall clock without an offset: '2020-12-29T13:12:36.8657664' or '29-12-2020 13:12:36'."""
    return _row_time(moment, style, lambda ist: f".{ist.microsecond:06d}0")


def exchange_time(moment: datetime | None, style: RowStyle) -> str:
    """IST with its offset: '2020-12-29T13:12:36+05:30' or '29-12-2020 13:12:36'."""
    return _row_time(moment, style, lambda ist: "+05:30")


def api_time(moment: datetime | None) -> str:
    return "01-01-1980 00:00:00" if moment is None else _ist(moment).strftime("%d-%m-%Y %H:%M:%S")


def money(value: Decimal, style: RowStyle) -> str:
    return f"{value + 0:,.2f}" if style.thousands else f"{value + 0:.2f}"


def plain(value: Decimal) -> str:
    """Two places, never '-0.00'."""
    return f"{value.quantize(Decimal('0.01')) + 0:.2f}"


def order_row(order: Order, style: RowStyle, seq: int) -> dict:
    ins = order.instrument
    avg = "" if order.cum_qty == 0 else money(order.avg_price, style)
    return {
        "LoginID": order.login_id,
        "ClientID": order.client_id,
        "AppOrderID": order.app_order_id,
        "OrderReferenceID": "",
        "GeneratedBy": "TWSAPI",
        "ExchangeOrderID": order.exchange_order_id,
        "OrderCategoryType": "NORMAL",
        "ExchangeSegment": ins.segment,
        "ExchangeInstrumentID": ins.exchange_instrument_id,
        "OrderSide": SIDE_NAMES[order.side],
        "OrderType": ORDER_TYPE_NAMES[order.order_type],
        "ProductType": order.product,
        "TimeInForce": order.tif,
        "IsAMO": False,
        "OrderPrice": float(order.limit_price),
        "OrderQuantity": order.quantity,
        "OrderStopPrice": float(order.stop_price),
        "TradingSymbol": ins.trading_symbol,
        "OrderStatus": order.status,
        "OrderAverageTradedPrice": avg,
        "LeavesQuantity": order.leaves_qty,
        "CumulativeQuantity": order.cum_qty,
        "OrderDisclosedQuantity": order.disclosed_qty,
        "OrderGeneratedDateTime": local_time(order.created_at, style),
        "ExchangeTransactTime": exchange_time(order.exchange_time, style),
        "LastUpdateDateTime": local_time(order.updated_at, style),
        "OrderExpiryDate": UNSET_TIME,
        "CancelRejectReason": order.reason,
        "OrderUniqueIdentifier": order.unique_id,
        "OrderLegStatus": "SingleOrderLeg",
        "BoLegDetails": 0,
        "IsSpread": False,
        "BoEntryOrderId": "",
        "OrderGeneratedDateTimeAPI": api_time(order.created_at),
        "ExchangeTransactTimeAPI": api_time(order.exchange_time),
        "LastUpdateDateTimeAPI": api_time(order.updated_at),
        "MessageCode": 9004,
        "MessageVersion": 4,
        "TokenID": 0,
        "ApplicationType": 146,
        "SequenceNumber": seq,
    }


def trade_row(order: Order, fill: Fill, style: RowStyle, seq: int) -> dict:
    row = order_row(order, style, seq)
    row.update(
        {
            "ExecutionID": fill.execution_id,
            "LastTradedPrice": float(fill.price),
            "LastTradedQuantity": fill.quantity,
            "LastExecutionTransactTime": exchange_time(fill.time, style),
            "LastExecutionTransactTimeAPI": api_time(fill.time),
            "OrderStatus": fill.status,
            "CumulativeQuantity": fill.cum_qty,
            "LeavesQuantity": fill.leaves_qty,
            "OrderAverageTradedPrice": money(fill.avg_price, style),
            "MessageCode": 9005,
        }
    )
    return row


def position_row(pos: Position, ltp: Decimal, style: RowStyle, seq: int) -> dict:
    ins = pos.instrument
    net_qty = pos.buy_qty - pos.sell_qty
    buy_avg = pos.buy_amount / pos.buy_qty if pos.buy_qty else Decimal(0)
    sell_avg = pos.sell_amount / pos.sell_qty if pos.sell_qty else Decimal(0)
    closed = min(pos.buy_qty, pos.sell_qty)
    realized = (sell_avg - buy_avg) * closed
    open_avg = buy_avg if net_qty > 0 else sell_avg
    unrealized = (ltp - open_avg) * net_qty if net_qty else Decimal(0)
    flat = style.positions_shape == "flat"
    id_key = "ExchangeInstrumentID" if flat else "ExchangeInstrumentId"
    return {
        "LoginID": pos.login_id,
        "AccountID": pos.client_id,
        "TradingSymbol": ins.trading_symbol,
        "ExchangeSegment": ins.segment,
        id_key: ins.exchange_instrument_id if flat else str(ins.exchange_instrument_id),
        "ProductType": pos.product,
        "Marketlot": str(ins.lot_size),
        "Multiplier": "1",
        "BuyAveragePrice": plain(buy_avg),
        "SellAveragePrice": plain(sell_avg),
        "OpenBuyQuantity": pos.buy_qty,
        "OpenSellQuantity": pos.sell_qty,
        "Quantity": net_qty if flat else str(net_qty),
        "NetPosition": str(net_qty),
        "BuyAmount": money(pos.buy_amount, style),
        "SellAmount": money(pos.sell_amount, style),
        "NetAmount": money(pos.sell_amount - pos.buy_amount, style),
        "UnrealizedMTM": plain(unrealized),
        "RealizedMTM": plain(realized),
        "MTM": plain(realized + unrealized),
        "BEP": plain(open_avg),
        "SumOfTradedQuantityAndPriceBuy": money(pos.buy_amount, style),
        "SumOfTradedQuantityAndPriceSell": money(pos.sell_amount, style),
        "MessageCode": 9002,
        "MessageVersion": 1,
        "TokenID": 0,
        "ApplicationType": 0,
        "SequenceNumber": seq,
    }
