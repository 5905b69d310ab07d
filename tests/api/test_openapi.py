"""The OpenAPI document covers every REST route the app registers, from the shapes in api/schemas.py."""

import re

import jsonschema_rs
import pytest

from tradingapp.api import schemas
from tradingapp.api.openapi import document, operations
from tradingapp.domain import validation
from tradingapp.domain.order_lifecycle import Status
from tradingapp.domain.quotes import QUOTE_FIELDS
from tradingapp.domain.risk import TradingState
from tradingapp.extensions import get_redis
from tradingapp.realtime import store_quote
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


# -- the gate: the server refuses what the document forbids ------------------------------------
def test_every_documented_route_refuses_an_unknown_query_parameter(app, client, trader_headers):
    """One mechanism for every route (the gate in api/openapi.py), from the declared parameters."""
    for path, method, _operation, _rule in _operations(app):
        url = re.sub(r"\{\w+\}", "00000000-0000-4000-8000-000000000000", path).replace("{instrument_id}", "1")
        url = re.sub(r"/instruments/0{8}-[0-9-]+", "/instruments/1", url)
        response = getattr(client, method)(f"{url}?surprise=1", headers=trader_headers)
        assert response.status_code == 400, f"{method.upper()} {path}: {response.status_code}"
        assert response.get_json()["error"]["details"]["unknown_parameters"] == "surprise"


def _operations(app) -> list:
    with app.app_context():
        return [op for op in operations() if op[0] != "/metrics"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/broker-accounts", {"app_key": "app-key-12345", "secret_key": "secret-key-1", "label": None}, "label"),
        ("/api/v1/watchlists", {"name": None}, "name"),
        ("/api/v1/orders", {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET",
                            "product": None}, "product"),
    ],
)  # fmt: skip
def test_null_where_a_field_is_not_nullable_is_a_400_naming_it(client, trader_headers, path, body, field):
    response = client.post(path, json=body, headers=trader_headers)
    assert response.status_code == 400 and field in response.get_json()["error"]["details"]


def test_a_served_quote_matches_the_documents_quote(client, trader_headers):
    """Prices as decimal strings, quantities as integers (API.md), exactly as the document says."""
    quote = {"instrument_id": 1, "ltp": "2900.05", "ltq": 5, "bid": "2900", "ask": "2900.1", "bid_qty": 10,
             "ask_qty": 20, "open": "2890", "high": "2910", "low": "2880", "close": "2895", "volume": 1200,
             "ts": "2026-11-24T09:15:00.000000Z"}  # fmt: skip
    pipe = get_redis().pipeline()
    store_quote(pipe, quote, 60)
    pipe.execute()
    document = client.get("/api/v1/openapi.json").get_json()
    schema = document["paths"]["/api/v1/quotes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.validator_for({**schema, "components": document["components"]}, validate_formats=True)
    body = client.get("/api/v1/quotes?instrument_ids=1", headers=trader_headers).get_json()
    assert validator.is_valid(body) and body["items"][0]["ltq"] == 5 and body["items"][0]["ltp"] == "2900.05"


def test_the_request_schemas_refuse_unknown_fields_and_type_the_cancel_filter(client):
    document = client.get("/api/v1/openapi.json").get_json()
    for path, operations_ in document["paths"].items():
        for method, operation in operations_.items():
            ref = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if ref:
                name = ref["$ref"].rsplit("/", 1)[1]
                assert document["components"]["schemas"][name]["additionalProperties"] is False, f"{method} {path}"
    [cancel_filter] = document["paths"]["/api/v1/orders"]["delete"]["parameters"]
    assert cancel_filter["schema"]["type"] == "integer" and cancel_filter["schema"]["minimum"] == 1
