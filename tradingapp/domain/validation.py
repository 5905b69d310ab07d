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
SUPPORTED_ORDER_TYPES = ("MARKET", "LIMIT")
PRODUCTS = ("MIS", "NRML", "CNC")
TIMES_IN_FORCE = ("DAY", "IOC")
FIELDS = {
    "instrument_id", "side", "quantity", "order_type", "limit_price", "stop_price",
    "product", "time_in_force", "client_order_id",
}  # fmt: skip
MAX_QUANTITY = 10_000_000
MAX_PRICE = Decimal("100000000")
MAX_ID = 2**31 - 1  # the instruments.id column is a 32-bit integer
PRICE_DECIMALS = 4  # the price columns' scale
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
            self.instrument_id, self.side, self.quantity, self.order_type,
            _norm(self.limit_price), _norm(self.stop_price), self.product, self.time_in_force,
        )  # fmt: skip
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
    if price.as_tuple().exponent < -PRICE_DECIMALS:
        errors[field] = f"must have at most {PRICE_DECIMALS} decimal places"
        return None
    if price > MAX_PRICE:
        errors[field] = f"must not exceed {MAX_PRICE}"
        return None
    return price


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
    else:
        return value
    return None


def _check_tick(price: Decimal | None, field: str, spec: InstrumentSpec, errors: dict) -> None:
    if price is not None and field not in errors and price % spec.tick_size:
        errors[field] = f"must be a multiple of the tick size {spec.tick_size}"


def _check_prices(order_type: str | None, limit_price, stop_price, errors: dict) -> None:
    if order_type in ("LIMIT", "STOP_LIMIT") and limit_price is None and "limit_price" not in errors:
        errors["limit_price"] = f"required for {order_type} orders"
    if order_type in ("MARKET", "STOP") and limit_price is not None:
        errors["limit_price"] = f"not allowed for {order_type} orders"
    if order_type in ("STOP", "STOP_LIMIT") and stop_price is None and "stop_price" not in errors:
        errors["stop_price"] = f"required for {order_type} orders"
    if order_type in ("MARKET", "LIMIT") and stop_price is not None:
        errors["stop_price"] = f"not allowed for {order_type} orders"


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
    if order_type and order_type not in SUPPORTED_ORDER_TYPES:
        errors["order_type"] = f"{order_type} orders are not supported yet; use MARKET or LIMIT"
    product = _choice(body, "product", PRODUCTS, errors, default="MIS")
    tif = _choice(body, "time_in_force", TIMES_IN_FORCE, errors, default="DAY")
    quantity = _quantity(body, spec, errors)
    limit_price = _price(body, "limit_price", errors)
    stop_price = _price(body, "stop_price", errors)
    _check_prices(order_type, limit_price, stop_price, errors)
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
