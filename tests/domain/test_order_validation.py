"""Order request validation on its own."""

from decimal import Decimal

import pytest

from tradingapp.domain.validation import (
    InstrumentSpec,
    ModifyTerms,
    OrderValidationError,
    check_against_market,
    validate_modify,
    validate_new_order,
)

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


def test_stop_and_stop_limit_orders_are_valid():
    stop = validate_new_order(body(order_type="STOP", limit_price=None, stop_price="102"), SPEC)
    assert (stop.order_type, stop.stop_price, stop.limit_price) == ("STOP", Decimal("102"), None)
    stop_limit = validate_new_order(body(order_type="STOP_LIMIT", limit_price="102.5", stop_price="102"), SPEC)
    assert (stop_limit.limit_price, stop_limit.stop_price) == (Decimal("102.5"), Decimal("102"))


def test_stop_orders_need_a_stop_price_and_stop_market_takes_no_limit():
    assert "required" in errors_of(body(order_type="STOP", limit_price=None))["stop_price"]
    assert "not allowed" in errors_of(body(order_type="STOP", stop_price="102"))["limit_price"]


@pytest.mark.parametrize(("side", "limit"), [("BUY", "101.95"), ("SELL", "102.05")])
def test_stop_limit_must_leave_room_to_trade(side, limit):
    errors = errors_of(body(side=side, order_type="STOP_LIMIT", limit_price=limit, stop_price="102"))
    assert "stop price" in errors["limit_price"]


def test_quantity_above_the_freeze_quantity_is_refused():
    spec = InstrumentSpec(id=1, lot_size=25, tick_size=Decimal("0.05"), freeze_quantity=100)
    with pytest.raises(OrderValidationError) as info:
        validate_new_order(body(quantity=125), spec)
    assert "freeze quantity 100" in info.value.errors["quantity"]
    assert validate_new_order(body(quantity=100), spec).quantity == 100


# -- against the market ------------------------------------------------------------------------
BAND = Decimal(10)


def test_prices_inside_the_band_pass():
    assert check_against_market("BUY", "LIMIT", Decimal("91"), None, Decimal("100"), BAND) == {}
    assert check_against_market("BUY", "LIMIT", Decimal("110"), None, Decimal("100"), BAND) == {}


@pytest.mark.parametrize("price", ["89.95", "110.05"])
def test_limit_price_outside_the_band_is_refused_with_the_band(price):
    errors = check_against_market("SELL", "LIMIT", Decimal(price), None, Decimal("100"), BAND)
    assert "90.00 to 110.00" in errors["limit_price"]


def test_without_a_last_price_nothing_is_checked():
    assert check_against_market("BUY", "LIMIT", Decimal("1"), None, None, BAND) == {}


@pytest.mark.parametrize(("side", "stop"), [("BUY", "100"), ("BUY", "99"), ("SELL", "100"), ("SELL", "101")])
def test_a_stop_already_through_the_market_is_refused(side, stop):
    errors = check_against_market(side, "STOP", None, Decimal(stop), Decimal("100"), BAND)
    assert "last price 100" in errors["stop_price"]


@pytest.mark.parametrize(("side", "stop"), [("BUY", "101"), ("SELL", "99")])
def test_a_stop_on_the_far_side_of_the_market_passes(side, stop):
    assert check_against_market(side, "STOP", None, Decimal(stop), Decimal("100"), BAND) == {}


# -- modification ----------------------------------------------------------------------------------
CURRENT = ModifyTerms(50, Decimal("101.25"), None)


def modify(payload, order_type="LIMIT", filled=0, current=CURRENT):
    return validate_modify(payload, SPEC, "BUY", order_type, current, filled)


def modify_errors(payload, **kw):
    with pytest.raises(OrderValidationError) as info:
        modify(payload, **kw)
    return info.value.errors


def test_modify_keeps_the_terms_not_given():
    assert modify({"limit_price": "101.50"}) == ModifyTerms(50, Decimal("101.50"), None)
    assert modify({"quantity": 75}) == ModifyTerms(75, Decimal("101.25"), None)


def test_modify_quantity_must_exceed_the_filled_part():
    assert "filled quantity 50" in modify_errors({"quantity": 50}, filled=50)["quantity"]


def test_modify_refuses_fields_the_order_type_has_no_use_for():
    assert "not allowed" in modify_errors({"stop_price": "100"})["stop_price"]
    assert "not allowed" in modify_errors({"limit_price": "100"}, order_type="MARKET",
                                          current=ModifyTerms(50, None, None))["limit_price"]  # fmt: skip


@pytest.mark.parametrize(
    "payload", [{}, {"side": "SELL"}, {"quantity": None}, {"limit_price": "101.27"}, {"quantity": 30}]
)
def test_bad_modifications_are_refused(payload):
    assert modify_errors(payload)


def test_modify_to_the_same_terms_is_refused():
    assert "nothing to change" in modify_errors({"limit_price": "101.25"})["body"]


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


def test_trailing_zeros_beyond_four_places_are_the_same_price():
    assert validate_new_order(body(limit_price="101.250000"), SPEC).limit_price == Decimal("101.25")
    assert "4 decimal places" in errors_of(body(limit_price="101.25001"))["limit_price"]
