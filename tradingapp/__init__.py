"""tradingapp: the Flask application factory."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import BASE_DIR, Config, load_config
from tradingapp.logs import configure_logging


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    app = Flask(__name__, instance_path=str(BASE_DIR / "instance"))
    app.config.update(config.as_flask_config())
    app.config["REDIS_URL"] = config.redis_url
    app.config["AMQP_URL"] = config.amqp_url
    app.config["AMQP_SSL"] = config.amqp_ssl  # kombu's ssl= for every connection to RabbitMQ
    app.extensions["tradingapp.config"] = config
    configure_logging(config.LOG_LEVEL, config.LOG_FORMAT)
    if not config.is_postgres:
        Path(config.SQLITE_PATH).parent.mkdir(parents=True, exist_ok=True)

    from tradingapp import cli, http, metrics
    from tradingapp.api import register_api
    from tradingapp.errors import register_error_handlers
    from tradingapp.extensions import db, jwt, migrate, redis_ext, sock
    from tradingapp.security import auth
    from tradingapp.services.accounts.broker_accounts import credentials_for
    from tradingapp.ws import routes as ws_routes

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"))
    jwt.init_app(app)
    sock.init_app(app)
    redis_ext.init_app(app)
    auth.init_app(app)
    http.init_app(app)
    metrics.init_app(app)
    register_error_handlers(app)
    ws_routes.init_app(app)
    register_api(app)
    cli.init_app(app)
    # The broker is handed how to find a user's XTS credentials (brokers never import services).
    app.extensions["tradingapp.broker_credentials"] = credentials_for
    if config.TRUSTED_PROXY_COUNT:
        n = config.TRUSTED_PROXY_COUNT
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    return app


@sa.event.listens_for(sa.engine.Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record):
    """Several processes share the SQLite file: WAL and a busy timeout let them take turns."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        # SQLAlchemy, not the driver, opens transactions (see _sqlite_begin).
        dbapi_connection.isolation_level = None


@sa.event.listens_for(sa.engine.Engine, "begin")
def _sqlite_begin(conn):
    """SQLite ignores SELECT ... FOR UPDATE, and a plain BEGIN takes the write lock only at the first
    write: a read-then-write (cancel vs. the worker's claim) would overwrite a concurrent commit.
    BEGIN IMMEDIATE takes the file's write lock up front, so every transaction that may write runs
    alone, which is what the row locks give on Postgres."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
