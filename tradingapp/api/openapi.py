"""GET /api/v1/openapi.json, built from the routes' `@doc` declarations and the pydantic shapes of
api/schemas.py, and the gate that holds every documented route to it: a request that does not match
its shape is a 400 before the view runs; a rule refused after it matched (a lot size, an unknown
user, a cursor that does not decode) is a 422. A route without `@doc` fails tests/api/test_openapi.py."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import jsonschema_rs
from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from tradingapp.api.schemas import Error, Query
from tradingapp.domain.errors import Invalid
from tradingapp.domain.validation import MAX_ID
from tradingapp.errors import APIError
from tradingapp.http import json_body

bp = Blueprint("openapi", __name__)

ANY = {"type": "object"}  # a body whose shape is not declared
ERRORS = {
    "400": "validation_error: the request does not match this document (unknown query parameter or field,"
    " wrong type, out of range, null where not nullable)",
    "401": "unauthorized",
    "403": "forbidden",
    "404": "not_found",
    "409": "conflict",
    "413": "payload_too_large",
    "415": "unsupported_media_type (the body must be application/json)",
    "422": "validation_error (the request matches this document, the rules refuse it: details name the field)"
    " or risk_rejected (details name the rule and the numbers)",
    "423": "trading_halted (kill switch)",
    "429": "rate_limited (Retry-After says when to try again)",
    "503": "unavailable",
}
REF = "#/components/schemas/{model}"
PATH_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")  # <int:instrument_id>: (converter, name)
PATH_SCHEMAS = {
    "int": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "uuid": {"type": "string", "format": "uuid"},
}
# At most 18 digits read as an integer (int() of 5000 digits raised ValueError, a 500): a longer run stays
# a string, which the schema refuses with a 400.
INTEGER = re.compile(r"-?[0-9]{1,18}")


@dataclass(frozen=True)
class Operation:
    summary: str
    ok: int = 200
    response: type[BaseModel] | dict | None = None
    body: type[BaseModel] | None = None
    errors: tuple[str, ...] = ()
    params: tuple[str, ...] = ()  # query parameters, fields of schemas.Query
    auth: bool = True
    content: str = "application/json"
    also: dict[str, str] = field(default_factory=dict)  # other successes: status -> when (same body)
    headers: dict[str, dict] = field(default_factory=dict)  # request headers: name -> JSON Schema

    def statuses(self) -> tuple[str, ...]:
        """The error statuses: the declared ones, and those the gate and login_required answer."""
        implied = {"400"}  # an undeclared query parameter, on every route
        if self.auth:
            implied.add("401")
        if self.body is not None:
            implied |= {"413", "415", "422"}
        if any(name != "limit" for name in self.params):
            implied.add("422")
        return tuple(sorted(implied | set(self.errors)))


def doc(summary: str, **how: Any):
    """Declare a view's operation (the fields of Operation) and hold its requests to it."""
    operation = Operation(summary, **how)
    unknown = set(operation.params) - set(Query.model_fields)
    if unknown:
        raise TypeError(f"undeclared query parameters {sorted(unknown)}: add them to schemas.Query")

    def mark(view):
        @functools.wraps(view)
        def gated(*args, **kwargs):
            gate = _compiled()["gates"][id(operation)]
            check_query(gate)
            if gate.body is not None:
                check_body(gate.body)
            try:
                return view(*args, **kwargs)
            except Invalid as err:
                raise APIError(422, err.code, err.message, err.details) from None
            except APIError as err:
                if err.status == 400 and err.code == "validation_error":
                    err.status = 422
                raise

        gated.openapi = operation
        return gated

    return mark


@dataclass(frozen=True)
class Gate:
    """An operation's request schemas from the document, compiled."""

    body: jsonschema_rs.Validator | None
    params: dict[str, tuple[dict, bool, jsonschema_rs.Validator]]  # name -> (schema, required, validator)


def check_query(gate: Gate) -> None:
    """400 unless the query holds only the declared parameters, each once, each matching its schema."""
    errors: dict[str, str] = {}
    if unknown := sorted(set(request.args) - set(gate.params)):
        errors["unknown_parameters"] = ", ".join(name[:40] for name in unknown[:20])
    for name, (schema, required, validator) in gate.params.items():
        raw = request.args.getlist(name)
        if len(raw) > 1:
            errors[name] = "given more than once"
        elif not raw:
            if required:
                errors[name] = "required"
        elif problems := _messages(validator, _wire_value(schema, raw[0])):
            errors[name] = next(iter(problems.values()))
    if errors:
        raise APIError(400, "validation_error", "invalid query parameters", errors)


def _wire_value(schema: dict, raw: str) -> Any:
    """A query value as the JSON value its schema reads (an integer, a boolean, a comma-separated
    array); left a string when it does not read as one, so the schema refuses it."""
    if schema.get("type") == "array":
        return [_scalar(schema["items"], part) for part in raw.split(",")]
    return _scalar(schema, raw)


def _scalar(schema: dict, raw: str) -> Any:
    kind = schema.get("type")
    if kind == "integer" and INTEGER.fullmatch(raw):
        return int(raw)
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def check_body(validator: jsonschema_rs.Validator) -> None:
    """400 unless the JSON body matches its schema in the document: no unknown field, no null where
    the field is not nullable, every type, bound and rule (minProperties, oneOf...) as written."""
    body = _plain(json_body())
    if errors := _messages(validator, body):
        raise APIError(400, "validation_error", "invalid request body", errors)


def _plain(value: Any) -> Any:
    """json_body's exact Decimals as the JSON numbers a schema reads (request schemas bound no number)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _specific(errors) -> Any:
    """Errors a client can act on: an `X | None` says what is wrong with the X; a choice of required
    fields (anyOf, oneOf) names them."""
    kinds = jsonschema_rs.ValidationErrorKind
    for error in errors:
        context = getattr(error.kind, "context", None) or []
        branches = [list(branch) for branch in context]
        names = [e.kind.property for branch in branches for e in branch if isinstance(e.kind, kinds.Required)]
        if isinstance(error.kind, kinds.AnyOf) and branches and _is_null_branch(branches[-1]):
            yield from _specific(branches[0])
        elif isinstance(error.kind, kinds.AnyOf | kinds.OneOfNotValid) and len(names) == len(branches):
            yield _Found(error.instance_path, f"give {' or '.join(names)}")
        elif isinstance(error.kind, kinds.OneOfMultipleValid):
            yield _Found(error.instance_path, "give only one of the alternatives")
        else:
            yield error


def _is_null_branch(branch: list) -> bool:
    return len(branch) == 1 and isinstance(branch[0].kind, jsonschema_rs.ValidationErrorKind.Type)


@dataclass(frozen=True)
class _Found:
    """An error of ours, shaped like jsonschema_rs's."""

    instance_path: list
    message: str
    kind: Any = None
    instance: Any = None


def _messages(validator: jsonschema_rs.Validator, instance: Any) -> dict[str, str]:
    """The errors by dotted path, without the offending value (it may be a secret, or 60 KiB);
    unknown fields gathered under unknown_fields."""
    messages: dict[str, str] = {}
    unknown: list[str] = []
    for error in _specific(validator.iter_errors(instance)):
        path = ".".join(str(part) for part in error.instance_path)
        if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.AdditionalProperties):
            unknown += [".".join(filter(None, (path, str(name)))) for name in error.kind.unexpected]
            continue
        if isinstance(error.kind, jsonschema_rs.ValidationErrorKind.Required):
            messages.setdefault(".".join(filter(None, (path, error.kind.property))), "required")
            continue
        message = error.message
        shown = json.dumps(error.instance, ensure_ascii=False)
        if message.startswith(shown):
            message = "the value" + message[len(shown) :]
        messages.setdefault(path or "body", message[:200])
    if unknown:
        messages["unknown_fields"] = ", ".join(name[:40] for name in unknown[:20])
    return messages


# Views registered outside api/ (tradingapp/metrics.py), by endpoint.
ENDPOINTS = {"metrics": Operation("Prometheus metrics (text format)", auth=False, content="text/plain")}


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
    compiled = _compiled()
    return {
        "openapi": "3.1.0",
        "info": {"title": "tradingapp", "version": current_app.config["APP_VERSION"]},
        "servers": [{"url": current_app.config["API_BASE_URL"]}],
        "components": {
            "schemas": compiled["schemas"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
        "security": [{"bearer": []}],
        "paths": compiled["paths"],
    }


def _compiled() -> dict:
    compiled = current_app.extensions.get("tradingapp.openapi")
    if compiled is None:
        compiled = current_app.extensions["tradingapp.openapi"] = _build()
    return compiled


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


def _build() -> dict:
    ops = operations()
    shapes = [(op.body, "validation") for _, _, op, _ in ops if op.body]
    shapes += [(op.response, "serialization") for _, _, op, _ in ops if _is_model(op.response)]
    shapes += [(Error, "serialization"), (Query, "validation")]
    refs, defs = models_json_schema(
        list(dict.fromkeys(shapes)), ref_template=REF, union_format="primitive_type_array", schema_generator=_Schema
    )
    schemas = defs.get("$defs", {})
    query = schemas.pop("Query")
    paths: dict[str, dict] = {}
    gates: dict[int, Gate] = {}
    for path, method, op, rule in ops:
        paths.setdefault(path, {})[method] = operation = _operation(op, rule, refs, query)
        gates[id(op)] = _gate(operation, schemas)
    return {"paths": paths, "schemas": schemas, "gates": gates}


def _gate(operation: dict, schemas: dict) -> Gate:
    def compiled(schema: dict) -> jsonschema_rs.Validator:
        return jsonschema_rs.validator_for({**schema, "components": {"schemas": schemas}}, validate_formats=True)

    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    params = {
        p["name"]: (p["schema"], p["required"], compiled(p["schema"]))
        for p in operation.get("parameters", ())
        if p["in"] == "query"
    }
    return Gate(compiled(body) if body else None, params)


def _is_model(shape: Any) -> bool:
    return isinstance(shape, type) and issubclass(shape, BaseModel)


def _operation(op: Operation, rule, refs: dict, query: dict) -> dict:
    ok = {"description": "success"}
    if op.response is not None:
        schema = refs[(op.response, "serialization")] if _is_model(op.response) else op.response
        ok["content"] = {op.content: {"schema": schema}}
    error = {"application/json": {"schema": {"$ref": REF.format(model="Error")}}}
    responses = {str(op.ok): ok, **{status: {**ok, "description": when} for status, when in op.also.items()}}
    responses |= {code: {"description": ERRORS[code], "content": error} for code in op.statuses()}
    operation: dict = {"summary": op.summary, "responses": responses}
    if op.body is not None:
        body = {"application/json": {"schema": refs[(op.body, "validation")]}}
        operation["requestBody"] = {"required": True, "content": body}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PATH_SCHEMAS.get(kind, {"type": "string"})}
        for kind, name in PATH_ARGUMENT.findall(rule.rule)
    ]
    for name in op.params:
        parameter = {"name": name, "in": "query", "required": name in query["required"]}
        parameter["schema"] = schema = query["properties"][name]
        if schema.get("type") == "array":
            parameter |= {"style": "form", "explode": False}
        parameters.append(parameter)
    parameters += [
        {"name": name, "in": "header", "required": False, "schema": schema} for name, schema in op.headers.items()
    ]
    if parameters:
        operation["parameters"] = parameters
    if not op.auth:
        operation["security"] = []
    return operation


@bp.get("/api/v1/openapi.json")
@doc("This document", response=ANY, auth=False)
def openapi_json():
    return jsonify(document())
