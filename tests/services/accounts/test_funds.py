"""Funds, account and positions (net and day views) over HTTP, built by real fills."""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from tests.support.env import PG
from tests.support.factories import event, fill, make_order
from tradingapp import create_app
from tradingapp import events as ev
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Account, Position
from tradingapp.models.types import Price, UTCDateTime
from tradingapp.realtime import store_quote
from tradingapp.services.orders.broker_events import apply_broker_event

D = Decimal


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


def test_reading_funds_and_account_writes_nothing(app, client, trader, trader_headers):
    """GET routes write nothing: before its first order a user has no account row, and reads show
    the account they start with."""
    for path in ("/api/v1/funds", "/api/v1/account", "/api/v1/funds"):
        get(client, trader_headers, path)
    assert _db.session.get(Account, trader.id) is None
    assert get(client, trader_headers, "/api/v1/funds")["cash"] == str(app.config["ACCOUNT_INITIAL_CASH"])


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


# -- exact cost basis ----------------------------------------------------------------------------------------
REVIEW_FILLS = (("X1", 20, "146.55"), ("X2", 38, "181.81"), ("X3", 33, "164.44"))  # VWAP 167.76153...


def broker_fills(user, side, quantity, fills, product="CNC") -> None:
    order = make_order(user, side=side, quantity=quantity, status="OPEN", broker_order_id="P1", limit_price=None,
                       order_type="MARKET")  # fmt: skip
    order.product = product
    _db.session.commit()
    for n, (execution_id, qty, price) in enumerate(fills):
        body = event(ev.FILL, order, n=str(n), execution_id=execution_id, quantity=qty, price=D(price))
        assert apply_broker_event(body)


def position_row() -> Position:
    _db.session.expire_all()
    return _db.session.scalar(sa.select(Position))


def test_broker_fills_leave_the_exact_basis_and_its_rounded_average(trader):
    broker_fills(trader, "BUY", 91, REVIEW_FILLS)
    position = position_row()
    assert (position.quantity, position.cost_basis, position.average_price) == (91, D("15266.30"), D("167.7615"))


def test_closing_through_broker_fills_realizes_exactly_the_cash_pnl(trader):
    broker_fills(trader, "BUY", 91, REVIEW_FILLS)
    broker_fills(trader, "SELL", 91, [("S1", 50, "170"), ("S2", 41, "170")])
    position = position_row()
    assert (position.quantity, position.cost_basis) == (0, 0)
    assert (position.realized_pnl, position.day_realized_pnl) == (D("203.70"), D("203.70"))  # 15470 - 15266.30


def test_funds_value_a_position_at_its_basis(client, trader, trader_headers):
    broker_fills(trader, "BUY", 91, REVIEW_FILLS)  # CNC: 100% of 15266.30 (91 x 167.7615 is 15266.2965)
    quote(1, "170")
    funds = get(client, trader_headers, "/api/v1/funds")
    assert (funds["used_margin"], funds["unrealized_pnl"]) == ("15266.3", "203.7")
    [position] = get(client, trader_headers, "/api/v1/positions")["items"]
    assert (position["average_price"], position["unrealized_pnl"]) == ("167.7615", "203.7")


def test_a_position_inserted_with_only_an_average_opens_at_quantity_times_average(trader):
    _db.session.add(Position(user_id=trader.id, instrument_id=1, product="MIS", quantity=-30,
                             average_price=D("100.5"), realized_pnl=D(0)))  # fmt: skip
    _db.session.commit()
    assert position_row().cost_basis == D("-3015")


# -- migration 0005 backfills existing rows -------------------------------------------------------------------
@contextmanager
def app_at_0004(env, tmp_path, backend):
    """A fresh database of its own (Postgres or an SQLite file) upgraded to 0004, before cost_basis."""
    if backend == "sqlite":
        app = create_app(config.TestConfig({**env, "DB_HOST": "", "SQLITE_PATH": str(tmp_path / "backfill.db")}))
    else:
        name = f"{env['DB_NAME']}_backfill"
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        app = create_app(config.TestConfig({**env, "DB_NAME": name}))
    try:
        with app.app_context():
            try:
                upgrade(revision="0004")
                yield app
            finally:
                _db.session.remove()
                _db.engine.dispose()
    finally:
        if backend != "sqlite":
            with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


UUID, INT, TEXT, TS, PRICE = sa.Uuid(), sa.Integer(), sa.String(), UTCDateTime(), Price(24, 4)
COLUMNS = {  # the 0004 columns these rows fill, typed so each backend gets its own encoding
    "users": {"id": UUID, "email": TEXT, "password_hash": TEXT, "created_at": TS},
    "instruments": {"id": INT, "exchange_segment": TEXT, "exchange_instrument_id": INT, "symbol": TEXT,
                    "tick_size": PRICE},
    "orders": {"id": UUID, "user_id": UUID, "request_hash": TEXT, "broker": TEXT, "instrument_id": INT, "side": TEXT,
               "quantity": INT, "filled_quantity": INT, "average_price": PRICE, "order_type": TEXT, "product": TEXT,
               "time_in_force": TEXT, "status": TEXT, "created_at": TS, "updated_at": TS, "filled_value": PRICE},
    "positions": {"user_id": UUID, "instrument_id": INT, "product": TEXT, "quantity": INT, "average_price": PRICE,
                  "realized_pnl": PRICE, "updated_at": TS, "cost_basis": PRICE},
}  # fmt: skip


def table(name: str) -> sa.TableClause:
    return sa.table(name, *(sa.column(column, type_) for column, type_ in COLUMNS[name].items()))


def _seed_0004_rows() -> uuid.UUID:
    now, user_id = datetime.now(UTC), uuid.uuid4()
    user = {"id": user_id, "email": "b@example.com", "password_hash": "x", "created_at": now}
    _db.session.execute(sa.insert(table("users")).values(user))
    instrument = {"id": 1, "exchange_segment": "NSECM", "exchange_instrument_id": 1, "symbol": "A",
                  "tick_size": D("0.05")}  # fmt: skip
    _db.session.execute(sa.insert(table("instruments")).values(instrument))
    order = {"user_id": user_id, "request_hash": "x", "broker": "paper", "instrument_id": 1, "side": "BUY",
             "quantity": 91, "order_type": "MARKET", "product": "CNC", "time_in_force": "DAY", "created_at": now,
             "updated_at": now}  # fmt: skip
    _db.session.execute(sa.insert(table("orders")), [
        {**order, "id": uuid.uuid4(), "filled_quantity": 91, "average_price": D("167.7616"), "status": "FILLED"},
        {**order, "id": uuid.uuid4(), "filled_quantity": 0, "average_price": None, "status": "OPEN"},
    ])  # fmt: skip
    position = {"user_id": user_id, "instrument_id": 1, "realized_pnl": D(0), "updated_at": now}
    _db.session.execute(sa.insert(table("positions")), [
        {**position, "product": "CNC", "quantity": 91, "average_price": D("167.7616")},
        {**position, "product": "MIS", "quantity": -7, "average_price": D("100.0501")},
        {**position, "product": "NRML", "quantity": 0, "average_price": D(0)},
    ])  # fmt: skip
    _db.session.commit()
    return user_id


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_migration_0005_backfills_basis_and_filled_value_from_the_averages(env, tmp_path, backend):
    with app_at_0004(env, tmp_path, backend):
        _seed_0004_rows()
        upgrade(revision="0005")
        positions, orders = table("positions"), table("orders")
        basis = sa.select(positions.c.product, positions.c.cost_basis)
        assert dict(_db.session.execute(basis).all()) == {"CNC": D("15266.3056"), "MIS": D("-700.3507"), "NRML": 0}
        value = sa.select(orders.c.status, orders.c.filled_value)
        assert dict(_db.session.execute(value).all()) == {"FILLED": D("15266.3056"), "OPEN": 0}
