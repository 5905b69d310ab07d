"""Extension objects, created unbound here and bound in `create_app`."""

from __future__ import annotations

import redis
from flask import Flask, current_app
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session
from sqlalchemy import MetaData
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RedisExtension:
    """One connection pool per process, built from the app's config."""

    def init_app(self, app: Flask) -> None:
        app.extensions["redis"] = redis.Redis.from_url(
            app.config["REDIS_URL"], socket_connect_timeout=3, socket_timeout=10, health_check_interval=30
        )

    @property
    def client(self) -> redis.Redis:
        return current_app.extensions["redis"]


# The session's info key naming a read replica's engine: set by tradingapp.replicas.read_only for the
# length of a read-only view, when every statement of the session goes there instead of the primary.
READ_BIND = "tradingapp.read_bind"


class RoutingSession(Session):
    """Flask-SQLAlchemy's session, whose statements go to a read replica inside a `read_only` view."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and (replica := self.info.get(READ_BIND)) is not None:
            return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


# Objects keep what was just written after a commit: reading them (a response, a log line, a push)
# costs no reload, and so no new transaction left idle while the caller talks to Redis or a broker.
# Every unit of work starts from a fresh session (per request, job or message), and row locks
# re-read with populate_existing, so nothing stale is trusted.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False, "class_": RoutingSession})
migrate = Migrate(compare_type=True)
jwt = JWTManager()
sock = Sock()
redis_ext = RedisExtension()


def get_redis() -> redis.Redis:
    return current_app.extensions["redis"]


def upsert_insert(model):
    """The dialect's INSERT (Postgres or SQLite), which has on_conflict_do_nothing/do_update."""
    if db.session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)
