"""The OpenAPI document covers every REST route the app registers."""

import re

from tradingapp.api.openapi import PATHS


def test_openapi_document_is_served_without_auth(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.") and "Order" in document["components"]["schemas"]


def test_every_registered_route_is_documented(app):
    documented = {(path, method.upper()) for path, ops in PATHS.items() for method in ops}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.rule == "/ws":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"


def test_every_documented_route_exists(app):
    registered = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule) for rule in app.url_map.iter_rules()}
    assert set(PATHS) <= registered


def test_schema_references_resolve(client):
    document = client.get("/api/v1/openapi.json").get_json()
    refs = set(re.findall(r'"#/components/schemas/(\w+)"', str(document).replace("'", '"')))
    assert refs <= set(document["components"]["schemas"])


def test_a_body_of_optional_fields_requires_none_of_them(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    for name in ("ModifyOrder", "UserChange", "RiskLimitOverrides"):
        assert schemas[name]["required"] == [], name
    assert schemas["Login"]["required"] == ["email", "password"]
