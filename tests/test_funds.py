"""Funds, account and positions (net and day views) over HTTP, built by real fills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.factories import make_order
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Position
from tradingapp.realtime import store_quote
from tradingapp.services.positions import apply_fill_to_position

D = Decimal


def fill(user, side: str, qty: int, price: str, product="MIS", instrument_id=1, traded_at=None) -> Position:
    order = make_order(user, instrument_id=instrument_id, side=side, quantity=qty, status="FILLED", limit_price=price)
    order.product = product
    position = apply_fill_to_position(order, qty, D(price), traded_at or datetime.now(UTC))
    _db.session.commit()
    return position


def quote(instrument_id: int, ltp: str):
    pipe = get_redis().pipeline()
    store_quote(pipe, {"instrument_id": instrument_id, "ltp": ltp}, 60)
    pipe.execute()


def get(client, headers, path):
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- funds --------------------------------------------------------------------------------------------
def test_a_new_account_has_its_starting_cash_available(app, client, trader_headers):
    funds = get(client, trader_headers, "/api/v1/funds")
    cash = str(app.config["ACCOUNT_INITIAL_CASH"])
    assert funds == {"cash": cash, "used_margin": "0", "available": cash, "realized_pnl": "0", "unrealized_pnl": "0"}


def test_a_position_blocks_margin_at_its_products_percent(client, trader, trader_headers):
    fill(trader, "BUY", 100, "200", product="CNC")  # 100% of 20000
    fill(trader, "BUY", 50, "100", product="MIS", instrument_id=2)  # 20% of 5000
    assert get(client, trader_headers, "/api/v1/funds")["used_margin"] == "21000"


def test_working_orders_block_margin_but_closing_ones_do_not(client, trader, trader_headers):
    fill(trader, "BUY", 10, "100", product="CNC")
    opening = make_order(trader, instrument_id=2, quantity=10, status="OPEN", limit_price="50")
    closing = make_order(trader, side="SELL", quantity=10, status="OPEN", limit_price="110")
    for order in (opening, closing):
        order.product = "CNC"
    _db.session.commit()
    assert get(client, trader_headers, "/api/v1/funds")["used_margin"] == "1500"  # 1000 held + 500 opening


def test_realized_pnl_adds_to_cash(app, client, trader, trader_headers):
    fill(trader, "BUY", 10, "100")
    fill(trader, "SELL", 10, "112.5")
    funds = get(client, trader_headers, "/api/v1/funds")
    assert funds["realized_pnl"] == "125"
    assert D(funds["cash"]) == app.config["ACCOUNT_INITIAL_CASH"] + D(125)


def test_an_unrealized_loss_reduces_available_funds(app, client, trader, trader_headers):
    fill(trader, "BUY", 10, "100")  # MIS: 200 margin
    quote(1, "90")
    funds = get(client, trader_headers, "/api/v1/funds")
    assert funds["unrealized_pnl"] == "-100"
    assert D(funds["available"]) == app.config["ACCOUNT_INITIAL_CASH"] - 100 - 200


def test_an_unrealized_gain_is_not_lent_against(app, client, trader, trader_headers):
    fill(trader, "BUY", 10, "100")
    quote(1, "110")
    funds = get(client, trader_headers, "/api/v1/funds")
    assert funds["unrealized_pnl"] == "100"
    assert D(funds["available"]) == app.config["ACCOUNT_INITIAL_CASH"] - 200


# -- account -----------------------------------------------------------------------------------------------
def test_the_account_shows_state_limits_and_todays_count(client, trader_headers):
    account = get(client, trader_headers, "/api/v1/account")
    assert account["trading_state"] == "ACTIVE"
    assert account["orders_today"] == 0
    assert account["limits"]["allowed_products"] == ["MIS", "NRML", "CNC"]


def test_a_viewer_may_read_their_account_and_funds(client, make_user, auth_headers):
    headers = auth_headers(make_user(role="viewer"))
    assert client.get("/api/v1/account", headers=headers).status_code == 200
    assert client.get("/api/v1/funds", headers=headers).status_code == 200


# -- positions --------------------------------------------------------------------------------------------------
def test_the_net_view_is_the_default_and_marks_to_the_last_price(client, trader, trader_headers):
    fill(trader, "BUY", 10, "100")
    quote(1, "104")
    [position] = get(client, trader_headers, "/api/v1/positions")["items"]
    assert (position["quantity"], position["average_price"], position["unrealized_pnl"]) == (10, "100", "40")
    assert get(client, trader_headers, "/api/v1/positions?view=net")["items"] == [position]


def test_the_day_view_shows_todays_buys_sells_and_realized(client, trader, trader_headers):
    fill(trader, "BUY", 10, "100")
    fill(trader, "BUY", 10, "110")
    fill(trader, "SELL", 5, "120")
    [day] = get(client, trader_headers, "/api/v1/positions?view=day")["items"]
    assert (day["buy_quantity"], day["buy_value"], day["buy_average_price"]) == (20, "2100", "105")
    assert (day["sell_quantity"], day["sell_value"], day["realized_pnl"], day["quantity"]) == (5, "600", "75", 15)


def test_the_day_view_leaves_out_positions_not_traded_today(client, trader, trader_headers):
    fill(trader, "BUY", 10, "100", traded_at=datetime.now(UTC) - timedelta(days=2))
    assert get(client, trader_headers, "/api/v1/positions?view=day")["items"] == []
    assert len(get(client, trader_headers, "/api/v1/positions?view=net")["items"]) == 1


def test_the_first_fill_of_a_new_day_resets_the_day_columns(trader):
    fill(trader, "BUY", 10, "100", traded_at=datetime.now(UTC) - timedelta(days=2))
    position = fill(trader, "SELL", 4, "90")
    assert (position.day_buy_quantity, position.day_sell_quantity, position.day_realized_pnl) == (0, 4, D(-40))
    assert (position.quantity, position.realized_pnl) == (6, D(-40))


def test_an_unknown_view_is_400(client, trader_headers):
    assert client.get("/api/v1/positions?view=week", headers=trader_headers).status_code == 400
