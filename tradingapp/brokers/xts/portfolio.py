"""XTS positions and balance answers -> plain dicts (Decimal money, int quantities).

Positions differ by deployment: `result.positionList[]` or a flat list, `ExchangeInstrumentID` or
`ExchangeInstrumentId`, numbers as numbers or strings with thousands separators. Both are read;
anything else is an XtsResponseError.
"""

from __future__ import annotations

from decimal import Decimal

from tradingapp.brokers.xts import untrusted
from tradingapp.brokers.xts.errors import XtsResponseError
from tradingapp.brokers.xts.mapping import to_int
from tradingapp.brokers.xts.untrusted import MAX_ID, MAX_QUANTITY

AMOUNTS = {
    "buy_average_price": "BuyAveragePrice",
    "sell_average_price": "SellAveragePrice",
    "mtm": "MTM",
    "realized_pnl": "RealizedMTM",
    "unrealized_pnl": "UnrealizedMTM",
}
BALANCE_AMOUNTS = {
    "cash_available": "cashAvailable",
    "net_margin_available": "netMarginAvailable",
    "margin_utilized": "marginUtilized",
    "mtm": "MTM",
    "realized_mtm": "RealizedMTM",
    "unrealized_mtm": "UnrealizedMTM",
}


def amount(value: object, name: str) -> Decimal:
    """Money as a number or a string ('1,234.50', '-12.00'); signed, bounded (untrusted.number)."""
    if value is None:
        raise XtsResponseError(f"{name} is missing")
    return untrusted.number(value, name)


def _lower(row: object) -> dict:
    if not isinstance(row, dict):
        raise XtsResponseError(f"position row is not an object but {type(row).__name__}")
    return {str(k).lower(): v for k, v in row.items()}


def parse_position(raw: object) -> dict:
    row = _lower(raw)
    quantity = row.get("quantity", row.get("netposition"))
    position = {
        "exchange_segment": untrusted.text(row.get("exchangesegment"), "ExchangeSegment", limit=16),
        "exchange_instrument_id": to_int(row.get("exchangeinstrumentid"), "ExchangeInstrumentID", 1, MAX_ID),
        "trading_symbol": untrusted.text(row.get("tradingsymbol"), "TradingSymbol", limit=64),
        "product": untrusted.text(row.get("producttype"), "ProductType", limit=16),
        "quantity": to_int(quantity, "Quantity", -MAX_QUANTITY),
        "buy_quantity": to_int(row.get("openbuyquantity", 0), "OpenBuyQuantity"),
        "sell_quantity": to_int(row.get("opensellquantity", 0), "OpenSellQuantity"),
    }
    for key, name in AMOUNTS.items():
        position[key] = amount(row.get(name.lower(), 0), name)
    if not position["exchange_segment"]:
        raise XtsResponseError("position row has no ExchangeSegment")
    return position


def parse_positions(result: object) -> list[dict]:
    """Both shapes: {"positionList": [...]} and a bare list."""
    rows = result.get("positionList") if isinstance(result, dict) else result
    if not isinstance(rows, list):
        raise XtsResponseError("positions answer is neither a list nor {positionList: [...]}")
    return [parse_position(row) for row in rows]


def parse_balance(result: object) -> dict:
    """The first limit set of {BalanceList: [{limitObject: {RMSSubLimits: {...}}}]}."""
    try:
        limits = result["BalanceList"][0]["limitObject"]["RMSSubLimits"]
    except (KeyError, IndexError, TypeError):
        raise XtsResponseError("balance answer has no BalanceList[0].limitObject.RMSSubLimits") from None
    if not isinstance(limits, dict):
        raise XtsResponseError("RMSSubLimits is not an object")
    return {key: amount(limits.get(name), name) for key, name in BALANCE_AMOUNTS.items() if name in limits}
