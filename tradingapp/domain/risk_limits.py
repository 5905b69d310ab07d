"""Risk limits: their names, built-in defaults, and validation of an admin's changes. Plain values.

Effective limits of a user = built-in defaults, overridden by the global settings an admin stored,
overridden by that user's own overrides. Stored values are JSON (decimals as strings).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal, InvalidOperation

from tradingapp.domain.validation import PRODUCTS

# Exchange segments of XTS; any other well-formed name is accepted too (a new segment needs no release).
SEGMENTS = ("NSECM", "NSEFO", "NSECD", "BSECM", "BSEFO", "MCXFO")
SEGMENT_RE = re.compile(r"^[A-Z0-9_]{1,16}$")
MAX_INT = 10**12
MAX_AMOUNT = Decimal(10**15)
AMOUNT_DECIMALS = 4


@dataclass(frozen=True)
class Limits:
    """Defaults are generous: a demo user clicking around in `make run` never meets them."""

    max_order_quantity: int = 100_000
    max_order_notional: Decimal = Decimal(50_000_000)
    max_position_quantity: int = 1_000_000
    max_open_orders: int = 1_000
    orders_per_second: int = 50
    order_burst: int = 100
    max_daily_loss: Decimal = Decimal(1_000_000)
    max_orders_per_day: int = 100_000
    allowed_products: tuple[str, ...] = PRODUCTS
    allowed_segments: tuple[str, ...] = SEGMENTS
    margin_cnc_percent: Decimal = Decimal(100)
    margin_nrml_percent: Decimal = Decimal(25)
    margin_mis_percent: Decimal = Decimal(20)

    def to_dict(self) -> dict:
        return to_json(asdict(self))


DEFAULT_LIMITS = Limits()
NAMES = tuple(f.name for f in fields(Limits))


class LimitsError(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _int(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INT:
        raise ValueError(f"must be an integer from 1 to {MAX_INT}")
    return value


def _decimal(value, low: Decimal, high: Decimal, inclusive_low: bool) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError('must be a decimal string such as "1000.50"')
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('must be a decimal string such as "1000.50"') from None
    if not number.is_finite() or number.as_tuple().exponent < -AMOUNT_DECIMALS:
        raise ValueError(f"must be a decimal with at most {AMOUNT_DECIMALS} decimal places")
    if number < low or (number == low and not inclusive_low) or number > high:
        bound = "at least" if inclusive_low else "greater than"
        raise ValueError(f"must be {bound} {low} and at most {high}")
    return number


def _amount(value) -> Decimal:
    return _decimal(value, Decimal(0), MAX_AMOUNT, inclusive_low=False)


def _percent(value) -> Decimal:
    return _decimal(value, Decimal(0), Decimal(100), inclusive_low=True)


def _products(value) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a non-empty list of products ({', '.join(PRODUCTS)})")
    chosen = [v.upper() for v in value]
    if unknown := sorted(set(chosen) - set(PRODUCTS)):
        raise ValueError(f"unknown products {', '.join(unknown)}; known: {', '.join(PRODUCTS)}")
    return tuple(p for p in PRODUCTS if p in chosen)


def _segments(value) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a non-empty list of exchange segments such as NSECM")
    chosen = [v.upper() for v in value]
    if bad := sorted(v for v in chosen if not SEGMENT_RE.match(v)):
        raise ValueError(f"not exchange segment names: {', '.join(bad)}")
    return tuple(dict.fromkeys(chosen))


FIELD_PARSERS = {
    "max_order_quantity": _int,
    "max_order_notional": _amount,
    "max_position_quantity": _int,
    "max_open_orders": _int,
    "orders_per_second": _int,
    "order_burst": _int,
    "max_daily_loss": _amount,
    "max_orders_per_day": _int,
    "allowed_products": _products,
    "allowed_segments": _segments,
    "margin_cnc_percent": _percent,
    "margin_nrml_percent": _percent,
    "margin_mis_percent": _percent,
}


def parse_changes(body: object, prefix: str = "") -> dict[str, object]:
    """{name: parsed value or None (remove)} from an admin's {name: value|null}; LimitsError lists
    every bad field (named `prefix + name`) at once."""
    if not isinstance(body, dict):
        raise LimitsError({prefix.rstrip(".") or "body": "must be an object of limit names to values"})
    errors: dict[str, str] = {}
    changes: dict[str, object] = {}
    for name, value in body.items():
        if name not in FIELD_PARSERS:
            errors[prefix + str(name)] = f"unknown limit; known: {', '.join(NAMES)}"
        elif value is None:
            changes[name] = None
        else:
            try:
                changes[name] = FIELD_PARSERS[name](value)
            except ValueError as exc:
                errors[prefix + name] = str(exc)
    if errors:
        raise LimitsError(errors)
    return changes


def to_json(values: dict) -> dict:
    """JSON-storable form: decimals as plain strings, tuples as lists."""
    out = {}
    for name, value in values.items():
        if isinstance(value, Decimal):
            out[name] = format(value.normalize(), "f") if value else "0"
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def from_json(stored: dict | None) -> dict:
    """Stored overrides back to values; an entry that no longer validates is ignored, not fatal."""
    values = {}
    for name, raw in (stored or {}).items():
        parser = FIELD_PARSERS.get(name)
        if parser is None or raw is None:
            continue
        try:
            values[name] = parser(raw)
        except ValueError:
            continue
    return values


def merge(stored: dict | None, changes: dict[str, object]) -> dict:
    """Stored overrides with changes applied (None removes), in stored JSON form."""
    merged = dict(stored or {})
    for name, value in to_json(changes).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def effective(global_overrides: dict | None, user_overrides: dict | None) -> Limits:
    return replace(DEFAULT_LIMITS, **{**from_json(global_overrides), **from_json(user_overrides)})
