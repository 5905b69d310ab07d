"""The risk engine on the order path over HTTP: a refusal is a 422/423 naming the rule and the
numbers, kept as a REJECTED order with its audit trail; a rate-limit refusal writes nothing."""

import uuid
from decimal import Decimal

import sqlalchemy as sa

from jobs.order_jobs import submit_order
from tests.support.factories import add_position, event, make_order, set_quote
from tradingapp import events as ev
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders.broker_events import apply_broker_event
from tradingapp.services.orders.submission import HALTED_BEFORE_SUBMISSION

LIMIT = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "2500.05"}


def set_limits(client, admin_headers, user=None, **limits):
    body = {"users": {str(user.id): limits}} if user else {"global": limits}
    response = client.put("/api/v1/admin/risk-limits", json=body, headers=admin_headers)
    assert response.status_code == 200, response.get_json()


def orders() -> list[Order]:
    return db.session.scalars(sa.select(Order)).all()


def test_order_over_the_quantity_limit_is_refused_and_kept_as_rejected(client, trader, trader_headers, admin_headers):
    set_limits(client, admin_headers, trader, max_order_quantity=5)
    response = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "risk_rejected"
    assert error["details"]["rule"] == "max_order_quantity"
    [order] = orders()
    assert (str(order.id), order.status) == (error["details"]["order_id"], "REJECTED")
    assert order.reject_reason.startswith("risk: ")
    trail = client.get(f"/api/v1/orders/{order.id}/events", headers=trader_headers).get_json()["items"]
    assert [e["event"] for e in trail] == ["created", "risk_rejected"]
    assert trail[1]["actor"] == "system" and trail[1]["details"]["rule"] == "max_order_quantity"
    assert jobqueue.get_queue().job_ids == []  # nothing goes to the broker


def test_refused_order_repeated_with_its_client_order_id_returns_the_rejection(
    client, trader, trader_headers, admin_headers
):
    set_limits(client, admin_headers, trader, max_order_quantity=5)
    body = {**LIMIT, "client_order_id": "r-1"}
    first = client.post("/api/v1/orders", json=body, headers=trader_headers)
    again = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert (first.status_code, again.status_code) == (422, 200)
    assert again.get_json()["status"] == "REJECTED" and len(orders()) == 1


def test_kill_switch_halts_new_orders_with_423_but_cancels_pass(client, trader, trader_headers, admin_headers):
    working = make_order(trader, status="OPEN", broker_order_id="P1")
    response = client.post("/api/v1/admin/kill-switch", json={"active": True}, headers=admin_headers)
    assert response.status_code == 200
    refused = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    assert refused.status_code == 423
    assert refused.get_json()["error"]["code"] == "trading_halted"
    cancel = client.delete(f"/api/v1/orders/{working.id}", headers=trader_headers)
    assert (cancel.status_code, cancel.get_json()["status"]) == (202, "CANCEL_PENDING")


def test_kill_switch_for_one_user_leaves_the_others_trading(client, trader, make_user, auth_headers, admin_headers):
    client.post("/api/v1/admin/kill-switch", json={"active": True, "user_id": str(trader.id)}, headers=admin_headers)
    other = auth_headers(make_user(email="other@example.com"))
    assert client.post("/api/v1/orders", json=LIMIT, headers=other).status_code == 202


def test_order_rate_limit_is_a_429_with_retry_after_and_writes_nothing(client, trader, trader_headers, admin_headers):
    set_limits(client, admin_headers, trader, orders_per_second=1, order_burst=2)
    bodies = [{**LIMIT, "client_order_id": f"c{n}"} for n in range(6)]
    responses = [client.post("/api/v1/orders", json=body, headers=trader_headers) for body in bodies]
    codes = [r.status_code for r in responses]
    # A burst of 2 and one token a second: six orders sent at once cannot all pass (unless the
    # machine took over 4 s for them), and no refused one leaves a row.
    assert set(codes) == {202, 429} and codes[:2] == [202, 202]
    refused = responses[codes.index(429)]
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.get_json()["error"]["details"]["rule"] == "orders_per_second"
    assert len(orders()) == codes.count(202)


def test_modify_over_the_quantity_limit_is_refused_and_audited(client, trader, trader_headers, admin_headers):
    set_quote(1, "100.00")
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10, limit_price="100.00")
    set_limits(client, admin_headers, trader, max_order_quantity=10)
    response = client.patch(f"/api/v1/orders/{order.id}", json={"quantity": 20}, headers=trader_headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["details"]["rule"] == "max_order_quantity"
    db.session.expire_all()
    row = db.session.get(Order, order.id)
    assert (row.status, row.quantity, row.modify_seq) == ("OPEN", 10, 0)
    [audit] = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all()
    assert (audit.event, audit.actor, audit.details["rule"]) == ("modify_risk_rejected", "system", "max_order_quantity")


def go_reducing(client, trader, admin_headers):
    body = {"state": "REDUCING", "user_id": str(trader.id)}
    assert client.post("/api/v1/admin/kill-switch", json=body, headers=admin_headers).status_code == 200


BUY_100 = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "100.00"}


def test_reducing_state_lets_only_exposure_shrinking_orders_through(client, trader, trader_headers, admin_headers):
    add_position(trader, 1, 30)
    go_reducing(client, trader, admin_headers)
    refused = client.post("/api/v1/orders", json=BUY_100, headers=trader_headers)
    assert refused.status_code == 422
    assert refused.get_json()["error"]["details"]["rule"] == "reducing_only"
    assert client.post("/api/v1/orders", json={**BUY_100, "side": "SELL"}, headers=trader_headers).status_code == 202


def test_close_all_is_the_way_out_of_a_reducing_account(client, trader, trader_headers, admin_headers):
    add_position(trader, 1, 30)
    go_reducing(client, trader, admin_headers)
    closing = client.delete("/api/v1/positions", headers=trader_headers).get_json()
    assert [(o["side"], o["quantity"], o["status"]) for o in closing["orders"]] == [("SELL", 30, "PENDING")]
    assert closing["skipped"] == []


def test_modify_in_the_wrong_state_is_a_409_before_any_risk_verdict(client, trader, trader_headers, admin_headers):
    order = make_order(trader, status="CANCEL_PENDING", broker_order_id="P1", quantity=10)
    set_limits(client, admin_headers, trader, max_order_quantity=10)
    response = client.patch(f"/api/v1/orders/{order.id}", json={"quantity": 20}, headers=trader_headers)
    assert response.status_code == 409
    assert db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)).all() == []


# -- review findings ---------------------------------------------------------------------------
def test_a_buy_stop_is_checked_at_the_price_it_will_trade_from(client, trader, trader_headers, admin_headers):
    set_limits(client, admin_headers, trader, margin_mis_percent="100")
    set_quote(1, "100.00")
    # 99,000 x 119 = 11.78M of margin against 10M of cash: valued at the last price (9.9M) it passed.
    body = {"instrument_id": 1, "side": "BUY", "quantity": 99_000, "order_type": "STOP", "stop_price": "119.00"}
    response = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert response.status_code == 422
    assert Decimal(client.get("/api/v1/funds", headers=trader_headers).get_json()["available"]) >= 0


def test_an_order_waiting_for_a_price_rise_blocks_margin_at_the_new_price(
    client, trader, trader_headers, admin_headers
):
    set_limits(client, admin_headers, trader, margin_mis_percent="100")
    set_quote(1, "100.00")
    waiting = make_order(trader, status="OPEN", broker_order_id="P1", quantity=50_000, limit_price="90.00")
    assert client.patch(f"/api/v1/orders/{waiting.id}", json={"limit_price": "110.00"},
                        headers=trader_headers).status_code == 202  # fmt: skip
    # 50,000 x 110 is blocked while the modification is in flight: 45,000 x 110 more does not fit.
    body = {"instrument_id": 1, "side": "BUY", "quantity": 45_000, "order_type": "LIMIT", "limit_price": "110.00"}
    assert client.post("/api/v1/orders", json=body, headers=trader_headers).status_code == 422
    apply_broker_event(event(ev.MODIFIED, waiting, seq=1, quantity=50_000, limit_price=Decimal("110.00"),
                             stop_price=None))  # fmt: skip
    assert Decimal(client.get("/api/v1/funds", headers=trader_headers).get_json()["available"]) >= 0


def test_an_order_queued_before_the_kill_switch_never_reaches_the_broker(client, trader, trader_headers, admin_headers):
    set_quote(1, "100.00")
    placed = client.post("/api/v1/orders", json=BUY_100, headers=trader_headers).get_json()
    client.post("/api/v1/admin/kill-switch", json={"active": True, "reason": "runaway algo"}, headers=admin_headers)
    assert submit_order(placed["id"]) is None  # the queued submit job runs after the halt
    db.session.rollback()
    order = db.session.get(Order, uuid.UUID(placed["id"]))
    assert (order.status, order.reject_reason) == ("REJECTED", HALTED_BEFORE_SUBMISSION)
    assert db.session.get(PaperOrder, order.id) is None


def test_the_daily_loss_limit_counts_an_overnight_position_from_yesterdays_close(client, trader, trader_headers):
    # Bought at 100 long ago: still a gain since then, yet 1.5M lost today (close 300, now 150).
    add_position(trader, 1, 10_000)  # average 100
    set_quote(1, "150.00", close="300.00")
    response = client.post("/api/v1/orders", json=BUY_100 | {"limit_price": "150.00"}, headers=trader_headers)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert (details["rule"], details["trading_state"]) == ("max_daily_loss", "REDUCING")
    assert Decimal(details["current"]) == Decimal("1500000")
