"""Changing orders over HTTP: modify, cancel again, cancel all, close all positions, the duplicate
guard and the checks against the market. Bad requests change nothing."""

from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.support.factories import add_position, make_order, set_quote
from tradingapp.domain.errors import DomainError
from tradingapp.domain.validation import NewOrder
from tradingapp.errors import status_of
from tradingapp.extensions import db
from tradingapp.models import Instrument, Order, OrderEvent
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders.placement import place_validated

LIMIT = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "2500.05"}


def queued_job_ids() -> list[str]:
    return jobqueue.get_queue().job_ids


def events_of(order_id) -> list[OrderEvent]:
    query = sa.select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
    return db.session.scalars(query).all()


def reload(order_id) -> Order:
    db.session.expire_all()
    return db.session.get(Order, order_id)


# -- modify ----------------------------------------------------------------------------------
def test_modify_of_an_open_order_waits_for_the_broker(client, trader, trader_headers):
    order = make_order(trader, status="OPEN", broker_order_id="P1", quantity=10, limit_price="100.00")
    response = client.patch(f"/api/v1/orders/{order.id}", json={"quantity": 20, "limit_price": "100.50"},
                            headers=trader_headers)  # fmt: skip
    assert response.status_code == 202
    body = response.get_json()
    # The order keeps its terms until the broker confirms the new ones.
    assert (body["status"], body["quantity"], body["limit_price"]) == ("MODIFY_PENDING", 10, "100")
    row = reload(order.id)
    assert (row.pending_quantity, row.pending_limit_price, row.modify_seq) == (20, Decimal("100.50"), 1)
    assert jobqueue.modify_job_id(order.id, 1) in queued_job_ids()
    assert events_of(order.id)[-1].event == "modify_requested"


def test_modify_of_a_pending_order_takes_the_new_terms_at_once(client, trader_headers):
    order = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    response = client.patch(f"/api/v1/orders/{order['id']}", json={"limit_price": "2499.95"}, headers=trader_headers)
    assert response.status_code == 202
    assert (response.get_json()["status"], response.get_json()["limit_price"]) == ("PENDING", "2499.95")
    assert not any(job.startswith("modify-") for job in queued_job_ids())


@pytest.mark.parametrize("status", ["SUBMITTED", "CANCEL_PENDING", "MODIFY_PENDING", "FILLED", "CANCELLED"])
def test_modify_in_a_state_that_cannot_take_it_is_a_409(client, trader, trader_headers, status):
    order = make_order(trader, status=status, broker_order_id="P1" if status != "SUBMITTED" else None)
    response = client.patch(f"/api/v1/orders/{order.id}", json={"quantity": 20}, headers=trader_headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["status"] == status
    assert reload(order.id).quantity == 10 and events_of(order.id) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"quantity": 0}, 400), ({"quantity": "20"}, 400), ({"side": "SELL"}, 400),
     ({"limit_price": None}, 400), ({"limit_price": "100.01"}, 422), ({"stop_price": "99"}, 422),
     ({"quantity": 5}, 422)],
)  # fmt: skip
def test_bad_modify_is_refused_and_changes_nothing(client, trader, trader_headers, body, status):
    """400: the body does not match the document; 422: the order refuses it (tick, type, filled quantity)."""
    order = make_order(trader, status="PARTIALLY_FILLED", broker_order_id="P1", filled_quantity=5)
    response = client.patch(f"/api/v1/orders/{order.id}", json=body, headers=trader_headers)
    assert response.status_code == status, response.get_json()
    row = reload(order.id)
    assert (row.status, row.quantity, row.modify_seq) == ("PARTIALLY_FILLED", 10, 0)
    assert events_of(order.id) == []


def test_modify_outside_the_price_band_is_a_422(client, trader, trader_headers):
    set_quote(1, "100.00")
    order = make_order(trader, status="OPEN", broker_order_id="P1", limit_price="99.00")
    response = client.patch(f"/api/v1/orders/{order.id}", json={"limit_price": "50.00"}, headers=trader_headers)
    assert response.status_code == 422
    assert "price band" in response.get_json()["error"]["details"]["limit_price"]


def test_another_users_order_cannot_be_modified(client, trader, make_user, auth_headers):
    order = make_order(trader, status="OPEN", broker_order_id="P1")
    other = auth_headers(make_user(email="other@example.com"))
    assert client.patch(f"/api/v1/orders/{order.id}", json={"quantity": 20}, headers=other).status_code == 404


def test_viewer_cannot_modify(client, make_user, auth_headers):
    viewer = make_user(email="viewer@example.com", role="viewer")
    order = make_order(viewer, status="OPEN", broker_order_id="P1")
    response = client.patch(f"/api/v1/orders/{order.id}", json={"quantity": 20}, headers=auth_headers(viewer))
    assert response.status_code == 403


# -- cancel ----------------------------------------------------------------------------------
def test_cancel_asked_again_while_pending_sends_the_cancel_again(client, trader, trader_headers):
    order = make_order(trader, status="CANCEL_PENDING", broker_order_id="P1")
    # The first cancel job was lost (a crash): asking again must queue one.
    response = client.delete(f"/api/v1/orders/{order.id}", headers=trader_headers)
    assert response.status_code == 202 and response.get_json()["status"] == "CANCEL_PENDING"
    assert jobqueue.cancel_job_id(order.id) in queued_job_ids()


def test_cancel_overtakes_a_modification_in_flight(client, trader, trader_headers):
    order = make_order(trader, status="MODIFY_PENDING", broker_order_id="P1", modify_seq=1, pending_quantity=20)
    response = client.delete(f"/api/v1/orders/{order.id}", headers=trader_headers)
    assert response.get_json()["status"] == "CANCEL_PENDING"


def test_cancel_all_cancels_every_working_order_and_leaves_final_ones(client, trader, trader_headers):
    pending = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    open_ = make_order(trader, status="OPEN", broker_order_id="P1")
    filled = make_order(trader, status="FILLED", broker_order_id="P2")
    response = client.delete("/api/v1/orders", headers=trader_headers)
    assert response.status_code == 202
    assert sorted(response.get_json()["cancelled"]) == sorted([pending["id"], str(open_.id)])
    assert reload(pending["id"]).status == "CANCELLED"
    assert reload(open_.id).status == "CANCEL_PENDING"
    assert reload(filled.id).status == "FILLED"
    assert jobqueue.cancel_job_id(open_.id) in queued_job_ids()


def test_cancel_all_can_be_limited_to_one_instrument(client, trader, trader_headers):
    one = make_order(trader, status="OPEN", broker_order_id="P1", instrument_id=1)
    two = make_order(trader, status="OPEN", broker_order_id="P2", instrument_id=2)
    response = client.delete("/api/v1/orders?instrument_id=2", headers=trader_headers)
    assert response.get_json()["cancelled"] == [str(two.id)]
    assert reload(one.id).status == "OPEN"


def test_cancel_all_touches_only_the_callers_orders(client, trader, make_user, auth_headers):
    mine = make_order(trader, status="OPEN", broker_order_id="P1")
    other = make_user(email="other@example.com")
    client.delete("/api/v1/orders", headers=auth_headers(other))
    assert reload(mine.id).status == "OPEN"


# -- duplicate guard ---------------------------------------------------------------------------
def test_identical_order_in_flight_is_refused_as_a_duplicate(client, trader_headers):
    first = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    response = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["details"]["duplicate_of"] == first["id"]


def test_a_new_client_order_id_places_the_identical_order(client, trader_headers):
    client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    response = client.post("/api/v1/orders", json={**LIMIT, "client_order_id": "second"}, headers=trader_headers)
    assert response.status_code == 202


def test_a_different_price_is_not_a_duplicate(client, trader_headers):
    client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    response = client.post("/api/v1/orders", json={**LIMIT, "limit_price": "2500.10"}, headers=trader_headers)
    assert response.status_code == 202


def test_an_identical_order_after_the_first_ended_is_not_a_duplicate(client, trader_headers):
    first = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).get_json()
    client.delete(f"/api/v1/orders/{first['id']}", headers=trader_headers)
    assert client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).status_code == 202


def test_duplicate_guard_window_is_configurable(app, client, trader_headers, monkeypatch):
    monkeypatch.setitem(app.config, "DUPLICATE_ORDER_WINDOW", 0)
    client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    assert client.post("/api/v1/orders", json=LIMIT, headers=trader_headers).status_code == 202


# -- against the market ------------------------------------------------------------------------
def test_limit_price_outside_the_band_is_refused_and_writes_nothing(client, trader_headers):
    set_quote(1, "2500.00")
    response = client.post("/api/v1/orders", json={**LIMIT, "limit_price": "1500.00"}, headers=trader_headers)
    assert response.status_code == 422
    assert "20% around the last price 2500.00" in response.get_json()["error"]["details"]["limit_price"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Order)) == 0


def test_buy_stop_below_the_market_is_refused(client, trader_headers):
    set_quote(1, "2500.00")
    body = {**LIMIT, "order_type": "STOP", "limit_price": None, "stop_price": "2490.00"}
    response = client.post("/api/v1/orders", json={k: v for k, v in body.items() if v}, headers=trader_headers)
    assert response.status_code == 422
    assert "above the last price" in response.get_json()["error"]["details"]["stop_price"]


def test_stop_limit_order_is_accepted(client, trader_headers):
    set_quote(1, "2500.00")
    body = {**LIMIT, "order_type": "STOP_LIMIT", "limit_price": "2511.00", "stop_price": "2510.00"}
    response = client.post("/api/v1/orders", json=body, headers=trader_headers)
    assert response.status_code == 202
    assert (response.get_json()["order_type"], response.get_json()["stop_price"]) == ("STOP_LIMIT", "2510")


def test_quantity_above_the_freeze_quantity_is_refused(client, trader_headers):
    db.session.get(Instrument, 1).freeze_quantity = 5
    db.session.commit()
    response = client.post("/api/v1/orders", json=LIMIT, headers=trader_headers)
    assert response.status_code == 422
    assert "freeze quantity 5" in response.get_json()["error"]["details"]["quantity"]


# -- close all positions -------------------------------------------------------------------------
def test_close_all_places_market_orders_that_flatten_every_position(client, trader, trader_headers):
    add_position(trader, 1, 30)
    add_position(trader, 2, -20, product="NRML")
    add_position(trader, 3, 0)
    response = client.delete("/api/v1/positions", headers=trader_headers)
    assert response.status_code == 202
    orders = {(o["instrument_id"], o["side"], o["quantity"], o["product"], o["order_type"])
              for o in response.get_json()["orders"]}  # fmt: skip
    assert orders == {(1, "SELL", 30, "MIS", "MARKET"), (2, "BUY", 20, "NRML", "MARKET")}
    assert response.get_json()["skipped"] == []
    assert len([j for j in queued_job_ids() if j.startswith("submit-")]) == 2


def test_close_all_slices_by_the_freeze_quantity(client, trader, trader_headers):
    db.session.get(Instrument, 1).freeze_quantity = 12
    db.session.commit()
    add_position(trader, 1, 30)
    orders = client.delete("/api/v1/positions", headers=trader_headers).get_json()["orders"]
    assert sorted(o["quantity"] for o in orders) == [6, 12, 12]


def test_close_all_twice_in_a_row_does_not_double_the_exit(client, trader, trader_headers):
    add_position(trader, 1, 30)
    client.delete("/api/v1/positions", headers=trader_headers)
    again = client.delete("/api/v1/positions", headers=trader_headers).get_json()
    assert again["orders"] == []
    assert again["skipped"][0]["error"]["code"] == "covered"


def test_close_all_sends_only_what_working_exit_orders_do_not_cover(client, trader, trader_headers):
    add_position(trader, 1, 30)
    make_order(trader, status="PARTIALLY_FILLED", broker_order_id="P1", side="SELL", quantity=10, filled_quantity=4)
    make_order(trader, status="OPEN", broker_order_id="P2", side="BUY", quantity=10)  # adds, does not cover
    orders = client.delete("/api/v1/positions", headers=trader_headers).get_json()["orders"]
    assert [(o["side"], o["quantity"]) for o in orders] == [("SELL", 24)]


def test_close_all_with_no_positions_places_nothing(client, trader_headers):
    assert client.delete("/api/v1/positions", headers=trader_headers).get_json() == {"orders": [], "skipped": []}


def test_an_exit_sized_before_a_racing_exit_is_refused_rather_than_flip_the_position(trader):
    """close-all sizes its exit from a read outside the account lock; an exit placed in between
    must make the risk engine refuse it (close_only), never let both fill into a short."""
    add_position(trader, 1, 30)
    make_order(trader, status="OPEN", broker_order_id="P1", side="SELL", quantity=10)  # the racing exit
    instrument = db.session.get(Instrument, 1)
    stale = NewOrder(1, "SELL", 30, "MARKET", None, None, "MIS", "DAY", None)
    with pytest.raises(DomainError) as refused:
        place_validated(trader, instrument, stale, close_only=True)
    assert (status_of(refused.value), refused.value.details["rule"]) == (422, "close_only")
    assert refused.value.details["current"] == 20
