"""The simulator's WSGI application and server: Flask for the REST routes, socket.io paths handed
to the streams, all on gevent's pywsgi with gevent-websocket's handler (both Engine.IO versions
need a websocket-capable server).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket

from flask import Flask, Response
from gevent.pywsgi import WSGIServer
from geventwebsocket.handler import WebSocketHandler

from tradingapp.simulators.xts import control, interactive, marketdata
from tradingapp.simulators.xts.http import JSON, envelope
from tradingapp.simulators.xts.simulator import Simulator

MD_PREFIXES = ("/apimarketdata", "/marketdata")


def create_app(simulator: Simulator) -> Flask:
    app = Flask("xts_simulator")
    app.config["SIMULATOR"] = simulator
    app.register_blueprint(interactive.bp)
    for prefix in MD_PREFIXES:
        app.register_blueprint(marketdata.bp, url_prefix=prefix, name=f"md{prefix.replace('/', '_')}")
    app.register_blueprint(control.bp)

    @app.errorhandler(404)
    @app.errorhandler(405)
    def not_found(err):
        body = envelope("error", "e-app-0404", err.name, {})
        return Response(json.dumps(body), err.code, content_type=JSON)

    @app.errorhandler(Exception)
    def crashed(err):  # a simulator bug must look like a broker 500, and be visible in its log
        logging.getLogger("xts_sim").exception("unhandled error")
        body = envelope("error", "e-app-5000", "Internal Server Error", {})
        return Response(json.dumps(body), 500, content_type=JSON)

    return app


class SimHandler(WebSocketHandler):
    """Puts the handler in the environ, so a route can cut the connection without answering; no
    Nagle delay (pywsgi writes headers and body apart: with delayed ACKs that cost ~40 ms a call)."""

    def handle(self):
        with contextlib.suppress(OSError):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return super().handle()

    def get_environ(self):
        environ = super().get_environ()
        environ["xts_sim.handler"] = self
        return environ


def wsgi_root(simulator: Simulator, app: Flask):
    def root(environ, start_response):
        answer = simulator.streams.wsgi(environ, start_response)
        return app(environ, start_response) if answer is None else answer

    return root


def make_server(simulator: Simulator, host: str, port: int) -> WSGIServer:
    app = create_app(simulator)
    return WSGIServer((host, port), wsgi_root(simulator, app), handler_class=SimHandler, log=None)
