"""Linked broker accounts: the API, secrets encrypted at rest and never returned or logged,
credentials_for (linked account, else the default), key rotation. Real Postgres and Redis."""

from __future__ import annotations

import logging
import uuid

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken

from config import ConfigError, ProductionConfig, load_config
from tradingapp.extensions import db as _db
from tradingapp.models import BrokerAccount, BrokerAccountEvent
from tradingapp.security.crypto import EXTENSION_KEY, SecretsUnavailable, build_box, derive_key, secret_box
from tradingapp.services.accounts import broker_accounts
from tradingapp.services.accounts.broker_accounts import CredentialsUnavailable, credentials_for

URL = "/api/v1/broker-accounts"
SECRET = "Recognisable-S3cret-7f3a9c"
MD_SECRET = "Recognisable-MdS3cret-51be"
APP_KEY = "xts-app-key-0001abcd"
MD_APP_KEY = "xts-md-key-0002wxyz"
SECRETS = (SECRET, MD_SECRET)
KEY_1, KEY_2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def fresh_box(app):
    """Each test builds the secret box from the config it sets up."""
    app.extensions.pop(EXTENSION_KEY, None)
    yield
    app.extensions.pop(EXTENSION_KEY, None)


@pytest.fixture
def use_keys(app, monkeypatch):
    """use_keys([k2, k1]): the app's SECRETS_ENCRYPTION_KEYS from now on (restored after the test)."""
    config = app.extensions["tradingapp.config"]

    def switch(keys: list[str]) -> None:
        monkeypatch.setattr(config, "SECRETS_ENCRYPTION_KEYS", keys)
        app.extensions.pop(EXTENSION_KEY, None)

    return switch


def link(client, headers, **overrides):
    body = {"broker": "xts", "app_key": APP_KEY, "secret_key": SECRET, "label": "main", **overrides}
    return client.post(URL, json=body, headers=headers)


def full_link(client, headers):
    return link(client, headers, client_id="DEALER01", md_app_key=MD_APP_KEY, md_secret_key=MD_SECRET)


def stored_rows() -> tuple[int, int]:
    accounts = _db.session.scalar(sa.select(sa.func.count()).select_from(BrokerAccount))
    events = _db.session.scalar(sa.select(sa.func.count()).select_from(BrokerAccountEvent))
    return accounts, events


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


# -- linking ------------------------------------------------------------------------------------
def test_link_returns_the_account_without_its_secrets(client, trader_headers):
    response = full_link(client, trader_headers)
    assert response.status_code == 201
    account = response.get_json()
    assert account["broker"] == "xts" and account["label"] == "main" and account["active"] is True
    assert account["app_key_masked"] == "****abcd" and account["md_app_key_masked"] == "****wxyz"
    assert account["has_secret"] is True and account["has_md_secret"] is True
    assert account["client_id"] == "DEALER01"
    assert APP_KEY not in response.get_data(as_text=True)
    assert_no_secret(response.get_data(as_text=True))


def test_the_database_holds_ciphertext_that_decrypts_to_the_secret(client, trader_headers, app):
    account_id = full_link(client, trader_headers).get_json()["id"]
    rows = _db.session.execute(sa.text("SELECT broker_accounts::text FROM broker_accounts")).scalars().all()
    events = _db.session.execute(sa.text("SELECT broker_account_events::text FROM broker_account_events")).scalars()
    assert len(rows) == 1
    assert_no_secret(rows[0] + "".join(events))
    account = _db.session.get(BrokerAccount, uuid.UUID(account_id))
    assert secret_box().decrypt(account.secret_key_encrypted) == SECRET
    assert secret_box().decrypt(account.md_secret_key_encrypted) == MD_SECRET


def test_list_shows_only_the_callers_active_accounts(client, trader_headers, make_user, auth_headers):
    other_headers = auth_headers(make_user())
    mine = link(client, trader_headers).get_json()["id"]
    theirs = link(client, other_headers, app_key="their-app-key-9999").get_json()["id"]
    listed = client.get(URL, headers=trader_headers)
    assert listed.status_code == 200
    assert [a["id"] for a in listed.get_json()["items"]] == [mine]
    assert [a["id"] for a in client.get(URL, headers=other_headers).get_json()["items"]] == [theirs]
    assert_no_secret(listed.get_data(as_text=True))


def test_a_second_account_of_the_same_broker_is_a_conflict_and_nothing_is_written(client, trader_headers):
    first = link(client, trader_headers).get_json()["id"]
    response = link(client, trader_headers, app_key="another-app-key-1")
    assert response.status_code == 409
    assert response.get_json()["error"]["details"] == {"account_id": first}
    assert stored_rows() == (1, 1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"secret_key": None}, "secret_key"),
        ({"app_key": None}, "app_key"),
        ({"secret_key": "has a space " + SECRET}, "secret_key"),
        ({"secret_key": SECRET + "\n"}, "secret_key"),
        ({"secret_key": "short"}, "secret_key"),
        ({"secret_key": "x" * 257}, "secret_key"),
        ({"app_key": 12345678}, "app_key"),
        ({"secret_key": ["Recognisable-S3cret-7f3a9c"]}, "secret_key"),
        ({"md_app_key": MD_APP_KEY}, "md_secret_key"),
        ({"md_secret_key": MD_SECRET}, "md_app_key"),
        ({"client_id": "two words"}, "client_id"),
        ({"label": "x" * 65}, "label"),
        ({"label": "tab\there"}, "label"),
        ({"broker": "zerodha"}, "broker"),
        ({"verify": True}, "unknown_fields"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_written(client, trader_headers, changes, field):
    response = link(client, trader_headers, **changes)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error" and field in error["details"]
    assert_no_secret(response.get_data(as_text=True))
    assert stored_rows() == (0, 0)


def test_a_body_that_is_not_json_is_refused(client, trader_headers):
    response = client.post(URL, data='{"secret_key": "' + SECRET, headers=trader_headers,
                           content_type="application/json")  # fmt: skip
    assert response.status_code == 400
    assert_no_secret(response.get_data(as_text=True))
    assert stored_rows() == (0, 0)


def test_a_viewer_may_list_but_not_link(client, make_user, auth_headers):
    headers = auth_headers(make_user(role="viewer"))
    assert client.get(URL, headers=headers).status_code == 200
    assert link(client, headers).status_code == 403
    assert stored_rows() == (0, 0)


def test_the_routes_need_a_token(client):
    assert client.get(URL).status_code == 401
    assert client.post(URL, json={"app_key": APP_KEY, "secret_key": SECRET}).status_code == 401


# -- replacing secrets, unlinking ----------------------------------------------------------------
def test_put_replaces_the_secret_and_records_it(client, trader, trader_headers):
    account_id = link(client, trader_headers).get_json()["id"]
    response = client.put(f"{URL}/{account_id}", json={"secret_key": "New-Secret-0000"}, headers=trader_headers)
    assert response.status_code == 200 and response.get_json()["has_secret"] is True
    assert "New-Secret-0000" not in response.get_data(as_text=True)
    assert credentials_for(trader.id).secret_key == "New-Secret-0000"
    actions = _db.session.scalars(sa.select(BrokerAccountEvent.action).order_by(BrokerAccountEvent.id)).all()
    assert actions == ["linked", "secrets_replaced"]


def test_put_can_replace_the_app_key_with_its_secret_and_add_a_market_data_app(client, trader, trader_headers):
    account_id = link(client, trader_headers).get_json()["id"]
    body = {"app_key": "rotated-app-key-4321", "secret_key": "New-Secret-0000", "md_app_key": MD_APP_KEY,
            "md_secret_key": MD_SECRET}  # fmt: skip
    response = client.put(f"{URL}/{account_id}", json=body, headers=trader_headers)
    assert response.status_code == 200
    assert response.get_json()["app_key_masked"] == "****4321" and response.get_json()["has_md_secret"] is True
    credentials = credentials_for(trader.id)
    assert (credentials.app_key, credentials.md_app_key, credentials.md_secret_key) == (
        "rotated-app-key-4321", MD_APP_KEY, MD_SECRET)  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ({"app_key": "rotated-app-key-4321"}, "secret_key"),
        ({"secret_key": "with space " + SECRET}, "secret_key"),
        ({"secret_key": "New-Secret-0000", "label": "x"}, "unknown_fields"),
    ],
)
def test_a_bad_put_changes_nothing(client, trader, trader_headers, body, field):
    account_id = link(client, trader_headers).get_json()["id"]
    response = client.put(f"{URL}/{account_id}", json=body, headers=trader_headers)
    assert response.status_code == 400 and field in response.get_json()["error"]["details"]
    assert_no_secret(response.get_data(as_text=True))
    assert credentials_for(trader.id).secret_key == SECRET
    assert stored_rows() == (1, 1)


def test_a_market_data_secret_for_an_account_without_a_market_data_app_is_a_422(client, trader, trader_headers):
    """The body matches the document; the stored account refuses it."""
    account_id = link(client, trader_headers).get_json()["id"]
    response = client.put(f"{URL}/{account_id}", json={"md_secret_key": MD_SECRET}, headers=trader_headers)
    assert response.status_code == 422 and "md_app_key" in response.get_json()["error"]["details"]
    assert_no_secret(response.get_data(as_text=True))
    assert credentials_for(trader.id).secret_key == SECRET


def test_unlink_erases_the_secrets_and_falls_back_to_the_default(client, app, trader, trader_headers, monkeypatch):
    monkeypatch.setitem(app.config, "XTS_API_KEY", "default-app-key")
    monkeypatch.setitem(app.config, "XTS_API_SECRET", "default-secret")
    account_id = full_link(client, trader_headers).get_json()["id"]
    response = client.delete(f"{URL}/{account_id}", headers=trader_headers)
    assert response.status_code == 200
    assert response.get_json()["active"] is False and response.get_json()["has_secret"] is False
    assert client.get(URL, headers=trader_headers).get_json()["items"] == []
    row = _db.session.get(BrokerAccount, uuid.UUID(account_id), populate_existing=True)
    assert (row.secret_key_encrypted, row.md_secret_key_encrypted, row.active) == (None, None, False)
    assert credentials_for(trader.id).source == "default"
    assert client.delete(f"{URL}/{account_id}", headers=trader_headers).status_code == 404
    assert link(client, trader_headers).status_code == 201  # a new account may be linked again
    actions = _db.session.scalars(sa.select(BrokerAccountEvent.action).order_by(BrokerAccountEvent.id)).all()
    assert actions == ["linked", "unlinked", "linked"]


def test_another_users_account_is_not_found(client, trader_headers, make_user, auth_headers):
    account_id = link(client, trader_headers).get_json()["id"]
    other = auth_headers(make_user())
    assert client.put(f"{URL}/{account_id}", json={"secret_key": "Stolen-0000"}, headers=other).status_code == 404
    assert client.delete(f"{URL}/{account_id}", headers=other).status_code == 404
    assert client.delete(f"{URL}/not-a-uuid", headers=other).status_code == 404
    assert client.get(URL, headers=trader_headers).get_json()["items"][0]["active"] is True


# -- credentials_for ------------------------------------------------------------------------------
def test_credentials_for_gives_the_linked_account(client, trader, trader_headers):
    account_id = full_link(client, trader_headers).get_json()["id"]
    credentials = credentials_for(str(trader.id))
    assert credentials == broker_accounts.XtsCredentials(
        APP_KEY, SECRET, "DEALER01", MD_APP_KEY, MD_SECRET, "user", uuid.UUID(account_id)
    )
    assert_no_secret(repr(credentials))


def test_credentials_for_gives_the_default_account_without_a_linked_one(app, trader, monkeypatch):
    for name, value in [("XTS_API_KEY", "default-app-key"), ("XTS_API_SECRET", SECRET), ("XTS_CLIENT_ID", "C1"),
                        ("XTS_MD_API_KEY", "md-key"), ("XTS_MD_API_SECRET", MD_SECRET)]:  # fmt: skip
        monkeypatch.setitem(app.config, name, value)
    credentials = credentials_for(trader.id)
    assert credentials == broker_accounts.XtsCredentials("default-app-key", SECRET, "C1", "md-key", MD_SECRET)
    assert credentials.source == "default" and credentials.account_id is None


def test_credentials_for_without_any_account_says_so(app, trader, monkeypatch):
    monkeypatch.setitem(app.config, "XTS_API_KEY", "")
    with pytest.raises(CredentialsUnavailable, match="no linked XTS account"):
        credentials_for(trader.id)


# -- keys: configuration, rotation ----------------------------------------------------------------
def test_rotation_reencrypts_every_secret_under_the_new_key(app, client, trader, trader_headers, use_keys):
    use_keys([KEY_1])
    account_id = full_link(client, trader_headers).get_json()["id"]
    use_keys([KEY_2, KEY_1])
    assert credentials_for(trader.id).secret_key == SECRET  # the old key still decrypts until rotated
    runner = app.test_cli_runner()
    first = runner.invoke(args=["accounts", "rotate-keys"])
    assert first.exit_code == 0, first.output
    assert "accounts=1 rotated=2 already_current=0 unreadable=0" in first.output
    again = runner.invoke(args=["accounts", "rotate-keys"])
    assert "accounts=1 rotated=0 already_current=2 unreadable=0" in again.output
    use_keys([KEY_2])  # the old key dropped
    assert (credentials_for(trader.id).secret_key, credentials_for(trader.id).md_secret_key) == (SECRET, MD_SECRET)
    row = _db.session.get(BrokerAccount, uuid.UUID(account_id), populate_existing=True)
    assert Fernet(KEY_2.encode()).decrypt(row.secret_key_encrypted.encode()).decode() == SECRET
    with pytest.raises(InvalidToken):
        Fernet(KEY_1.encode()).decrypt(row.secret_key_encrypted.encode())


def test_a_secret_no_key_opens_is_reported_not_leaked(app, client, trader, trader_headers, use_keys):
    use_keys([KEY_1])
    account_id = link(client, trader_headers).get_json()["id"]
    use_keys([KEY_2])  # KEY_1 dropped before rotating
    result = app.test_cli_runner().invoke(args=["accounts", "rotate-keys"])
    assert result.exit_code == 1
    assert "unreadable=1" in result.output and account_id in result.output
    with pytest.raises(CredentialsUnavailable, match="SECRETS_ENCRYPTION_KEYS") as caught:
        credentials_for(trader.id)
    assert_no_secret(str(caught.value))


def test_without_keys_production_refuses_to_link_with_503(app, client, trader_headers, use_keys, monkeypatch):
    use_keys([])
    monkeypatch.setattr(app.extensions["tradingapp.config"], "ENV_NAME", "production")
    response = link(client, trader_headers)
    assert response.status_code == 503 and "SECRETS_ENCRYPTION_KEYS" in response.get_json()["error"]["message"]
    assert stored_rows() == (0, 0)


def test_outside_production_a_key_is_derived_from_jwt_secret_with_a_warning(app, caplog):
    config = load_config({"JWT_SECRET": "some-development-secret"})
    with caplog.at_level(logging.WARNING, logger="tradingapp.security.crypto"):
        box = build_box(config)
    assert "event=secrets_key_derived" in caplog.text
    token = box.encrypt(SECRET)
    assert Fernet(derive_key("some-development-secret").encode()).decrypt(token.encode()).decode() == SECRET
    assert build_box(config).decrypt(token) == SECRET  # the same key in every process, after restarts


def test_production_never_derives_a_key():
    config = load_config(PRODUCTION_ENV)
    with pytest.raises(SecretsUnavailable, match="SECRETS_ENCRYPTION_KEYS is not set"):
        build_box(config)


PRODUCTION_ENV = {"APP_ENV": "production", "DB_HOST": "db.internal", "DB_PASSWORD": "x7Qp2-vL9s",
                  "REDIS_PASSWORD": "x7Qp2-vL9sr", "RABBITMQ_PASSWORD": "x7Qp2-vL9sq",
                  "JWT_SECRET": "k" * 16 + "Zq9-4mT_w8yR2nB6"}  # fmt: skip
XTS_ENV = {"BROKER": "xts", "XTS_API_URL": "https://xts.example", "XTS_API_KEY": "k", "XTS_API_SECRET": "s"}


def test_production_with_xts_refuses_to_start_without_keys():
    with pytest.raises(ConfigError, match="BROKER=xts needs SECRETS_ENCRYPTION_KEYS"):
        load_config({**PRODUCTION_ENV, **XTS_ENV})
    config = load_config({**PRODUCTION_ENV, **XTS_ENV, "SECRETS_ENCRYPTION_KEYS": f"{KEY_2}, {KEY_1}"})
    assert isinstance(config, ProductionConfig) and config.SECRETS_ENCRYPTION_KEYS == [KEY_2, KEY_1]


def test_a_malformed_key_is_refused_by_position_without_echoing_it():
    with pytest.raises(ConfigError, match="key 2 of 2 is not a Fernet key") as caught:
        load_config({"SECRETS_ENCRYPTION_KEYS": f"{KEY_1},{SECRET}"})
    assert SECRET not in str(caught.value) and KEY_1 not in str(caught.value)


# -- never logged ---------------------------------------------------------------------------------
def test_secrets_appear_in_no_log_line_response_or_error(app, client, trader, trader_headers, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement and its parameters
    caplog.set_level(logging.DEBUG)  # after it: the handler keeps the last level set
    bodies = [full_link(client, trader_headers)]
    account_id = bodies[0].get_json()["id"]
    bodies += [
        full_link(client, trader_headers),  # 409
        link(client, trader_headers, secret_key=SECRET + " "),  # 400
        client.post(URL, data='{"secret_key": "' + SECRET, headers=trader_headers, content_type="application/json"),
        client.put(f"{URL}/{account_id}", json={"secret_key": MD_SECRET + "\t"}, headers=trader_headers),
        client.put(f"{URL}/{account_id}", json={"secret_key": SECRET}, headers=trader_headers),
        client.get(URL, headers=trader_headers),
    ]
    credentials_for(trader.id)
    client.delete(f"{URL}/{account_id}", headers=trader_headers)

    def explode(*_args, **_kwargs):
        raise RuntimeError("the audit record failed")

    monkeypatch.setattr(broker_accounts, "_record", explode)
    crashed = link(client, trader_headers)  # an unexpected error: logged with its traceback
    assert crashed.status_code == 500
    bodies.append(crashed)
    assert "INSERT INTO broker_accounts" in caplog.text and "the audit record failed" in caplog.text
    assert "event=broker_account_linked" in caplog.text and "event=broker_account_unlinked" in caplog.text
    assert_no_secret(caplog.text)
    for record in caplog.records:
        assert_no_secret(record.getMessage() + repr(record.args))
    for response in bodies:
        assert_no_secret(response.get_data(as_text=True))
