"""The OpenAPI document covers every REST route the app registers, from the shapes in api/schemas.py."""

import re

import pytest

from tradingapp.api import schemas
from tradingapp.api.openapi import document
from tradingapp.domain import validation
from tradingapp.domain.order_lifecycle import Status
from tradingapp.domain.quotes import QUOTE_FIELDS
from tradingapp.domain.risk import TradingState
from tradingapp.services.accounts import broker_accounts, users, watchlists


def documented_paths(app) -> dict:
    with app.app_context():
        return document()["paths"]


def test_openapi_document_is_served_without_auth(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.") and "Order" in document["components"]["schemas"]


def test_every_registered_route_is_documented(app):
    paths = documented_paths(app)
    documented = {(path, method.upper()) for path, ops in paths.items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule == "/ws":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"


def test_every_documented_route_exists(app):
    registered = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()}
    assert set(documented_paths(app)) <= registered


def test_schema_references_resolve(client):
    document = client.get("/api/v1/openapi.json").get_json()
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"])


def test_a_body_of_optional_fields_requires_none_of_them(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    for name in ("ModifyOrder", "UserChange", "RiskLimitOverrides"):
        assert schemas[name]["required"] == [], name
    assert schemas["Login"]["required"] == ["email", "password"]


def test_enums_in_the_document_are_the_domains(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    assert schemas["Order"]["properties"]["status"]["enum"] == [s.value for s in Status]
    assert schemas["Account"]["properties"]["trading_state"]["enum"] == [s.value for s in TradingState]
    assert schemas["NewOrder"]["properties"]["side"]["enum"] == list(validation.SIDES)


def test_the_quote_is_the_domains_quote_and_whether_it_is_stale(client):
    quote = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Quote"]
    assert set(quote["properties"]) == {*QUOTE_FIELDS, "stale"}
    assert quote["properties"]["ltq"]["type"] == ["integer", "null"]  # quantities as integers, not text


@pytest.mark.parametrize(
    ("shape", "accepted"),
    [
        (schemas.NewOrder, validation.FIELDS),
        (schemas.ModifyOrder, validation.MODIFY_FIELDS),
        (schemas.Register, users.REGISTER_FIELDS),
        (schemas.NewBrokerAccount, broker_accounts.LINK_FIELDS),
        (schemas.BrokerAccountSecrets, broker_accounts.REPLACE_FIELDS),
        (schemas.NewWatchlist, watchlists.CREATE_FIELDS),
        (schemas.WatchlistChange, watchlists.UPDATE_FIELDS),
    ],
)
def test_a_request_shape_names_the_fields_its_validator_accepts(shape, accepted):
    assert {field.alias or name for name, field in shape.model_fields.items()} == set(accepted)


def test_an_error_answer_has_the_documented_error_shape(client):
    response = client.get("/api/v1/no-such-route")
    assert response.status_code == 404
    assert schemas.Error.dump(response.get_json()) == response.get_json()
