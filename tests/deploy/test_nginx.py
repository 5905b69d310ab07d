"""The `frontend` service's nginx configuration (frontend/nginx/) run with Debian's nginx in front of
the real test stack.

The templates are rendered the way the nginx image's entrypoint renders them (18-tradingapp.envsh
sourced, then envsubst of the variables set), with the listen ports on free 127.0.0.1 ports, the
upstreams on the stack's backend and websocket, the certificates from scripts/make_certs.sh and the
site from the built terminal (tests/support/frontend_build.py). nginx runs in the foreground with its own
prefix, pid, logs and temp paths in a temporary directory; only the small main nginx.conf around
the rendered files is the test's (the image uses its stock one). Last, Debian's chromium logs in to
the terminal through nginx and trades nothing: it checks the CSP refuses nothing the app does.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
import requests
import websocket
from playwright.sync_api import expect, sync_playwright

from config import TestConfig as AppConfig
from tests.browser.api import ApiUser
from tests.browser.steps import NUMBER, login, watchlist_row
from tests.support import ROOT, wait_until
from tests.support.frontend_build import built_dist
from tests.support.net import free_port
from tests.support.stack import Stack, reset_to_demo_data, started

pytestmark = pytest.mark.e2e

NGINX_DIR = ROOT / "frontend" / "nginx"
ENVSH = NGINX_DIR / "18-tradingapp.envsh"
TEMPLATES = NGINX_DIR / "templates"
DEMO = {"email": "demo@tradingapp.local", "password": "demo-password-123"}
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
YEAR_IMMUTABLE = "public, max-age=31536000, immutable"

# What 20-envsubst-on-templates.sh of the nginx image does with /etc/nginx/templates, after
# /docker-entrypoint.sh has sourced the *.envsh files: substitute only the variables that are set.
RENDER = r"""
set -e
. "$TRADINGAPP_ENVSH"
defined_envs=$(printf '${%s} ' $(awk "END { for (name in ENVIRON) { print name } }" < /dev/null))
for template in "$TRADINGAPP_TEMPLATES"/*.template; do
    name=$(basename "$template" .template)
    envsubst "$defined_envs" < "$template" > "$TRADINGAPP_OUTPUT/$name"
done
"""

# Stands in for the image's stock /etc/nginx/nginx.conf (whose http block includes conf.d/*.conf and
# whose workers take 1024 connections each), with every path inside the test's directory.
MAIN_CONF = """\
{user}
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {dir}/temp/client_body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    include conf.d/*.conf;
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if found is None and os.geteuid() == 0:
        subprocess.run([str(ROOT / "scripts" / "ensure_tools.sh"), "nginx"], check=True, timeout=600)
        found = shutil.which("nginx") or "/usr/sbin/nginx"
    if found is None:
        pytest.fail("nginx is missing: run scripts/ensure_tools.sh nginx (it installs Debian's nginx with apt)")
    return found


@dataclass
class Nginx:
    """One nginx running the rendered configuration in the foreground."""

    binary: str
    directory: Path
    root: Path
    certs: Path
    backend: str
    websocket: str
    max_request_bytes: int
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    conn_per_address: int = 100

    @property
    def conf(self) -> Path:
        return self.directory / "nginx.conf"

    @property
    def access_log(self) -> Path:
        return self.directory / "access.log"

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def template_env(self) -> dict[str, str]:
        return {
            "NGINX_HTTP_PORT": f"127.0.0.1:{self.http_port}",
            "NGINX_HTTPS_PORT": f"127.0.0.1:{self.https_port}",
            "BACKEND_UPSTREAM": self.backend,
            "WEBSOCKET_UPSTREAM": self.websocket,
            "NGINX_SSL_DIR": str(self.certs),
            "NGINX_ROOT": str(self.root),
            "NGINX_ACCESS_LOG": str(self.access_log),
            "MAX_REQUEST_BYTES": str(self.max_request_bytes),
            "NGINX_CONN_PER_ADDRESS": str(self.conn_per_address),
        }

    def render(self) -> None:
        (self.directory / "conf.d").mkdir(parents=True, exist_ok=True)
        (self.directory / "temp").mkdir(exist_ok=True)
        # The image's environment is small and fixed; so is this one (PATH finds nginx for -v).
        env = {
            "PATH": f"{Path(self.binary).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            **self.template_env(),
            "TRADINGAPP_ENVSH": str(ENVSH),
            "TRADINGAPP_TEMPLATES": str(TEMPLATES),
            "TRADINGAPP_OUTPUT": str(self.directory / "conf.d"),
        }
        subprocess.run(["sh", "-c", RENDER], env=env, check=True, timeout=30)
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        self.conf.write_text(MAIN_CONF.format(user=user, dir=self.directory))

    def argv(self, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.directory}/", "-c", str(self.conf), "-e", str(self.directory / "error.log"),
                *extra]  # fmt: skip

    def check(self) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv("-t"), capture_output=True, text=True, timeout=30)

    def start(self) -> Nginx:
        self.render()
        checked = self.check()
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(self.argv("-g", "daemon off;"), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
        wait_until(self._listening, timeout=15, details=self._error_tail)
        return self

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"nginx exited with {self.process.returncode}: {self.process.stderr.read()!r}")
        try:
            socket.create_connection(("127.0.0.1", self.https_port), timeout=1).close()
            socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
            return True
        except OSError:
            return False

    def _error_tail(self) -> str:
        try:
            return (self.directory / "error.log").read_text()[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGQUIT)  # graceful: workers finish, then the master exits
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        finally:
            self.process.stderr.close()


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="tradingapp-nginx-"))
    path.chmod(0o755)  # nginx's workers read the site and write temp files as this user
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def certs(workdir) -> Path:
    directory = workdir / "ssl"
    made = subprocess.run([str(ROOT / "scripts" / "make_certs.sh"), str(directory)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert made.returncode == 0, made.stderr
    return directory


@pytest.fixture(scope="module")
def cert(certs) -> str:
    return str(certs / "cert.pem")


@pytest.fixture(scope="module")
def site(workdir) -> Path:
    """A copy of the built terminal (a rebuild meanwhile cannot change it under the tests), plus an
    SVG large enough to be compressed (the app's own SVGs may be under gzip_min_length)."""
    root = workdir / "html"
    shutil.copytree(built_dist(), root)
    circles = "".join(f'<circle cx="{i}" cy="{i}" r="{i % 7 + 1}" fill="#1e88e5"/>' for i in range(200))
    (root / "probe.svg").write_text(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200">{circles}</svg>')
    return root


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    """nginx's ports, chosen before the stack starts: the backend tells the terminal the wss URL."""
    return {"http": free_port(), "https": free_port()}


@pytest.fixture(scope="module")
def stack(app, env, ports):
    reset_to_demo_data(app)
    # As docker-compose.yml does: /api/v1/meta sends the terminal to nginx's /ws.
    running = Stack({**env, "FEED_INTERVAL_MS": "250", "WEBSOCKET_PUBLIC_URL": f"wss://127.0.0.1:{ports['https']}/ws"})
    with started(running):
        yield running


@pytest.fixture(scope="module")
def max_request_bytes(env) -> int:
    return AppConfig(env).MAX_CONTENT_LENGTH


@pytest.fixture(scope="module")
def nginx(stack, ports, workdir, site, certs, max_request_bytes):
    server = Nginx(nginx_binary(), workdir / "front", site, certs, f"127.0.0.1:{stack.http_port}",
                   f"127.0.0.1:{stack.ws_port}", max_request_bytes, ports["http"], ports["https"])  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def token(nginx, cert) -> str:
    response = requests.post(f"{nginx.https}/api/v1/auth/login", json=DEMO, verify=cert, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def get(nginx: Nginx, cert: str, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{nginx.https}{path}", verify=cert, timeout=10, **kwargs)


def asset_paths(site: Path) -> list[str]:
    """The /assets/ files index.html loads (scripts and stylesheets)."""
    return re.findall(r'(?:src|href)="(/assets/[^"]+)"', (site / "index.html").read_text())


# -- the configuration ----------------------------------------------------------------------------
def test_rendered_configuration_passes_nginx_t(nginx):
    checked = nginx.check()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr
    assert "[warn]" not in checked.stderr and "[emerg]" not in checked.stderr
    rendered = "\n".join(p.read_text() for p in (nginx.directory / "conf.d").iterdir())
    assert "${" not in rendered  # every template variable was set


def test_every_template_variable_gets_a_default_from_the_envsh():
    used = set()
    for template in TEMPLATES.glob("*.template"):
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)\}", template.read_text()))
    # Sourced with nothing set, the envsh exports a value for each of them.
    shown = subprocess.run(["sh", "-c", '. "$0" && env', str(ENVSH)], env={"PATH": os.environ["PATH"]},
                           capture_output=True, text=True, check=True, timeout=30).stdout  # fmt: skip
    exported = {line.split("=", 1)[0] for line in shown.splitlines() if "=" in line}
    assert used and used <= exported


@pytest.mark.parametrize(
    ("api", "socket_url", "extra"),
    [
        ("", "", ""),
        ("https://api.trading-platform.com", "wss://ws.trading-platform.com", "https://api.trading-platform.com "
                                                                              "wss://ws.trading-platform.com"),
        ("https://example.com:8443/api/", "/ws", "https://example.com:8443"),
        ('https://evil.com"; script-src *', "", ""),
    ],
)  # fmt: skip
def test_csp_connect_src_gets_the_origins_of_the_build_urls(api, socket_url, extra):
    env = {"PATH": os.environ["PATH"], "REACT_APP_API_URL": api, "REACT_APP_WEBSOCKET_URL": socket_url}
    shown = subprocess.run(["sh", "-c", '. "$0" && printf %s "$CSP_CONNECT_EXTRA"', str(ENVSH)], env=env,
                           capture_output=True, text=True, check=True, timeout=30).stdout  # fmt: skip
    assert shown == extra


def test_client_body_limit_is_the_apps(nginx, max_request_bytes):
    rendered = (nginx.directory / "conf.d" / "default.conf").read_text()
    assert f"client_max_body_size {max_request_bytes};" in rendered


def test_websocket_timeouts_outlast_the_servers_ping_interval():
    rendered = (TEMPLATES / "default.conf.template").read_text()
    ws_block = rendered[rendered.index("location = /ws") :]
    read_timeout = int(re.search(r"proxy_read_timeout (\d+)s;", ws_block).group(1))
    send_timeout = int(re.search(r"\bsend_timeout (\d+)s;", ws_block).group(1))
    config = AppConfig({})
    assert read_timeout >= 3 * config.WS_PING_INTERVAL  # three pings lost before nginx gives up
    assert send_timeout == config.WS_SEND_TIMEOUT


# -- HTTPS, the terminal and its caching ----------------------------------------------------------
def test_https_serves_the_terminal(nginx, cert, site):
    response = get(nginx, cert, "/")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == (site / "index.html").read_text()
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers.get("ETag") and response.headers.get("Last-Modified")


def test_tls_1_2_and_1_3_with_http2(nginx, cert):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = ssl.create_default_context(cafile=cert)
        context.minimum_version = context.maximum_version = version
        context.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", nginx.https_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() == version.name.replace("v1_", "v1.")
                assert tls.selected_alpn_protocol() == "h2"
                cipher = tls.cipher()[0]
                assert "GCM" in cipher or "CHACHA20" in cipher


def test_tls_1_1_is_refused(nginx):
    # A client willing to speak TLS 1.1 (OpenSSL's own limits lifted): the server refuses it.
    argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{nginx.https_port}", "-tls1_1", "-cipher",
            "DEFAULT@SECLEVEL=0"]  # fmt: skip
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                          env={**os.environ, "OPENSSL_CONF": "/dev/null"})  # fmt: skip
    assert done.returncode != 0
    assert "alert protocol version" in done.stderr, done.stderr


def test_client_routes_fall_back_to_index_html(nginx, cert, site):
    for path in ("/orders", "/admin/users", "/chart/NIFTY?interval=5m"):
        response = get(nginx, cert, path)
        assert response.status_code == 200, path
        assert response.text == (site / "index.html").read_text()
        assert response.headers["Cache-Control"] == "no-cache"


def test_hashed_assets_are_cached_a_year_immutable(nginx, cert, site):
    assets = asset_paths(site)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets), assets
    for path in assets:
        response = get(nginx, cert, path)
        assert response.status_code == 200, path
        assert response.content == (site / path.lstrip("/")).read_bytes()
        assert response.headers["Cache-Control"] == YEAR_IMMUTABLE
        expected = "application/javascript" if path.endswith(".js") else "text/css"
        assert response.headers["Content-Type"].startswith(expected)


def test_a_missing_asset_is_a_404_not_the_page(nginx, cert):
    response = get(nginx, cert, "/assets/index-00000000.js")
    assert response.status_code == 404
    assert "immutable" not in response.headers.get("Cache-Control", "")


def test_files_outside_assets_are_revalidated(nginx, cert, site):
    plain = [p.name for p in site.iterdir() if p.is_file() and p.name != "index.html"]
    assert plain
    for name in plain:
        response = get(nginx, cert, f"/{name}")
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "no-cache"


def _encoding(nginx: Nginx, cert: str, path: str, **headers) -> requests.Response:
    response = get(nginx, cert, path, headers={"Accept-Encoding": "gzip", **headers}, stream=True)
    response.close()
    return response


def test_js_css_svg_and_json_are_gzipped(nginx, cert, site, token):
    paths = [p for p in asset_paths(site) if p.endswith((".js", ".css"))] + ["/probe.svg", "/api/v1/openapi.json"]
    for path in paths:
        response = _encoding(nginx, cert, path)
        assert response.status_code == 200, path
        assert response.headers.get("Content-Encoding") == "gzip", path
        assert "Accept-Encoding" in response.headers.get("Vary", ""), path
    orders = _encoding(nginx, cert, "/api/v1/orders", Authorization=f"Bearer {token}")
    assert orders.status_code == 200 and orders.headers["Content-Type"].startswith("application/json")


def test_token_answers_are_not_compressed(nginx, cert):
    response = requests.post(f"{nginx.https}/api/v1/auth/login", json=DEMO, verify=cert, timeout=10,
                             headers={"Accept-Encoding": "gzip"})  # fmt: skip
    assert response.status_code == 200 and "access_token" in response.json()
    assert "Content-Encoding" not in response.headers


# -- the API and the socket through the proxy -----------------------------------------------------
def test_api_works_through_the_proxy(nginx, cert, token):
    me = get(nginx, cert, "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["email"] == DEMO["email"]
    spec = get(nginx, cert, "/api/v1/openapi.json")
    assert spec.status_code == 200 and spec.json()["openapi"].startswith("3.")
    health = get(nginx, cert, "/health")
    assert health.status_code == 200 and health.headers["Content-Type"].startswith("application/json")
    unknown = get(nginx, cert, "/api/v1/no-such-thing")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"  # the app's, not the SPA


@pytest.mark.parametrize("path", ["/metrics", "/api/../metrics", "/api/%2e%2e/metrics", "/health/../metrics"])
def test_metrics_are_never_proxied_to_the_app(nginx, cert, stack, path):
    """/metrics of backend and websocket is for the internal network: nginx routes it to the terminal's
    page, however the path is spelled (http.client sends it as written)."""
    access_log = stack.log_dir / "backend.log"
    seen, healths = (access_log.read_text().count(f'path="{p}"') for p in ("/metrics", "/health"))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", int(nginx.https.rsplit(":", 1)[1]), context=ssl.create_default_context(cafile=cert), timeout=10
    )
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        body = answer.read().decode(errors="replace")
    finally:
        connection.close()
    assert "tradingapp_build_info" not in body and "# TYPE" not in body
    assert answer.status in (200, 400, 404) and not answer.getheader("Content-Type", "").startswith("text/plain")
    health = get(nginx, cert, "/health")  # a request after it, to know the backend's log has caught up
    assert health.status_code == 200
    wait_until(lambda: access_log.read_text().count('path="/health"') > healths)
    assert access_log.read_text().count('path="/metrics"') == seen


def test_app_errors_pass_through_unchanged(nginx, cert):
    response = requests.post(f"{nginx.https}/api/v1/auth/login", json={"email": DEMO["email"], "password": "nope"},
                             verify=cert, timeout=10)  # fmt: skip
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


def test_oversized_body_gets_the_apps_413_shape(nginx, cert, max_request_bytes):
    too_big = b"{" + b" " * max_request_bytes + b"}"
    response = requests.post(f"{nginx.https}/api/v1/auth/login", data=too_big, verify=cert, timeout=10,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == "payload_too_large"
    assert response.json()["error"]["details"] == {"max_bytes": max_request_bytes}
    # At the limit the body reaches the app, which answers for it.
    at_limit = b'{"email": "x@example.com", "password": "' + b"p" * (max_request_bytes - 42) + b'"}'
    assert len(at_limit) == max_request_bytes
    response = requests.post(f"{nginx.https}/api/v1/auth/login", data=at_limit, verify=cert, timeout=10,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code != 413 and "error" in response.json()


class Socket:
    def __init__(self, nginx: Nginx, cert: str, query: str = ""):
        self.ws = websocket.create_connection(f"wss://127.0.0.1:{nginx.https_port}/ws{query}", timeout=10,
                                              sslopt={"ca_certs": cert})  # fmt: skip

    def send(self, payload: dict) -> None:
        self.ws.send(orjson.dumps(payload).decode())

    def receive_type(self, wanted: str) -> dict:
        while True:
            message = json.loads(self.ws.recv())
            if message.get("type") == wanted:
                return message

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.ws.shutdown()  # closes the TLS socket even when the server closed first


def test_websocket_upgrade_through_ws_answers_ping(nginx, cert, token):
    sock = Socket(nginx, cert)
    try:
        assert sock.ws.getstatus() == 101
        assert sock.ws.getheaders()["upgrade"].lower() == "websocket"
        sock.send({"action": "auth", "token": token})
        sock.send({"action": "ping"})
        assert sock.receive_type("pong") == {"type": "pong"}
        sock.send({"action": "subscribe", "instrument_ids": [1], "mode": "ltp"})
        assert sock.receive_type("subscribed")["instrument_ids"] == [1]
    finally:
        sock.close()


def test_websocket_query_token_never_reaches_the_access_log(nginx, cert, token):
    sock = Socket(nginx, cert, f"?token={token}")
    try:
        sock.send({"action": "ping"})
        assert sock.receive_type("pong") == {"type": "pong"}
    finally:
        sock.close()
    # nginx writes a socket's line when it closes.
    wait_until(lambda: 'path="/ws" status=101' in nginx.access_log.read_text(), details=lambda: "no /ws line")
    log = nginx.access_log.read_text()
    assert token not in log and "token=" not in log


def test_websocket_without_a_token_is_closed_4401_through_the_proxy(nginx, cert):
    sock = Socket(nginx, cert)
    try:
        sock.send({"action": "ping"})
        opcode, data = sock.ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_CLOSE
        assert int.from_bytes(data[:2], "big") == 4401
    finally:
        sock.close()


# -- plain HTTP -----------------------------------------------------------------------------------
def test_http_redirects_to_https(nginx):
    response = requests.get(f"http://127.0.0.1:{nginx.http_port}/orders?tab=open", allow_redirects=False, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == f"https://127.0.0.1:{nginx.https_port}/orders?tab=open"
    api = requests.post(f"http://127.0.0.1:{nginx.http_port}/api/v1/auth/login", json=DEMO, allow_redirects=False,
                        timeout=10)  # fmt: skip
    assert api.status_code == 301  # credentials sent over HTTP are never proxied
    assert "Strict-Transport-Security" not in response.headers  # only meaningful over HTTPS


def test_the_deployment_documents_healthcheck_passes(nginx):
    # docker-compose.yml's healthcheck is `curl -f http://localhost` (port 80 in the container).
    done = subprocess.run(["curl", "-f", "-sS", "-o", "/dev/null", f"http://127.0.0.1:{nginx.http_port}"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr


# -- security headers -----------------------------------------------------------------------------
def _csp(response: requests.Response) -> dict[str, list[str]]:
    directives = [d.split() for d in response.headers["Content-Security-Policy"].split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def test_security_headers_on_every_kind_of_answer(nginx, cert, site, token):
    answers = {
        "page": get(nginx, cert, "/"),
        "client route": get(nginx, cert, "/orders"),
        "asset": get(nginx, cert, asset_paths(site)[0]),
        "missing asset": get(nginx, cert, "/assets/missing.js"),
        "api": get(nginx, cert, "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}),
        "api error": get(nginx, cert, "/api/v1/no-such-thing"),
    }
    for name, response in answers.items():
        headers = response.headers
        assert headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains", name
        assert headers["X-Content-Type-Options"] == "nosniff", name
        assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin", name
        assert headers["X-Frame-Options"] == "DENY", name
        assert headers["Server"] == "nginx", name  # server_tokens off: no version
        csp = _csp(response)
        assert csp["script-src"] == ["'self'"], name
        assert csp["frame-ancestors"] == ["'none'"], name
        assert csp["connect-src"] == ["'self'", f"wss://127.0.0.1:{nginx.https_port}"], name
        assert csp["img-src"] == ["'self'", "data:"], name
        assert csp["style-src"] == ["'self'", "'unsafe-inline'"], name
        assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'self'"], name


def test_the_page_has_no_inline_script_for_the_csp_to_refuse(site):
    html = (site / "index.html").read_text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.DOTALL)
    assert scripts
    for attributes, body in scripts:
        assert 'src="/' in attributes and not body.strip(), attributes  # same-origin files only
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers


# -- nginx on its own: an absent backend, a slow client -------------------------------------------
@pytest.fixture(scope="module")
def lone_nginx(workdir, site, certs, max_request_bytes):
    """The same configuration with nothing behind it: both upstreams are closed ports."""
    server = Nginx(nginx_binary(), workdir / "lone", site, certs, f"127.0.0.1:{free_port()}",
                   f"127.0.0.1:{free_port()}", max_request_bytes)  # fmt: skip
    try:
        yield server.start()
    finally:
        server.stop()


def test_an_unreachable_backend_is_a_json_503(lone_nginx, cert):
    response = get(lone_nginx, cert, "/api/v1/orders")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["Retry-After"] == "5"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # The terminal itself is still served.
    assert get(lone_nginx, cert, "/").status_code == 200


def test_a_slow_client_reaches_the_backend_only_with_its_whole_body(workdir, site, certs, cert, max_request_bytes):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(1)
    server = Nginx(nginx_binary(), workdir / "slow", site, certs, f"127.0.0.1:{listener.getsockname()[1]}",
                   f"127.0.0.1:{free_port()}", max_request_bytes)  # fmt: skip
    server.start()
    context = ssl.create_default_context(cafile=cert)
    try:
        with context.wrap_socket(socket.create_connection(("127.0.0.1", server.https_port), timeout=10),
                                 server_hostname="127.0.0.1") as client:  # fmt: skip
            body = b'{"email": "slow@example.com", "password": "typed-one-key-at-a-time"}'
            head = (f"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    f"X-Forwarded-For: 203.0.113.9\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
            client.sendall(head + body[:10])
            # Headers and part of the body are in: with request buffering nginx has not even
            # connected to the backend (without it, the backend would hold this half request).
            with pytest.raises(TimeoutError):
                listener.accept()
            client.sendall(body[10:])
            upstream, _ = listener.accept()
            with upstream:
                upstream.settimeout(10)
                received = b""
                while not received.endswith(body):
                    chunk = upstream.recv(65536)
                    assert chunk, received
                    received += chunk
            request_head = received[: received.index(b"\r\n\r\n")].decode().lower()
            assert f"content-length: {len(body)}" in request_head
            assert "x-forwarded-proto: https" in request_head
            # nginx is the edge: X-Forwarded-For is the client's address, whatever the client wrote there.
            assert "x-forwarded-for: 127.0.0.1\r\n" in request_head + "\r\n"
            assert "203.0.113.9" not in request_head
    finally:
        server.stop()
        listener.close()


# -- slow, half-open and greedy clients -----------------------------------------------------------
HALF_OPEN = 600  # past half of a worker's 1024 connections; each costs nginx an idle socket
HEALTH_SECONDS = 1.0  # the finding: 4 s for /health while gunicorn held 1,050 half-open requests


# The attacker's address: the flood comes from another loopback address than the tests' own
# requests, as it would from another host (nginx's per-address limit is the attacker's alone).
ATTACKER = "127.0.0.2"


def _connect(nginx: Nginx, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", nginx.https_port), timeout=10, source_address=(source, 0))


def _tls(nginx: Nginx, cert: str, source: str = "127.0.0.1") -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=cert)
    context.set_alpn_protocols(["http/1.1"])
    return context.wrap_socket(_connect(nginx, source), server_hostname="127.0.0.1")


def _half_open(nginx: Nginx, cert: str, count: int) -> list[socket.socket]:
    """Clients that never finish, from ATTACKER: half connect and send nothing (no TLS hello), half
    finish TLS and send part of their headers, or all of them and a body that never comes."""
    held: list[socket.socket] = []
    for i in range(count):
        if i % 2:
            held.append(_connect(nginx, ATTACKER))
            continue
        client = _tls(nginx, cert, ATTACKER)
        if i % 4:
            client.sendall(b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{")
        else:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        held.append(client)
    return held


def test_half_open_clients_through_nginx_do_not_stall_health(nginx, cert):
    held = _half_open(nginx, cert, HALF_OPEN)
    try:
        took = []
        for _ in range(10):
            started = time.monotonic()
            response = get(nginx, cert, "/health")
            took.append(time.monotonic() - started)
            assert response.status_code == 200
        assert max(took) < HEALTH_SECONDS, took
        # And nginx lets none of them linger: client_header_timeout / client_body_timeout (10 s).
        deadline = time.monotonic() + 20
        lingering = [client for client in held if not _closed_by_nginx(client, deadline)]
        assert not lingering, f"{len(lingering)} of {len(held)} still open"
    finally:
        for client in held:
            client.close()


def _closed_by_nginx(client: socket.socket, deadline: float) -> bool:
    client.settimeout(max(deadline - time.monotonic(), 0.1))
    try:
        while client.recv(4096):  # a 408 first, perhaps; then the end of the stream
            pass
        return True
    except (ssl.SSLError, ConnectionResetError):  # reset_timedout_connection on
        return True
    except TimeoutError:
        return False


def test_half_open_clients_never_reach_the_backend(workdir, site, certs, cert, max_request_bytes):
    listener = socket.create_server(("127.0.0.1", 0), backlog=256)
    listener.settimeout(2)
    server = Nginx(nginx_binary(), workdir / "half-open", site, certs, f"127.0.0.1:{listener.getsockname()[1]}",
                   f"127.0.0.1:{free_port()}", max_request_bytes)  # fmt: skip
    server.start()
    held = _half_open(server, cert, 100)
    try:
        with pytest.raises(TimeoutError):
            listener.accept()  # not one of them was handed to the backend
    finally:
        for client in held:
            client.close()
        server.stop()
        listener.close()


def test_requests_in_progress_per_address_are_bounded_with_a_json_429(workdir, site, certs, cert, max_request_bytes):
    # A backend that accepts and never answers: every proxied request stays in progress.
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.settimeout(0.1)
    taken: list[socket.socket] = []

    def accepted() -> int:
        try:
            while True:
                taken.append(listener.accept()[0])
        except TimeoutError:
            return len(taken)

    server = Nginx(nginx_binary(), workdir / "per-address", site, certs, f"127.0.0.1:{listener.getsockname()[1]}",
                   f"127.0.0.1:{free_port()}", max_request_bytes, conn_per_address=3)  # fmt: skip
    server.start()
    waiting = [_tls(server, cert) for _ in range(3)]
    try:
        for client in waiting:
            client.sendall(b"GET /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        wait_until(lambda: accepted() >= 3, timeout=10)
        response = get(server, cert, "/api/v1/orders")
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
        assert response.headers["Retry-After"] == "1"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert get(server, cert, "/").status_code == 429  # the address's budget covers the whole server
    finally:
        for client in waiting + taken:
            client.close()
        server.stop()
        listener.close()


def test_a_request_line_or_headers_over_nginx_limits_get_the_json_envelope(nginx, cert):
    long_line = get(nginx, cert, "/api/v1/instruments?q=" + "A" * 9000)
    assert long_line.status_code == 414
    assert long_line.json()["error"]["code"] == "uri_too_long"
    big_header = get(nginx, cert, "/api/v1/instruments", headers={"X-Big": "B" * 9000})
    assert big_header.status_code == 431
    assert big_header.json()["error"]["code"] == "headers_too_large"
    for response in (long_line, big_header):
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_api_answers_carry_each_header_once_and_are_not_stored(nginx, cert, token):
    for path, headers in (("/api/v1/orders", {"Authorization": f"Bearer {token}"}), ("/api/v1/orders", {}),
                          ("/health", {})):  # fmt: skip
        response = get(nginx, cert, path, headers=headers)
        raw = response.raw.headers
        for name in ("X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy", "Content-Security-Policy"):
            assert len(raw.getlist(name)) == 1, (path, name, raw.getlist(name))
        assert response.headers["Cache-Control"] == "no-store", path


# -- the terminal in a real browser, through nginx ------------------------------------------------
# Every CSP violation of the page, whatever refused it (collected before the app's first script).
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__cspViolations.push(`${e.effectiveDirective} refused ${e.blockedURI || 'inline'} (${where})`);
});
"""


INJECT_INLINE_SCRIPT = """() => {
  const script = document.createElement('script');
  script.textContent = 'window.__injected = 1';
  document.head.appendChild(script);
}"""


def test_the_terminal_runs_under_the_csp_through_nginx(nginx, stack, cert):
    email = f"csp-{os.getpid()}@example.com"
    body = {"email": email, "password": "csp-check-password-1", "name": "CSP Check"}
    response = requests.post(f"{nginx.https}/api/v1/auth/register", json=body, verify=cert, timeout=10)
    assert response.status_code == 202, response.text
    trader = ApiUser(stack.base_url, email, body["password"]).login()
    watchlist = trader.post("/watchlists", {"name": "Watchlist 1"})
    trader.put(f"/watchlists/{watchlist['id']}/instruments/1")

    console: list[str] = []
    sockets: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 720})
            context.add_init_script(CSP_WATCH)
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.on("console", lambda m: console.append(f"[{m.type}] {m.text}"))
            page.on("websocket", lambda ws: sockets.append(ws.url))

            login(page, nginx.https, trader)
            # Prices arrive over wss:// through nginx's /ws (connect-src), the chart draws with its
            # attribution logo, whose <style> element lightweight-charts inserts (style-src).
            expect(watchlist_row(page, 1).get_by_test_id("watchlist-ltp")).to_have_text(NUMBER, timeout=20_000)
            expect(page.get_by_test_id("connection-status")).to_have_attribute("data-status", "open")
            watchlist_row(page, 1).click()
            logo = page.locator("a#tv-attr-logo")
            expect(logo).to_be_visible(timeout=20_000)
            assert logo.evaluate("(a) => getComputedStyle(a).position") == "absolute"
            violations = page.evaluate("window.__cspViolations")
            console_before = list(console)
            # The watch sees what the CSP refuses: an injected inline script does not run.
            page.evaluate(INJECT_INLINE_SCRIPT)
            page.wait_for_function("window.__cspViolations.length > 0")
            refused = page.evaluate("window.__cspViolations")
            assert page.evaluate("window.__injected") is None
        finally:
            browser.close()
    assert sockets and all(url.startswith(f"wss://127.0.0.1:{nginx.https_port}/ws") for url in sockets), sockets
    assert violations == [], violations
    assert len(refused) == 1 and refused[0].startswith("script-src-elem refused inline"), refused
    assert not [line for line in console_before if "Content Security Policy" in line], console_before
    assert any("Content Security Policy" in line for line in console[len(console_before) :])
