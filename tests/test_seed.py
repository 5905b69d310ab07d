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
