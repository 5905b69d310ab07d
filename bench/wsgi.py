"""The benchmark's WSGI app: the real app (wsgi.py's create_app()) plus two baselines served by the
same gunicorn workers in the same run. Only bench/order_throughput.py serves this module; the real servers
serve wsgi:app, which has neither route.

- POST /bench/bare: a bare Flask route of the same app (every before/after-request hook, the JSON body
  parsed, a small JSON answer): what any route costs before it does any work.
- POST /bench/raw: answered by a plain WSGI callable in front of Flask: the floor of gunicorn plus the
  load generator itself.
"""

from __future__ import annotations

from flask import jsonify

from tradingapp import create_app
from tradingapp.http import json_body

RAW_BODY = b'{"ok":true}'


def _bare():
    body = json_body()
    return jsonify(ok=True, keys=len(body)), 202


def _with_raw(wsgi_app):
    def app(environ, start_response):
        if environ.get("PATH_INFO") == "/bench/raw":
            environ["wsgi.input"].read()
            start_response("202 Accepted", [("Content-Type", "application/json"), ("Content-Length", "11")])
            return [RAW_BODY]
        return wsgi_app(environ, start_response)

    return app


app = create_app()
app.add_url_rule("/bench/bare", "bench_bare", _bare, methods=["POST"])
app.wsgi_app = _with_raw(app.wsgi_app)
