"""docker-compose.yml, the Dockerfiles and .env.example against the deployment document and config.py.
The `frontend` service's nginx configuration itself runs in tests/deploy/test_nginx.py.

Docker does not run here, so the files are parsed and checked for what a deploy relies on.
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from config import Config
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ["backend", "websocket", "worker", "consumer", "feed", "migrate"]
LONG_RUNNING = ["backend", "websocket", "frontend", "worker", "consumer", "feed", "postgres", "redis", "rabbitmq"]
SECRETS = ["DB_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD", "JWT_SECRET"]

# The deployment document's "Environment Variables" list: the backend gets every one of them.
DOCUMENT_VARIABLES = [
    "PORT", "WEBSOCKET_PORT", "API_BASE_URL", "CORS_ALLOWED_ORIGINS",
    "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_SSL_MODE",
    "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD",
    "RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASSWORD", "RABBITMQ_VHOST",
    "XTS_API_URL", "XTS_API_KEY", "XTS_API_SECRET", "JWT_SECRET", "JWT_EXPIRATION",
]  # fmt: skip
# The document's compose file: which service it gives which variables.
DOCUMENT_SERVICE_VARIABLES = {
    "backend": ["PORT", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "REDIS_HOST", "REDIS_PORT",
                "REDIS_PASSWORD", "RABBITMQ_HOST", "RABBITMQ_PORT", "RABBITMQ_USER", "RABBITMQ_PASSWORD", "JWT_SECRET"],
    "websocket": ["PORT", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"],
    "postgres": ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"],
    "rabbitmq": ["RABBITMQ_DEFAULT_USER", "RABBITMQ_DEFAULT_PASS"],
}  # fmt: skip
DOCUMENT_PORTS = {
    "backend": ["8080:8080"],
    "websocket": ["8081:8081"],
    "frontend": ["80:80", "443:443"],
    "postgres": ["5432:5432"],
    "redis": ["6379:6379"],
    "rabbitmq": ["5672:5672", "15672:15672"],
}


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def config_variables() -> set[str]:
    """Every variable config.py reads, from its source: `e.get("NAME"...)`, `source.get("APP_ENV")`."""
    return set(re.findall(r'\.get\("([A-Z][A-Z0-9_]*)"', (ROOT / "config.py").read_text()))


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line))


# -- services and ports ---------------------------------------------------------------------------
def test_compose_defines_the_app_processes_and_their_services():
    assert set(SERVICES) == set(APP_SERVICES) | {"frontend", "postgres", "redis", "rabbitmq"}


@pytest.mark.parametrize("service", DOCUMENT_PORTS)
def test_ports_are_published_as_in_the_document(service):
    # Host side may be bound to an interface ("127.0.0.1:5432:5432"); the mapping itself must match.
    published = [port.split(":", port.count(":") - 1)[-1] for port in SERVICES[service]["ports"]]
    assert published == DOCUMENT_PORTS[service]


def test_infrastructure_images_follow_the_document():
    assert SERVICES["postgres"]["image"] == "timescale/timescaledb:latest-pg14"
    assert SERVICES["rabbitmq"]["image"] == "rabbitmq:3-management"
    assert SERVICES["redis"]["image"].startswith("redis")


def test_redis_requires_the_password():
    assert "--requirepass" in SERVICES["redis"]["command"]
    assert "${REDIS_PASSWORD" in " ".join(SERVICES["redis"]["command"])


# -- environment ----------------------------------------------------------------------------------
def test_backend_gets_every_variable_of_the_deployment_document():
    assert set(DOCUMENT_VARIABLES) <= set(environment("backend"))


@pytest.mark.parametrize("service", DOCUMENT_SERVICE_VARIABLES)
def test_each_service_gets_the_variables_the_document_gives_it(service):
    assert set(DOCUMENT_SERVICE_VARIABLES[service]) <= set(environment(service))


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_app_service_runs_in_production_with_all_connection_settings(service):
    env = environment(service)
    assert env["APP_ENV"] == "production"
    assert set(DOCUMENT_VARIABLES) <= set(env)
    assert (env["DB_HOST"], env["REDIS_HOST"], env["RABBITMQ_HOST"]) == ("postgres", "redis", "rabbitmq")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_pass_only_variables_config_reads(service):
    assert set(environment(service)) <= config_variables()


@pytest.mark.parametrize("secret", SECRETS)
def test_secrets_come_from_the_environment_and_are_required(secret):
    for service in APP_SERVICES:
        assert environment(service)[secret].startswith("${" + secret + ":?"), service


def test_websocket_is_the_same_app_on_8081():
    backend, websocket = SERVICES["backend"], SERVICES["websocket"]
    assert environment("websocket")["PORT"] == "8081"
    assert environment("backend")["PORT"] == "8080"
    assert websocket["command"] == backend["command"]
    assert websocket["build"] == {"context": ".", "dockerfile": "Dockerfile.websocket"}
    assert backend["build"] == {"context": ".", "dockerfile": "Dockerfile"}


@pytest.mark.parametrize(
    ("service", "module"), [("worker", "jobs.worker"), ("consumer", "jobs.consumer"), ("feed", "jobs.feed")]
)
def test_background_processes_run_their_module_from_the_backend_image(service, module):
    assert SERVICES[service]["command"] == ["python", "-m", module]
    assert SERVICES[service]["image"] == SERVICES["backend"]["image"]


def test_migrate_upgrades_then_seeds_once():
    migrate = SERVICES["migrate"]
    assert migrate["command"][-1] == "flask db upgrade && flask seed"
    assert migrate["restart"] == "no"


# -- health, restarts, ordering, volumes ----------------------------------------------------------
@pytest.mark.parametrize(("service", "port"), [("backend", 8080), ("websocket", 8081)])
def test_web_services_are_checked_on_their_health_endpoint(service, port):
    check = SERVICES[service]["healthcheck"]
    assert check["test"] == ["CMD", "curl", "-f", f"http://localhost:{port}/health"]
    assert check["start_period"] and check["retries"] >= 3


@pytest.mark.parametrize(("service", "probe"), [("postgres", "pg_isready"), ("redis", "redis-cli ping"),
                                                ("rabbitmq", "rabbitmq-diagnostics")])  # fmt: skip
def test_infrastructure_has_a_healthcheck(service, probe):
    assert probe in " ".join(SERVICES[service]["healthcheck"]["test"])


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_restart_always(service):
    assert SERVICES[service]["restart"] == "always"


@pytest.mark.parametrize("service", ["backend", "websocket", "worker", "consumer", "feed"])
def test_app_processes_wait_for_migrate_and_healthy_services(service):
    depends = SERVICES[service]["depends_on"]
    assert depends["migrate"] == {"condition": "service_completed_successfully"}
    for infra in ("postgres", "redis", "rabbitmq"):
        assert depends[infra] == {"condition": "service_healthy"}


def test_migrate_waits_for_a_healthy_postgres():
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


@pytest.mark.parametrize(("service", "path"), [("postgres", "/var/lib/postgresql/data"), ("redis", "/data"),
                                               ("rabbitmq", "/var/lib/rabbitmq")])  # fmt: skip
def test_state_lives_in_named_volumes(service, path):
    volume = f"{service}_data"
    assert volume in COMPOSE["volumes"]
    assert f"{volume}:{path}" in SERVICES[service]["volumes"]


# -- images ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("dockerfile", "port"), [("Dockerfile", 8080), ("Dockerfile.websocket", 8081)])
def test_image_is_slim_non_root_with_a_healthcheck(dockerfile, port):
    text = (ROOT / dockerfile).read_text()
    assert text.startswith("#") and "\nFROM python:3.11-slim\n" in text
    assert re.search(r"^USER app$", text, re.MULTILINE)
    assert "pip install --require-hashes -r requirements.lock" in text
    assert f"EXPOSE {port}" in text and f"PORT={port}" in text
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD curl -fsS .*/health", text, re.MULTILINE)
    assert 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]' in text


def test_dockerignore_keeps_secrets_and_the_venv_out_of_the_image():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", ".venv", ".git"} <= set(ignored)


# -- frontend: the terminal behind nginx ----------------------------------------------------------
FRONTEND = ROOT / "frontend"
FRONTEND_ORIGIN = "https://localhost"  # what `docker compose up` serves: 443 on this machine


def test_frontend_is_built_as_the_document_says():
    frontend = SERVICES["frontend"]
    assert frontend["build"]["context"] == "./frontend" and frontend["build"]["dockerfile"] == "Dockerfile"
    assert set(frontend["build"]["args"]) == {"REACT_APP_API_URL", "REACT_APP_WEBSOCKET_URL"}
    # Same-origin by default: nginx proxies /api/ and /ws, so the build needs no host name.
    assert frontend["build"]["args"] == {"REACT_APP_API_URL": "", "REACT_APP_WEBSOCKET_URL": ""}


def test_frontend_mounts_the_certificates_make_certs_writes_where_nginx_reads_them(tmp_path):
    assert SERVICES["frontend"]["volumes"] == ["./ssl:/etc/nginx/ssl:ro"]
    envsh = (FRONTEND / "nginx" / "18-tradingapp.envsh").read_text()
    assert ': "${NGINX_SSL_DIR:=/etc/nginx/ssl}"' in envsh
    template = (FRONTEND / "nginx" / "templates" / "default.conf.template").read_text()
    assert "ssl_certificate ${NGINX_SSL_DIR}/cert.pem;" in template
    assert "ssl_certificate_key ${NGINX_SSL_DIR}/key.pem;" in template
    # `make certs` fills ./ssl by default (here: a directory of the test's) with those two names.
    script = ROOT / "scripts" / "make_certs.sh"
    assert 'DIR="${DIR:-$ROOT/ssl}"' in script.read_text()
    subprocess.run([str(script), str(tmp_path / "ssl")], check=True, capture_output=True, timeout=60)
    assert sorted(p.name for p in (tmp_path / "ssl").iterdir()) == ["cert.pem", "key.pem"]
    assert (tmp_path / "ssl" / "key.pem").stat().st_mode & 0o777 == 0o600


def test_frontend_healthcheck_is_the_documents():
    check = SERVICES["frontend"]["healthcheck"]
    assert check["test"] == ["CMD", "curl", "-f", "http://localhost"]
    assert check["start_period"] and check["retries"] >= 3


def test_frontend_starts_after_backend_and_websocket_and_follows_their_restarts():
    depends = SERVICES["frontend"]["depends_on"]
    assert set(depends) == {"backend", "websocket"}
    assert all(d == {"condition": "service_started", "restart": True} for d in depends.values())


def test_frontend_gets_no_secrets_and_the_apps_body_limit():
    frontend = SERVICES["frontend"]
    assert "env_file" not in frontend
    env = environment("frontend")
    assert not set(SECRETS) & set(env)
    assert env["MAX_REQUEST_BYTES"] == f"${{MAX_REQUEST_BYTES:-{Config({}).MAX_CONTENT_LENGTH}}}"
    assert "client_max_body_size ${MAX_REQUEST_BYTES};" in (FRONTEND / "nginx" / "templates" /
                                                             "default.conf.template").read_text()  # fmt: skip


def test_the_public_urls_default_to_the_frontends_origin():
    env = environment("backend")
    assert env["CORS_ALLOWED_ORIGINS"] == "${CORS_ALLOWED_ORIGINS:-" + FRONTEND_ORIGIN + "}"
    assert env["API_BASE_URL"] == "${API_BASE_URL:-" + FRONTEND_ORIGIN + "}"
    # The terminal is told to open nginx's /ws on the same host (the websocket port is not public).
    assert env["WEBSOCKET_PUBLIC_URL"] == "${WEBSOCKET_PUBLIC_URL:-wss://localhost/ws}"
    assert "location = /ws {" in (FRONTEND / "nginx" / "templates" / "default.conf.template").read_text()


@pytest.mark.parametrize(("service", "port"), [("backend", "8080:8080"), ("websocket", "8081:8081")])
def test_only_nginx_is_public_and_the_app_trusts_it_as_its_one_proxy(service, port):
    assert SERVICES[service]["ports"] == [f"127.0.0.1:{port}"]
    assert environment(service)["TRUSTED_PROXY_COUNT"] == "1"


def test_frontend_image_builds_with_node_then_serves_with_nginx():
    text = (FRONTEND / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert len(stages) == 2 and stages[0].startswith("node:20") and stages[1].startswith("nginx:")
    build, serve = text.split("\nFROM nginx:")
    assert "COPY package.json package-lock.json ./" in build and "RUN npm ci" in build
    assert "npm run build" in build
    for arg in ("REACT_APP_API_URL", "REACT_APP_WEBSOCKET_URL"):
        assert f'ARG {arg}=""' in build and f'ARG {arg}=""' in serve
    assert "COPY --from=build /app/dist/ /usr/share/nginx/html/" in serve
    assert "COPY nginx/templates/ /etc/nginx/templates/" in serve
    assert "COPY nginx/18-tradingapp.envsh /docker-entrypoint.d/" in serve
    assert "curl" in serve and "EXPOSE 80 443" in serve
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD curl -f http://localhost", serve, re.MULTILINE)


def test_frontend_dockerignore_keeps_local_builds_out():
    ignored = (FRONTEND / ".dockerignore").read_text().splitlines()
    assert {"node_modules", "dist"} <= set(ignored)
    # nginx/ is part of the image.
    assert not any(line.strip().startswith("nginx") for line in ignored)


def test_the_entrypoint_sources_the_envsh_before_it_renders_the_templates():
    envsh = FRONTEND / "nginx" / "18-tradingapp.envsh"
    # /docker-entrypoint.sh sources executable *.envsh files in name order; 20-envsubst renders.
    assert envsh.name < "20-envsubst-on-templates.sh" and envsh.suffix == ".envsh"
    assert envsh.stat().st_mode & 0o111


# -- .env.example ---------------------------------------------------------------------------------
def test_env_example_lists_every_variable_config_reads():
    assert config_variables() - set(env_example()) == set()


def test_env_example_lists_only_variables_config_reads():
    assert set(env_example()) - config_variables() == set()


def test_env_example_values_parse():
    values = {key: value for key, value in env_example().items() if value}
    assert Config(values).PORT == 8080


def test_env_example_leaves_the_secrets_empty():
    assert all(env_example()[secret] == "" for secret in SECRETS)


def test_every_variable_compose_substitutes_is_documented_in_env_example():
    # `$${X}` is escaped for the container's shell; only `${X}` is substituted from .env.
    substituted = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    assert substituted - set(env_example()) == set()


def test_readme_documents_every_variable_config_reads():
    readme = (ROOT / "README.md").read_text()
    assert {name for name in config_variables() if f"| `{name}` |" not in readme} == set()
