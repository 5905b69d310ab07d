"""OWASP API3:2023 Broken Object Property Level Authorization.

Mass assignment: a body that tries to set a property the caller may not (role, active, id, user_id,
status, filled_quantity, broker_order_id, average_price...) is refused with a 400 naming it, and
nothing is written. Excessive exposure: no response and no log line carries a password hash, a
broker secret or a token other than the one a login hands out; the request shapes, built from the
same declarations, declare none of them."""

from __future__ import annotations

import logging
import re

import pytest
import sqlalchemy as sa

from tests.support.factories import make_order
from tradingapp.extensions import db
from tradingapp.models import Order, User

APP_KEY, SECRET = "mass-app-key-1234", "Mass-Secret-Key-5678"
MD_APP_KEY, MD_SECRET = "mass-md-app-key-1", "Mass-Md-Secret-Key-9"
PASSWORD = "correct-horse-battery"
ORDER = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "2500.05"}

MASS_ASSIGNMENTS = [
    ("post", "/api/v1/auth/register", {"email": "m@example.com", "password": "s3cret-enough", "role": "admin"}),
    ("post", "/api/v1/auth/register", {"email": "m@example.com", "password": "s3cret-enough", "active": False}),
    ("post", "/api/v1/auth/register", {"email": "m@example.com", "password": "s3cret-enough", "id": "x"}),
    ("post", "/api/v1/orders", {**ORDER, "status": "FILLED"}),
    ("post", "/api/v1/orders", {**ORDER, "filled_quantity": 10}),
    ("post", "/api/v1/orders", {**ORDER, "user_id": "00000000-0000-4000-8000-000000000001"}),
    ("post", "/api/v1/orders", {**ORDER, "broker_order_id": "B-1", "average_price": "1"}),
    ("post", "/api/v1/orders/estimate", {**ORDER, "user_id": "00000000-0000-4000-8000-000000000001"}),
    ("patch", "/api/v1/orders/{order}", {"quantity": 20, "status": "OPEN"}),
    ("patch", "/api/v1/orders/{order}", {"quantity": 20, "filled_quantity": 0}),
    ("patch", "/api/v1/orders/{order}", {"side": "SELL"}),
    ("post", "/api/v1/watchlists", {"name": "Mine", "user_id": "00000000-0000-4000-8000-000000000001"}),
    ("post", "/api/v1/watchlists", {"name": "Mine", "position": 0}),
    ("post", "/api/v1/broker-accounts", {"app_key": APP_KEY, "secret_key": SECRET, "active": False}),
    ("post", "/api/v1/broker-accounts", {"app_key": APP_KEY, "secret_key": SECRET, "user_id": "x"}),
]


def counts() -> tuple:
    tables = ("users", "orders", "watchlists", "broker_accounts")
    return tuple(db.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) for table in tables)


@pytest.mark.parametrize(
    ("method", "path", "body"), MASS_ASSIGNMENTS, ids=[f"{m} {p} {sorted(b)[-1]}" for m, p, b in MASS_ASSIGNMENTS]
)
def test_a_body_setting_a_property_the_caller_does_not_own_is_refused(
    client, trader, trader_headers, method, path, body
):
    order = make_order(trader, status="OPEN", broker_order_id="P-1")
    before = counts(), db.session.get(Order, order.id).to_dict()
    response = getattr(client, method)(path.format(order=order.id), json=body, headers=trader_headers)
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and "unknown_fields" in error["details"]
    db.session.expire_all()
    assert (counts(), db.session.get(Order, order.id).to_dict()) == before


def test_an_admin_user_change_sets_only_role_and_active(client, admin_headers, trader):
    body = {"role": "viewer", "email": "taken@example.com", "password_hash": "x"}
    response = client.patch(f"/api/v1/admin/users/{trader.id}", json=body, headers=admin_headers)
    assert response.status_code == 400 and "unknown_fields" in response.get_json()["error"]["details"]
    db.session.expire_all()
    assert (db.session.get(User, trader.id).role, db.session.get(User, trader.id).email) == ("trader", trader.email)


def test_no_response_or_log_line_carries_a_hash_a_broker_secret_or_another_token(
    client, make_user, auth_headers, admin_headers, caplog
):
    """Every read of a user, an account and the admin views, after a login, a link and a secret
    change: the secrets go in, never out."""
    caplog.set_level(logging.DEBUG)
    user = make_user(email="secretive@example.com", password=PASSWORD)
    login = client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}).get_json()
    headers = auth_headers(user)
    link = {"app_key": APP_KEY, "secret_key": SECRET, "md_app_key": MD_APP_KEY, "md_secret_key": MD_SECRET}
    account = client.post("/api/v1/broker-accounts", json=link, headers=headers).get_json()
    client.put(f"/api/v1/broker-accounts/{account['id']}", json={"secret_key": SECRET + "-2"}, headers=headers)
    client.post("/api/v1/broker-accounts", json={**link, "secret_key": "bad secret with spaces"}, headers=headers)
    client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD + "-wrong"})
    answers = [
        client.get("/api/v1/auth/me", headers=headers),
        client.get("/api/v1/broker-accounts", headers=headers),
        client.get("/api/v1/admin/users", headers=admin_headers),
        client.get("/api/v1/admin/audit", headers=admin_headers),
        client.get("/api/v1/account", headers=headers),
    ]
    text = "\n".join(a.get_data(as_text=True) for a in answers)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    secrets = [SECRET, SECRET + "-2", MD_SECRET, "bad secret with spaces", PASSWORD, user.password_hash, "$argon2"]
    for secret in secrets:
        assert secret not in text, f"a response carries {secret[:12]}..."
        assert secret not in logged, f"a log line carries {secret[:12]}..."
    for token in (login["access_token"], login["refresh_token"]):
        assert token not in text and token not in logged
    assert APP_KEY not in text and "****" in text  # the app key is shown masked


def test_the_response_shapes_declare_no_secret(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    forbidden = re.compile(r"password|secret_key|hash|_encrypted")
    for name, schema in schemas.items():
        readable = {k for k, v in schema.get("properties", {}).items() if not v.get("writeOnly")}
        if name in ("Register", "Login", "NewBrokerAccount", "BrokerAccountSecrets"):
            continue  # request bodies: the secret goes in
        assert not {k for k in readable if forbidden.search(k)}, name
