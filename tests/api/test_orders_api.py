"""Orders over HTTP: placing, idempotency, listing, cancelling, and bad input that writes nothing."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from tests.support.factories import make_order, set_quote
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent
from tradingapp.services.orders import jobqueue

LIMIT = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "2500.05"}
MARKET = {"instrument_id": 1, "side": "SELL", "quantity": 5, "order_type": "MARKET"}


def order_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Order))


def queued_job_ids() -> list[str]:
    return jobqueue.get_queue().job_ids


def test_market_order_is_accepted_pending_and_queued(client, trader_headers):
    set_quote(1, "2500.00")  # the risk engine values a market order at the last price
    response = client.post("/api/v1/orders", json=MARKET, headers=trader_headers)
    assert response.status_code == 202
    order = response.get_json()
    assert (order["status"], order["side"], order["quantity"], order["symbol"]) == ("PENDING", "SELL", 5, "RELIANCE")
    assert order["limit_price"] is None and order["filled_quantity"] == 0
    assert jobqueue.submit_job_id(order["id"]) in queued_job_ids()


def test_limit_order_carries_its_price_as_a_string(client, trader_headers):
    order = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    assert order["limit_price"] == "2500.05"
    assert order["created_at"].endswith("Z")


def test_order_creation_is_audited(client, trader_headers):
    order = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    events = client.get(f"/api/v1/orders/{order['id']}/events", headers=trader_headers).get_json()["items"]
    assert [e["event"] for e in events] == ["created"]
    assert events[0]["actor"] == "user" and events[0]["to_status"] == "PENDING"


def test_same_client_order_id_returns_the_first_order(client, trader_headers):
    body = {**LIMIT, "client_order_id": "abc-1"}
    first = client.post("/api/v1/orders", json=body, headers=trader_headers)
    again = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert order_count() == 1


def test_same_client_order_id_with_another_body_is_a_conflict(client, trader_headers):
    client.post("/api/v1/orders", json={**LIMIT, "client_order_id": "abc-2"}, headers=trader_headers)
    response = client.post(
        "/api/v1/orders", json={**LIMIT, "quantity": 20, "client_order_id": "abc-2"}, headers=trader_headers
    )
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "conflict"
    assert order_count() == 1


def test_idempotency_key_header_works_like_client_order_id(client, trader_headers):
    headers = {**trader_headers, "Idempotency-Key": "key-7"}
    first = client.post("/api/v1/orders", json=LIMIT, headers=headers)
    again = client.post("/api/v1/orders", json=LIMIT, headers=headers)
    other = client.post("/api/v1/orders", json={**LIMIT, "side": "SELL"}, headers=headers)
    assert (first.status_code, again.status_code, other.status_code) == (202, 200, 409)
    assert first.get_json()["client_order_id"] == "key-7"


def test_client_order_ids_are_per_user(client, make_user, auth_headers):
    body = {**LIMIT, "client_order_id": "shared"}
    a = client.post("/api/v1/orders", json=body, headers=auth_headers(make_user()))
    b = client.post("/api/v1/orders", json=body, headers=auth_headers(make_user()))
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.get_json()["id"] != b.get_json()["id"]


BAD_BODIES = [
    ({**LIMIT, "quantity": 0}, "quantity"),
    ({**LIMIT, "quantity": -10}, "quantity"),
    ({**LIMIT, "quantity": "10"}, "quantity"),
    ({**LIMIT, "side": "HOLD"}, "side"),
    ({**LIMIT, "limit_price": None}, "limit_price"),
    ({**LIMIT, "limit_price": 2500}, "limit_price"),
    ({**LIMIT, "instrument_id": "1"}, "instrument_id"),
    ({**LIMIT, "order_type": "ICEBERG"}, "order_type"),
    ({**MARKET, "limit_price": "2500"}, "body"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_an_order_not_matching_the_document_is_a_400_and_writes_nothing(client, trader_headers, body, field):
    response = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]
    assert order_count() == 0 and queued_job_ids() == []


REFUSED_BODIES = [
    ({**LIMIT, "limit_price": "2500.03"}, "limit_price"),  # tick 0.05
    ({**LIMIT, "instrument_id": 999}, "instrument_id"),  # no such instrument
    ({**MARKET, "instrument_id": 6, "quantity": 10}, "quantity"),  # lot size 75
]


@pytest.mark.parametrize(("body", "field"), REFUSED_BODIES)
def test_an_order_the_instrument_refuses_is_a_422_naming_the_field(client, trader_headers, body, field):
    response = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]
    assert order_count() == 0 and queued_job_ids() == []


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'{"quantity": NaN}'])
def test_malformed_json_is_a_400(client, trader_headers, raw):
    response = client.post("/api/v1/orders", data=raw, headers={**trader_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"
    assert order_count() == 0


def test_missing_token_is_a_401(client):
    response = client.post("/api/v1/orders", json=LIMIT)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert order_count() == 0


def test_expired_token_is_a_401(app, client, trader):
    with app.test_request_context():
        token = create_access_token(
            identity=str(trader.id),
            additional_claims={"sid": "s", "role": "trader"},
            expires_delta=timedelta(seconds=-5),
        )
    response = client.post("/api/v1/orders", json=LIMIT, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert order_count() == 0


def test_viewer_cannot_place_orders(client, make_user, auth_headers):
    response = client.post("/api/v1/orders", json=LIMIT, headers=auth_headers(make_user(role="viewer")))
    assert response.status_code == 403
    assert order_count() == 0


def test_another_users_order_is_not_found(client, trader, make_user, auth_headers):
    order = make_order(trader)
    intruder = auth_headers(make_user())
    assert client.get(f"/api/v1/orders/{order.id}", headers=intruder).status_code == 404
    assert client.delete(f"/api/v1/orders/{order.id}", headers=intruder).status_code == 404
    assert client.get(f"/api/v1/orders/{order.id}/events", headers=intruder).status_code == 404
    db.session.refresh(order)
    assert order.status == "PENDING"


def test_garbage_order_id_is_not_found(client, trader_headers):
    assert client.get("/api/v1/orders/not-a-uuid", headers=trader_headers).status_code == 404


def test_orders_list_newest_first_with_cursor(client, trader_headers):
    bodies = [{**LIMIT, "client_order_id": f"c{n}"} for n in range(3)]  # three meant orders, not duplicates
    ids = [client.post("/api/v1/orders", json=body, headers=trader_headers).get_json()["id"] for body in bodies]
    page = client.get("/api/v1/orders?limit=2", headers=trader_headers).get_json()
    assert [o["id"] for o in page["items"]] == ids[::-1][:2]
    rest = client.get(f"/api/v1/orders?limit=2&cursor={page['next_cursor']}", headers=trader_headers).get_json()
    assert [o["id"] for o in rest["items"]] == [ids[0]] and rest["next_cursor"] is None


def test_orders_list_filters_by_status(client, trader, trader_headers):
    make_order(trader, status="OPEN", broker_order_id="P1")
    make_order(trader, status="PENDING")
    items = client.get("/api/v1/orders?status=OPEN", headers=trader_headers).get_json()["items"]
    assert [o["status"] for o in items] == ["OPEN"]
    assert client.get("/api/v1/orders?status=NOPE", headers=trader_headers).status_code == 400


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=abc", "limit=100000", "instrument_id=x", "instrument_id=2147483648", "status=open",
     "status=OPEN,", "limit=1&limit=2", "colour=red"],
)  # fmt: skip
def test_list_parameters_not_matching_the_document_are_a_400(client, trader_headers, query):
    response = client.get(f"/api/v1/orders?{query}", headers=trader_headers)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "validation_error"


def test_a_cursor_that_does_not_decode_is_a_422(client, trader_headers):
    response = client.get("/api/v1/orders?cursor=!!!", headers=trader_headers)
    assert response.status_code == 422 and response.get_json()["error"]["details"] == {}


def test_cancel_of_a_pending_order_is_immediate(client, trader_headers):
    order = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    response = client.delete(f"/api/v1/orders/{order['id']}", headers=trader_headers)
    assert response.status_code == 202
    assert response.get_json()["status"] == "CANCELLED"


def test_cancel_of_an_open_order_asks_the_broker(client, trader, trader_headers):
    order = make_order(trader, status="OPEN", broker_order_id="P1")
    response = client.delete(f"/api/v1/orders/{order.id}", headers=trader_headers)
    assert response.status_code == 202
    assert response.get_json()["status"] == "CANCEL_PENDING"
    assert jobqueue.cancel_job_id(order.id) in queued_job_ids()


def test_cancel_of_a_final_order_is_a_409(client, trader, trader_headers):
    order = make_order(trader, status="FILLED", broker_order_id="P1")
    response = client.delete(f"/api/v1/orders/{order.id}", headers=trader_headers)
    assert response.status_code == 409
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent)) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**LIMIT, "instrument_id": 2**40}, "instrument_id"),
        ({**LIMIT, "limit_price": "1e-999999999"}, "limit_price"),
        ({**LIMIT, "limit_price": "2500.00001"}, "limit_price"),
    ],
)
def test_out_of_range_values_are_a_400_not_a_500(client, trader_headers, body, field):
    response = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert response.status_code == 400 and field in response.get_json()["error"]["details"]
    assert order_count() == 0


@pytest.mark.parametrize("value", ["99999999999999999999", "%C2%B2"])
def test_out_of_range_instrument_filter_is_a_400(client, trader_headers, value):
    assert client.get(f"/api/v1/orders?instrument_id={value}", headers=trader_headers).status_code == 400
