"""XTS's instrument master into our instruments table: `flask instruments sync` and the worker's
daily sync (BROKER=xts). Matched by (exchange_segment, exchange_instrument_id): new ones inserted,
changed ones updated, one the master no longer lists marked inactive (never deleted), except in a
segment the master listed nothing for. One sync at a time (a Redis lock). README: Market data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import LockError

from tradingapp.brokers.base import BrokerError
from tradingapp.brokers.xts.accounts import account_at, env_credentials
from tradingapp.brokers.xts.broker import XtsClient
from tradingapp.brokers.xts.marketdata import EQUITY, MarketData, MasterInstrument
from tradingapp.brokers.xts.session import TokenStore
from tradingapp.extensions import db, get_redis
from tradingapp.models import Instrument
from tradingapp.models.types import utcnow

log = logging.getLogger(__name__)

BATCH = 1000  # instruments per transaction
LOCK_SECONDS = 1800  # a sync that died holding the lock frees it after this
SCALE = 4  # decimal places of the tick size and strike columns
COLUMNS = (
    "symbol",
    "name",
    "series",
    "lot_size",
    "tick_size",
    "freeze_quantity",
    "expiry",
    "strike",
    "option_type",
    "active",
)
LENGTHS = {"symbol": 64, "name": 128, "series": 16}


class SyncUnavailable(RuntimeError):
    """The sync cannot run: XTS market data is not configured, or another sync holds the lock."""


@dataclass
class SyncReport:
    segments: list[str]
    in_master: int = 0  # instruments the master listed (readable, of a type we trade)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped_lines: int = 0  # lines that did not parse, of a type we do not trade, repeated or too precise
    per_segment: dict[str, int] = field(default_factory=dict)
    empty_segments: list[str] = field(default_factory=list)  # listed nothing: nothing deactivated there

    def summary(self) -> str:
        counts = ("in_master", "inserted", "updated", "unchanged", "deactivated", "skipped_lines")
        return " ".join(f"{name}={getattr(self, name)}" for name in counts)


@contextmanager
def market_data() -> Iterator[MarketData]:
    """The deployment's XTS market-data session (the instrument master needs no interactive login),
    whatever BROKER is: paper deployments may take their instruments from XTS too. Its connection
    pool is closed on the way out."""
    config = current_app.config
    missing = [name for name in ("XTS_API_URL", "XTS_MD_API_KEY", "XTS_MD_API_SECRET") if not config[name]]
    if missing:
        raise SyncUnavailable(
            f"the instrument master comes from XTS market data: set {', '.join(missing)} "
            f"(BROKER={config['BROKER']}; with BROKER=paper the demo instruments of `flask seed` are there to trade)"
        )
    store = TokenStore(get_redis(), config.get("NAMESPACE", ""))
    client = XtsClient(account_at(config, env_credentials(config)), store)
    try:
        yield client.md
    finally:
        client.http.close()


@contextmanager
def sync_lock() -> Iterator[None]:
    lock = get_redis().lock(_key("sync-lock"), timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        raise SyncUnavailable("another instrument sync is running")
    try:
        yield
    finally:
        try:
            lock.release()
        except LockError:  # expired meanwhile: nothing to free
            log.warning("event=instruments_sync_lock_lost")


@dataclass
class Master:
    """A downloaded master, ready to apply: our column values by (segment, exchange instrument id)."""

    wanted: dict[tuple[str, int], dict]
    report: SyncReport


def sync_instruments(
    md: MarketData, segments: list[str], progress: Callable[[int], None] = lambda n: None
) -> SyncReport:
    """Download the master of `segments` and apply it, under the sync lock. A broker error (XtsError)
    propagates with nothing written; `progress(n)` after each batch of n instruments."""
    with sync_lock():
        return apply_master(download_master(md, segments), progress)


def download_master(md: MarketData, segments: list[str]) -> Master:
    master = md.instrument_master(segments)
    report = SyncReport(segments=list(segments), skipped_lines=master.skipped)
    wanted = _wanted(master.instruments, set(segments), report)
    report.in_master = len(wanted)
    return Master(wanted, report)


def apply_master(master: Master, progress: Callable[[int], None] = lambda n: None) -> SyncReport:
    report, wanted = master.report, master.wanted
    items = list(wanted.items())
    for start in range(0, len(items), BATCH):
        _upsert(items[start : start + BATCH], report)
        progress(min(BATCH, len(items) - start))
    for segment in report.segments:
        listed = {ex_id for seg, ex_id in wanted if seg == segment}
        report.per_segment[segment] = len(listed)
        if listed:
            report.deactivated += _deactivate_missing(segment, listed)
        else:
            report.empty_segments.append(segment)
            log.warning("event=instruments_sync_empty_segment segment=%s", segment)
    log.info("event=instruments_synced segments=%s %s", ",".join(report.segments), report.summary())
    return report


def _wanted(instruments: list[MasterInstrument], segments: set[str], report: SyncReport) -> dict:
    """Column values by key; a repeated key (the last line wins), a segment not asked for and a
    tick size or strike finer than our columns hold count as skipped lines."""
    wanted: dict[tuple[str, int], dict] = {}
    for m in instruments:
        key = (m.exchange_segment, m.exchange_instrument_id)
        if m.exchange_segment not in segments or not _fits(m.tick_size) or not _fits(m.strike):
            report.skipped_lines += 1
            continue
        if key in wanted:
            report.skipped_lines += 1
        wanted[key] = columns_of(m)
    return wanted


def _fits(value: Decimal | None) -> bool:
    return value is None or value == value.quantize(Decimal(1).scaleb(-SCALE))


def columns_of(m: MasterInstrument) -> dict:
    """Our columns of a master instrument. A cash instrument's symbol is its name (RELIANCE, series
    EQ beside it, as traders write it); a derivative's is XTS's trading symbol (NIFTY26JANFUT)."""
    values = {
        "symbol": m.name if m.instrument_type == EQUITY else m.symbol,
        "name": m.display_name or m.name,
        "series": m.series,
        "lot_size": m.lot_size,
        "tick_size": m.tick_size,
        "freeze_quantity": m.freeze_quantity,
        "expiry": m.expiry,
        "strike": m.strike,
        "option_type": m.option_type,
        "active": True,
    }
    for name, length in LENGTHS.items():
        values[name] = values[name][:length]
    return values


def _upsert(batch: list[tuple[tuple[str, int], dict]], report: SyncReport) -> None:
    by_segment: dict[str, list[int]] = {}
    for segment, ex_id in (key for key, _ in batch):
        by_segment.setdefault(segment, []).append(ex_id)
    existing = {}
    for segment, ex_ids in by_segment.items():
        # One segment and a list of ids: an index scan of (exchange_segment, exchange_instrument_id).
        # A (segment, id) row-value IN list was planned as a table scan per batch: quadratic.
        found = db.session.execute(
            sa.select(
                Instrument.exchange_instrument_id, Instrument.id, *(getattr(Instrument, c) for c in COLUMNS)
            ).where(Instrument.exchange_segment == segment, Instrument.exchange_instrument_id.in_(ex_ids))
        ).all()
        existing.update({(segment, row[0]): row for row in found})
    inserts, updates = [], []
    for (segment, ex_id), values in batch:
        row = existing.get((segment, ex_id))
        if row is None:
            inserts.append({"exchange_segment": segment, "exchange_instrument_id": ex_id, **values})
        elif any(getattr(row, c) != values[c] for c in COLUMNS):
            updates.append({"id": row.id, **values})
        else:
            report.unchanged += 1
    if inserts:
        db.session.execute(sa.insert(Instrument), inserts)
    if updates:
        db.session.execute(sa.update(Instrument), updates)
    db.session.commit()
    report.inserted += len(inserts)
    report.updated += len(updates)


def _deactivate_missing(segment: str, listed: set[int]) -> int:
    rows = db.session.execute(
        sa.select(Instrument.id, Instrument.exchange_instrument_id, Instrument.symbol).where(
            Instrument.exchange_segment == segment, Instrument.active
        )
    ).all()
    gone = [row for row in rows if row.exchange_instrument_id not in listed]
    for start in range(0, len(gone), BATCH):
        ids = [row.id for row in gone[start : start + BATCH]]
        db.session.execute(sa.update(Instrument).where(Instrument.id.in_(ids)).values(active=False))
        db.session.commit()
    db.session.rollback()  # the read above, when nothing was gone
    for row in gone[:20]:
        log.info("event=instrument_deactivated instrument_id=%s segment=%s symbol=%s", row.id, segment, row.symbol)
    return len(gone)


# -- the worker's daily sync (BROKER=xts) -----------------------------------------------------------
RETRY_AFTER = 300  # seconds before a failed scheduled sync is tried again
SYNCED_TTL = 7 * 86400


def sync_due(now: datetime, timezone: str, at: time, last: str | None) -> date | None:
    """The session day whose sync is due (the last INSTRUMENT_SYNC_TIME passed, on that day), or None
    when `last` (the day of the last sync) is it already. A worker that starts after the time on a
    day not yet synced syncs at once."""
    local = now.astimezone(ZoneInfo(timezone))
    day = local.date() if local.time() >= at else local.date() - timedelta(days=1)
    return None if last == day.isoformat() else day


def scheduled_sync(now: datetime | None = None) -> SyncReport | None:
    """The daily sync when due (one worker runs it: the sync lock); a failure is tried again after
    RETRY_AFTER. None when nothing ran."""
    config, redis = current_app.config, get_redis()
    last = redis.get(_key("synced"))
    day = sync_due(
        now or utcnow(), config["SESSION_TIMEZONE"], config["INSTRUMENT_SYNC_TIME"], last.decode() if last else None
    )
    if day is None or redis.exists(_key("sync-retry")):
        return None
    try:
        with market_data() as md:
            report = sync_instruments(md, config["XTS_SEGMENTS"])
    except SyncUnavailable as exc:
        log.info("event=instruments_sync_skipped reason=%r", str(exc))
        return None
    except BrokerError as exc:
        redis.set(_key("sync-retry"), "1", ex=RETRY_AFTER)
        log.warning("event=instruments_sync_failed retry_in=%d error=%s: %s", RETRY_AFTER, type(exc).__name__, exc)
        return None
    redis.set(_key("synced"), day.isoformat(), ex=SYNCED_TTL)
    return report


def _key(suffix: str) -> str:
    namespace = current_app.config.get("NAMESPACE", "")
    return f"{namespace}:instruments:{suffix}" if namespace else f"instruments:{suffix}"
