"""Gunicorn settings for both servers: backend (PORT) and websocket (PORT=WEBSOCKET_PORT).

Values come from config.py, the one place that reads the environment; a `-b` on the command
line still wins over `bind` here (the tests use that for free ports).
"""

from config import load_config

_config = load_config()

# 127.0.0.1 unless BIND_HOST says otherwise (production: every interface, behind its proxy).
bind = _config.bind_address
workers = _config.WEB_CONCURRENCY
# gevent: thousands of idle WebSocket connections and slow broker calls cost a greenlet, not a thread.
# gunicorn's gevent worker, with the requests gunicorn refuses itself (414, 431, 400) answered in the
# API's JSON error envelope instead of gunicorn's HTML page.
worker_class = "tradingapp.gunicorn_worker.JsonErrorGeventWorker"
# A websocket worker holds each client's socket for its whole session (and a gevent worker stops
# accepting at worker_connections), so the websocket process allows ten times the backend's.
worker_connections = 10000 if _config.PORT == _config.WEBSOCKET_PORT else 1000
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

accesslog = "-"
errorlog = "-"
loglevel = _config.LOG_LEVEL.lower()
# key=value like the app's own lines. The path is %(U)s, never the query string: a WebSocket
# client may carry its token there and tokens never reach a log.
access_log_format = (
    'event=http_request remote=%(h)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s duration_ms=%(M)s agent="%(a)s"'
)
proc_name = f"tradingapp:{_config.PORT}"
# Backend and websocket run side by side and would fight over one default control socket path;
# nothing here uses gunicornc.
control_socket_disable = True
