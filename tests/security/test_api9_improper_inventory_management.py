"""OWASP API9:2023 Improper Inventory Management: the OpenAPI document is the inventory. Every route
the app serves is in it and every documented route is served (a new route without `@doc` fails
here); its version is the release's; nothing that looks like a debug, test or admin back door is
served, and an unknown route or version is a JSON 404."""

from __future__ import annotations

import re

import pytest

from tradingapp.api.openapi import document

# Served, and deliberately not in the document: static files, and the WebSocket (its own contract:
# API.md "WebSocket"). The terminal's page and client routes are documented (text/html).
UNDOCUMENTED_ENDPOINTS = {"static"}
UNDOCUMENTED_RULES = {"/ws"}
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


def served(app) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS or rule.rule in UNDOCUMENTED_RULES:
            continue
        routes |= {(PARAMETER.sub(r"{\1}", rule.rule), m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def documented(app) -> set[tuple[str, str]]:
    with app.app_context():
        paths = document()["paths"]
    return {(path, method) for path, operations in paths.items() for method in operations}


def test_every_served_route_is_in_the_document(app):
    missing = served(app) - documented(app)
    assert not missing, f"served but undocumented: {sorted(missing)}"


def test_every_documented_route_is_served(app):
    ghosts = documented(app) - served(app)
    assert not ghosts, f"documented but not served: {sorted(ghosts)}"


def test_no_rule_looks_like_a_debug_or_test_back_door(app):
    suspicious = re.compile(r"debug|console|_sim|test|internal|phpinfo|\.env|\.git|shutdown|eval", re.IGNORECASE)
    rules = [rule.rule for rule in app.url_map.iter_rules()]
    assert not [rule for rule in rules if suspicious.search(rule)], rules


def test_the_document_carries_the_release_version_and_one_api_version(client, app):
    body = client.get("/api/v1/openapi.json").get_json()
    assert body["openapi"].startswith("3.1") and body["info"]["version"] == app.config["APP_VERSION"]
    versions = {path.split("/")[2] for path in body["paths"] if path.startswith("/api/")}
    assert versions == {"v1"}


def test_every_operation_declares_its_errors_in_the_error_shape(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
            assert "400" in errors, f"{method} {path}: an unknown query parameter is a 400"
            for code, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {code}"
            if operation.get("requestBody"):
                assert {"413", "415", "422"} <= set(errors), f"{method} {path}"


@pytest.mark.parametrize(
    "path",
    ["/api/v1/debug", "/api/v0/orders", "/api/v2/orders", "/api/v1/admin", "/api/v1/test", "/api/v1/internal/users",
     "/api/v1/openapi.yaml", "/api/v1/users", "/api/v1/_sim/orders", "/api/v1/.env"],
)  # fmt: skip
def test_no_stray_api_route_is_served(client, trader_headers, path):
    response = client.get(path, headers=trader_headers)
    assert response.status_code == 404 and response.is_json, f"{path}: {response.status_code}"
    assert response.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/debug", "/console", "/_sim/orders", "/.env", "/.git/config"])
def test_a_debug_looking_path_outside_the_api_is_only_the_terminals_page(client, path):
    """Outside /api every GET is a client route of the terminal: its one page, never a file or a tool."""
    with client.get("/") as page, client.get(path) as response:
        assert response.status_code == page.status_code
        assert response.get_data() == page.get_data() and response.mimetype == page.mimetype


def test_the_app_does_not_run_in_debug_mode(app):
    assert not app.debug and not app.config.get("PROPAGATE_EXCEPTIONS")
