"""One JSON error shape for every 4xx/5xx: {"error": {"code", "message", "details"}}, and the one
place the services' domain errors (tradingapp/domain/errors.py) become HTTP statuses."""

from __future__ import annotations

import logging

import redis
import sqlalchemy.exc
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from tradingapp.domain.errors import Conflict, DomainError, Invalid, NotFound, Refused, Unavailable

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "validation_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "validation_error",
    423: "trading_halted",
    429: "rate_limited",
    431: "headers_too_large",
    501: "not_implemented",
    503: "unavailable",
}


# A domain error's status by its kind; a refusal's by its code (422 unless named here).
OUTAGE_RETRY_AFTER = 1  # seconds: the chaos suite measured recovery from a restart in about 1 s

DOMAIN_STATUS = {Invalid: 400, NotFound: 404, Conflict: 409, Refused: 422, Unavailable: 503}
REFUSAL_STATUS = {"forbidden": 403, "trading_halted": 423, "rate_limited": 429}


def status_of(err: DomainError) -> int:
    if isinstance(err, Refused):
        return REFUSAL_STATUS.get(err.code, 422)
    return next((status for kind, status in DOMAIN_STATUS.items() if isinstance(err, kind)), 400)


def headers_of(err: DomainError) -> dict:
    retry_after = getattr(err, "retry_after", None)
    return {"Retry-After": str(retry_after)} if retry_after else {}


class APIError(Exception):
    """An error the client caused or must know about; becomes a JSON response."""

    def __init__(self, status: int, code: str, message: str, details: dict | None = None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def validation_error(message: str, **details) -> APIError:
    return APIError(400, "validation_error", message, details)


def not_found(what: str = "resource") -> APIError:
    return APIError(404, "not_found", f"{what} not found")


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def handle_api_error(err: APIError):
        return jsonify(error_body(err.code, err.message, err.details)), err.status, err.headers

    @app.errorhandler(DomainError)
    def handle_domain_error(err: DomainError):
        return jsonify(error_body(err.code, err.message, err.details)), status_of(err), headers_of(err)

    @app.errorhandler(HTTPException)
    def handle_http_exception(err: HTTPException):
        status = err.code or 500
        code = HTTP_CODES.get(status, "error" if status < 500 else "internal_error")
        message = err.description or err.name
        headers = {}
        if status == 405 and err.valid_methods:
            headers["Allow"] = ", ".join(err.valid_methods)
        return jsonify(error_body(code, message)), status, headers

    # PostgreSQL or Redis unreachable (or a retryable PostgreSQL refusal: deadlock, serialization):
    # nothing was answered as done, so a 503 the client may retry (with its Idempotency-Key) rather
    # than a 500 that reads as a bug. The chaos suite's outages showed these as 500s.
    @app.errorhandler(sqlalchemy.exc.OperationalError)
    @app.errorhandler(sqlalchemy.exc.InterfaceError)
    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def handle_service_outage(err: Exception):
        log.warning("event=service_unavailable error=%s", type(err).__name__)
        body = error_body(
            "unavailable",
            "a service the platform depends on is unavailable; a write may or may not have been applied: "
            "retry shortly with the same Idempotency-Key (or client_order_id) so it is not applied twice",
        )
        return jsonify(body), 503, {"Retry-After": str(OUTAGE_RETRY_AFTER)}

    @app.errorhandler(Exception)
    def handle_unexpected(err: Exception):
        log.exception("unhandled error")
        return jsonify(error_body("internal_error", "internal server error")), 500
