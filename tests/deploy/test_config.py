"""config.py: env parsing, derived URLs, the production refusals and APP_ENV selection. No services."""

from __future__ import annotations

import os
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

import config
from config import (
    DEFAULT_JWT_SECRET,
    Config,
    ConfigError,
    ProductionConfig,
    load_config,
    parse_bool,
    parse_duration,
    parse_int,
    parse_list,
)
from config import (
    TestConfig as AppTestConfig,
)

STRONG = "x7Qp2-vL9s"
PRODUCTION_ENV = {
    "APP_ENV": "production",
    "DB_HOST": "db.internal",
    "DB_PASSWORD": STRONG,
    "REDIS_PASSWORD": STRONG + "r",
    "RABBITMQ_PASSWORD": STRONG + "q",
    "JWT_SECRET": "k" * 16 + "Zq9-4mT_w8yR2nB6",
}


# -- durations ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [("24h", 86400), ("15m", 900), ("30s", 30), ("7d", 604800), ("90", 90), (" 2H ", 7200)],
)
def test_duration_parses_units(text, seconds):
    assert parse_duration("JWT_EXPIRATION", text, 1) == seconds


@pytest.mark.parametrize("text", [None, "", "   "])
def test_duration_empty_means_default(text):
    assert parse_duration("JWT_EXPIRATION", text, 123) == 123


@pytest.mark.parametrize("text", ["1w", "abc", "-5m", "1.5h", "h", "15 minutes"])
def test_duration_rejects_malformed_values_naming_the_variable(text):
    with pytest.raises(ConfigError, match="JWT_EXPIRATION"):
        parse_duration("JWT_EXPIRATION", text, 1)


def test_bad_duration_in_the_environment_stops_config():
    with pytest.raises(ConfigError, match="LOGIN_LOCKOUT"):
        Config({"LOGIN_LOCKOUT": "forever"})


# -- booleans, integers, lists --------------------------------------------------------------------
SPELLINGS = [("true", True), ("YES", True), ("on", True), ("1", True), ("false", False), ("no", False), ("Off", False),
             ("0", False)]  # fmt: skip


@pytest.mark.parametrize(("text", "value"), SPELLINGS)
def test_bool_accepts_the_usual_spellings(text, value):
    assert parse_bool("ALLOW_REGISTRATION", text, not value) is value


def test_bool_rejects_anything_else():
    with pytest.raises(ConfigError, match="ALLOW_REGISTRATION"):
        Config({"ALLOW_REGISTRATION": "maybe"})


def test_int_rejects_non_numbers_naming_the_variable():
    with pytest.raises(ConfigError, match="PORT"):
        parse_int("PORT", "80a", 8080)


def test_bad_port_in_the_environment_stops_config():
    with pytest.raises(ConfigError, match="REDIS_PORT"):
        Config({"REDIS_PORT": "six"})


def test_list_splits_on_commas_and_drops_blanks():
    assert parse_list(" https://a.example , https://b.example,, ", []) == ["https://a.example", "https://b.example"]


def test_cors_origins_default_to_none():
    assert Config({}).CORS_ALLOWED_ORIGINS == []


def test_unknown_broker_is_refused():
    with pytest.raises(ConfigError, match="BROKER"):
        Config({"BROKER": "ib"})


# -- database URL ---------------------------------------------------------------------------------
def test_sqlite_under_instance_when_no_db_host():
    config = Config({})
    assert not config.is_postgres
    assert config.SQLALCHEMY_DATABASE_URI.startswith("sqlite:///")
    assert config.SQLALCHEMY_DATABASE_URI.endswith("/instance/tradingapp.db")


def test_sqlite_path_can_be_moved():
    assert Config({"SQLITE_PATH": "/tmp/x/t.db"}).SQLALCHEMY_DATABASE_URI == "sqlite:////tmp/x/t.db"


def test_postgres_url_escapes_special_characters_in_the_password():
    password = "p@ss:w/rd#%?&"
    config = Config({"DB_HOST": "db", "DB_PASSWORD": password, "DB_SSL_MODE": "require"})
    url = config.SQLALCHEMY_DATABASE_URI
    assert url == (
        "postgresql+psycopg://postgres:p%40ss%3Aw%2Frd%23%25%3F%26@db:5432/trading_platform?sslmode=require&connect_timeout=5"
    )
    parsed = make_url(url)
    assert (parsed.password, parsed.host, parsed.database) == (password, "db", "trading_platform")


def test_postgres_url_without_password_has_no_colon():
    config = Config({"DB_HOST": "127.0.0.1", "DB_PORT": "6543", "DB_NAME": "t", "DB_USER": "u"})
    assert config.SQLALCHEMY_DATABASE_URI == "postgresql+psycopg://u@127.0.0.1:6543/t?sslmode=prefer&connect_timeout=5"


# -- Redis and AMQP URLs --------------------------------------------------------------------------
def test_redis_url_with_escaped_password_and_db():
    config = Config({"REDIS_HOST": "redis", "REDIS_PASSWORD": "a/b@c", "REDIS_DB": "3"})
    assert config.redis_url == "redis://:a%2Fb%40c@redis:6379/3"


def test_redis_url_without_password():
    assert Config({}).redis_url == "redis://localhost:6379/0"


def test_amqp_url_escapes_the_default_vhost_slash():
    assert Config({}).amqp_url == "amqp://guest:guest@localhost:5672/%2F"


def test_amqp_url_escapes_credentials_and_named_vhost():
    config = Config({"RABBITMQ_USER": "app", "RABBITMQ_PASSWORD": "p:w@d", "RABBITMQ_VHOST": "trading"})
    assert config.amqp_url == "amqp://app:p%3Aw%40d@localhost:5672/trading"
    assert unquote(config.amqp_url.rsplit("@", 1)[0].split(":")[-1]) == "p:w@d"


# -- production refusals --------------------------------------------------------------------------
def test_production_accepts_a_proper_setup():
    config = load_config(PRODUCTION_ENV)
    assert isinstance(config, ProductionConfig)
    assert config.is_postgres


def test_production_refuses_the_default_jwt_secret():
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_config({**PRODUCTION_ENV, "JWT_SECRET": DEFAULT_JWT_SECRET})


def test_production_refuses_a_missing_jwt_secret():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "JWT_SECRET"}
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_config(env)


def test_production_refuses_a_short_jwt_secret():
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_config({**PRODUCTION_ENV, "JWT_SECRET": "short-secret"})


def test_production_refuses_sqlite():
    with pytest.raises(ConfigError, match="DB_HOST"):
        load_config({**PRODUCTION_ENV, "DB_HOST": ""})


@pytest.mark.parametrize(
    ("name", "weak"),
    [("DB_PASSWORD", ""), ("DB_PASSWORD", "postgres"), ("REDIS_PASSWORD", ""), ("REDIS_PASSWORD", "Password"),
     ("RABBITMQ_PASSWORD", "guest"), ("RABBITMQ_PASSWORD", "")],
)  # fmt: skip
def test_production_refuses_weak_passwords(name, weak):
    with pytest.raises(ConfigError, match=name):
        load_config({**PRODUCTION_ENV, name: weak})


def test_production_names_every_problem_at_once():
    with pytest.raises(ConfigError) as caught:
        load_config({"APP_ENV": "production"})
    for name in ("JWT_SECRET", "DB_HOST", "DB_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD"):
        assert name in str(caught.value)


def test_production_with_xts_needs_its_credentials():
    with pytest.raises(ConfigError, match="XTS_API_KEY"):
        load_config({**PRODUCTION_ENV, "BROKER": "xts", "XTS_API_URL": "https://xts.example"})


def test_development_accepts_the_defaults():
    config = load_config({})
    assert type(config) is Config
    assert config.JWT_SECRET not in ("", DEFAULT_JWT_SECRET)  # this install's own (config.dev_jwt_secret)


# -- APP_ENV selection ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("app_env", "cls"),
    [("development", Config), ("test", AppTestConfig), ("TEST", AppTestConfig), ("production", ProductionConfig)],
)
def test_load_config_picks_the_class_by_app_env(app_env, cls):
    assert type(load_config({**PRODUCTION_ENV, "APP_ENV": app_env})) is cls


def test_load_config_rejects_an_unknown_app_env():
    with pytest.raises(ConfigError, match="APP_ENV"):
        load_config({"APP_ENV": "staging"})


def test_the_paper_session_follows_the_trading_day_timezone_unless_set():
    assert Config({"SESSION_TIMEZONE": "America/New_York"}).PAPER_SESSION_TZ == "America/New_York"
    both = Config({"SESSION_TIMEZONE": "America/New_York", "PAPER_SESSION_TZ": "Asia/Kolkata"})
    assert both.PAPER_SESSION_TZ == "Asia/Kolkata"


def test_the_dev_secret_is_made_where_the_filesystem_has_no_hard_links(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    path = tmp_path / "instance" / "dev-jwt-secret"
    secret = config.dev_jwt_secret(path)
    assert len(secret) >= 48 and path.read_text().strip() == secret
    assert path.stat().st_mode & 0o777 == 0o600
    assert config.dev_jwt_secret(path) == secret  # read back, not made again
    assert [p.name for p in path.parent.iterdir()] == ["dev-jwt-secret"]  # no draft left behind


def test_db_host_list_reaches_the_writable_server_of_several():
    config = Config({"DB_HOST": "pg-a, pg-b:5433", "DB_PORT": "6432"})
    assert config.DB_HOSTS == [("pg-a", 6432), ("pg-b", 5433)]
    url = sa.engine.make_url(config.SQLALCHEMY_DATABASE_URI)
    _args, kwargs = sa.create_engine(url).dialect.create_connect_args(url)
    assert (kwargs["host"], kwargs["port"]) == ("pg-a,pg-b", "6432,5433")
    assert kwargs["target_session_attrs"] == "read-write"
    assert config.libpq_params()["host"] == "pg-a,pg-b"


def test_one_db_host_keeps_a_plain_url_without_session_attrs():
    config = Config({"DB_HOST": "[::1]:5433"})
    assert config.SQLALCHEMY_DATABASE_URI.startswith("postgresql+psycopg://postgres@[::1]:5433/trading_platform?")
    assert "target_session_attrs" not in config.SQLALCHEMY_DATABASE_URI


@pytest.mark.parametrize(
    "env",
    [
        {"DB_HOST": "db:notaport"},
        {"DB_HOST": "db:70000"},
        {"DB_HOST": "a,[::1]:5432"},
        {"DB_HOST": "db", "DB_SSL_MODE": "strict"},
        {"DB_HOST": "db", "DB_SSL_MODE": "verify-full"},
        {"DB_READ_HOST": "replica:x"},
        {"TIMESCALEDB": "maybe"},
    ],
)
def test_bad_database_settings_are_refused_by_name(env):
    with pytest.raises(ConfigError) as caught:
        Config(env)
    assert next(iter(env)) in str(caught.value) or "DB_" in str(caught.value) or "TIMESCALEDB" in str(caught.value)


def test_tls_settings_shape_the_database_redis_and_rabbitmq_urls():
    config = Config(
        {
            "DB_HOST": "db",
            "DB_SSL_MODE": "verify-full",
            "DB_SSL_ROOT_CERT": "/certs/ca.pem",
            "REDIS_SSL": "true",
            "REDIS_SSL_CA": "/certs/ca.pem",
            "RABBITMQ_SSL": "true",
            "RABBITMQ_SSL_CA": "/certs/ca.pem",
            "RABBITMQ_HOST": "mq",
        }
    )
    assert "sslmode=verify-full" in config.SQLALCHEMY_DATABASE_URI
    assert "sslrootcert=/certs/ca.pem" in config.SQLALCHEMY_DATABASE_URI
    assert config.redis_url == "rediss://localhost:6379/0?ssl_cert_reqs=required&ssl_ca_certs=/certs/ca.pem"
    assert config.amqp_url == "amqps://guest:guest@mq:5671/%2F"
    assert config.amqp_ssl["ca_certs"] == "/certs/ca.pem"
    assert config.amqp_ssl["server_hostname"] == "mq"
    assert Config({}).amqp_ssl is False
