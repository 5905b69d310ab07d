"""Tick ingest: validate ticks from `market.ticks` (shape: docs/messages.md), store them with their
one-minute candles, then refresh the quote cache. README.md, "Market data", says how batches are
stored; why the Postgres write path is built as it is stands next to _store_postgres.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import operator
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

import psycopg
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql

from tradingapp import metrics
from tradingapp.domain.feed import format_ts
from tradingapp.domain.quotes import quote_of_tick
from tradingapp.extensions import db, get_redis, upsert_insert
from tradingapp.models import Tick
from tradingapp.realtime import store_quotes
from tradingapp.services.market.candles import candles_from, upsert_candles

log = logging.getLogger(__name__)

PRICE_FIELDS = ("bid", "ask", "open", "high", "low", "close")  # optional; ltp is required
INT_LIMITS = {"ltq": 2**31 - 1, "bid_qty": 2**31 - 1, "ask_qty": 2**31 - 1, "volume": 2**63 - 1}
MAX_PRICE = Decimal(10) ** 14  # NUMERIC(18, 4)
INT32, INT64 = 2**31 - 1, 2**63 - 1
QUANTITY_LIMITS = tuple(INT_LIMITS.items())

# A price as the feed spells it: positive (checked apart), below 1e14, at most 4 decimal places.
_PLAIN_PRICE = re.compile(r"[0-9]{1,14}(?:\.[0-9]{1,4})?").fullmatch
# Price strings already validated: a live feed repeats its prices (open, close, the day's range,
# a narrow band of last prices), and a dict lookup is a fifth of the regex. Bounded.
_valid_prices: dict[str, None] = {}
VALID_PRICES_KEPT = 100_000
# How far a tick's ts may be ahead of our clock (the exchange's and ours differ a little); a tick
# further ahead is bad: it would hold the cached quote (no later tick replaces it) and make candles
# of minutes to come.
MAX_AHEAD = timedelta(minutes=5)
AHEAD_TEXT = "5 minutes"
EARLIEST = datetime.min.replace(tzinfo=UTC)


class BadTick(ValueError):
    """One tick that can never be stored; it is skipped and counted."""


def ingest_ticks(ticks: list[dict]) -> int:
    """Store valid ticks (duplicates ignored) and update cached quotes. Returns the number of valid
    ticks; invalid ones are skipped and logged. Raises on database or Redis failure (retry it)."""
    rows = parse_ticks(ticks)
    ingest_rows(rows)
    return len(rows)


class Parsed(NamedTuple):
    rows: list[dict]  # the valid ticks, parsed
    bad: int  # invalid ticks, skipped
    expired: int  # valid ticks older than the tick retention, skipped


def check_ticks(ticks: list, now: datetime | None = None, retention_days: int | None = None) -> Parsed:
    """The valid ticks of a message, parsed, and how many were skipped: invalid ones (each logged),
    a tick that parse_tick refuses or one whose ts is more than MAX_AHEAD past `now`; and expired
    ones (counted in one log line), older than `retention_days` (default TICK_RETENTION_DAYS; 0:
    none): such a tick may have been pruned already, and stored again it would add its volume to
    its candle a second time (candles outlive the ticks)."""
    now = now or datetime.now(UTC)
    newest = now + MAX_AHEAD
    oldest = tick_retention_cutoff(now, retention_days)
    floor = oldest or EARLIEST
    rows, bad, expired = [], 0, 0
    for raw in ticks:
        try:
            tick = parse_tick(raw)
            if floor <= tick["ts"] <= newest:  # the common case first: one test
                rows.append(tick)
                continue
            if tick["ts"] > newest:
                raise BadTick(f"ts {format_ts(tick['ts'])} is more than {AHEAD_TEXT} ahead of the clock")
            expired += 1
        except BadTick as exc:
            bad += 1
            log.warning("event=tick_skipped reason=%s", exc)
    if bad or expired:
        metrics.TICKS_SKIPPED.labels("invalid").inc(bad)
        metrics.TICKS_SKIPPED.labels("expired").inc(expired)
        log.warning(
            "event=ticks_parsed valid=%d skipped=%d older_than_retention=%d cutoff=%s",
            len(rows),
            bad,
            expired,
            oldest and format_ts(oldest),
        )
    return Parsed(rows, bad, expired)


def tick_retention_cutoff(now: datetime, retention_days: int | None = None) -> datetime | None:
    """The ts before which ticks may have been pruned (services/market/retention.py), or None when ticks
    are kept forever. `retention_days` defaults to TICK_RETENTION_DAYS."""
    if retention_days is None:
        retention_days = current_app.config["TICK_RETENTION_DAYS"]
    return now - timedelta(days=retention_days) if retention_days > 0 else None


def parse_ticks(ticks: list) -> list[dict]:
    """The valid ticks of a message, parsed; invalid ones are skipped and logged (check_ticks)."""
    return check_ticks(ticks).rows


def ingest_rows(rows: list[dict]) -> int:
    """Store parsed ticks with their candles (committed), then refresh the quote cache. Returns how
    many ticks were new. In that order: if Redis fails the caller redelivers the batch, the insert
    is a no-op (natural key), and the cache catches up."""
    if not rows:
        return 0
    stored = store_ticks(rows)
    metrics.TICKS_INGESTED.inc(stored)
    if stored < len(rows):  # a redelivery, or a key twice in the batch
        metrics.TICKS_SKIPPED.labels("duplicate").inc(len(rows) - stored)
    metrics.LAST_TICK.set(time.time())
    refresh_quotes(rows)
    return stored


def parse_tick(raw: object) -> dict:
    """A validated tick: ints as int, prices as exact decimal strings (positive, below 1e14, at most
    4 decimal places; floats refused), ts as an aware UTC datetime. Raises BadTick.

    The per-tick cost matters (every tick of the feed passes here): checks are inlined and the
    precise error is worked out only once a value has failed."""
    if type(raw) is not dict:
        raise BadTick("tick is not an object")
    get = raw.get
    instrument_id, seq = get("instrument_id"), get("seq")
    if type(instrument_id) is not int or not 0 < instrument_id <= INT32:
        _int(raw, "instrument_id", INT32, required=True)
        raise BadTick("instrument_id must be positive")
    if type(seq) is not int or not 0 <= seq <= INT64:
        _int(raw, "seq", INT64, required=True)
    ltp = get("ltp")
    if type(ltp) is not str or ltp not in _valid_prices:  # a price seen before: valid
        ltp = _price(ltp, "ltp")
    tick = {"instrument_id": instrument_id, "seq": seq, "ts": _ts(get("ts")), "ltp": ltp}
    for name in PRICE_FIELDS:
        value = get(name)
        if value is not None and (type(value) is not str or value not in _valid_prices):
            value = _price(value, name)
        tick[name] = value
    for name, limit in QUANTITY_LIMITS:
        value = get(name)
        if type(value) is not int or not 0 <= value <= limit:
            if value is not None:
                _int(raw, name, limit)
            value = 0
        tick[name] = value
    return tick


def _int(raw: dict, name: str, limit: int, required: bool = False) -> int | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise BadTick(f"{name} must be an integer between 0 and {limit}")
    return value


def _price(value: object, name: str) -> str:
    if type(value) is str:
        if _PLAIN_PRICE(value) and value.strip("0."):  # not zero
            if len(_valid_prices) >= VALID_PRICES_KEPT:
                _valid_prices.clear()
            _valid_prices[value] = None
            return value
    return _other_price(value, name)


def _other_price(value: object, name: str) -> str:
    """Any other spelling of a price (an int, "1E+2", " 5"), checked as a Decimal; returned plain."""
    # Floats are refused: a price that is not exact on the wire is not a price.
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise BadTick(f"{name} must be a decimal string")
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise BadTick(f"{name} is not a decimal") from None
    if not price.is_finite() or price <= 0 or price >= MAX_PRICE or price.as_tuple().exponent < -4:
        raise BadTick(f"{name} must be positive, below 1e14, with at most 4 decimal places")
    return format(price, "f")


def _ts(value: object) -> datetime:
    if type(value) is not str:
        raise BadTick("ts must be an ISO-8601 string")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise BadTick("ts is not ISO-8601") from None
    if ts.tzinfo is None:
        raise BadTick("ts must carry a time zone")
    if ts.tzinfo is UTC:
        return ts
    try:
        return ts.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it
        raise BadTick("ts is out of range") from None


def store_ticks(rows: list[dict]) -> int:
    """Store parsed ticks (as parse_tick returns them) and fold those really stored (not
    duplicates) into the candles, in one transaction (committed): a redelivered batch adds no
    candle volume twice. Returns how many ticks were new. The quote cache is not touched (see
    ingest_rows)."""
    if not rows:
        return 0
    try:
        if db.session.get_bind().dialect.name == "postgresql":
            stored = _store_postgres(rows)
        else:
            stored = _store_sqlite(rows)
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        raise
    return stored


# The ticks columns, in the staging table's order.
TICK_COLUMNS = ("instrument_id", "ts", "seq", "ltp", "ltq", "bid", "ask", "bid_qty", "ask_qty", "volume")
PRICE_COLUMNS = ("ltp", "bid", "ask")
# Prices are staged as their decimal text (binary COPY of text is nearly free in Python; Postgres
# casts it). ON COMMIT DELETE ROWS: each batch starts empty; a rollback takes its rows away too.
STAGE_DDL = sa.text(
    "CREATE TEMPORARY TABLE IF NOT EXISTS tick_stage (instrument_id integer, ts timestamptz, seq bigint,"
    " ltp text, ltq integer, bid text, ask text, bid_qty integer, ask_qty integer, volume bigint)"
    " ON COMMIT DELETE ROWS"
)
STAGE_TYPES = ("int4", "timestamptz", "int8", "text", "int4", "text", "text", "int4", "int4", "int8")
COPY_STAGE = "COPY tick_stage FROM STDIN (FORMAT BINARY)"
_stage_row = operator.itemgetter(*TICK_COLUMNS)


# The Postgres write path, chosen by measurement (scratch runs on a 2-core box, 5000-tick batches,
# 500 instruments). The batch is COPYed (binary) into a temporary staging table, then one statement
# moves it into `ticks` and folds the ticks it stored into the one-minute candles, in SQL (no tick
# row comes back to Python).
# - That statement first runs without ON CONFLICT, in a savepoint: with it the statement cost the
#   server a third more (5.6 vs 4.2 us a tick), and duplicates only come with redeliveries. A unique
#   violation (a redelivered or partly redelivered batch) rolls back to the savepoint and the same
#   statement runs again with ON CONFLICT DO NOTHING, feeding the candles only from what it
#   RETURNs: no candle counts a tick twice.
# - Staging rather than COPYing straight into `ticks`: the server's work is nearly the same (COPY
#   into ticks 26 ms vs INSERT ... SELECT 28 ms a batch: the key's index inserts dominate both), but
#   COPY into ticks needs numeric binary values, and psycopg's Decimal dumper costs ~0.55 us a
#   price: 19 ms of Python a batch vs 7.6 ms here, where prices travel as their validated decimal
#   text and Postgres casts them.
def _store_postgres(rows: list[dict]) -> int:
    session = db.session
    session.execute(STAGE_DDL)
    # psycopg's COPY on the session's own connection: the same transaction as everything else.
    raw = session.connection().connection.dbapi_connection
    with _as_sqlalchemy_error(COPY_STAGE), raw.cursor() as cursor, cursor.copy(COPY_STAGE) as copy:
        copy.set_types(STAGE_TYPES)
        write_row = copy.write_row
        for row in map(_stage_row, rows):
            write_row(row)
    try:
        with session.begin_nested():
            return session.execute(_move_stage(on_conflict=False)).scalar_one()
    except sa.exc.IntegrityError as exc:
        if not isinstance(exc.orig, psycopg.errors.UniqueViolation):
            raise
    return session.execute(_move_stage(on_conflict=True)).scalar_one()


@functools.cache  # built once: the construct (and its cache key) is the same every batch
def _move_stage(on_conflict: bool) -> sa.Select:
    """INSERT the staged ticks into `ticks` (RETURNING the rows it stored), fold those into the
    candles, and SELECT how many there were: one statement. With on_conflict, ticks already stored
    are skipped (a key twice in the batch: the first staged is the one stored)."""
    stage = sa.table("tick_stage", *(sa.column(name) for name in TICK_COLUMNS))
    values = [sa.cast(stage.c[n], sa.Numeric) if n in PRICE_COLUMNS else stage.c[n] for n in TICK_COLUMNS]
    ticks = Tick.__table__
    # In key order: two consumers inserting overlapping batches wait on each other's keys in one
    # order, never in a cycle (a deadlock, then a retry).
    rows = sa.select(*values).order_by(stage.c.instrument_id, stage.c.ts, stage.c.seq)
    insert = postgresql.insert(ticks).from_select(list(TICK_COLUMNS), rows)
    if on_conflict:
        insert = insert.on_conflict_do_nothing(index_elements=["instrument_id", "ts", "seq"])
    new = insert.returning(ticks.c.instrument_id, ticks.c.ts, ticks.c.seq, ticks.c.ltp, ticks.c.ltq).cte("new_ticks")
    return sa.select(sa.func.count()).select_from(new).add_cte(candles_from(new).cte("new_candles"))


@contextlib.contextmanager
def _as_sqlalchemy_error(statement: str):
    """psycopg's errors raised as SQLAlchemy's (OperationalError, ...): callers tell transient
    failures apart by those."""
    try:
        yield
    except psycopg.Error as exc:
        raise sa.exc.DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _store_sqlite(rows: list[dict]) -> int:
    """One INSERT; a redelivered tick hits the natural key and is ignored (RETURNING tells which
    were stored); their candles are aggregated in Python."""
    stmt = (
        upsert_insert(Tick)
        .on_conflict_do_nothing(index_elements=["instrument_id", "ts", "seq"])
        .returning(Tick.instrument_id, Tick.ts, Tick.seq)
    )
    params = [{name: row[name] for name in TICK_COLUMNS} for row in rows]
    stored = {tuple(key) for key in db.session.execute(stmt, params)}
    by_key: dict[tuple, dict] = {}
    for row in rows:  # a key twice in the batch: the first is the one stored
        by_key.setdefault((row["instrument_id"], row["ts"], row["seq"]), row)
    new = [by_key[key] for key in stored]
    upsert_candles([{**row, "ltp": Decimal(row["ltp"])} for row in new])
    return len(new)


def refresh_quotes(rows: list[dict]) -> None:
    """Write the latest tick of each instrument in `rows` into the quote cache (and publish it)."""
    latest: dict[int, dict] = {}
    for row in rows:
        current = latest.get(row["instrument_id"])
        # A key twice in the batch: the first, as the store keeps it.
        if current is None or (row["ts"], row["seq"]) > (current["ts"], current["seq"]):
            latest[row["instrument_id"]] = row
    # One script call: each quote is written (and published) only if newer by (ts, seq) than the
    # cached one, so a late redelivery or a second consumer never rolls the cache back.
    rows = list(latest.values())
    store_quotes(
        get_redis(),
        [quote_of_tick(row) for row in rows],
        current_app.config["QUOTE_TTL"],
        seqs=[row["seq"] for row in rows],
    )
