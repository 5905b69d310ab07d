"""The built terminal served at / from FRONTEND_DIST (a temporary build here): files with their
caching, index.html for client routes, the server's own paths untouched, no way out of the folder."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

import config as settings
from tradingapp import create_app

INDEX = b'<!doctype html><html><head><script type="module" src="/assets/index-3f2a1b.js"></script></head></html>'
SCRIPT = b"console.log('terminal')"
NOT_BUILT = "the terminal is not built: run make run (or npm --prefix frontend run build)"


@pytest.fixture
def dist(tmp_path):
    build = tmp_path / "dist"
    (build / "assets").mkdir(parents=True)
    (build / "index.html").write_bytes(INDEX)
    (build / "assets" / "index-3f2a1b.js").write_bytes(SCRIPT)
    (build / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return build


class ReadingClient(FlaskClient):
    """Reads each response whole and closes it (a sent file's handle is released at once)."""

    def open(self, *args, **kwargs):
        response = super().open(*args, **kwargs)
        response.get_data()
        response.close()
        return response


def client_for(env, dist) -> FlaskClient:
    app = create_app(settings.TestConfig({**env, "FRONTEND_DIST": str(dist)}))
    app.test_client_class = ReadingClient
    return app.test_client()


@pytest.fixture
def web(env, dist):
    return client_for(env, dist)


def assert_index(response):
    assert response.status_code == 200
    assert response.data == INDEX
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-cache"


def assert_json_404(response):
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_the_root_is_index_html_never_cached(web):
    assert_index(web.get("/"))


@pytest.mark.parametrize(
    "path", ["/login", "/orders/4f1c", "/admin/risk-limits", "/watchlist/", "/apidocs", "/healthz"]
)
def test_client_routes_get_index_html(web, path):
    assert_index(web.get(path))


def test_hashed_assets_are_cached_for_a_year(web):
    response = web.get("/assets/index-3f2a1b.js")
    assert response.status_code == 200 and response.data == SCRIPT
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_other_files_of_the_build_are_cached_briefly(web):
    response = web.get("/favicon.svg")
    assert response.status_code == 200 and response.data == b"<svg/>"
    assert response.headers["Cache-Control"] == "public, max-age=3600"


def test_a_missing_asset_is_a_404_not_the_page(web):
    assert_json_404(web.get("/assets/index-000000.js"))


def test_head_is_answered_like_get(web):
    response = web.head("/orders")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-cache"


def test_the_servers_own_paths_are_untouched(web):
    assert web.get("/health").get_json() == {"status": "ok"}
    assert web.get("/metrics").mimetype == "text/plain"
    assert web.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.")
    assert web.get("/api/v1/meta").get_json()["broker"] == "paper"


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/v1/nope", "/api/v1/orders/x/y", "/metrics/x", "/ready/x",
                                  "/health/x", "/ws/x"])  # fmt: skip
def test_unknown_server_paths_stay_json_404s(web, path):
    assert_json_404(web.get(path))


def test_other_methods_on_an_unknown_api_route_stay_404(web):
    for method in ("post", "put", "patch", "delete"):
        assert_json_404(getattr(web, method)("/api/v1/nope"))


def test_the_terminal_answers_only_get(web):
    response = web.post("/orders")
    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path", ["/../secret.txt", "/assets/../../secret.txt", "/assets/..%2f..%2fsecret.txt", "/%2e%2e/secret.txt"]
)
def test_a_path_out_of_the_build_is_refused(web, path):
    response = web.get("/", environ_overrides={"PATH_INFO": path.replace("%2f", "/").replace("%2e", ".")})
    assert_json_404(response)
    assert b"outside the build" not in response.data


@pytest.mark.parametrize("path", ["//etc/passwd", "/assets//etc/passwd", "//" + __file__])
def test_an_absolute_path_stays_inside_the_build(web, path):
    response = web.get("/", environ_overrides={"PATH_INFO": path})
    assert response.data in (INDEX, b"") or response.get_json()["error"]["code"] == "not_found"
    assert b"root:" not in response.data and b"outside the build" not in response.data


def test_a_missing_build_is_a_404_saying_how_to_build_it(env, tmp_path):
    web = client_for(env, tmp_path / "nothing")
    for path in ("/", "/orders"):
        response = web.get(path)
        assert response.status_code == 404
        assert response.get_json() == {"error": {"code": "not_found", "message": NOT_BUILT, "details": {}}}
    assert web.get("/health").status_code == 200
