"""Gunicorn settings for both servers: backend (PORT) and websocket (PORT=WEBSOCKET_PORT).

Values come from config.py, the one place that reads the environment; a `-b` on the command
line still wins over `bind` here (the tests use that for free ports).

Metrics (README "Operations"): each server's workers write their figures to files of a directory
of its own (prometheus-client's multiprocess mode), and /metrics on any worker adds up every
worker's. PROMETHEUS_MULTIPROC_DIR must be in the environment before prometheus_client is first
imported (it picks its value class at import), so it is set here, at the top, in the master; the
workers inherit it. The directory: <PROMETHEUS_MULTIPROC_DIR>/<port> when configured (backend and
websocket may share the setting: each wipes only its own), else a fresh temporary one removed at
exit. Wiped when the server starts (a restart's old files would add to the new counts); a dead
worker's live gauges (open sockets) are dropped as it exits.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

from config import load_config
from tradingapp import logs

_config = load_config()
_websocket = _config.PORT == _config.WEBSOCKET_PORT
logs.set_process("websocket" if _websocket else "backend")

# -- metrics: multiprocess mode -----------------------------------------------------------------------
# Set by the first load of this file in the master, so a configuration reload (SIGHUP) keeps it.
_OWN_DIR = "TRADINGAPP_GUNICORN_METRICS_DIR"
_TEMPORARY = "TRADINGAPP_GUNICORN_METRICS_TMP"
if _config.METRICS_ENABLED:
    if _OWN_DIR not in os.environ:
        if _config.PROMETHEUS_MULTIPROC_DIR:
            os.environ[_OWN_DIR] = str(Path(_config.PROMETHEUS_MULTIPROC_DIR) / str(_config.PORT))
        else:
            os.environ[_OWN_DIR] = tempfile.mkdtemp(prefix=f"tradingapp-metrics-{_config.PORT}-")
            os.environ[_TEMPORARY] = "1"
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_OWN_DIR]
else:
    # Every metric is a no-op (tradingapp.metrics.configure): no files, whatever the environment says.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)


def on_starting(server):
    """The master, before any worker: an empty metrics directory."""
    if not _config.METRICS_ENABLED:
        return
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)


def child_exit(server, worker):
    """A worker is gone (stopped, crashed, killed): its live gauges no longer count."""
    if not _config.METRICS_ENABLED:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, os.environ["PROMETHEUS_MULTIPROC_DIR"])


def on_exit(server):
    """The master stops: a temporary metrics directory goes with it."""
    if _config.METRICS_ENABLED and os.environ.get(_TEMPORARY):
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


# -- serving ---------------------------------------------------------------------------------------------
# 127.0.0.1 unless BIND_HOST says otherwise (production: every interface, behind its proxy).
bind = _config.bind_address
workers = _config.WEB_CONCURRENCY
# gevent: thousands of idle WebSocket connections and slow broker calls cost a greenlet, not a thread.
# gunicorn's gevent worker, with the requests gunicorn refuses itself (414, 431, 400) answered in the
# API's JSON error envelope instead of gunicorn's HTML page.
worker_class = "tradingapp.gunicorn_worker.JsonErrorGeventWorker"
# A websocket worker holds each client's socket for its whole session (and a gevent worker stops
# accepting at worker_connections), so the websocket process allows ten times the backend's.
worker_connections = 10000 if _websocket else 1000
# A sync request is killed after `timeout`; WebSockets keep the worker busy but answer pings, so it stays alive.
timeout = 30
# On SIGTERM, in-flight requests get this long before workers are killed; the supervisor waits longer.
graceful_timeout = 10
# Also how long a new connection may take to send its request line and headers (gevent's worker reads
# them under this timeout): a half-open request holds a greenlet this long at most. A body is read
# without one: slow clients are the job of the buffering proxy in front (frontend/nginx/: whole
# requests only reach gunicorn), which every exposed deployment must have.
keepalive = 5
# gunicorn's own request limits, stated: a request line up to 4094 bytes (the API's longest, 100
# instrument ids or a cursor, is far below), at most 50 header fields (a browser sends ~20 and
# nginx adds 5) of up to 8190 bytes each (a bearer token is under 1 KiB). Past them: 414 and 431
# in the JSON envelope. nginx's large_client_header_buffers (4 x 8k) refuses larger ones first.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190

# -- logs -----------------------------------------------------------------------------------------------
accesslog = "-"
errorlog = "-"
loglevel = _config.LOG_LEVEL.lower()
# key=value like the app's own lines. The path is %(U)s, never the query string: a WebSocket
# client may carry its token there and tokens never reach a log.
access_log_format = (
    'event=http_request remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_ms=%(M)s agent="%(a)s"'
)
# The access line also carries the answer's X-Request-ID as request_id (JSON lines: a field of its own).
logger_class = "tradingapp.gunicorn_worker.AccessLogger"
if _config.LOG_FORMAT == "json":
    # gunicorn's own lines (its error log and the access log) as JSON lines of the app's shape: the
    # app's formatter and context filter (process name, event). The root logger is left without a
    # handler here: the app installs its own in each worker (tradingapp.logs.configure_logging).
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "tradingapp.logs.ContextFilter"}},
        "formatters": {"json": {"()": "tradingapp.logs.json_formatter"}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": _config.LOG_LEVEL, "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": _config.LOG_LEVEL, "handlers": ["json"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["json"], "propagate": False},
            # Python warnings raised before the app is loaded (gevent's patching in a new worker).
            "py.warnings": {"level": "WARNING", "handlers": ["json"], "propagate": False},
        },
    }
    logging.captureWarnings(True)
proc_name = f"tradingapp:{_config.PORT}"
# Backend and websocket run side by side and would fight over one default control socket path;
# nothing here uses gunicornc.
control_socket_disable = True
