"""Flask CLI commands: `flask create-db`, `flask seed`, `flask create-user`, `flask preflight`,
`flask backfill`, `flask prune-ticks`, `flask accounts rotate-keys` (tradingapp/cli_accounts.py),
`flask instruments sync` (tradingapp/cli_instruments.py)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import psycopg
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import with_appcontext
from psycopg import sql

from tradingapp.cli_accounts import accounts_command
from tradingapp.cli_instruments import instruments_command
from tradingapp.errors import APIError
from tradingapp.extensions import db
from tradingapp.models import ROLES, Instrument, User
from tradingapp.passwords import hash_password

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
    conninfo = dict(
        host=config.DB_HOST, port=config.DB_PORT, user=config.DB_USER, dbname="postgres",
        sslmode=config.DB_SSL_MODE, connect_timeout=5,
    )  # fmt: skip
    if config.DB_PASSWORD:
        conninfo["password"] = config.DB_PASSWORD
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


def init_app(app: Flask) -> None:
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
        from tradingapp.api.auth import parse_email, parse_password

        try:
            email, password = parse_email(email), parse_password(password)
        except APIError as exc:
            raise click.BadParameter(exc.message) from None
        if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
            raise click.ClickException(f"a user with email {email} already exists")
        user = User(email=email, password_hash=hash_password(password), name=name, role=role)
        db.session.add(user)
        db.session.commit()
        click.echo(f"created {role} {email} id={user.id}")

    app.cli.add_command(backfill_command)
    app.cli.add_command(prune_ticks_command)
    app.cli.add_command(accounts_command)
    app.cli.add_command(instruments_command)


@click.command("backfill")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", type=click.Choice(["ticks", "bars"]), default="ticks", show_default=True)
@click.option("--instrument", metavar="ID|SEGMENT:SYMBOL",
              help="the one instrument of a file without an instrument column")  # fmt: skip
@click.option("--timezone", "zone", metavar="ZONE", help="zone of times written without one, e.g. Asia/Kolkata")
@click.option("--batch", type=click.IntRange(1, 100_000), default=10_000, show_default=True,
              help="rows per transaction")  # fmt: skip
@click.option("--skip-bad", is_flag=True, help="import the good rows and list the bad ones")
def backfill_command(csv_file, kind, instrument, zone, batch, skip_bad):
    """Backfill ticks or one-minute bars from a CSV file into the tick store and the candles.

    The first line names the columns (any order, any case). Times are ISO-8601 with a zone
    (2026-11-23T09:15:00.250+05:30 or ...Z); times without one need --timezone. Prices are
    decimals with at most 4 places. Every row names its instrument by an instrument_id
    column, or exchange_segment + symbol (symbol alone when unique), or the file is one
    instrument's given by --instrument.

    \b
    --kind ticks: ts, ltp required; seq, ltq, bid, ask, bid_qty, ask_qty, volume optional.
      Stored like feed ticks and folded into the one-minute candles. A tick already stored
      (same instrument_id, ts, seq) is skipped, so running a file again changes nothing.
      Without a seq column, the ticks of one instrument with the same ts are
      numbered 0, 1, 2... in file order; with one, an empty seq is a bad row. Ticks older than
      TICK_RETENTION_DAYS less a day are refused (retention keeps candles, not
      ticks: one imported again would count twice): import bars for such a range.
    --kind bars: ts (or bucket, the minute's start), open, high, low, close required;
      volume optional. Each bar replaces the candle of its minute (running a file again
      changes nothing). Bars are taken as whole minutes: live ticks do not move a bar's
      open or close. Import bars or ticks for a range, not both; a bar of the current
      minute or later is refused (the live ticks of that minute would count twice).

    \b
    A bad row (its line and reason are listed) stops the import before anything is
    written; with --skip-bad the good rows are imported and the bad ones listed (a tick
    file needs a seq column for that: without one, a skipped row imported once fixed
    would shift the numbers of the same-time ticks after it). The whole file is read
    once before anything is written. A tick whose (instrument_id, ts, seq) an earlier
    line has is counted apart and not written again. Exit status 1 when a row or the
    file is bad (with --skip-bad: only for the file).
    """
    from tradingapp.services import backfill

    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {zone!r}", param_hint="--timezone") from None
    size, now = os.path.getsize(csv_file), datetime.now(UTC)  # one clock for both passes
    try:
        instruments = backfill.Instruments(instrument)
        with click.progressbar(length=size, label="checking ") as bar:
            checked = backfill.check_file(csv_file, kind, instruments, tz, _progress(bar), now)
        if checked.bad_count and not (skip_bad and not checked.numbered):
            _list_bad(checked)
            if skip_bad:
                raise click.ClickException(
                    f"{checked.bad_count} bad row(s) of {checked.rows}: nothing imported. --skip-bad needs a seq "
                    "column: without one, ticks of the same instrument and ts are numbered in file order, and a "
                    "skipped row imported once fixed would shift the numbers of those after it (stored twice). "
                    "Fix the rows, or add a seq column."
                )
            raise click.ClickException(
                f"{checked.bad_count} bad row(s) of {checked.rows}: nothing imported. "
                "Fix them, or import the good rows with --skip-bad."
            )
        with click.progressbar(length=size, label="importing") as bar:
            report = backfill.import_file(csv_file, kind, instruments, tz, batch, _progress(bar), now)
    except backfill.BadFile as exc:
        raise click.ClickException(f"{csv_file}: {exc}; {_written_before(exc.report, kind)}") from None
    if report.bad_count:
        _list_bad(report)
    click.echo(f"{kind}: {report.rows} rows, {_counts(report, kind)}")


def _counts(report, kind: str) -> str:
    if kind == "bars":
        counts = [f"{report.written} written"]
    else:
        stored_before = report.rows - report.bad_count - report.repeated - report.written
        counts = [f"{report.written} new", f"{stored_before} already stored"]
        if report.repeated:
            counts.append(f"{report.repeated} repeated in the file (the first taken)")
    if report.bad_count:
        counts.append(f"{report.bad_count} bad skipped")
    return ", ".join(counts)


def _written_before(report, kind: str) -> str:
    """What an import stopped by an unreadable file had written (nothing, when the check pass found
    it: only a file changed between the two passes gets further)."""
    if report is None or not report.written_through:
        return "nothing imported"
    done = f"{report.written} new" if kind == "ticks" else f"{report.written} written"
    return f"rows up to line {report.written_through} were imported ({done}): running again after the fix is harmless"


@click.command("prune-ticks")
@with_appcontext
@click.option("--days", type=click.IntRange(min=0), help="keep this many days (default: TICK_RETENTION_DAYS)")
def prune_ticks_command(days):
    """Delete ticks older than TICK_RETENTION_DAYS in small batches (the worker does it hourly).
    Candles are kept. With TimescaleDB the hypertable's retention policy does it: no-op."""
    from tradingapp.services.retention import prune_ticks

    retention = current_app.config["TICK_RETENTION_DAYS"] if days is None else days
    if retention == 0:
        source = "TICK_RETENTION_DAYS=0" if days is None else "--days 0"
        click.echo(f"nothing deleted: retention is off ({source} keeps every tick)")
        return
    result = prune_ticks(retention)
    if result.cutoff is None:
        click.echo(f"nothing deleted: {result.reason}")
    else:
        click.echo(f"deleted {result.deleted} ticks older than {result.cutoff.isoformat()} (candles kept)")


def _progress(bar):
    """A read_file progress callback moving a click progress bar to the bytes read."""

    def update(done: int) -> None:
        if done > bar.pos:
            bar.update(done - bar.pos)

    return update


def _list_bad(report) -> None:
    for line, reason in report.bad:
        click.echo(f"line {line}: {reason}", err=True)
    if report.bad_count > len(report.bad):
        click.echo(f"... and {report.bad_count - len(report.bad)} more bad rows", err=True)
