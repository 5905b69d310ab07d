"""The admin API over HTTP: users, risk limits, the kill switch and the audit of every change."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tradingapp.extensions import db as _db
from tradingapp.models import AdminAction
from tradingapp.security.auth import remember_user_state

ADMIN_ROUTES = [
    ("get", "/api/v1/admin/users", None),
    ("patch", "/api/v1/admin/users/{id}", {"role": "viewer"}),
    ("get", "/api/v1/admin/risk-limits", None),
    ("put", "/api/v1/admin/risk-limits", {"global": {"max_open_orders": 5}}),
    ("get", "/api/v1/admin/kill-switch", None),
    ("post", "/api/v1/admin/kill-switch", {"active": True}),
    ("get", "/api/v1/admin/audit", None),
]


def actions() -> list[AdminAction]:
    _db.session.expire_all()
    return list(_db.session.scalars(sa.select(AdminAction).order_by(AdminAction.id)))


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
def test_a_trader_gets_403_on_admin_routes(client, trader, trader_headers, method, path, body):
    response = getattr(client, method)(path.format(id=trader.id), json=body, headers=trader_headers)
    assert response.status_code == 403


# -- users ------------------------------------------------------------------------------------------
def test_admin_lists_users_with_role_and_active(client, admin_headers, make_user):
    make_user(email="gone@example.com", active=False)
    items = client.get("/api/v1/admin/users", headers=admin_headers).get_json()["items"]
    gone = next(u for u in items if u["email"] == "gone@example.com")
    assert (gone["role"], gone["active"]) == ("trader", False)


def test_admin_changes_a_users_role_and_it_is_recorded(client, admin, admin_headers, trader):
    response = client.patch(f"/api/v1/admin/users/{trader.id}", json={"role": "viewer"}, headers=admin_headers)
    assert (response.status_code, response.get_json()["role"]) == (200, "viewer")
    [action] = actions()
    assert (action.admin_id, action.action, action.target) == (admin.id, "user_update", str(trader.id))
    assert (action.before["role"], action.after["role"]) == ("trader", "viewer")


def test_deactivating_a_user_revokes_their_sessions_at_once(client, admin_headers, trader, trader_headers):
    assert client.get("/api/v1/auth/me", headers=trader_headers).status_code == 200
    client.patch(f"/api/v1/admin/users/{trader.id}", json={"active": False}, headers=admin_headers)
    client.patch(f"/api/v1/admin/users/{trader.id}", json={"active": True}, headers=admin_headers)
    # Active again, yet the tokens issued before the deactivation stay dead.
    assert client.get("/api/v1/auth/me", headers=trader_headers).status_code == 401


def test_a_session_begun_after_reactivation_works(client, admin_headers, trader):
    client.patch(f"/api/v1/admin/users/{trader.id}", json={"active": False}, headers=admin_headers)
    client.patch(f"/api/v1/admin/users/{trader.id}", json={"active": True}, headers=admin_headers)
    time.sleep(1.05)  # the cut-off is in whole seconds: a login within the same second stays revoked
    login = client.post("/api/v1/auth/login", json={"email": trader.email, "password": "correct-horse-battery"})
    headers = {"Authorization": f"Bearer {login.get_json()['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200


def test_an_admin_cannot_deactivate_themself(client, admin, admin_headers):
    response = client.patch(f"/api/v1/admin/users/{admin.id}", json={"active": False}, headers=admin_headers)
    assert response.status_code == 409
    assert actions() == []


def test_an_admin_cannot_demote_themself(client, admin, admin_headers):
    response = client.patch(f"/api/v1/admin/users/{admin.id}", json={"role": "trader"}, headers=admin_headers)
    assert response.status_code == 409


def test_patching_an_unknown_user_is_404(client, admin_headers):
    assert client.patch(f"/api/v1/admin/users/{uuid.uuid4()}", json={"role": "viewer"},
                        headers=admin_headers).status_code == 404  # fmt: skip
    assert client.patch("/api/v1/admin/users/not-a-uuid", json={"role": "viewer"},
                        headers=admin_headers).status_code == 404  # fmt: skip


def test_a_bad_user_change_is_400_naming_the_fields(client, admin_headers, trader):
    response = client.patch(f"/api/v1/admin/users/{trader.id}", json={"role": "boss", "active": "no", "x": 1},
                            headers=admin_headers)  # fmt: skip
    assert response.status_code == 400
    assert set(response.get_json()["error"]["details"]) == {"role", "active", "unknown_fields"}


# -- risk limits -------------------------------------------------------------------------------------
def test_risk_limits_show_defaults_global_and_user_overrides(client, admin_headers, trader):
    body = {"global": {"max_open_orders": 50}, "users": {str(trader.id): {"max_order_quantity": 7}}}
    assert client.put("/api/v1/admin/risk-limits", json=body, headers=admin_headers).status_code == 200
    view = client.get("/api/v1/admin/risk-limits", headers=admin_headers).get_json()
    assert view["global"]["max_open_orders"] == 50
    assert view["defaults"]["max_open_orders"] == 1000
    assert view["users"] == {str(trader.id): {"max_order_quantity": 7}}


def test_the_trader_sees_their_effective_limits(client, admin_headers, trader, trader_headers):
    body = {"global": {"max_order_notional": "12345.5"}, "users": {str(trader.id): {"max_order_quantity": 7}}}
    client.put("/api/v1/admin/risk-limits", json=body, headers=admin_headers)
    limits = client.get("/api/v1/account", headers=trader_headers).get_json()["limits"]
    assert (limits["max_order_quantity"], limits["max_order_notional"]) == (7, "12345.5")


def test_null_removes_a_user_override(client, admin_headers, trader):
    uid = str(trader.id)
    client.put("/api/v1/admin/risk-limits", json={"users": {uid: {"max_order_quantity": 7, "max_open_orders": 3}}},
               headers=admin_headers)  # fmt: skip
    view = client.put("/api/v1/admin/risk-limits", json={"users": {uid: {"max_order_quantity": None}}},
                      headers=admin_headers).get_json()  # fmt: skip
    assert view["users"] == {uid: {"max_open_orders": 3}}


def test_null_for_a_user_removes_all_their_overrides(client, admin_headers, trader):
    uid = str(trader.id)
    client.put("/api/v1/admin/risk-limits", json={"users": {uid: {"max_order_quantity": 7}}}, headers=admin_headers)
    view = client.put("/api/v1/admin/risk-limits", json={"users": {uid: None}}, headers=admin_headers).get_json()
    assert view["users"] == {}


def test_null_for_a_global_limit_restores_the_default(client, admin_headers):
    client.put("/api/v1/admin/risk-limits", json={"global": {"max_open_orders": 5}}, headers=admin_headers)
    view = client.put("/api/v1/admin/risk-limits", json={"global": {"max_open_orders": None}},
                      headers=admin_headers).get_json()  # fmt: skip
    assert view["global"]["max_open_orders"] == view["defaults"]["max_open_orders"]


def test_invalid_limits_are_400_with_field_errors_and_change_nothing(client, admin_headers, trader):
    body = {
        "global": {"max_open_orders": 9, "max_order_notional": "-1"},
        "users": {str(trader.id): {"allowed_products": []}, "not-a-user-id": {}},
    }
    response = client.put("/api/v1/admin/risk-limits", json=body, headers=admin_headers)
    assert response.status_code == 400
    details = response.get_json()["error"]["details"]
    assert "global.max_order_notional" in details
    assert f"users.{trader.id}.allowed_products" in details
    assert "users" in details  # the key that is not a user id
    view = client.get("/api/v1/admin/risk-limits", headers=admin_headers).get_json()
    assert view["global"]["max_open_orders"] == 1000 and view["users"] == {}
    assert actions() == []


def test_every_limit_change_is_recorded_with_before_and_after(client, admin, admin_headers):
    client.put("/api/v1/admin/risk-limits", json={"global": {"max_open_orders": 5}}, headers=admin_headers)
    client.put("/api/v1/admin/risk-limits", json={"global": {"max_open_orders": 6}}, headers=admin_headers)
    log = client.get("/api/v1/admin/audit", headers=admin_headers).get_json()["items"]
    assert [(a["target"], a["before"], a["after"]) for a in log] == [
        ("global", {"max_open_orders": 5}, {"max_open_orders": 6}),
        ("global", {}, {"max_open_orders": 5}),
    ]
    assert log[0]["admin_id"] == str(admin.id)


# -- kill switch ----------------------------------------------------------------------------------------
def state_of(client, headers) -> dict:
    return client.get("/api/v1/account", headers=headers).get_json()


def test_the_kill_switch_halts_everyone(client, admin_headers, trader_headers):
    response = client.post("/api/v1/admin/kill-switch", json={"active": True}, headers=admin_headers)
    assert response.get_json()["trading_state"] == "HALTED"
    account = state_of(client, trader_headers)
    assert (account["trading_state"], account["global_trading_state"], account["user_trading_state"]) == (
        "HALTED", "HALTED", "ACTIVE",
    )  # fmt: skip


def test_the_account_names_the_global_halts_reason(client, admin_headers, trader_headers):
    body = {"active": True, "reason": "exchange outage"}
    client.post("/api/v1/admin/kill-switch", json=body, headers=admin_headers)
    account = state_of(client, trader_headers)
    assert (account["trading_state"], account["state_reason"]) == ("HALTED", None)
    assert "exchange outage" in account["global_state_reason"]


def test_the_kill_switch_off_resumes(client, admin_headers, trader_headers):
    client.post("/api/v1/admin/kill-switch", json={"active": True}, headers=admin_headers)
    client.post("/api/v1/admin/kill-switch", json={"active": False}, headers=admin_headers)
    assert state_of(client, trader_headers)["trading_state"] == "ACTIVE"


def test_the_kill_switch_halts_one_user(client, admin_headers, trader, trader_headers, make_user, auth_headers):
    client.post("/api/v1/admin/kill-switch", json={"active": True, "user_id": str(trader.id)}, headers=admin_headers)
    assert state_of(client, trader_headers)["trading_state"] == "HALTED"
    assert state_of(client, auth_headers(make_user()))["trading_state"] == "ACTIVE"


def test_an_admin_can_set_reducing(client, admin_headers, trader, trader_headers):
    body = {"state": "REDUCING", "user_id": str(trader.id), "reason": "margin call"}
    client.post("/api/v1/admin/kill-switch", json=body, headers=admin_headers)
    account = state_of(client, trader_headers)
    assert (account["trading_state"], account["state_reason"]) == ("REDUCING", "admin: margin call")


def test_an_admin_reducing_with_the_daily_loss_wording_is_not_lifted_with_the_day(
    client, admin_headers, trader, trader_headers
):
    body = {"state": "REDUCING", "user_id": str(trader.id), "reason": "daily loss limit breached"}
    client.post("/api/v1/admin/kill-switch", json=body, headers=admin_headers)
    _db.session.execute(sa.text("UPDATE accounts SET day = '2020-01-01' WHERE user_id = :u"), {"u": trader.id})
    _db.session.commit()
    order = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": "100.00"}
    response = client.post("/api/v1/orders", json=order, headers=trader_headers)
    assert (response.status_code, response.get_json()["error"]["details"]["rule"]) == (422, "reducing_only")


def test_the_effective_state_is_the_stricter(client, admin_headers, trader, trader_headers):
    client.post("/api/v1/admin/kill-switch", json={"state": "REDUCING"}, headers=admin_headers)
    client.post("/api/v1/admin/kill-switch", json={"active": True, "user_id": str(trader.id)}, headers=admin_headers)
    assert state_of(client, trader_headers)["trading_state"] == "HALTED"


def test_states_not_active_are_listed(client, admin_headers, trader):
    client.post("/api/v1/admin/kill-switch", json={"active": True, "user_id": str(trader.id)}, headers=admin_headers)
    states = client.get("/api/v1/admin/kill-switch", headers=admin_headers).get_json()
    assert states["global"]["trading_state"] == "ACTIVE"
    assert [u["user_id"] for u in states["users"]] == [str(trader.id)]


def test_a_state_change_is_recorded(client, admin, admin_headers):
    client.post("/api/v1/admin/kill-switch", json={"active": True}, headers=admin_headers)
    [action] = actions()
    assert (action.action, action.target, action.before["trading_state"], action.after["trading_state"]) == (
        "trading_state", "global", "ACTIVE", "HALTED",
    )  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [{}, {"active": "yes"}, {"state": "PAUSED"}, {"active": True, "state": "HALTED"}, {"active": True, "user_id": 5},
     {"active": True, "extra": 1}],
)  # fmt: skip
def test_a_bad_kill_switch_body_is_400(client, admin_headers, body):
    """The document's oneOf: exactly one of active and state."""
    assert client.post("/api/v1/admin/kill-switch", json=body, headers=admin_headers).status_code == 400


def test_the_kill_switch_for_an_unknown_user_is_404(client, admin_headers):
    body = {"active": True, "user_id": str(uuid.uuid4())}
    assert client.post("/api/v1/admin/kill-switch", json=body, headers=admin_headers).status_code == 404


def test_a_role_change_applies_to_the_next_request(client, admin_headers, trader, trader_headers):
    body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "LIMIT", "limit_price": "100.00"}
    first = client.post("/api/v1/orders", json=body, headers=trader_headers)  # caches the trader's role
    assert first.status_code == 202
    client.patch(f"/api/v1/admin/users/{trader.id}", json={"role": "viewer"}, headers=admin_headers)
    again = client.post("/api/v1/orders", json={**body, "client_order_id": "second"}, headers=trader_headers)
    assert again.status_code == 403


@pytest.mark.parametrize("state", [[], {}, 1, None])
def test_a_kill_switch_state_that_is_not_text_is_a_400(client, admin_headers, state):
    response = client.post("/api/v1/admin/kill-switch", json={"state": state}, headers=admin_headers)
    assert response.status_code == 400


def test_a_request_racing_a_demotion_cannot_cache_the_old_role(client, make_user, auth_headers):
    victim = make_user(email="v@example.com", role="admin")
    headers = auth_headers(victim)
    fired = []

    def demote_in_between(conn, cursor, statement, params, context, executemany):
        # The admin's change commits (and writes the new role) just after this request read the users row.
        if fired or "FROM users" not in statement:
            return
        fired.append(1)
        with _db.engine.connect() as other:
            other.execute(sa.text("UPDATE users SET role = 'trader' WHERE id = :id"), {"id": victim.id})
            other.commit()
        remember_user_state(SimpleNamespace(id=victim.id, active=True, role="trader", token_generation=0))

    sa.event.listen(_db.engine, "after_cursor_execute", demote_in_between)
    try:
        in_flight = client.get("/api/v1/admin/users", headers=headers)
    finally:
        sa.event.remove(_db.engine, "after_cursor_execute", demote_in_between)
    assert fired and in_flight.status_code == 200  # already past its check when the demotion landed
    assert client.get("/api/v1/admin/users", headers=headers).status_code == 403


def test_limits_for_an_unknown_user_are_a_422_and_change_nothing(client, admin_headers, trader):
    body = {"global": {"max_open_orders": 9}, "users": {str(uuid.uuid4()): {"max_open_orders": 3}}}
    response = client.put("/api/v1/admin/risk-limits", json=body, headers=admin_headers)
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert any(key.startswith("users.") and "unknown" in value for key, value in details.items())
    view = client.get("/api/v1/admin/risk-limits", headers=admin_headers).get_json()
    assert view["global"]["max_open_orders"] == 1000 and view["users"] == {}
    assert actions() == []
