"""docker-compose.yml, the Dockerfiles and .env.example against the deployment document and config.py.
The `frontend` service's nginx configuration itself runs in tests/deploy/test_nginx.py; the monitoring
profile's files in tests/deploy/test_alert_rules.py and tests/deploy/test_dashboards.py.

Docker does not run here, so the files are parsed and checked for what a deploy relies on (and the
healthcheck commands run as they would in the containers).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from config import Config
from tests.support import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ["backend", "websocket", "worker", "consumer", "feed", "migrate"]
LONG_RUNNING = ["backend", "websocket", "frontend", "worker", "consumer", "feed", "postgres", "redis", "rabbitmq"]
# `docker compose --profile monitoring up`: not started by a plain `docker compose up`.
MONITORING = ["prometheus", "alertmanager", "grafana"]
# `docker compose --profile logging up`: deploy/elk/compose.yml, included.
ELK_COMPOSE = ROOT / "deploy" / "elk" / "compose.yml"
# Read by compose only, not by config.py: Grafana's admin password (monitoring profile), the logging
# profile's passwords.
COMPOSE_ONLY_SECRETS = {
    "GRAFANA_ADMIN_PASSWORD",
    "ELASTIC_PASSWORD",
    "KIBANA_PASSWORD",
    "FILEBEAT_PASSWORD",
    "DB_REPLICATION_PASSWORD",
    "PATRONI_RESTAPI_PASSWORD",
}
# Read by compose only (the backup service and the postgres image), never by config.py.
COMPOSE_ONLY_SETTINGS = {"POSTGRES_IMAGE", "POSTGRES_UID", "PGBACKREST_CIPHER_FILE", "BACKUP_TZ", "BACKUP_FULL_HOUR"}
COMPOSE_ONLY_VARIABLES = COMPOSE_ONLY_SECRETS | COMPOSE_ONLY_SETTINGS
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
DATA_SERVICES = ["postgres", "redis", "rabbitmq"]
# `docker compose -f docker-compose.yml -f deploy/compose.data-ports.yml`: the document's data ports.
DATA_PORTS = yaml.safe_load((ROOT / "deploy" / "compose.data-ports.yml").read_text())
DATA_PORTS_SERVICES = DATA_PORTS["services"]
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
def with_defaults(env: dict) -> dict:
    """Compose's `${NAME:-default}` values as compose resolves them when .env leaves NAME unset."""
    return {key: re.sub(r"^\$\{\w+:-(.*)\}$", r"\1", str(value)) for key, value in env.items()}


HA = ("etcd1", "etcd2", "etcd3", "pg1", "pg2")


def test_compose_defines_the_app_processes_and_their_services():
    infrastructure = {"frontend", "postgres", "backup", "redis", "rabbitmq"}
    assert set(SERVICES) == set(APP_SERVICES) | infrastructure | set(MONITORING) | set(HA)


def test_a_plain_compose_up_starts_what_it_did_before_the_profiles_and_the_backups():
    default = {name for name, service in SERVICES.items() if not service.get("profiles")}
    assert default == set(APP_SERVICES) | {"frontend", "postgres", "backup", "redis", "rabbitmq"}
    assert all(SERVICES[name]["profiles"] == ["monitoring"] for name in MONITORING)
    assert all(SERVICES[name]["profiles"] == ["ha"] and SERVICES[name]["networks"] == ["data"] for name in HA)


def test_postgres_archives_its_wal_to_the_backup_repository_the_backup_service_fills():
    command = " ".join(SERVICES["postgres"]["command"])
    assert "archive_mode=on" in command and "archive_command=pgbackrest --stanza=main archive-push %p" in command
    timeout = int(re.search(r"archive_timeout=(\d+)", command).group(1))
    assert timeout <= 60  # the RPO goal: under a minute of writes lost with the disk
    repository = "pgbackrest_repo:/var/lib/pgbackrest"
    assert repository in SERVICES["postgres"]["volumes"] and repository in SERVICES["backup"]["volumes"]
    assert SERVICES["backup"]["command"] == ["backup-schedule"]
    # The TLS override replaces the server's command: it must keep archiving.
    tls_command = " ".join(TLS["postgres"]["command"])
    assert "archive_mode=on" in tls_command and f"archive_timeout={timeout}" in tls_command
    assert SERVICES["backup"]["networks"] == ["data"]
    cipher = {secret["source"] for secret in SERVICES["backup"]["secrets"]}
    assert cipher == {"pgbackrest_cipher"} and COMPOSE["secrets"]["pgbackrest_cipher"]["file"]


def test_the_apps_database_hosts_come_from_env_with_the_single_server_by_default():
    env = environment("backend")
    assert env["DB_HOST"] == "${DB_HOST:-postgres}"
    assert env["DB_READ_HOST"] == "${DB_READ_HOST:-}"


@pytest.mark.parametrize("service", DOCUMENT_PORTS)
def test_ports_are_published_as_in_the_document(service):
    # Host side may be bound to an interface ("127.0.0.1:5432:5432"); the mapping itself must match.
    # The document also publishes the data services, which conflicts with its own "private networks
    # for inter-service communication": they live on the internal `data` network, which Docker never
    # publishes, and only deploy/compose.data-ports.yml publishes them (on 127.0.0.1, for an operator).
    services = DATA_PORTS_SERVICES if service in DATA_SERVICES else SERVICES
    published = [port.split(":", port.count(":") - 1)[-1] for port in services[service]["ports"]]
    assert published == DOCUMENT_PORTS[service]


# -- networks: the data services private (docs/encryption.md) -------------------------------------
def networks(service: str, services: dict | None = None) -> set[str]:
    return set((services or SERVICES)[service].get("networks") or ["default"])


def test_the_data_network_is_internal_and_the_others_are_not():
    declared = COMPOSE["networks"]
    assert declared["data"] == {"internal": True}
    assert all(not (declared[name] or {}).get("internal") for name in ("edge", "egress", "monitoring"))


@pytest.mark.parametrize("service", DATA_SERVICES)
def test_data_services_are_only_on_the_internal_network_and_not_published(service):
    assert networks(service) == {"data"}
    assert "ports" not in SERVICES[service]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_every_app_process_reaches_the_data_services(service):
    assert "data" in networks(service)


def test_only_nginx_and_the_web_servers_share_the_edge_and_nginx_sees_nothing_else():
    assert {name for name in SERVICES if "edge" in networks(name)} == {"frontend", "backend", "websocket"}
    assert networks("frontend") == {"edge"}


def test_only_the_processes_that_call_the_broker_have_a_way_out():
    # An internal network has no gateway: the rest cannot open a connection to the internet.
    outside = {name for name in SERVICES if networks(name) - {"data"}}
    assert outside == {"frontend", "backend", "websocket", "worker", "feed", *MONITORING}
    assert networks("worker") == networks("feed") == {"data", "egress"}
    assert networks("consumer") == networks("migrate") == {"data"}


def test_prometheus_reaches_the_processes_it_scrapes_and_the_uis_are_on_monitoring():
    assert networks("prometheus") == {"data", "monitoring"}
    assert networks("alertmanager") == networks("grafana") == {"monitoring"}


def test_only_the_frontend_is_published_beyond_this_machine():
    public = {
        (name, port)
        for name, service in SERVICES.items()
        for port in service.get("ports", [])
        if not port.startswith("127.0.0.1:")
    }
    assert public == {("frontend", "80:80"), ("frontend", "443:443")}


@pytest.mark.parametrize("service", DATA_SERVICES)
def test_the_data_ports_override_publishes_on_loopback_only(service):
    assert networks(service, DATA_PORTS_SERVICES) == {"data", "ops"}
    assert all(port.startswith("127.0.0.1:") for port in DATA_PORTS_SERVICES[service]["ports"])
    assert DATA_PORTS["networks"] == {"ops": {}}


def test_infrastructure_images_follow_the_document():
    # The document's timescale/timescaledb image, on PostgreSQL 15 and the TimescaleDB the suite runs
    # (latest-pg14 is an older, untested TimescaleDB), with pgBackRest added for WAL archiving.
    postgres = SERVICES["postgres"]
    assert postgres["build"]["dockerfile"] == "deploy/pgbackrest/Dockerfile"
    assert postgres["build"]["args"]["POSTGRES_IMAGE"] == "${POSTGRES_IMAGE:-timescale/timescaledb:2.28.3-pg15}"
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
    env = with_defaults(env)
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


@pytest.mark.parametrize("service", LONG_RUNNING + MONITORING)
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
    assert {".env", ".venv", ".git", "ssl", "internal-tls", "secrets"} <= set(ignored)
    git_ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"/ssl/", "/internal-tls/", "/secrets/"} <= set(git_ignored)


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
    assert set(env_example()) - config_variables() == COMPOSE_ONLY_VARIABLES


def test_env_example_values_parse():
    values = {key: value for key, value in env_example().items() if value}
    assert Config(values).PORT == 8080


def test_env_example_leaves_the_secrets_empty():
    assert all(env_example()[secret] == "" for secret in [*SECRETS, "METRICS_TOKEN", *COMPOSE_ONLY_SECRETS])


def test_env_example_says_what_each_setting_is():
    """Every KEY= line follows a comment, or another KEY= line of a block the comment above describes."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[A-Z][A-Z0-9_]*=", line):
            above = lines[number - 1]
            assert above.startswith("#") or re.match(r"^[A-Z][A-Z0-9_]*=", above), line


@pytest.mark.parametrize("path", [ROOT / "docker-compose.yml", ELK_COMPOSE], ids=["compose", "elk"])
def test_every_variable_compose_substitutes_is_documented_in_env_example(path):
    # `$${X}` is escaped for the container's shell; only `${X}` is substituted from .env.
    substituted = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", path.read_text()))
    assert substituted - set(env_example()) == set()


def test_readme_documents_every_variable_config_reads():
    readme = (ROOT / "README.md").read_text()
    assert {name for name in config_variables() if f"| `{name}` |" not in readme} == set()


# -- observability: metrics, logs, heartbeats --------------------------------------------------------
PROMETHEUS_CONFIG = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
METRICS_PORTS = {"worker": "WORKER_METRICS_PORT", "consumer": "CONSUMER_METRICS_PORT", "feed": "FEED_METRICS_PORT"}


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_log_json_and_serve_metrics_on_the_private_network(service):
    env = environment(service)
    assert env["LOG_FORMAT"] == "json"
    assert env["METRICS_HOST"] == "0.0.0.0"
    assert env["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"
    # The bridge runs in the feed service (BROKER=xts): the feed's port, so Prometheus' one target.
    assert env["XTS_BRIDGE_METRICS_PORT"] == env["FEED_METRICS_PORT"]


@pytest.mark.parametrize("service", ["worker", "consumer", "feed"])
def test_prometheus_scrapes_each_process_where_compose_serves_it(service):
    (job,) = [job for job in PROMETHEUS_CONFIG["scrape_configs"] if job["job_name"] == service]
    port = environment(service)[METRICS_PORTS[service]]
    assert job["static_configs"][0]["targets"] == [f"{service}:{port}"]
    # Never published: only Prometheus on the compose network reaches them.
    assert "ports" not in SERVICES[service]
    assert all(not port.endswith(f":{env_port}") for s in SERVICES.values() for port in s.get("ports", [])
               for env_port in METRICS_PORTS.values())  # fmt: skip


@pytest.mark.parametrize("service", ["backend", "websocket"])
def test_prometheus_scrapes_the_web_servers_on_their_http_port(service):
    (job,) = [job for job in PROMETHEUS_CONFIG["scrape_configs"] if job["job_name"] == service]
    assert job["static_configs"][0]["targets"] == [f"{service}:{environment(service)['PORT']}"]


@pytest.mark.parametrize(("service", "process"), [("worker", "worker"), ("consumer", "consumer"), ("feed", "feed")])
def test_background_processes_are_checked_by_their_heartbeat(service, process):
    check = SERVICES[service]["healthcheck"]
    assert "disable" not in check
    assert (check["interval"], check["timeout"], check["retries"], check["start_period"]) == ("30s", "10s", 3, "60s")
    if service == "feed":  # BROKER=xts runs the bridge, which beats as xts_bridge
        assert check["test"][0] == "CMD-SHELL" and "python -m tradingapp.heartbeat check" in check["test"][1]
    else:
        assert check["test"] == ["CMD", "python", "-m", "tradingapp.heartbeat", "check", process]
    assert environment(service)["HEARTBEAT_DIR"].startswith("/tmp/")  # /app is root's in the image


def run_healthcheck(service: str, app_env: dict[str, str], heartbeat_dir, **env: str) -> int:
    """The service's healthcheck command as the container runs it, with this venv's python."""
    test = SERVICES[service]["healthcheck"]["test"]
    full_env = {**os.environ, **app_env, "HEARTBEAT_DIR": str(heartbeat_dir), **env}
    if test[0] == "CMD-SHELL":
        command = test[1].replace("$$", "$").replace("python ", f"{sys.executable} ", 1)
        argv = ["sh", "-c", command]
    else:
        argv = [sys.executable if arg == "python" else arg for arg in test[1:]]
    return subprocess.run(argv, env=full_env, capture_output=True, timeout=60, cwd=ROOT).returncode


@pytest.mark.parametrize("service", ["worker", "consumer"])
def test_a_heartbeat_healthcheck_fails_until_the_process_beats(service, env, tmp_path):
    assert run_healthcheck(service, env, tmp_path) == 1
    (tmp_path / service).touch()
    assert run_healthcheck(service, env, tmp_path) == 0
    old = time.time() - 120
    os.utime(tmp_path / service, (old, old))  # a wedged loop: the file goes stale
    assert run_healthcheck(service, env, tmp_path) == 1


def test_the_feed_healthcheck_follows_the_process_the_broker_runs(env, tmp_path):
    (tmp_path / "feed").touch()
    assert run_healthcheck("feed", env, tmp_path, BROKER="paper") == 0
    assert run_healthcheck("feed", env, tmp_path, BROKER="xts") == 1  # the bridge has not beaten
    (tmp_path / "xts_bridge").touch()
    assert run_healthcheck("feed", env, tmp_path, BROKER="xts") == 0


# -- the monitoring profile ----------------------------------------------------------------------------
@pytest.mark.parametrize("service", MONITORING)
def test_monitoring_uis_are_on_loopback_only(service):
    ports = SERVICES[service]["ports"]
    assert ports and all(port.startswith("127.0.0.1:") for port in ports)


@pytest.mark.parametrize("service", MONITORING)
def test_monitoring_mounts_the_repositorys_files_read_only_and_keeps_data_in_volumes(service):
    mounts = SERVICES[service]["volumes"]
    files = [mount for mount in mounts if mount.startswith("./")]
    assert files
    for mount in files:
        source, _target, mode = mount.split(":")
        assert (ROOT / source).exists(), mount
        assert mode == "ro", mount
    (data,) = [mount for mount in mounts if not mount.startswith("./")]
    assert data.split(":")[0] == f"{service}_data" and f"{service}_data" in COMPOSE["volumes"]


@pytest.mark.parametrize("service", MONITORING)
def test_monitoring_images_are_pinned(service):
    image = SERVICES[service]["image"]
    assert re.search(r":v?\d+\.\d+\.\d+$", image), image


def test_prometheus_reads_its_config_rules_and_the_metrics_token_where_they_are_mounted():
    prometheus = SERVICES["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    # rule_files are relative to the config file's folder.
    assert PROMETHEUS_CONFIG["rule_files"] == ["rules/*.yml"]
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    # The token: METRICS_TOKEN of .env as a compose secret, mounted at /run/secrets/<name>.
    assert prometheus["secrets"] == ["metrics_token"]
    assert COMPOSE["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    files = {job["authorization"]["credentials_file"] for job in PROMETHEUS_CONFIG["scrape_configs"]
             if "authorization" in job}  # fmt: skip
    assert files == {"/run/secrets/metrics_token"}
    assert PROMETHEUS_CONFIG["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_alertmanager_reads_the_repositorys_config():
    alertmanager = SERVICES["alertmanager"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]


def test_grafana_is_provisioned_from_the_repository():
    grafana = SERVICES["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    provider = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in grafana["volumes"]
    home = environment("grafana")["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(path + "/") and (ROOT / "deploy/grafana/dashboards" / home.rsplit("/", 1)[1]).exists()
    assert environment("grafana")["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert environment("grafana")["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_grafana_takes_its_admin_password_from_env_and_refuses_to_start_without_one():
    # Compose substitutes every service's variables, active profile or not: a ${...:?} here would
    # stop a plain `docker compose up` whenever GRAFANA_ADMIN_PASSWORD is unset. Grafana refuses instead.
    assert environment("grafana")["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    for name in MONITORING:
        assert ":?" not in yaml.safe_dump(SERVICES[name]), name
    shell, flag, script = SERVICES["grafana"]["entrypoint"]
    assert (shell, flag) == ("/bin/sh", "-c") and script.endswith("exec /run.sh")
    script = script.replace("$$", "$").replace("exec /run.sh", "exit 7")  # 7: Grafana would start
    refused = subprocess.run(["sh", "-c", script], env={"GF_SECURITY_ADMIN_PASSWORD": ""}, capture_output=True,
                             text=True, timeout=10)  # fmt: skip
    assert refused.returncode == 1 and "GRAFANA_ADMIN_PASSWORD" in refused.stderr
    started = subprocess.run(["sh", "-c", script], env={"GF_SECURITY_ADMIN_PASSWORD": "s3cret"}, timeout=10)
    assert started.returncode == 7


def test_compose_secrets_come_from_documented_variables():
    sources = [
        secret.get("environment") or re.search(r"\$\{(\w+)", secret["file"]).group(1)
        for secret in COMPOSE["secrets"].values()
    ]
    assert set(sources) <= set(env_example())


# -- the logging profile (deploy/elk/compose.yml, included) ------------------------------------------
def test_compose_includes_the_logging_profile():
    assert COMPOSE["include"] == [{"path": "deploy/elk/compose.yml"}]
    assert ELK_COMPOSE.exists()


def test_the_included_services_start_only_with_the_logging_profile():
    included = yaml.safe_load(ELK_COMPOSE.read_text())
    services = included["services"]
    assert services and all(service.get("profiles") == ["logging"] for service in services.values())
    assert not set(services) & set(SERVICES), "an included service may not replace one of docker-compose.yml"
    assert not set(included.get("volumes") or {}) & set(COMPOSE["volumes"])
    # Substituted with the rest, active profile or not: nothing required there either.
    assert ":?" not in ELK_COMPOSE.read_text()
    for service in services.values():
        assert all(port.startswith("127.0.0.1:") for port in service.get("ports", []))


# -- TLS to the data services: deploy/compose.tls.yml (docs/encryption.md) ------------------------
TLS = yaml.safe_load((ROOT / "deploy" / "compose.tls.yml").read_text())["services"]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_the_tls_override_verifies_every_server_from_every_process(service):
    env = {**with_defaults(environment(service)), **{k: str(v) for k, v in TLS[service]["environment"].items()}}
    config = Config({k: v for k, v in env.items() if "${" not in v} | {"DB_PASSWORD": "x", "REDIS_PASSWORD": "x"})
    assert config.database_url().endswith("sslmode=verify-full&connect_timeout=5&sslrootcert=/certs/ca.crt")
    assert config.redis_url.startswith("rediss://") and "ssl_ca_certs=/certs/ca.crt" in config.redis_url
    assert config.amqp_url.startswith("amqps://") and config.RABBITMQ_PORT == 5671
    assert config.amqp_ssl["ca_certs"] == "/certs/ca.crt" and config.amqp_ssl["server_hostname"] == "rabbitmq"
    # The CA only: no process of the app holds a server's key.
    assert TLS[service]["volumes"] == ["./internal-tls/ca.crt:/certs/ca.crt:ro"]


@pytest.mark.parametrize("service", DATA_SERVICES)
def test_each_server_gets_its_own_pair_and_no_other_key(service):
    keys = [v for v in TLS[service]["volumes"] if v.split(":")[0].endswith(".key")]
    assert keys == [f"./internal-tls/{service}.key:/tls/{service}.key:ro"]
    assert all(v.startswith(("./internal-tls/", "./deploy/tls/")) for v in TLS[service]["volumes"])
    for volume in TLS[service]["volumes"]:
        source = volume.split(":")[0]
        if source.startswith("./deploy/"):
            assert (ROOT / source).is_file(), source


def test_the_tls_servers_take_no_plain_connection():
    postgres = " ".join(TLS["postgres"]["command"])
    assert "-c ssl=on" in postgres and "-c hba_file=/etc/postgresql/pg_hba.conf" in postgres
    hba = [line.split() for line in (ROOT / "deploy/tls/pg_hba.conf").read_text().splitlines() if line[:1] != "#"]
    assert [line[0] for line in hba if line] == ["local", "hostnossl", "hostssl"]
    assert hba[1][-1] == "reject"
    redis_command = " ".join(TLS["redis"]["command"])
    assert "--port 0 --tls-port 6379" in redis_command and "--requirepass" in redis_command
    assert "--tls" in " ".join(TLS["redis"]["healthcheck"]["test"])
    rabbitmq = (ROOT / "deploy/tls/rabbitmq-tls.conf").read_text()
    assert "listeners.tcp = none" in rabbitmq and "listeners.ssl.default = 5671" in rabbitmq


def test_the_tls_files_are_where_make_internal_certs_writes_them(tmp_path):
    subprocess.run([str(ROOT / "scripts" / "make_internal_certs.sh"), str(tmp_path)], check=True, capture_output=True)
    mounted = {v.split(":")[0] for s in TLS.values() for v in s.get("volumes", [])}
    made = {f"./internal-tls/{p.name}" for p in tmp_path.iterdir()}
    assert {m for m in mounted if m.startswith("./internal-tls/")} <= made
    assert (tmp_path / ".gitignore").read_text().splitlines()[-1] == "*"
    assert oct((tmp_path / "postgres.key").stat().st_mode & 0o777) == "0o600"
    for server in DATA_SERVICES:
        verify = subprocess.run(
            ["openssl", "verify", "-CAfile", str(tmp_path / "ca.crt"), str(tmp_path / f"{server}.crt")],
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stderr
        sans = subprocess.run(
            ["openssl", "x509", "-in", str(tmp_path / f"{server}.crt"), "-noout", "-ext", "subjectAltName"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"DNS:{server}" in sans  # the compose service name the processes dial
