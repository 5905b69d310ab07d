"""`flask instruments sync`: the broker's instrument master into our instruments table
(brokers/xts/instrument_sync.py; the worker runs the same sync daily with BROKER=xts)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from config import ConfigError, parse_segments

instruments_command = AppGroup("instruments", help="Instrument reference data.")


@instruments_command.command("sync")
@click.option("--segments", metavar="NSECM,NSEFO", help="exchange segments to sync (default: XTS_SEGMENTS)")
def sync_command(segments):
    """Download XTS's instrument master and upsert our instruments.

    Instruments are matched by exchange segment and exchange instrument id: new ones are
    inserted, changed ones (lot size, tick size, freeze quantity, expiry, strike, option type,
    symbol, name, series) updated; running it again changes nothing. An instrument of a synced
    segment the master no longer lists is marked inactive (no new orders on it), never deleted.
    Needs XTS_API_URL, XTS_MD_API_KEY and XTS_MD_API_SECRET (whatever BROKER is). Exit status 1
    when the broker fails (nothing is changed then) or another sync is running."""
    from tradingapp.brokers.base import BrokerError
    from tradingapp.brokers.xts import instrument_sync as sync

    try:
        chosen = parse_segments("--segments", segments) if segments else current_app.config["XTS_SEGMENTS"]
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--segments") from None
    try:
        with sync.market_data() as md, sync.sync_lock():
            click.echo(
                f"downloading the instrument master of {','.join(chosen)} from {current_app.config['XTS_API_URL']}"
            )
            master = sync.download_master(md, chosen)
            with click.progressbar(length=len(master.wanted), label="upserting instruments") as bar:
                report = sync.apply_master(master, bar.update)
    except sync.SyncUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except BrokerError as exc:
        raise click.ClickException(f"the broker failed ({type(exc).__name__}: {exc}); nothing changed") from None
    per_segment = " ".join(f"{segment}={count}" for segment, count in report.per_segment.items())
    click.echo(f"instruments in the master: {report.in_master} ({per_segment})")
    click.echo(
        f"inserted={report.inserted} updated={report.updated} unchanged={report.unchanged} "
        f"deactivated={report.deactivated} skipped_lines={report.skipped_lines}"
    )
    for segment in report.empty_segments:
        click.echo(
            f"warning: the master listed nothing for {segment}; none of its instruments was deactivated", err=True
        )
