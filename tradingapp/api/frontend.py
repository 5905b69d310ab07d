"""The built terminal (frontend/, Vite's output in FRONTEND_DIST), served at / by the backend.

Files of the build are sent as they are: Vite's content-hashed /assets/* cached for a year
(immutable), other files (favicon, robots.txt) for an hour. Any other GET path is a client route
of the app and gets index.html, never cached, so a new build is picked up on the next load. Paths
under /api, /health, /ready, /metrics and /ws are never matched here: an unknown API route stays a
JSON 404 (and a wrong method on it stays a 404, not a 405 from this catch-all).
"""

from __future__ import annotations

import os

from flask import Blueprint, Flask, current_app, send_from_directory
from werkzeug.routing import PathConverter
from werkzeug.security import safe_join

from tradingapp.api.openapi import doc
from tradingapp.errors import APIError, not_found

bp = Blueprint("frontend", __name__)

RESERVED = ("api", "health", "ready", "metrics", "ws")
ASSETS_MAX_AGE = 365 * 24 * 3600
FILE_MAX_AGE = 3600
NOT_BUILT = "the terminal is not built: run make run (or npm --prefix frontend run build)"


class TerminalPath(PathConverter):
    """A path outside the server's own prefixes (the rule never matches /api/..., /health, ...)."""

    regex = r"(?!(?:" + "|".join(RESERVED) + r")(?:/|$))[^/].*?"


def init_app(app: Flask) -> None:
    app.url_map.converters["terminal_path"] = TerminalPath
    app.register_blueprint(bp)


@bp.get("/")
@bp.get("/<terminal_path:path>")
@doc(
    "The terminal: a file of its build (assets/* cached a year, immutable; others an hour), else index.html (not"
    " cached) for the app's client routes; never /api, /health, /ready, /metrics or /ws. 404 (JSON) when the"
    " terminal is not built",
    response={"type": "string"},
    content="text/html",
    auth=False,
    errors=("404",),
)
def terminal(path: str = ""):
    dist = current_app.config["FRONTEND_DIST"]
    if not os.path.isfile(os.path.join(dist, "index.html")):
        raise APIError(404, "not_found", NOT_BUILT)
    if path:
        target = safe_join(dist, path)
        if target is None:  # "..", an absolute path: outside the build
            raise not_found()
        if os.path.isfile(target):
            immutable = path.startswith("assets/")
            response = send_from_directory(dist, path, max_age=ASSETS_MAX_AGE if immutable else FILE_MAX_AGE)
            response.cache_control.immutable = immutable or None
            return response
        if path.startswith("assets/"):  # a missing hashed file is not a page: HTML would break the script
            raise not_found("asset")
    response = send_from_directory(dist, "index.html", max_age=None)  # Cache-Control: no-cache
    return response
