"""GET /api/v1/openapi.json: the OpenAPI 3.1 document, built from the routes themselves.

Each view declares its operation with `@doc` (summary, body and response shapes from
api/schemas.py, error statuses, query parameters); path parameters come from the URL rule, schemas
from pydantic's JSON Schema of the shapes. A route without `@doc` is missing from the document, and
tests/api/test_openapi.py fails on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, current_app, jsonify
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from tradingapp.api.schemas import Error

bp = Blueprint("openapi", __name__)

ANY = {"type": "object"}  # a body whose shape is not declared
ERRORS = {
    "400": "validation_error",
    "401": "unauthorized",
    "403": "forbidden",
    "404": "not_found",
    "409": "conflict",
    "422": "risk_rejected (details name the rule and the numbers)",
    "423": "trading_halted (kill switch)",
    "429": "rate_limited",
    "503": "unavailable",
}
REF = "#/components/schemas/{model}"
PATH_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")  # <int:instrument_id>: (converter, name)


@dataclass(frozen=True)
class Operation:
    summary: str
    ok: int = 200
    response: type[BaseModel] | dict | None = None
    body: type[BaseModel] | None = None
    errors: tuple[str, ...] = ("400", "401")
    params: tuple[str, ...] = ()  # query parameters
    auth: bool = True
    content: str = "application/json"


def doc(summary: str, **how: Any):
    """Declare a view's operation (the fields of Operation)."""
    operation = Operation(summary, **how)

    def mark(view):
        view.openapi = operation
        return view

    return mark


# Views registered outside api/ (tradingapp/metrics.py), by endpoint.
ENDPOINTS = {"metrics": Operation("Prometheus metrics (text format)", auth=False, errors=())}


class _Schema(GenerateJsonSchema):
    """pydantic's JSON Schema without the titles it derives from names, with `required` always
    present, and no `default: null` on an optional field."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def model_schema(self, schema):
        value = super().model_schema(schema)
        value.pop("title", None)
        if value.get("type") == "object":
            value.setdefault("required", [])
        return value

    def default_schema(self, schema):
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


def document() -> dict:
    built = current_app.extensions.get("tradingapp.openapi")
    if built is None:
        built = current_app.extensions["tradingapp.openapi"] = _build()
    paths, schemas = built
    return {
        "openapi": "3.1.0",
        "info": {"title": "tradingapp", "version": "1"},
        "servers": [{"url": current_app.config["API_BASE_URL"]}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def operations() -> list[tuple[str, str, Operation, Any]]:
    """(path, method, operation, rule) of every documented route of the current app."""
    found = []
    for rule in current_app.url_map.iter_rules():
        view = current_app.view_functions[rule.endpoint]
        operation = getattr(view, "openapi", None) or ENDPOINTS.get(rule.endpoint)
        if operation is None:
            continue
        path = PATH_ARGUMENT.sub(r"{\2}", rule.rule)
        found += [(path, method.lower(), operation, rule) for method in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return found


def _build() -> tuple[dict, dict]:
    ops = operations()
    shapes = [(op.body, "validation") for _, _, op, _ in ops if op.body]
    shapes += [(op.response, "serialization") for _, _, op, _ in ops if _is_model(op.response)]
    shapes.append((Error, "serialization"))
    refs, defs = models_json_schema(
        list(dict.fromkeys(shapes)), ref_template=REF, union_format="primitive_type_array", schema_generator=_Schema
    )
    paths: dict[str, dict] = {}
    for path, method, op, rule in ops:
        paths.setdefault(path, {})[method] = _operation(op, rule, refs)
    return paths, defs.get("$defs", {})


def _is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)


def _operation(op: Operation, rule, refs: dict) -> dict:
    ok = {"description": "success"}
    if op.response is not None:
        schema = refs[(op.response, "serialization")] if _is_model(op.response) else op.response
        ok["content"] = {op.content: {"schema": schema}}
    error = {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}
    responses = {str(op.ok): ok, **{code: {"description": ERRORS[code], "content": error} for code in op.errors}}
    operation: dict = {"summary": op.summary, "responses": responses}
    if op.body is not None:
        body = {"application/json": {"schema": refs[(op.body, "validation")]}}
        operation["requestBody"] = {"required": True, "content": body}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer" if kind == "int" else "string"}}
        for kind, name in PATH_ARGUMENT.findall(rule.rule)
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}} for name in op.params]
    if parameters:
        operation["parameters"] = parameters
    if not op.auth:
        operation["security"] = []
    return operation


@bp.get("/api/v1/openapi.json")
@doc("This document", response=ANY, auth=False, errors=())
def openapi_json():
    return jsonify(document())
