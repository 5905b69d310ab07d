"""Every Prometheus metric the platform exposes, declared here once (names after Prometheus' naming
conventions: `tradingapp_` prefix, base units, `_total` for counters). README "Operations" says what
each is for; deploy/prometheus/ alerts on them and deploy/grafana/ draws them.

Call sites use `metrics.NAME` (the module attribute, looked up at the call): with METRICS_ENABLED=false
`configure()` swaps every metric for a no-op, which is how the benchmarks measure the cost.

Where the figures come from:
- backend and websocket (gunicorn): prometheus-client's multiprocess mode. gunicorn.conf.py points
  PROMETHEUS_MULTIPROC_DIR at a directory wiped at start and marks dead workers at exit; `/metrics`
  on each server collects every worker's files.
- worker, consumer, feed and XTS bridge: each serves its own registry on its own port (`serve()`).
"""

from __future__ import annotations

import hmac
import logging
import os
import platform
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
    multiprocess,
)

# -- buckets ------------------------------------------------------------------------------------------
# The benchmarks publish order-path figures of a few milliseconds (README "Performance"): buckets fine
# enough around 1-20 ms that histogram_quantile() gives the same p50/p99, and wide enough for a slow
# broker (seconds) or a fill that waits for the market (a LIMIT order: minutes).
ORDER_PATH_BUCKETS = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 300,
)  # fmt: skip
# API requests: a bare route answers in ~1 ms, an order in ~3-5 ms, a 90-day candle range in ~26 ms.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
# Broker calls: the paper exchange answers in microseconds, XTS over the network in 10-500 ms.
BROKER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Tick ingest (exchange time or receipt -> committed row): batches of ~50 ms.
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# -- HTTP (backend and websocket) ---------------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "tradingapp_http_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "tradingapp_http_request_duration_seconds",
    "HTTP request latency by route template and method",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)

# -- the order path -----------------------------------------------------------------------------------
# Seconds from the API's accept (the order row's creation) to each later stage:
#   claimed: the worker's job took it; placed: the broker's place() returned;
#   acknowledged: the broker's ack (OPEN) applied by the consumer; filled: the last fill applied.
ORDER_STAGE = Histogram(
    "tradingapp_order_stage_seconds",
    "Seconds from an order's accept to a later stage of its path (claimed, placed, acknowledged, filled)",
    ["stage"],
    buckets=ORDER_PATH_BUCKETS,
)
ORDERS_ACCEPTED = Counter("tradingapp_orders_accepted_total", "Orders accepted by the API", ["order_type"])
# reason: a bounded code (a risk rule, broker_rejected, user, expired...), never free text.
ORDERS_FINAL = Counter(
    "tradingapp_orders_final_total", "Orders reaching a final status, by status and reason", ["status", "reason"]
)
RISK_REFUSALS = Counter("tradingapp_risk_refusals_total", "Orders refused by the risk engine, by rule", ["rule"])
# outcome: ok, refused (the broker said no), timeout, 5xx, 429, error (anything else).
BROKER_CALLS = Counter(
    "tradingapp_broker_calls_total", "Calls to the broker by operation and outcome", ["broker", "operation", "outcome"]
)
BROKER_LATENCY = Histogram(
    "tradingapp_broker_call_duration_seconds",
    "Broker call latency by operation",
    ["broker", "operation"],
    buckets=BROKER_BUCKETS,
)
# outcome: ok, retried (a transient failure, RQ tries again), failed (out of retries or an error).
ORDER_JOBS = Counter(
    "tradingapp_order_jobs_total", "Order jobs run by the worker, by task and outcome", ["task", "outcome"]
)
# Gauges filled when scraped (the worker's collector): the RQ queues and the sweeper's last look.
# Gauges without a multiprocess_mode of their own are set only outside gunicorn (worker, consumer,
# feed, bridge); the web servers' gauges all say how their workers combine (live ones only).
RQ_QUEUE_DEPTH = Gauge("tradingapp_rq_queue_depth", "Jobs waiting in an RQ queue", ["queue"])
RQ_FAILED_JOBS = Gauge("tradingapp_rq_failed_jobs", "Jobs in an RQ queue's failed registry", ["queue"])
UNSENT_ORDERS = Gauge(
    "tradingapp_orders_unsent",
    "Accepted orders not yet at the broker, at the sweeper's last round",
    multiprocess_mode="livemax",
)
UNSENT_OLDEST = Gauge(
    "tradingapp_orders_unsent_oldest_age_seconds",
    "Age of the oldest accepted order not yet at the broker",
    multiprocess_mode="livemax",
)
SWEEPER_ROUNDS = Counter("tradingapp_sweeper_rounds_total", "Sweeper rounds run")
SWEEPER_FOUND = Counter(
    "tradingapp_sweeper_orders_found_total", "Orders the sweeper found stuck, by what it did", ["action"]
)
RECONCILE_ROUNDS = Counter("tradingapp_reconcile_rounds_total", "Book reconcile rounds by outcome", ["outcome"])
RECONCILE_DIFFERENCES = Counter(
    "tradingapp_reconcile_differences_total", "Differences between our books and the broker's, by kind", ["kind"]
)

# -- the consumer -------------------------------------------------------------------------------------
# outcome: applied, duplicate (already applied: deduplicated), dead_lettered, requeued.
CONSUMER_EVENTS = Counter(
    "tradingapp_consumer_events_total", "Messages the consumer handled, by queue and outcome", ["queue", "outcome"]
)
CONSUMER_LAG = Gauge(
    "tradingapp_consumer_lag_seconds", "Age of the last message the consumer applied when it applied it", ["queue"]
)
CONSUMER_LAST_APPLIED = Gauge(
    "tradingapp_consumer_last_applied_timestamp_seconds", "When the consumer last applied a message", ["queue"]
)
# RabbitMQ's own count, sampled: the events, ticks and dead-letter queues.
QUEUE_MESSAGES = Gauge("tradingapp_rabbitmq_queue_messages", "Messages ready in a RabbitMQ queue", ["queue"])

# -- market data --------------------------------------------------------------------------------------
TICKS_INGESTED = Counter("tradingapp_ticks_ingested_total", "Ticks written to the tick history")
TICKS_SKIPPED = Counter("tradingapp_ticks_skipped_total", "Ticks refused or dropped, by reason", ["reason"])
TICK_INGEST_LATENCY = Histogram(
    "tradingapp_tick_ingest_seconds", "Seconds from a tick's receipt to its committed row", buckets=TICK_BUCKETS
)
LAST_TICK = Gauge(
    "tradingapp_last_tick_timestamp_seconds", "When the last tick was ingested", multiprocess_mode="livemax"
)
STALE_INSTRUMENTS = Gauge(
    "tradingapp_stale_instruments",
    "Instruments whose last quote is older than the stale threshold",
    multiprocess_mode="livemax",
)
MARKET_OPEN = Gauge(
    "tradingapp_market_session_open", "1 while the trading session is open, else 0", multiprocess_mode="livemax"
)
FEED_TICKS = Counter("tradingapp_feed_ticks_published_total", "Ticks the feed (simulated or the XTS bridge) published")

# -- WebSocket ----------------------------------------------------------------------------------------
WS_OPEN = Gauge("tradingapp_ws_open_sockets", "Open WebSocket connections", multiprocess_mode="livesum")
WS_DELIVERIES = Counter("tradingapp_ws_deliveries_total", "Messages sent to sockets, by type", ["type"])
WS_CONFLATED = Counter("tradingapp_ws_quotes_conflated_total", "Quotes replaced by a newer one before being sent")
WS_DROPPED = Counter(
    "tradingapp_ws_deliveries_dropped_total", "Messages not delivered (queue full, send timeout), by reason", ["reason"]
)
WS_CLOSES = Counter("tradingapp_ws_closes_total", "WebSocket closes by close code", ["code"])

# -- XTS ----------------------------------------------------------------------------------------------
XTS_LOGINS = Counter("tradingapp_xts_logins_total", "XTS session logins by session and outcome", ["session", "outcome"])
XTS_RECONNECTS = Counter("tradingapp_xts_reconnects_total", "XTS socket reconnects by stream", ["stream"])
XTS_SESSION_UP = Gauge(
    "tradingapp_xts_session_up", "1 while the XTS session is logged in", ["session"], multiprocess_mode="livemax"
)

# -- the build ----------------------------------------------------------------------------------------
BUILD_INFO = Gauge(
    "tradingapp_build_info", "The running build (always 1)", ["version", "commit", "python"], multiprocess_mode="max"
)
PROCESS_START = Gauge(
    "tradingapp_process_start_time_seconds", "When this process started", ["process"], multiprocess_mode="livemax"
)


# -- switching off ------------------------------------------------------------------------------------
class _Noop:
    """Stands in for any metric (and its children) when METRICS_ENABLED=false."""

    def labels(self, *args, **kwargs) -> _Noop:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def observe(self, value: float) -> None:
        pass

    def set_to_current_time(self) -> None:
        pass

    def clear(self) -> None:
        pass

    def time(self):
        return _NoopTimer()


class _NoopTimer:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __call__(self, func):
        return func


_NOOP = _Noop()
_REAL = {name: value for name, value in dict(globals()).items() if isinstance(value, Counter | Gauge | Histogram)}


def configure(enabled: bool) -> None:
    """Real metrics, or no-ops everywhere (METRICS_ENABLED=false)."""
    for name, metric in _REAL.items():
        globals()[name] = metric if enabled else _NOOP


def enabled() -> bool:
    return ORDER_STAGE is not _NOOP


def since(started_at) -> float:
    """Seconds since a timezone-aware datetime or an epoch float (clamped at 0: clocks of two
    processes on one host can disagree by a hair)."""
    if started_at is None:
        return 0.0
    stamp = started_at if isinstance(started_at, int | float) else started_at.timestamp()
    return max(time.time() - stamp, 0.0)


def build_labels() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        app_version = version("tradingapp")
    except PackageNotFoundError:
        app_version = "dev"
    return {
        "version": app_version,
        "commit": os.environ.get("GIT_COMMIT", "") or _git_commit(),
        "python": platform.python_version(),
    }


def _git_commit() -> str:
    from config import BASE_DIR

    head = BASE_DIR / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (BASE_DIR / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return "unknown"


def mark_process(process: str) -> None:
    BUILD_INFO.labels(**build_labels()).set(1)
    PROCESS_START.labels(process).set(time.time())


# -- exposition ---------------------------------------------------------------------------------------
def authorized(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the metrics token (always, when no token is set)."""
    if not token:
        return True
    expected = f"Bearer {token}".encode()
    return hmac.compare_digest((header or "").encode(), expected)


def _registry() -> CollectorRegistry:
    """The multiprocess collector's view under gunicorn, the process's own registry elsewhere."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def init_app(app: Flask) -> None:
    """HTTP metrics of the web servers, and their /metrics route."""
    config = app.extensions["tradingapp.config"]
    configure(config.METRICS_ENABLED)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Under gunicorn. The other processes build this app too, and name themselves in serve().
        mark_process("websocket" if config.PORT == config.WEBSOCKET_PORT else "backend")

    @app.before_request
    def _start_timer():
        g._request_started = time.perf_counter()

    @app.after_request
    def _record(response):
        started = g.pop("_request_started", None)
        route = request.url_rule.rule if request.url_rule else "unmatched"
        # Any token is a method to gunicorn and nginx: each would be a series of its own.
        method = request.method if request.method in HTTP_METHODS else "other"
        # A WebSocket's "request" lasts its whole session: counted, but not a latency.
        if started is not None and route != "/ws":
            HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - started)
        HTTP_REQUESTS.labels(route, method, response.status_code).inc()
        return response

    @app.get("/metrics")
    def metrics():
        if not authorized(request.headers.get("Authorization"), config.METRICS_TOKEN):
            return {"error": {"code": "unauthorized", "message": "metrics need the metrics token"}}, 401
        return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the scraper's requests are not news
        pass


def serve(process: str, host: str, port: int, token: str = "", collectors: Iterable[Callable[[], None]] = ()):
    """Serve this process's metrics on host:port in a daemon thread (port 0: none). `collectors`
    run before each scrape to refresh gauges (queue depths...); one failing does not fail the scrape.
    Returns the server (tests read its port), or None."""
    mark_process(process)
    if not port:
        return None
    inner = make_wsgi_app(REGISTRY)
    refreshers = list(collectors)

    def app(environ, start_response):
        if not authorized(environ.get("HTTP_AUTHORIZATION"), token):
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error":{"code":"unauthorized","message":"metrics need the metrics token"}}']
        for refresh in refreshers:
            try:
                refresh()
            except Exception:  # a service away for a moment: the scrape still answers
                logging.getLogger(__name__).warning("event=metrics_collector_failed", exc_info=True)
        return inner(environ, start_response)

    try:
        server = make_server(host, port, app, WSGIServer, handler_class=_QuietHandler)
    except OSError:
        # Trading goes on without metrics; Prometheus' `up` for this target says it is missing.
        logging.getLogger(__name__).error("event=metrics_serve_failed process=%s address=%s:%s", process, host, port)
        return None
    thread = threading.Thread(target=server.serve_forever, name=f"{process}-metrics", daemon=True)
    thread.start()
    return server
