"""Prometheus metrics for the HTTP processes."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("http_requests_total", "HTTP requests", ["method", "endpoint", "status"])
LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
ORDERS_ACCEPTED = Counter("orders_accepted_total", "Orders accepted by the API", ["order_type"])


def init_app(app: Flask) -> None:
    @app.before_request
    def _start_timer():
        g._request_started = time.perf_counter()

    @app.after_request
    def _record(response):
        started = g.pop("_request_started", None)
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        if started is not None:
            LATENCY.labels(request.method, endpoint).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, endpoint, response.status_code).inc()
        return response

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
