"""Request plumbing shared by every route: JSON bodies, CORS."""

from __future__ import annotations

import json
from decimal import Decimal

from flask import Flask, current_app, request

from tradingapp.errors import APIError


def json_body() -> dict:
    """The request body as a JSON object; numbers with a fraction parse as exact Decimals."""
    raw = request.get_data(cache=True)
    if not raw:
        raise APIError(400, "validation_error", "request body must be a JSON object")
    mimetype = request.mimetype or ""
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise APIError(415, "unsupported_media_type", "Content-Type must be application/json")
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIError(400, "validation_error", "malformed JSON", {"reason": str(exc)}) from None
    if not isinstance(body, dict):
        raise APIError(400, "validation_error", "request body must be a JSON object")
    return body


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a valid JSON number")


def init_app(app: Flask) -> None:
    @app.after_request
    def cors(response):
        origin = request.headers.get("Origin")
        allowed = current_app.config.get("CORS_ALLOWED_ORIGINS") or []
        if origin and (origin in allowed or "*" in allowed):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Idempotency-Key"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PATCH, PUT, DELETE, OPTIONS"
            response.headers["Access-Control-Max-Age"] = "600"
        return response
