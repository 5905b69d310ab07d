"""OWASP API7:2023 Server Side Request Forgery. The server makes outbound requests to one place a
user could conceivably steer: XTS (REST, socket.io, the instrument master). Its address is
XTS_API_URL, read from the environment in config.py and nowhere else: no request body, query or
header names a URL, host or port the server then calls. Linking a broker account takes keys, never
an address, so a user cannot point the platform at 169.254.169.254, localhost's Redis or an
internal service. These tests hold that true: a URL smuggled into the account routes is refused
and nothing is stored, the account a linked user's orders go through is at the configured URL,
the Host and X-Forwarded-Host headers reach no outbound address, and no request schema in the
OpenAPI document has a field that looks like an address (a new one fails here, and must come with
an allow-list from config).

Inventory of outbound calls (grep: requests, urllib, socket.io clients): tradingapp/brokers/xts
(session.py, stream.py) to XTS_API_URL; jobs/xts_bridge.py through the same client; RabbitMQ,
Redis and PostgreSQL at their configured hosts. scripts/run_stack.py polls its own children."""

from __future__ import annotations

import dataclasses
import re

import pytest
import sqlalchemy as sa

from tradingapp.api.openapi import document
from tradingapp.brokers.xts.accounts import XtsCredentials, account_at
from tradingapp.brokers.xts.session import XtsAccount
from tradingapp.extensions import db as _db
from tradingapp.models import BrokerAccount
from tradingapp.services.accounts.broker_accounts import credentials_for

URL = "/api/v1/broker-accounts"
LINK = {"broker": "xts", "app_key": "ssrf-app-key-0001", "secret_key": "ssrf-secret-key-0001", "label": "main"}
INTERNAL = (
    "http://169.254.169.254/latest/meta-data/",  # a cloud metadata service
    "http://127.0.0.1:6379/",  # Redis on the host
    "http://localhost:15672/api/",  # RabbitMQ's management API
    "file:///etc/passwd",
    "gopher://127.0.0.1:25/",
)
ADDRESS_FIELDS = ("url", "xts_url", "api_url", "base_url", "host", "endpoint", "callback_url", "webhook")
ADDRESS_NAME = re.compile(r"(url|uri|host|endpoint|callback|webhook|domain|address)", re.IGNORECASE)
# Property names that match ADDRESS_NAME but hold no address the server calls.
NOT_ADDRESSES = {"email_address"}


def accounts_stored() -> int:
    return _db.session.scalar(sa.select(sa.func.count()).select_from(BrokerAccount))


def assert_refused(response, field: str) -> None:
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert field in str(error), error


@pytest.mark.parametrize("field", ADDRESS_FIELDS)
@pytest.mark.parametrize("target", INTERNAL[:2])
def test_linking_a_broker_account_with_an_address_is_refused_and_stores_nothing(client, trader_headers, field, target):
    response = client.post(URL, json=LINK | {field: target}, headers=trader_headers)
    assert_refused(response, field)
    assert accounts_stored() == 0


@pytest.mark.parametrize("target", INTERNAL)
def test_replacing_an_accounts_secrets_with_an_address_is_refused_and_changes_nothing(
    client, trader, trader_headers, target
):
    linked = client.post(URL, json=LINK, headers=trader_headers)
    assert linked.status_code == 201, linked.get_json()
    body = {"secret_key": "ssrf-secret-key-0002", "url": target}
    assert_refused(client.put(f"{URL}/{linked.get_json()['id']}", json=body, headers=trader_headers), "url")
    assert credentials_for(trader.id).secret_key == LINK["secret_key"]


def test_a_linked_accounts_calls_go_to_the_configured_xts_only(app, client, trader, trader_headers, monkeypatch):
    """The credentials a linked user's orders go through carry keys, no address: the account they
    become is at XTS_API_URL whatever the user sent."""
    assert client.post(URL, json=LINK, headers=trader_headers).status_code == 201
    monkeypatch.setitem(app.config, "XTS_API_URL", "https://xts.broker.example")
    credentials = credentials_for(trader.id)
    assert credentials.source == "user"
    assert not {"url", "host", "md_prefix"} & {f.name for f in dataclasses.fields(XtsCredentials)}
    account = account_at(app.config, credentials)
    assert isinstance(account, XtsAccount) and account.url == "https://xts.broker.example"
    assert account.root("interactive") == "https://xts.broker.example/interactive"


@pytest.mark.parametrize(
    "headers",
    [
        {"Host": "169.254.169.254"},
        {"X-Forwarded-Host": "169.254.169.254", "X-Forwarded-Proto": "http"},
        {"Host": "127.0.0.1:6379"},
    ],
)
def test_the_host_headers_never_become_an_address_the_server_uses(app, client, headers):
    """The document's server URL is API_BASE_URL from config, not the caller's Host (behind proxies,
    X-Forwarded-Host is trusted only for the configured number of hops and still never called)."""
    response = client.get("/api/v1/openapi.json", headers=headers)
    assert response.status_code == 200
    servers = [server["url"] for server in response.get_json()["servers"]]
    assert servers == [app.config["API_BASE_URL"]]
    assert not any("169.254" in url or "6379" in url for url in servers)


def test_no_request_schema_has_a_field_that_names_an_address(app):
    """Every request body and parameter of the document: a property or parameter named like an
    address (url, host, endpoint, callback, ...) or of format uri would be a way to point the
    server somewhere. None exists; one added later needs an allow-list from config and a test here."""
    with app.app_context():
        doc = document()
    found = []
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if ADDRESS_NAME.search(parameter["name"]):
                    found.append(f"{method.upper()} {path} parameter {parameter['name']}")
            for media in operation.get("requestBody", {}).get("content", {}).values():
                found += [f"{method.upper()} {path} {name}" for name in address_properties(media.get("schema"), doc)]
    assert not found, f"request fields that look like addresses: {found}"


def address_properties(schema, doc, seen=None) -> list[str]:
    """Property names (resolving $ref) that look like addresses or are of format uri."""
    seen = set() if seen is None else seen
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if ref:
        if ref in seen:
            return []
        seen.add(ref)
        target = doc
        for part in ref.lstrip("#/").split("/"):
            target = target[part]
        return address_properties(target, doc, seen)
    found = []
    for name, sub in (schema.get("properties") or {}).items():
        named = ADDRESS_NAME.search(name) and name not in NOT_ADDRESSES
        typed = isinstance(sub, dict) and sub.get("format") in ("uri", "url", "hostname")
        if named or typed:
            found.append(name)
        found += address_properties(sub, doc, seen)
    for key in ("items", "additionalProperties"):
        found += address_properties(schema.get(key), doc, seen)
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            found += address_properties(sub, doc, seen)
    return found
