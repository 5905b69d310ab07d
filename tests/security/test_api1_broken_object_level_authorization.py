"""OWASP API1:2023 Broken Object Level Authorization: every route that takes the id of an object a
user owns (orders, their events, watchlists, broker accounts) is called by another trader with the
owner's id. The answer is the 404 of an id that does not exist (API.md: "404, not 403"), and the
owner's object is unchanged. Lists and filters never show another user's rows. An admin route that
takes a user id is refused to a trader (403) and changes nothing."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from tests.support.factories import make_order
from tradingapp.extensions import db
from tradingapp.models import Order, Trade, User

ORDERS, WATCHLISTS, ACCOUNTS = "/api/v1/orders", "/api/v1/watchlists", "/api/v1/broker-accounts"
APP_KEY, SECRET = "owner-app-key-1234", "owner-secret-key-5678"


@pytest.fixture
def owner(make_user):
    return make_user(email="owner@example.com")


@pytest.fixture
def owner_headers(owner, auth_headers):
    return auth_headers(owner)


@pytest.fixture
def intruder_headers(make_user, auth_headers):
    return auth_headers(make_user(email="intruder@example.com"))


@pytest.fixture
def owned(client, owner, owner_headers):
    """One object of each kind the owner holds: an open order, a watchlist, a linked broker account."""
    order = make_order(owner, status="OPEN", broker_order_id="P-1")
    watchlist = client.post(WATCHLISTS, json={"name": "Mine"}, headers=owner_headers).get_json()
    client.put(f"{WATCHLISTS}/{watchlist['id']}/instruments/1", headers=owner_headers)
    account = client.post(ACCOUNTS, json={"app_key": APP_KEY, "secret_key": SECRET}, headers=owner_headers)
    return {"order": str(order.id), "watchlist": watchlist["id"], "account": account.get_json().get("id")}


def snapshot(client, owner_headers, ids: dict) -> dict:
    return {
        "order": client.get(f"{ORDERS}/{ids['order']}", headers=owner_headers).get_json(),
        "events": client.get(f"{ORDERS}/{ids['order']}/events", headers=owner_headers).get_json(),
        "watchlists": client.get(WATCHLISTS, headers=owner_headers).get_json(),
        "accounts": client.get(ACCOUNTS, headers=owner_headers).get_json(),
    }


ATTACKS = [
    ("get", ORDERS + "/{order}", None),
    ("get", ORDERS + "/{order}/events", None),
    ("patch", ORDERS + "/{order}", {"quantity": 20}),
    ("delete", ORDERS + "/{order}", None),
    ("patch", WATCHLISTS + "/{watchlist}", {"name": "Taken over"}),
    ("delete", WATCHLISTS + "/{watchlist}", None),
    ("put", WATCHLISTS + "/{watchlist}/instruments/2", None),
    ("delete", WATCHLISTS + "/{watchlist}/instruments/1", None),
    ("put", ACCOUNTS + "/{account}", {"secret_key": "intruder-secret-0000"}),
    ("delete", ACCOUNTS + "/{account}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ATTACKS, ids=[f"{m} {p}" for m, p, _ in ATTACKS])
def test_another_traders_object_id_is_a_404_and_changes_nothing(
    client, owned, owner_headers, intruder_headers, method, path, body
):
    assert owned["account"], "the owner's broker account was not linked"
    before = snapshot(client, owner_headers, owned)
    response = getattr(client, method)(path.format(**owned), json=body, headers=intruder_headers)
    assert response.status_code == 404, response.get_json()
    assert response.get_json()["error"]["code"] == "not_found"
    assert snapshot(client, owner_headers, owned) == before


def test_the_404_for_another_traders_order_is_the_404_of_no_order(client, owned, intruder_headers):
    theirs = client.get(f"{ORDERS}/{owned['order']}", headers=intruder_headers)
    nobodys = client.get(f"{ORDERS}/{uuid.uuid4()}", headers=intruder_headers)
    assert (theirs.status_code, theirs.get_json()) == (nobodys.status_code, nobodys.get_json())


def test_lists_and_filters_never_show_another_traders_rows(client, owner, owned, intruder_headers):
    order = db.session.get(Order, uuid.UUID(owned["order"]))
    db.session.add(Trade(order_id=order.id, user_id=owner.id, instrument_id=order.instrument_id, side="BUY",
                         quantity=1, price=order.limit_price or 100, execution_id="E-1"))  # fmt: skip
    db.session.commit()
    for url in (ORDERS, f"{ORDERS}?instrument_id={order.instrument_id}", "/api/v1/trades",
                f"/api/v1/trades?order_id={order.id}", WATCHLISTS, ACCOUNTS, "/api/v1/positions"):  # fmt: skip
        response = client.get(url, headers=intruder_headers)
        assert response.status_code == 200 and response.get_json()["items"] == [], url


def test_cancel_all_as_another_trader_leaves_the_owners_orders_working(client, owned, intruder_headers):
    response = client.delete(ORDERS, headers=intruder_headers)
    assert response.status_code == 202 and response.get_json()["cancelled"] == []
    assert db.session.get(Order, uuid.UUID(owned["order"])).status == "OPEN"


def test_a_trader_cannot_change_another_user_through_the_admin_routes(client, owner, intruder_headers):
    response = client.patch(f"/api/v1/admin/users/{owner.id}", json={"active": False}, headers=intruder_headers)
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.scalar(sa.select(User.active).where(User.id == owner.id)) is True
