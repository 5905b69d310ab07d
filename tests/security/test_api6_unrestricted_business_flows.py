"""OWASP API6:2023 Unrestricted Access to Sensitive Business Flows: registration spam (throttled per
address, closed by default in production, its hashing never stalling the event loop), order spam
(the per-user rate limit), duplicate and idempotency abuse (a replayed or reused client order id, a
double submit), and trading through the deployment's own XTS account without a linked one."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import sqlalchemy as sa

from config import Config, ConfigError, ProductionConfig, load_config
from config import TestConfig as AppConfig
from tests.support import ROOT
from tests.support.factories import add_position
from tradingapp.extensions import db as _db
from tradingapp.models import Order, User
from tradingapp.services.accounts.broker_accounts import credentials_for

REGISTER, ORDERS = "/api/v1/auth/register", "/api/v1/orders"
LIMIT = {"instrument_id": 1, "side": "BUY", "quantity": 10, "order_type": "LIMIT", "limit_price": "2500.05"}
PRODUCTION = {"APP_ENV": "production", "DB_HOST": "db", "DB_PASSWORD": "x7Qp2-vL9s", "REDIS_PASSWORD": "x7Qp2-vL9r",
              "RABBITMQ_PASSWORD": "x7Qp2-vL9q", "JWT_SECRET": "k" * 40}  # fmt: skip


def order_count() -> int:
    return _db.session.scalar(sa.select(sa.func.count()).select_from(Order))


def register(client, n: int, ip: str):
    body = {"email": f"spam-{n}@example.com", "password": "s3cret-enough"}
    return client.post(REGISTER, json=body, environ_base={"REMOTE_ADDR": ip})


# -- registration spam -----------------------------------------------------------------------------
def test_registration_spam_from_one_address_is_throttled_with_retry_after(app, client):
    limit = app.config["REGISTER_MAX_PER_ADDRESS"]
    codes = [register(client, n, "192.0.2.10").status_code for n in range(limit + 3)]
    assert codes == [202] * limit + [429] * 3
    refused = register(client, 99, "192.0.2.10")
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= app.config["REGISTER_WINDOW"]
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(User)) == limit


def test_registration_spam_across_an_ipv6_64_block_counts_as_one_address(app, client):
    limit = app.config["REGISTER_MAX_PER_ADDRESS"]
    codes = [register(client, n, f"2001:db8:7:7::{n + 1:x}").status_code for n in range(limit + 1)]
    assert codes == [202] * limit + [429]


def test_registration_is_closed_by_default_in_production():
    assert load_config(PRODUCTION).ALLOW_REGISTRATION is False
    assert load_config({**PRODUCTION, "ALLOW_REGISTRATION": "true"}).ALLOW_REGISTRATION is True
    assert Config({"JWT_SECRET": "s" * 40}).ALLOW_REGISTRATION is True
    assert AppConfig({"JWT_SECRET": "s" * 40}).ALLOW_REGISTRATION is True


# What a gunicorn gevent worker is: the standard library patched, greenlets on one loop. A ticker
# greenlet counts its turns; a call that holds the loop lets it take none, one that runs in the
# hashing pool lets it run while the caller waits. No clock involved.
LOOP_PROBE = """
from gevent import monkey
monkey.patch_all()
import json, sys
import gevent
sys.path.insert(0, sys.argv[1])
from tradingapp.security import passwords

turns = 0
def ticker():
    global turns
    while True:
        turns += 1
        gevent.sleep(0)

gevent.spawn(ticker)
gevent.sleep(0)

def turns_during(fn, *args):
    before = turns
    fn(*args)
    return turns - before

stored = passwords.HASHER.hash("a-long-password")
print(json.dumps({
    "argon2 called inline": turns_during(passwords.HASHER.hash, "a-long-password"),
    "hash_password": turns_during(passwords.hash_password, "a-long-password"),
    "verify_password": turns_during(passwords.verify_password, stored, "a-long-password"),
    "burn_verification": turns_during(passwords.burn_verification, "another-password"),
}))
"""


def test_registration_spam_cannot_stall_the_event_loop_while_passwords_hash():
    result = subprocess.run([sys.executable, "-c", LOOP_PROBE, str(ROOT)], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    turns = json.loads(result.stdout.strip().splitlines()[-1])
    assert turns.pop("argon2 called inline") == 0  # the probe sees a blocked loop
    assert all(count > 0 for count in turns.values()), turns


def test_password_hashing_outside_gevent_runs_in_the_callers_thread():
    from tradingapp.security.passwords import hash_password, verify_password

    assert verify_password(hash_password("a-long-password"), "a-long-password")


# -- order spam ------------------------------------------------------------------------------------
def test_order_spam_is_rate_limited_with_retry_after_and_writes_nothing(client, trader, trader_headers, admin_headers):
    limits = {"users": {str(trader.id): {"orders_per_second": 1, "order_burst": 3}}}
    assert client.put("/api/v1/admin/risk-limits", json=limits, headers=admin_headers).status_code == 200
    responses = [client.post(ORDERS, json={**LIMIT, "client_order_id": f"spam-{n}"}, headers=trader_headers)
                 for n in range(10)]  # fmt: skip
    codes = [r.status_code for r in responses]
    assert codes[:3] == [202] * 3 and 429 in codes
    refused = responses[codes.index(429)]
    assert int(refused.headers["Retry-After"]) >= 1
    assert order_count() == codes.count(202)


# -- duplicates and idempotency --------------------------------------------------------------------
def test_replaying_a_client_order_id_returns_the_first_order_not_a_second(client, trader_headers):
    body = {**LIMIT, "client_order_id": "replay-1"}
    answers = [client.post(ORDERS, json=body, headers=trader_headers) for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 200, 200, 200, 200]
    assert len({a.get_json()["id"] for a in answers}) == 1
    assert order_count() == 1


def test_reusing_a_client_order_id_for_another_order_is_refused(client, trader_headers):
    client.post(ORDERS, json={**LIMIT, "client_order_id": "reuse-1"}, headers=trader_headers)
    for change in ({"quantity": 20}, {"side": "SELL"}, {"limit_price": "2500.10"}):
        response = client.post(ORDERS, json={**LIMIT, **change, "client_order_id": "reuse-1"}, headers=trader_headers)
        assert response.status_code == 409
    assert order_count() == 1


def test_an_idempotency_key_reused_for_another_order_is_refused(client, trader_headers):
    headers = {**trader_headers, "Idempotency-Key": "key-abuse"}
    assert client.post(ORDERS, json=LIMIT, headers=headers).status_code == 202
    assert client.post(ORDERS, json={**LIMIT, "quantity": 50}, headers=headers).status_code == 409
    assert order_count() == 1


def test_a_double_submit_without_any_key_is_refused_as_a_duplicate(client, trader_headers):
    first = client.post(ORDERS, json=LIMIT, headers=trader_headers)
    second = client.post(ORDERS, json=LIMIT, headers=trader_headers)
    assert (first.status_code, second.status_code) == (202, 409)
    assert order_count() == 1


def test_another_users_client_order_id_reveals_nothing_and_places_their_own(client, make_user, auth_headers):
    body = {**LIMIT, "client_order_id": "shared-id"}
    mine = client.post(ORDERS, json=body, headers=auth_headers(make_user()))
    theirs = client.post(ORDERS, json=body, headers=auth_headers(make_user()))
    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.get_json()["id"] != theirs.get_json()["id"]


# -- trading through the deployment's own XTS account ----------------------------------------------
@pytest.fixture
def xts_without_shared_account(app, monkeypatch):
    monkeypatch.setitem(app.config, "BROKER", "xts")
    monkeypatch.setitem(app.config, "XTS_SHARED_ACCOUNT", False)
    monkeypatch.setitem(app.config, "XTS_API_KEY", "deployment-app-key")
    monkeypatch.setitem(app.config, "XTS_API_SECRET", "deployment-secret")


def test_an_unlinked_user_cannot_trade_through_the_deployments_xts_account(
    client, trader, trader_headers, xts_without_shared_account
):
    response = client.post(ORDERS, json=LIMIT, headers=trader_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "broker_account_required" and "broker-accounts" in error["message"]
    assert order_count() == 0


def test_orders_already_at_the_deployments_account_stay_manageable_when_sharing_is_off(
    client, trader, trader_headers, xts_without_shared_account
):
    # Cancels, modifications and reconcile of orders placed there before still need its credentials,
    # and closing a position held there is not a new exposure.
    assert credentials_for(trader.id).source == "default"
    add_position(trader, 1, 30)
    response = client.delete("/api/v1/positions", headers=trader_headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    assert order_count() == 1


def test_a_user_with_a_linked_xts_account_trades_when_the_shared_account_is_off(
    client, trader, trader_headers, xts_without_shared_account
):
    link = {"broker": "xts", "app_key": "user-app-key-0001", "secret_key": "user-secret-0001"}
    assert client.post("/api/v1/broker-accounts", json=link, headers=trader_headers).status_code == 201
    assert client.post(ORDERS, json=LIMIT, headers=trader_headers).status_code == 202
    assert credentials_for(trader.id).app_key == "user-app-key-0001"


def test_the_paper_broker_ignores_the_shared_account_setting(app, client, trader_headers, monkeypatch):
    monkeypatch.setitem(app.config, "BROKER", "paper")
    monkeypatch.setitem(app.config, "XTS_SHARED_ACCOUNT", False)
    assert client.post(ORDERS, json=LIMIT, headers=trader_headers).status_code == 202


def test_the_shared_xts_account_is_off_by_default_in_production_only():
    assert ProductionConfig(PRODUCTION).XTS_SHARED_ACCOUNT is False
    assert ProductionConfig({**PRODUCTION, "XTS_SHARED_ACCOUNT": "true"}).XTS_SHARED_ACCOUNT is True
    assert Config({"JWT_SECRET": "s" * 40}).XTS_SHARED_ACCOUNT is True
    with pytest.raises(ConfigError, match="XTS_SHARED_ACCOUNT"):
        Config({"JWT_SECRET": "s" * 40, "XTS_SHARED_ACCOUNT": "perhaps"})
