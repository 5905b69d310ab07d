"""Validation of a new order request against its instrument. Plain values, no I/O.

Every problem found is reported at once, by field, so a client fixes its request in one go.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT", "STOP", "STOP_LIMIT")
PRODUCTS = ("MIS", "NRML", "CNC")
TIMES_IN_FORCE = ("DAY", "IOC")
FIELDS = {
    "instrument_id",
    "side",
    "quantity",
    "order_type",
    "limit_price",
    "stop_price",
    "product",
    "time_in_force",
    "client_order_id",
}
MODIFY_FIELDS = {"quantity", "limit_price", "stop_price"}
MAX_QUANTITY = 10_000_000
MAX_PRICE = Decimal("100000000")
MAX_ID = 2**31 - 1  # the instruments.id column is a 32-bit integer
PRICE_DECIMALS = 4  # the price columns' scale
PRICE_QUANTUM = Decimal(1).scaleb(-PRICE_DECIMALS)
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")


class OrderValidationError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class InstrumentSpec:
    id: int
    lot_size: int
    tick_size: Decimal
    freeze_quantity: int | None = None  # the exchange's largest single order; None: no limit


@dataclass(frozen=True)
class NewOrder:
    instrument_id: int
    side: str
    quantity: int
    order_type: str
    limit_price: Decimal | None
    stop_price: Decimal | None
    product: str
    time_in_force: str
    client_order_id: str | None

    def fingerprint(self) -> str:
        """Identity of the request's content: the same key with another body is a conflict."""
        parts = (
            self.instrument_id,
            self.side,
            self.quantity,
            self.order_type,
            _norm(self.limit_price),
            _norm(self.stop_price),
            self.product,
            self.time_in_force,
        )
        return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _norm(value: Decimal | None) -> str:
    return "" if value is None else format(value.normalize(), "f")


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_instrument_id(body: dict) -> int:
    """The instrument id alone, so the caller can load the instrument before full validation."""
    value = body.get("instrument_id")
    if not is_int(value) or not 0 < value <= MAX_ID:
        raise OrderValidationError({"instrument_id": "required, a positive integer"})
    return value


def _choice(body: dict, field: str, options: tuple[str, ...], errors: dict, default: str | None = None):
    value = body.get(field, default)
    if value is None:
        errors[field] = f"required, one of {', '.join(options)}"
        return None
    if not isinstance(value, str) or value.upper() not in options:
        errors[field] = f"must be one of {', '.join(options)}"
        return None
    return value.upper()


def _price(body: dict, field: str, errors: dict) -> Decimal | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        errors[field] = 'must be a decimal string such as "101.25"'
        return None
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        errors[field] = 'must be a decimal string such as "101.25"'
        return None
    if not price.is_finite() or price <= 0:
        errors[field] = "must be a positive price"
        return None
    if price > MAX_PRICE:
        errors[field] = f"must not exceed {MAX_PRICE}"
        return None
    exact = price.quantize(PRICE_QUANTUM)  # "2500.000000" is 2500: the value counts, not the digits
    if exact != price:
        errors[field] = f"must have at most {PRICE_DECIMALS} decimal places"
        return None
    return exact


def _quantity(body: dict, spec: InstrumentSpec, errors: dict) -> int | None:
    value = body.get("quantity")
    if not is_int(value):
        errors["quantity"] = "required, an integer"
        return None
    if value <= 0:
        errors["quantity"] = "must be greater than zero"
    elif value > MAX_QUANTITY:
        errors["quantity"] = f"must not exceed {MAX_QUANTITY}"
    elif value % spec.lot_size:
        errors["quantity"] = f"must be a multiple of the lot size {spec.lot_size}"
    elif spec.freeze_quantity and value > spec.freeze_quantity:
        errors["quantity"] = f"exceeds the freeze quantity {spec.freeze_quantity}; split the order"
    else:
        return value
    return None


def _check_tick(price: Decimal | None, field: str, spec: InstrumentSpec, errors: dict) -> None:
    if price is not None and field not in errors and price % spec.tick_size:
        errors[field] = f"must be a multiple of the tick size {spec.tick_size}"


def _check_prices(order_type: str | None, limit_price, stop_price, errors: dict, side: str | None = None) -> None:
    if order_type in ("LIMIT", "STOP_LIMIT") and limit_price is None and "limit_price" not in errors:
        errors["limit_price"] = f"required for {order_type} orders"
    if order_type in ("MARKET", "STOP") and limit_price is not None:
        errors["limit_price"] = f"not allowed for {order_type} orders"
    if order_type in ("STOP", "STOP_LIMIT") and stop_price is None and "stop_price" not in errors:
        errors["stop_price"] = f"required for {order_type} orders"
    if order_type in ("MARKET", "LIMIT") and stop_price is not None:
        errors["stop_price"] = f"not allowed for {order_type} orders"
    both = limit_price is not None and stop_price is not None
    if order_type == "STOP_LIMIT" and both and "limit_price" not in errors:
        # Once triggered, the limit must leave room to trade (Kite/XTS refuse the inverse).
        if side == "BUY" and limit_price < stop_price:
            errors["limit_price"] = "must be at or above the stop price for a BUY stop-limit"
        elif side == "SELL" and limit_price > stop_price:
            errors["limit_price"] = "must be at or below the stop price for a SELL stop-limit"


def validate_new_order(body: dict, spec: InstrumentSpec, client_order_id: str | None = None) -> NewOrder:
    """A valid NewOrder, or OrderValidationError listing every problem by field.

    `client_order_id` may come from an Idempotency-Key header; the body's field wins if both agree.
    """
    errors: dict[str, str] = {}
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        errors["unknown_fields"] = ", ".join(unknown)
    side = _choice(body, "side", SIDES, errors)
    order_type = _choice(body, "order_type", ORDER_TYPES, errors)
    product = _choice(body, "product", PRODUCTS, errors, default="MIS")
    tif = _choice(body, "time_in_force", TIMES_IN_FORCE, errors, default="DAY")
    quantity = _quantity(body, spec, errors)
    limit_price = _price(body, "limit_price", errors)
    stop_price = _price(body, "stop_price", errors)
    _check_prices(order_type, limit_price, stop_price, errors, side)
    _check_tick(limit_price, "limit_price", spec, errors)
    _check_tick(stop_price, "stop_price", spec, errors)
    coid = _client_order_id(body.get("client_order_id"), client_order_id, errors)
    if errors:
        raise OrderValidationError(errors)
    return NewOrder(spec.id, side, quantity, order_type, limit_price, stop_price, product, tif, coid)


def _client_order_id(in_body: object, in_header: str | None, errors: dict) -> str | None:
    if in_body is not None and (not isinstance(in_body, str) or not CLIENT_ORDER_ID.match(in_body)):
        errors["client_order_id"] = "1-64 characters of letters, digits and _ . : -"
        return None
    if in_header is not None and not CLIENT_ORDER_ID.match(in_header):
        errors["Idempotency-Key"] = "1-64 characters of letters, digits and _ . : -"
        return None
    if in_body is not None and in_header is not None and in_body != in_header:
        errors["client_order_id"] = "differs from the Idempotency-Key header"
        return None
    return in_body if in_body is not None else in_header


# -- against the market ------------------------------------------------------------------------
def check_against_market(
    side: str,
    order_type: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    last_price: Decimal | None,
    band_pct: Decimal,
) -> dict[str, str]:
    """Errors by field for prices that make no sense against the last price: outside the price band
    (a fat finger), or a stop already through the market (it would trigger at once). With no
    last price there is nothing to compare to, and the exchange decides."""
    errors: dict[str, str] = {}
    if last_price is None or last_price <= 0:
        return errors
    low = last_price * (1 - band_pct / 100)
    high = last_price * (1 + band_pct / 100)
    for field, price in (("limit_price", limit_price), ("stop_price", stop_price)):
        if price is not None and not low <= price <= high:
            errors[field] = f"outside the price band {_band(low, high)}: {band_pct}% around the last price {last_price}"
    if order_type in ("STOP", "STOP_LIMIT") and stop_price is not None and "stop_price" not in errors:
        if side == "BUY" and stop_price <= last_price:
            errors["stop_price"] = f"must be above the last price {last_price} for a BUY stop"
        elif side == "SELL" and stop_price >= last_price:
            errors["stop_price"] = f"must be below the last price {last_price} for a SELL stop"
    return errors


def _band(low: Decimal, high: Decimal) -> str:
    return f"{low.quantize(Decimal('0.01'))} to {high.quantize(Decimal('0.01'))}"


# -- modification ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModifyTerms:
    """The order's terms after a modification: untouched fields keep their current value."""

    quantity: int
    limit_price: Decimal | None
    stop_price: Decimal | None


def validate_modify(
    body: dict, spec: InstrumentSpec, side: str, order_type: str, current: ModifyTerms, filled_quantity: int
) -> ModifyTerms:
    """The new terms, or OrderValidationError listing every problem by field."""
    errors: dict[str, str] = {}
    unknown = sorted(set(body) - MODIFY_FIELDS)
    if unknown:
        errors["unknown_fields"] = f"{', '.join(unknown)} (only quantity, limit_price and stop_price can change)"
    if not set(body) & MODIFY_FIELDS:
        errors["body"] = "give at least one of quantity, limit_price, stop_price"
    quantity = _quantity(body, spec, errors) if "quantity" in body else current.quantity
    if quantity is not None and "quantity" not in errors and quantity <= filled_quantity:
        errors["quantity"] = f"must exceed the filled quantity {filled_quantity}"
    limit_price = _price(body, "limit_price", errors) if "limit_price" in body else current.limit_price
    stop_price = _price(body, "stop_price", errors) if "stop_price" in body else current.stop_price
    if "limit_price" in body and order_type not in ("LIMIT", "STOP_LIMIT"):
        errors["limit_price"] = f"not allowed for {order_type} orders"
    if "stop_price" in body and order_type not in ("STOP", "STOP_LIMIT"):
        errors["stop_price"] = f"not allowed for {order_type} orders"
    if body.get("limit_price", 0) is None or body.get("stop_price", 0) is None or body.get("quantity", 0) is None:
        errors.setdefault("body", "a field cannot be set to null")
    _check_prices(order_type, limit_price, stop_price, errors, side)
    _check_tick(limit_price, "limit_price", spec, errors)
    _check_tick(stop_price, "stop_price", spec, errors)
    new = ModifyTerms(quantity, limit_price, stop_price)
    if not errors and new == current:
        errors["body"] = "nothing to change: the order already has these terms"
    if errors:
        raise OrderValidationError(errors)
    return new
