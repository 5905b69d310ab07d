"""The migrations and the models agree (Postgres): autogenerate, as `flask db check` runs it through
migrations/env.py, finds nothing to add or drop, the paper exchange's own tables included."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import check, upgrade

from tests.support.env import admin_conn
from tradingapp.extensions import db


def test_the_migrations_match_every_model_the_app_declares(app):
    with app.app_context():
        check()  # exits (SystemExit 1) when autogenerate finds an operation to do


def test_users_from_before_0012_start_at_generation_1_so_older_tokens_are_refused(make_app, env):
    name = f"{env['DB_NAME']}_m0012"
    with admin_conn() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        app = make_app(DB_NAME=name)
        with app.app_context():
            upgrade(revision="0011")
            _insert_a_user_row()
            upgrade(revision="0012")
            generation = db.session.scalar(sa.text("SELECT token_generation FROM users"))
            db.session.remove()
        assert generation == 1  # a token without a generation (issued before 0012) no longer matches
    finally:
        with admin_conn() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _insert_a_user_row() -> None:
    """One row in users as the schema stands, whatever its required columns are."""
    columns = db.session.execute(
        sa.text(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'users'"
            " AND is_nullable = 'NO' AND column_default IS NULL"
        )
    ).all()
    values = {"uuid": "gen_random_uuid()", "boolean": "true", "integer": "0", "numeric": "0"}
    literal = [
        values.get(kind, "now()" if kind.startswith("timestamp") else f"'{column}-x@example.com'")
        for column, kind in columns
    ]
    names = ", ".join(column for column, _ in columns)
    db.session.execute(sa.text(f"INSERT INTO users ({names}) VALUES ({', '.join(literal)})"))
    db.session.commit()
