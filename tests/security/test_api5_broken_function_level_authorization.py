"""OWASP API5:2023 Broken Function Level Authorization: every admin route, enumerated from the app's
URL map (a new admin route is covered without editing this file), called by a trader and by a
viewer, with a body the admin would have succeeded with: 403 forbidden, and nothing changes. Every
write route a trader may use is refused to a viewer (read-only role)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tradingapp.api.openapi import operations
from tradingapp.extensions import db

ORDER = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": "2500.05"}
TABLES = ("users", "orders", "watchlists", "broker_accounts", "accounts", "risk_settings", "admin_actions")


def admin_routes(app) -> list[tuple[str, str]]:
    with app.app_context():
        found = [(method, path) for path, method, _op, rule in operations() if rule.rule.startswith("/api/v1/admin")]
    assert found, "no admin route in the URL map"
    return found


def valid_admin_body(method: str, path: str) -> dict | None:
    """A body the admin's request would succeed with: the refusal must be the role's, not the body's."""
    bodies = {
        ("patch", "/api/v1/admin/users/{user_id}"): {"active": False},
        ("put", "/api/v1/admin/risk-limits"): {"global": {"max_open_orders": 1}},
        ("post", "/api/v1/admin/kill-switch"): {"active": True, "reason": "function level attack"},
    }
    return bodies.get((method, path)) if method != "get" else None


def state() -> tuple:
    existing = set(sa.inspect(db.engine).get_table_names())
    rows = []
    for table in TABLES:
        if table in existing:
            rows.append(db.session.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1")).all())  # noqa: S608
    return tuple(map(tuple, rows))


@pytest.fixture(params=["trader", "viewer"])
def caller(request, make_user, auth_headers):
    return auth_headers(make_user(role=request.param))


def test_every_admin_route_is_refused_to_a_trader_and_a_viewer_and_changes_nothing(
    app, client, caller, admin, admin_headers, trader
):
    routes = admin_routes(app)
    for method, path in routes:
        url = path.replace("{user_id}", str(trader.id))
        body = valid_admin_body(method, path)
        if body is None and method != "get":
            pytest.fail(f"{method.upper()} {path}: give it a valid admin body in valid_admin_body")
        before = state()
        response = getattr(client, method)(url, json=body, headers=caller)
        assert response.status_code == 403, f"{method.upper()} {path}: {response.status_code}"
        assert response.get_json()["error"]["code"] == "forbidden"
        db.session.expire_all()
        assert state() == before, f"{method.upper()} {path} changed something"


def test_the_admin_bodies_used_above_are_accepted_from_the_admin(app, client, admin_headers, trader):
    """The attack is the role alone: the same requests succeed for an admin."""
    for method, path in admin_routes(app):
        url = path.replace("{user_id}", str(trader.id))
        response = getattr(client, method)(url, json=valid_admin_body(method, path), headers=admin_headers)
        assert response.status_code == 200, f"{method.upper()} {path}: {response.get_json()}"


VIEWER_WRITES = [
    ("post", "/api/v1/orders", ORDER),
    ("delete", "/api/v1/orders", None),
    ("delete", "/api/v1/positions", None),
    ("post", "/api/v1/broker-accounts", {"app_key": "viewer-app-key-1", "secret_key": "viewer-secret-key-1"}),
]


@pytest.mark.parametrize(("method", "path", "body"), VIEWER_WRITES, ids=[f"{m} {p}" for m, p, _ in VIEWER_WRITES])
def test_a_viewer_cannot_trade_or_link_accounts(client, make_user, auth_headers, method, path, body):
    headers = auth_headers(make_user(role="viewer"))
    before = state()
    response = getattr(client, method)(path, json=body, headers=headers)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"
    db.session.expire_all()
    assert state() == before
