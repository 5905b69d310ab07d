"""`flask seed`: idempotent demo data, and never the demo users in production."""

import sqlalchemy as sa

from config import ProductionConfig
from tradingapp import create_app
from tradingapp.models import Instrument, User


def test_seed_twice_creates_the_demo_data_once(app, db):
    db.session.execute(sa.text("TRUNCATE instruments, users RESTART IDENTITY CASCADE"))
    db.session.commit()
    runner = app.test_cli_runner()
    assert "seeded users=2 instruments=6" in runner.invoke(args=["seed"]).output
    assert "seeded users=0 instruments=0" in runner.invoke(args=["seed"]).output


def test_production_seed_creates_no_demo_users(env, db):
    strong = {
        **env,
        "APP_ENV": "production",
        "JWT_SECRET": "x" * 48,
        "DB_PASSWORD": "a-long-db-password",
        "REDIS_PASSWORD": "a-long-redis-password",
        "RABBITMQ_PASSWORD": "a-long-rabbit-password",
    }
    production = create_app(ProductionConfig(strong))
    with production.app_context():  # the db fixture's context is the test app's: push this one
        result = production.test_cli_runner().invoke(args=["seed"])
        assert "users=0" in result.output and "never created" in result.output
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Instrument)) == 6
        db.session.remove()
        db.engine.dispose()


def test_create_user_makes_an_admin_who_can_log_in(app, client, db):
    result = app.test_cli_runner().invoke(
        args=["create-user", "Ops@Example.com", "--role", "admin", "--password", "a-strong-password-1"]
    )
    assert result.exit_code == 0, result.output
    assert "created admin ops@example.com" in result.output
    login = client.post("/api/v1/auth/login", json={"email": "ops@example.com", "password": "a-strong-password-1"})
    assert login.status_code == 200


def test_create_user_refuses_a_short_password_and_a_taken_email(app, db, make_user):
    runner = app.test_cli_runner()
    short = runner.invoke(args=["create-user", "a@example.com", "--password", "short"])
    assert short.exit_code != 0 and "10 to 128" in short.output
    make_user(email="b@example.com")
    taken = runner.invoke(args=["create-user", "b@example.com", "--password", "a-strong-password-1"])
    assert taken.exit_code != 0 and "already exists" in taken.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
