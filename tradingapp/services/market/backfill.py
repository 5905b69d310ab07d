"""Backfill from a CSV file (`flask backfill`, tradingapp/cli/market.py): ticks, stored as the feed
stores them and folded into the candles, or one-minute bars written straight into candles_1m.
Running a file twice is harmless: ticks dedupe on their key, a bar replaces its minute's candle.
README.md, "Market data", has the file format and the rules for bars, ticks and retention.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from tradingapp.extensions import db, upsert_insert
from tradingapp.models import Candle1m, Instrument
from tradingapp.services.market.ticks import (
    AHEAD_TEXT,
    MAX_AHEAD,
    BadTick,
    parse_tick,
    store_ticks,
    tick_retention_cutoff,
)

KINDS = ("ticks", "bars")
BATCH = 10_000
INSTRUMENT_COLUMNS = ("instrument_id", "exchange_segment", "symbol")
INT_COLUMNS = ("seq", "ltq", "bid_qty", "ask_qty", "volume")
COLUMNS = {
    "ticks": {
        "required": ("ts", "ltp"),
        "optional": ("seq", "ltq", "bid", "ask", "bid_qty", "ask_qty", "volume"),
    },
    "bars": {"required": ("ts", "open", "high", "low", "close"), "optional": ("volume",)},
}
# A bar is taken as the whole minute: it replaces the candle, whatever live or backfilled ticks had
# built there, and is stamped from (its start, seq 0) to (its last microsecond, LAST_SEQ). So a tick
# stored later for that minute (it should not come: bars are for minutes that have passed) moves
# neither its open nor its close, whatever its ts and seq, but does widen high/low and add volume.
LAST_MICROSECOND = timedelta(seconds=59, microseconds=999_999)  # a bar spans its whole minute
LAST_SEQ = 2**63 - 1  # ... and every seq of it
RETENTION_MARGIN = timedelta(days=1)  # tick rows this close to the retention cutoff are refused too


class BadFile(ValueError):
    """The file as a whole cannot be read (header, encoding). Raised by import_file, `report` says
    what was written before (the check pass, run first, finds it before anything is)."""

    report: Report | None = None


class BadRow(ValueError):
    """One row that cannot be imported, with the reason."""


@dataclass
class Report:
    rows: int = 0  # data rows read
    written: int = 0  # ticks newly stored, or bars written
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first MAX_LISTED
    bad_count: int = 0
    repeated: int = 0  # ticks whose key an earlier line of the file has (not written again)
    numbered: bool = False  # ticks numbered by the reader: the file has no seq column
    written_through: int = 0  # the last line of the last batch written

    MAX_LISTED = 50

    def add_bad(self, line: int, reason: str) -> None:
        self.bad_count += 1
        if len(self.bad) < self.MAX_LISTED:
            self.bad.append((line, reason))


class Instruments:
    """Names an instrument for a row: the --instrument option, an instrument_id column, or an
    exchange_segment + symbol (or a symbol alone, when only one instrument has it)."""

    def __init__(self, fixed: str | None = None):
        rows = db.session.execute(sa.select(Instrument.id, Instrument.exchange_segment, Instrument.symbol)).all()
        self.ids = {row.id for row in rows}
        self.by_name: dict[tuple[str, str], list[int]] = {}
        self.by_symbol: dict[str, list[int]] = {}
        for row in rows:
            self.by_name.setdefault((row.exchange_segment.upper(), row.symbol.upper()), []).append(row.id)
            self.by_symbol.setdefault(row.symbol.upper(), []).append(row.id)
        self.fixed = None
        if fixed is not None:
            try:
                self.fixed = self.resolve_name(fixed)
            except BadRow as exc:
                raise BadFile(f"--instrument: {exc}") from None

    def resolve_name(self, name: str) -> int:
        name = name.strip()
        if name.isdigit():
            return self.resolve_id(name)
        segment, _, symbol = name.rpartition(":")
        return self.resolve_symbol(symbol, segment)

    def resolve_id(self, raw: str) -> int:
        try:
            instrument_id = int(raw)
        except ValueError:
            raise BadRow(f"instrument_id {raw!r} is not an integer") from None
        if instrument_id not in self.ids:
            raise BadRow(f"unknown instrument_id {instrument_id}")
        return instrument_id

    def resolve_symbol(self, symbol: str, segment: str = "") -> int:
        symbol, segment = symbol.strip().upper(), segment.strip().upper()
        found = self.by_name.get((segment, symbol), []) if segment else self.by_symbol.get(symbol, [])
        where = f"{segment}:{symbol}" if segment else symbol
        if not found:
            raise BadRow(f"unknown instrument {where}")
        if len(found) > 1:
            raise BadRow(f"{where} names {len(found)} instruments: use instrument_id (or add exchange_segment)")
        return found[0]

    def of_row(self, row: dict[str, str]) -> int:
        if self.fixed is not None:
            return self.fixed
        if "instrument_id" in row:
            return self.resolve_id(row["instrument_id"].strip())
        return self.resolve_symbol(row["symbol"], row.get("exchange_segment", ""))


def check_header(header: list[str] | None, kind: str, fixed_instrument: bool) -> list[str]:
    """The header's column names (trimmed, lower case), or BadFile saying what is wrong."""
    if not header:
        raise BadFile("the file is empty: the first line must name the columns")
    names = [name.strip().lower() for name in header]
    if kind == "bars" and "bucket" in names and "ts" not in names:
        names[names.index("bucket")] = "ts"  # a bar's minute may be headed `bucket`
    spec = COLUMNS[kind]
    allowed = set(spec["required"]) | set(spec["optional"]) | set(INSTRUMENT_COLUMNS)
    problems = []
    if missing := [name for name in spec["required"] if name not in names]:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown := [name for name in names if name not in allowed]:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if duplicated := sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"column(s) named twice: {', '.join(duplicated)}")
    named = "instrument_id" in names or "symbol" in names
    if fixed_instrument and (named or "exchange_segment" in names):
        problems.append("--instrument given but the file names instruments too: use one or the other")
    if not fixed_instrument and not named:
        problems.append("no instrument: add an instrument_id (or symbol) column, or pass --instrument")
    if problems:
        raise BadFile(f"{kind} header: {'; '.join(problems)}")
    return names


def parse_time(raw: str, zone: ZoneInfo | None) -> str:
    """ISO-8601 text with a zone; a time without one is read in `zone` (--timezone) when given."""
    raw = raw.strip()
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRow(f"ts {raw!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        if zone is None:
            raise BadRow(f"ts {raw!r} has no time zone (add Z or +05:30, or pass --timezone)")
        value = value.replace(tzinfo=zone)
    return value.isoformat()


def _raw(row: dict[str, str], names: tuple[str, ...]) -> dict:
    """The row's non-empty cells in the shape parse_tick takes: integers as int, prices as text."""
    raw: dict = {}
    for name in names:
        value = (row.get(name) or "").strip()
        if not value:
            continue
        if name in INT_COLUMNS:
            try:
                raw[name] = int(value)
            except ValueError:
                raise BadRow(f"{name} {value!r} is not an integer") from None
        else:
            raw[name] = value
    return raw


def parse_tick_row(row: dict[str, str], instrument_id: int, zone: ZoneInfo | None) -> dict:
    raw = _raw(row, COLUMNS["ticks"]["optional"] + ("ltp",))
    raw.update(instrument_id=instrument_id, ts=parse_time(row["ts"], zone))
    if "seq" in row and "seq" not in raw:
        raise BadRow("seq is empty (a file with a seq column needs it on every row)")
    raw.setdefault("seq", 0)  # numbered per (instrument, ts) by the reader when the file has no seq
    try:
        return parse_tick(raw)
    except BadTick as exc:
        raise BadRow(str(exc)) from None


def parse_bar_row(row: dict[str, str], instrument_id: int, zone: ZoneInfo | None) -> dict:
    """A one-minute bar as a candles_1m row. The tick parser checks its prices and volume (the
    same rules as a tick's), then the bar's own: a minute's start, low <= open/close <= high."""
    raw = _raw(row, ("open", "high", "low", "close", "volume"))
    if missing := [name for name in ("open", "high", "low", "close") if name not in raw]:
        raise BadRow(f"{', '.join(missing)} is empty")
    try:
        bar = parse_tick(
            {**raw, "instrument_id": instrument_id, "seq": 0, "ts": parse_time(row["ts"], zone), "ltp": raw["close"]}
        )
    except BadTick as exc:
        raise BadRow(str(exc)) from None
    bucket = bar["ts"]
    if bucket.second or bucket.microsecond:
        raise BadRow(f"ts {row['ts'].strip()!r} is not the start of a minute (bars are one-minute bars)")
    open_, high, low, close = (Decimal(str(bar[name])) for name in ("open", "high", "low", "close"))
    if not low <= min(open_, close) or not high >= max(open_, close):
        raise BadRow("low must be <= open and close, high >= open and close")
    return {
        "instrument_id": instrument_id,
        "bucket": bucket,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": bar["volume"],
        "first_ts": bucket,
        "last_ts": bucket + LAST_MICROSECOND,
        "first_seq": 0,
        "last_seq": LAST_SEQ,
    }


PARSERS = {"ticks": parse_tick_row, "bars": parse_bar_row}


def time_check(kind: str, now: datetime) -> Callable[[dict], None]:
    """The check of a parsed row's time against the clock (BadRow): a bar of a minute that has
    passed (the current one is the live ticks': a bar replacing it, their volume would count
    twice); a tick neither ahead of the clock (past the feed's allowance) nor older than the tick
    retention (TICK_RETENTION_DAYS, less a margin: its candle outlives it, and a pruned tick stored
    again would count twice)."""
    if kind == "bars":
        current_minute = now.replace(second=0, microsecond=0)

        def check_bar(bar: dict) -> None:
            if bar["bucket"] >= current_minute:
                raise BadRow(
                    f"ts {bar['bucket'].isoformat()} is the current minute or later: bars are for minutes "
                    "that have passed"
                )

        return check_bar
    newest = now + MAX_AHEAD
    retention_days = current_app.config["TICK_RETENTION_DAYS"]
    cutoff = tick_retention_cutoff(now, retention_days)
    oldest = cutoff + RETENTION_MARGIN if cutoff is not None else None

    def check_tick(tick: dict) -> None:
        if tick["ts"] > newest:
            raise BadRow(f"ts {tick['ts'].isoformat()} is more than {AHEAD_TEXT} ahead of the clock")
        if oldest is not None and tick["ts"] < oldest:
            raise BadRow(f"older than the tick retention ({retention_days} days): import bars for this range")

    return check_tick


def read_file(
    path: str,
    kind: str,
    instruments: Instruments,
    zone: ZoneInfo | None = None,
    progress: Callable[[int], None] | None = None,
    report: Report | None = None,
    now: datetime | None = None,
) -> Iterator[tuple[int, dict | str | None]]:
    """(line number, parsed row) for each data row, (line number, reason) for a bad one, or (line
    number, None) for a tick whose key (instrument_id, ts, seq) an earlier line has. `progress` is
    told the bytes read so far; `report.numbered` whether ticks are numbered (no seq column); rows'
    times are checked against `now` (the check and the import pass give the same one). BadFile for
    a file that cannot be read at all."""
    parse, check_time = PARSERS[kind], time_check(kind, now or datetime.now(UTC))
    with open(path, "rb") as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        try:
            names = check_header(next(reader, None), kind, instruments.fixed is not None)
            keys = _TickKeys(numbered="seq" not in names) if kind == "ticks" else None
            if report is not None:
                report.numbered = keys is not None and keys.numbered
            for cells in reader:
                if progress:
                    progress(binary.tell())
                if not cells or cells == [""]:
                    continue  # a blank line
                try:
                    if len(cells) != len(names):
                        raise BadRow(f"{len(cells)} fields, the header has {len(names)}")
                    row = dict(zip(names, cells, strict=True))
                    item = parse(row, instruments.of_row(row), zone)
                    check_time(item)
                except BadRow as exc:
                    yield reader.line_num, str(exc)
                    continue
                yield reader.line_num, item if keys is None or keys.add(item) else None
        except UnicodeDecodeError:
            # The text is decoded a chunk at a time, ahead of the csv reader: find the line itself.
            raise BadFile(f"line {_undecodable_line(path)}: not UTF-8 text") from None
        except csv.Error as exc:
            raise BadFile(f"line {reader.line_num}: {exc}") from None


def _undecodable_line(path: str) -> int:
    """The number of the first line of a file that is not UTF-8."""
    number = 0
    with open(path, "rb") as binary:
        for number, line in enumerate(binary, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return number


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)
TS_OFFSET = 2**56  # epoch microseconds of year 1 .. 9999, made non-negative: under 2**59


class _TickKeys:
    """The tick keys of a file so far. Without a seq column the ticks are numbered: 0, 1, 2... for
    the ticks of one instrument with the same ts, in file order wherever they stand, so the same
    file read again gives the same keys. With one, a key an earlier line had is told apart (a
    repeat in the file, not a tick stored before). Memory grows with the file: a key is kept as one
    int (~70 bytes with its slot; a tuple of an int and a datetime costs twice that)."""

    def __init__(self, numbered: bool):
        self.numbered = numbered
        self.counts: dict[int, int] = {}  # numbered: ticks so far per (instrument_id, ts)
        self.seen: set[int] = set()  # otherwise: the (instrument_id, ts, seq) keys

    def add(self, tick: dict) -> bool:
        """Number the tick (numbered) or note its key; False for a key seen before."""
        key = tick["instrument_id"] << 59 | ((tick["ts"] - EPOCH) // ONE_MICROSECOND + TS_OFFSET)
        if self.numbered:
            tick["seq"] = self.counts.get(key, 0)
            self.counts[key] = tick["seq"] + 1
            return True
        key = key << 63 | tick["seq"]
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def check_file(path: str, kind: str, instruments: Instruments, zone=None, progress=None, now=None) -> Report:
    """Read the whole file without writing: how many rows, and which are bad (BadFile for a file
    that cannot be read to its end)."""
    report = Report()
    for line, item in read_file(path, kind, instruments, zone, progress, report, now):
        report.rows += 1
        if isinstance(item, str):
            report.add_bad(line, item)
        elif item is None:
            report.repeated += 1
    return report


def import_file(
    path: str, kind: str, instruments: Instruments, zone=None, batch: int = BATCH, progress=None, now=None
) -> Report:
    """Write the file's good rows, `batch` per transaction; bad rows are reported, not written, and
    so are ticks repeated in the file (the first line's is written). BadFile (its `report` says
    what was written) for a file that cannot be read to its end."""
    report, rows = Report(), []
    write = store_ticks if kind == "ticks" else replace_bars
    try:
        for line, item in read_file(path, kind, instruments, zone, progress, report, now):
            report.rows += 1
            if isinstance(item, str):
                report.add_bad(line, item)
                continue
            if item is None:
                report.repeated += 1
                continue
            rows.append(item)
            if len(rows) >= batch:
                report.written += write(rows)
                report.written_through, rows = line, []
        if rows:
            report.written += write(rows)
            report.written_through = line
    except BadFile as exc:
        exc.report = report
        raise
    return report


BAR_COLUMNS = ("open", "high", "low", "close", "volume", "first_ts", "last_ts", "first_seq", "last_seq")


def replace_bars(bars: list[dict]) -> int:
    """Upsert one-minute bars into candles_1m, each replacing its minute's candle (re-importing a
    bar never doubles its volume), in one committed transaction. A bar twice: the later wins."""
    by_key = {(bar["instrument_id"], bar["bucket"]): bar for bar in bars}
    rows = [by_key[key] for key in sorted(by_key)]  # one lock order for concurrent imports
    table = Candle1m.__table__
    stmt = upsert_insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=["instrument_id", "bucket"],
        set_={name: stmt.excluded[name] for name in BAR_COLUMNS},
    )
    try:
        db.session.execute(stmt, rows)
        db.session.commit()
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        raise
    return len(rows)
