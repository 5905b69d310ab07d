"""POST /api/v1/orders/estimate: POST /orders' validation, the risk engine's margin, and nothing
written or queued."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.support.factories import fill, set_quote
from tradingapp.extensions import db, get_redis
from tradingapp.models import Account, Instrument, Order, OrderEvent
from tradingapp.services.accounts.funds import create_account
from tradingapp.services.orders import jobqueue

D = Decimal
ESTIMATE = "/api/v1/orders/estimate"
LIMIT = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "2500.05"}
CASH = D(10_000_000)


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def estimate(client, headers, body) -> dict:
    response = client.post(ESTIMATE, json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def funds(client, headers) -> dict:
    return client.get("/api/v1/funds", headers=headers).get_json()


def nothing_written_or_queued(app) -> bool:
    redis = get_redis()
    buckets = redis.keys(f"{app.config['NAMESPACE']}:risk:bucket:*")
    return (count(Order), count(OrderEvent), count(Account), jobqueue.get_queue().job_ids, buckets) == (
        0, 0, 0, [], [],
    )  # fmt: skip


def test_a_limit_order_is_valued_at_its_limit_and_blocks_its_products_margin(app, client, trader_headers):
    body = estimate(client, trader_headers, LIMIT)  # MIS: 20% of 10 x 2500.05 = 25000.5
    assert body == {"required_margin": "5000.1", "available": "10000000", "sufficient": True, "price": "2500.05"}
    assert nothing_written_or_queued(app)


def test_the_estimate_is_what_placing_the_order_then_blocks(client, trader, trader_headers):
    fill(trader, "BUY", 100, "200", product="CNC")  # 20000 already blocked
    set_quote(2, "4100.00")
    body = {"instrument_id": 2, "side": "BUY", "quantity": 7, "order_type": "MARKET", "product": "NRML"}
    before = funds(client, trader_headers)
    result = estimate(client, trader_headers, body)
    assert (result["price"], result["required_margin"]) == ("4100", "7175")  # 25% of 7 x 4100
    assert result["available"] == before["available"]
    placed = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert placed.status_code == 202
    after = funds(client, trader_headers)
    assert D(after["used_margin"]) - D(before["used_margin"]) == D(result["required_margin"])
    assert D(before["available"]) - D(after["available"]) == D(result["required_margin"])


def test_an_insufficient_estimate_is_the_refusal_placing_gets(client, trader_headers, trader):
    fill(trader, "BUY", 10, "100", product="CNC")
    body = {**LIMIT, "quantity": 4000, "product": "CNC", "limit_price": "2500"}  # 10,000,000 at 100%
    result = estimate(client, trader_headers, body)
    assert result == {"required_margin": "10000000", "available": "9999000", "sufficient": False, "price": "2500"}
    refused = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert refused.status_code == 422
    details = refused.get_json()["error"]["details"]
    assert details["rule"] == "available_funds"
    assert (details["requested"], details["limit"]) == (result["required_margin"], result["available"])


def test_an_order_that_closes_a_position_needs_no_margin(client, trader, trader_headers):
    fill(trader, "BUY", 10, "100")  # long 10 MIS of instrument 1
    set_quote(1, "105.00")
    closing = {"instrument_id": 1, "side": "SELL", "quantity": 10, "order_type": "MARKET"}
    assert estimate(client, trader_headers, closing)["required_margin"] == "0"
    reversing = {**closing, "quantity": 15}  # 5 past the position open a short: 20% of 5 x 105
    assert estimate(client, trader_headers, reversing)["required_margin"] == "105"


def test_a_stop_order_is_valued_at_its_stop_price(client, trader_headers):
    set_quote(1, "2500.00")
    body = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "STOP", "stop_price": "2550",
            "product": "CNC"}  # fmt: skip
    assert estimate(client, trader_headers, body) == {
        "required_margin": "25500", "available": "10000000", "sufficient": True, "price": "2550",
    }  # fmt: skip


def test_a_market_order_without_a_last_price_cannot_be_valued(app, client, trader_headers):
    body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET"}
    response = client.post(ESTIMATE, json=body, headers=trader_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert (error["code"], error["details"]["rule"]) == ("risk_rejected", "price_unavailable")
    assert nothing_written_or_queued(app)


def test_client_order_id_and_idempotency_key_are_ignored(app, client, trader_headers):
    headers = {**trader_headers, "Idempotency-Key": "not valid!"}
    body = {**LIMIT, "client_order_id": "x" * 64}
    assert estimate(client, headers, body)["required_margin"] == "5000.1"
    assert nothing_written_or_queued(app)


def test_many_estimates_take_no_order_rate_tokens(client, trader_headers, admin_headers):
    client.put("/api/v1/admin/risk-limits", json={"global": {"orders_per_second": 1, "order_burst": 1}},
               headers=admin_headers)  # fmt: skip
    for _ in range(5):
        estimate(client, trader_headers, LIMIT)
    assert client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).status_code == 202


def test_a_viewer_may_estimate(client, make_user, auth_headers):
    assert estimate(client, auth_headers(make_user(role="viewer")), LIMIT)["sufficient"] is True


def test_an_estimate_needs_a_token(client):
    assert client.post(ESTIMATE, json=LIMIT).status_code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 400),
        ({"instrument_id": "1", "side": "BUY", "quantity": 1, "order_type": "MARKET"}, 400),
        ({**LIMIT, "side": "HOLD", "quantity": 0, "order_type": "LIMIT", "limit_price": "abc"}, 400),
        ({**LIMIT, "order_type": "MARKET"}, 400),  # a limit price on a market order
        ({**LIMIT, "surprise": 1}, 400),
        ({"instrument_id": 999, "side": "BUY", "quantity": 1, "order_type": "MARKET"}, 422),
        ({**LIMIT, "limit_price": "2500.03"}, 422),  # off the 0.05 tick
        ({**LIMIT, "limit_price": "3500"}, 422),  # outside the 20% band around 2500
        ({"instrument_id": 6, "side": "BUY", "quantity": 10, "order_type": "MARKET"}, 422),  # lot size 75
        ({"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "STOP", "stop_price": "2400"}, 422),
    ],
    ids=["empty", "string id", "several fields", "market with limit", "unknown field", "unknown instrument", "tick",
         "band", "lot", "stop through the market"],
)  # fmt: skip
def test_validation_is_post_orders_own(app, client, trader_headers, body, status):
    set_quote(1, "2500.00")
    estimated = client.post(ESTIMATE, json=body, headers=trader_headers)
    placed = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert estimated.status_code == placed.status_code == status
    assert estimated.get_json() == placed.get_json()
    assert estimated.get_json()["error"]["details"]
    assert nothing_written_or_queued(app)


def test_an_inactive_instrument_is_refused_as_placing_it_is(client, trader_headers):
    db.session.get(Instrument, 1).active = False
    db.session.commit()
    estimated = client.post(ESTIMATE, json=LIMIT, headers=trader_headers)
    placed = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    assert estimated.status_code == placed.status_code == 422
    assert estimated.get_json() == placed.get_json()


def test_bad_json_is_a_400(client, trader_headers):
    response = client.post(ESTIMATE, data="{", content_type="application/json", headers=trader_headers)
    assert response.status_code == 400
    assert client.post(ESTIMATE, json=[LIMIT], headers=trader_headers).status_code == 400


def test_get_on_the_estimate_path_is_not_an_estimate(client, trader_headers):
    response = client.get(ESTIMATE, headers=trader_headers)  # not an order id either: ids are UUIDs
    assert response.status_code == 405 and set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_an_existing_account_is_left_as_it_was(client, trader, trader_headers):
    create_account(trader.id)
    db.session.commit()
    account = db.session.get(Account, trader.id)
    state = (account.cash, account.orders_today, account.day, account.trading_state)
    for _ in range(3):
        estimate(client, trader_headers, LIMIT)
    db.session.expire_all()
    account = db.session.get(Account, trader.id)
    assert (account.cash, account.orders_today, account.day, account.trading_state) == state
