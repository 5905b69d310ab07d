"""Market data by hand: `flask backfill FILE.csv` (history from a CSV of ticks or bars) and
`flask prune-ticks` (tick retention now, as the worker does hourly)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("backfill")
@with_appcontext
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--kind", type=click.Choice(["ticks", "bars"]), default="ticks", show_default=True)
@click.option(
    "--instrument", metavar="ID|SEGMENT:SYMBOL", help="the one instrument of a file without an instrument column"
)
@click.option("--timezone", "zone", metavar="ZONE", help="zone of times written without one, e.g. Asia/Kolkata")
@click.option(
    "--batch", type=click.IntRange(1, 100_000), default=10_000, show_default=True, help="rows per transaction"
)
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
    from tradingapp.services.market import backfill

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
    """Delete ticks older than TICK_RETENTION_DAYS (the worker does it hourly): in small batches,
    or with TimescaleDB by dropping the chunks wholly past it. Candles are kept."""
    from tradingapp.services.market.retention import prune_ticks

    retention = current_app.config["TICK_RETENTION_DAYS"] if days is None else days
    if retention == 0:
        source = "TICK_RETENTION_DAYS=0" if days is None else "--days 0"
        click.echo(f"nothing deleted: retention is off ({source} keeps every tick)")
        return
    result = prune_ticks(retention)
    if result.cutoff is None:
        click.echo(f"nothing deleted: {result.reason}")
    else:
        chunks = f", {result.chunks_dropped} chunks dropped" if result.chunks_dropped else ""
        click.echo(f"deleted {result.deleted} ticks older than {result.cutoff.isoformat()}{chunks} (candles kept)")


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
