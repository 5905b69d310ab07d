"""Order request validation on its own."""

from decimal import Decimal

import pytest

from tradingapp.domain.validation import InstrumentSpec, OrderValidationError, validate_new_order

SPEC = InstrumentSpec(id=1, lot_size=25, tick_size=Decimal("0.05"))


def body(**kw):
    base = {"instrument_id": 1, "side": "BUY", "quantity": 25, "order_type": "LIMIT", "limit_price": "101.25"}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def errors_of(payload, key=None):
    with pytest.raises(OrderValidationError) as info:
        validate_new_order(payload, SPEC, key)
    return info.value.errors


def test_valid_limit_order_gets_defaults():
    order = validate_new_order(body(), SPEC)
    assert (order.product, order.time_in_force, order.limit_price) == ("MIS", "DAY", Decimal("101.25"))


@pytest.mark.parametrize("quantity", [0, -25, 10, "25", 2.5, True, None])
def test_bad_quantities_are_refused(quantity):
    assert "quantity" in errors_of(body(quantity=quantity))


def test_price_off_the_tick_is_refused():
    assert "tick size" in errors_of(body(limit_price="101.26"))["limit_price"]


def test_limit_order_needs_a_price():
    assert "required" in errors_of(body(limit_price=None))["limit_price"]


def test_market_order_must_not_carry_a_price():
    assert "not allowed" in errors_of(body(order_type="MARKET"))["limit_price"]


@pytest.mark.parametrize("price", ["abc", "-1", "0", "NaN", "Infinity", True, [], {}])
def test_bad_prices_are_refused(price):
    assert "limit_price" in errors_of(body(limit_price=price))


def test_unknown_fields_are_refused():
    assert "role" in errors_of(body(role="admin"))["unknown_fields"]


def test_every_problem_is_reported_at_once():
    errors = errors_of(body(side="HOLD", quantity=0, order_type="LIMIT", limit_price="x"))
    assert {"side", "quantity", "limit_price"} <= set(errors)


def test_stop_orders_are_not_supported_yet():
    assert "not supported" in errors_of(body(order_type="STOP", limit_price=None, stop_price="100"))["order_type"]


def test_idempotency_key_becomes_client_order_id():
    assert validate_new_order(body(), SPEC, "key-1").client_order_id == "key-1"


def test_different_key_and_client_order_id_are_refused():
    assert "client_order_id" in errors_of(body(client_order_id="a"), "b")


def test_same_content_has_the_same_fingerprint_whatever_the_price_spelling():
    a = validate_new_order(body(limit_price="101.250"), SPEC)
    b = validate_new_order(body(limit_price=Decimal("101.25")), SPEC)
    assert a.fingerprint() == b.fingerprint()


@pytest.mark.parametrize(
    ("value", "text"),
    [("2500.0500", "2500.05"), ("100.0000", "100"), ("0.0000", "0"), ("-12.5000", "-12.5"), ("1E+3", "1000")],
)
def test_decimals_serialise_without_trailing_zeros_or_exponent(value, text):
    from tradingapp.models.types import dec

    assert dec(Decimal(value)) == text
