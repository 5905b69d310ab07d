"""The migrations and the models agree (Postgres): autogenerate, as `flask db check` runs it through
migrations/env.py, finds nothing to add or drop, the paper exchange's own tables included."""

from __future__ import annotations

from flask_migrate import check


def test_the_migrations_match_every_model_the_app_declares(app):
    with app.app_context():
        check()  # exits (SystemExit 1) when autogenerate finds an operation to do
