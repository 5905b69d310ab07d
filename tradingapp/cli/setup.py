"""Setting a deployment up: `flask create-db`, `flask seed` (the demo users and instruments),
`flask create-user` and `flask preflight`."""

from __future__ import annotations

from decimal import Decimal

import click
import psycopg
import sqlalchemy as sa
from flask import Flask, current_app
from psycopg import sql

from tradingapp.domain.errors import Invalid
from tradingapp.extensions import db
from tradingapp.models import ROLES, Instrument, User
from tradingapp.security.passwords import hash_password

DEMO_USERS = [
    # email, password, name, role
    ("demo@tradingapp.local", "demo-password-123", "Demo Trader", "trader"),
    ("admin@tradingapp.local", "admin-password-123", "Demo Admin", "admin"),
]

# exchange_segment, exchange_instrument_id, symbol, name, series, lot_size, tick_size
DEMO_INSTRUMENTS = [
    ("NSECM", 2885, "RELIANCE", "Reliance Industries", "EQ", 1, "0.05"),
    ("NSECM", 11536, "TCS", "Tata Consultancy Services", "EQ", 1, "0.05"),
    ("NSECM", 1594, "INFY", "Infosys", "EQ", 1, "0.05"),
    ("NSECM", 1333, "HDFCBANK", "HDFC Bank", "EQ", 1, "0.05"),
    ("NSECM", 3045, "SBIN", "State Bank of India", "EQ", 1, "0.05"),
    ("NSEFO", 35001, "NIFTY-FUT", "NIFTY 50 futures", "FUTIDX", 75, "0.10"),
]


def create_database_if_missing(config) -> bool:
    """Create DB_NAME on the Postgres server when it does not exist. True when created."""
    if not config.is_postgres:
        return False
    # Every DB_HOST server of a list, the writable one: CREATE DATABASE runs on the primary.
    conninfo = config.libpq_params() | {"dbname": "postgres"}
    if len(config.DB_HOSTS) > 1:
        conninfo["target_session_attrs"] = "read-write"
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (config.DB_NAME,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config.DB_NAME)))
        return True


def seed_demo_data(include_users: bool = True) -> dict:
    """Demo users and instruments; running it again changes nothing."""
    created = {"users": 0, "instruments": 0}
    for email, password, name, role in DEMO_USERS if include_users else ():
        if db.session.scalar(sa.select(User.id).where(User.email == email)) is None:
            db.session.add(User(email=email, password_hash=hash_password(password), name=name, role=role))
            created["users"] += 1
    for segment, ex_id, symbol, name, series, lot, tick in DEMO_INSTRUMENTS:
        found = db.session.scalar(
            sa.select(Instrument.id).where(
                Instrument.exchange_segment == segment, Instrument.exchange_instrument_id == ex_id
            )
        )
        if found is None:
            db.session.add(
                Instrument(
                    exchange_segment=segment,
                    exchange_instrument_id=ex_id,
                    symbol=symbol,
                    name=name,
                    series=series,
                    lot_size=lot,
                    tick_size=Decimal(tick),
                )
            )
            created["instruments"] += 1
    db.session.commit()
    return created


def register(app: Flask) -> None:
    @app.cli.command("create-db")
    def create_db_command():
        """Create the Postgres database DB_NAME if it does not exist (no-op on SQLite)."""
        config = current_app.extensions["tradingapp.config"]
        if create_database_if_missing(config):
            click.echo(f"created database {config.DB_NAME}")
        else:
            click.echo("database exists" if config.is_postgres else "using SQLite: nothing to create")

    @app.cli.command("preflight")
    def preflight_command():
        """Check that Redis, RabbitMQ and PostgreSQL (when DB_HOST is set) answer; exit 1 if not."""
        from tradingapp.preflight import report, run_checks

        config = current_app.extensions["tradingapp.config"]
        if not report(config, run_checks(config), out=click.echo):
            raise click.exceptions.Exit(1)

    @app.cli.command("seed")
    def seed_command():
        """Seed the demo users and instruments (idempotent). Production gets no demo users: their
        passwords are published in the README."""
        production = current_app.extensions["tradingapp.config"].ENV_NAME == "production"
        created = seed_demo_data(include_users=not production)
        click.echo(f"seeded users={created['users']} instruments={created['instruments']}")
        if production:
            click.echo("production: demo users are never created; use `flask create-user EMAIL --role admin`")

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--role", type=click.Choice(ROLES), default="trader", show_default=True)
    @click.option("--name", default="")
    @click.password_option(help="prompted for (twice) when not given")
    def create_user_command(email, role, name, password):
        """Create a user, e.g. the first admin of a deployment."""
        from tradingapp.services.accounts.users import parse_email, parse_password

        try:
            email, password = parse_email(email), parse_password(password)
        except Invalid as exc:
            raise click.BadParameter(exc.message) from None
        if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            raise click.ClickException(f"a user with email {email} already exists")
        user = User(email=email, password_hash=hash_password(password), name=name, role=role)
        db.session.add(user)
        db.session.commit()
        click.echo(f"created {role} {email} id={user.id}")
