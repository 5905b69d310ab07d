"""`flask check-invariants`: the order book's invariants (tradingapp/services/invariants.py) over
the whole database or a recent window; exit status 1 when one is broken (or could not be checked)."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from flask.cli import with_appcontext

from tradingapp.services.invariants import DEFAULT_GRACE, DEFAULT_LIMIT, check_all, parse_since


class Since(click.ParamType):
    name = "DURATION|TIME"

    def convert(self, value, param, ctx):
        try:
            return parse_since(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("check-invariants")
@with_appcontext
@click.option("--since", type=Since(), help="only orders created since: 30m, 24h, 7d or an ISO-8601 time")
@click.option(
    "--grace",
    type=click.IntRange(0),
    default=int(DEFAULT_GRACE.total_seconds()),
    show_default=True,
    help="seconds an order may sit in a transient state (or differ from the broker) before it counts",
)
@click.option(
    "--limit", type=click.IntRange(1), default=DEFAULT_LIMIT, show_default=True, help="violations listed per invariant"
)
@click.option("--no-dead-letters", is_flag=True, help="skip RabbitMQ's dead-letter queue and RQ's failed jobs")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def check_invariants_command(since, grace, limit, no_dead_letters, as_json):
    """Check the invariants of orders, trades, positions, funds, the audit trail and the dead letters.

    \b
    orders_settled          every accepted order final or resting (none stuck past --grace)
    sent_once               no order sent to the broker twice
    broker_agrees           the paper exchange's book agrees with ours
    fills_match_trades      filled quantity and value = the sums of the order's trades
    positions_match_fills   each position = the signed sum of its trades; realized P&L exact
    funds_consistent        cash = starting cash + realized P&L; blocked margin = the rows' margin
    audit_complete          an audit row for every state change, one fill row per trade
    dead_letters_explained  every dead-lettered message and failed order job accounted for

    Read only: safe on a live deployment (the dead-letter queue is read and put back as it was).
    Exit status 1 when an invariant is broken or a check could not run."""
    report = check_all(since=since, grace=timedelta(seconds=grace), limit=limit, dead_letters=not no_dead_letters)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        for result in report.results:
            state = "ok" if result.ok else ("ERROR" if result.error else "BROKEN")
            click.echo(f"{result.name:<24} {state:<6} checked={result.checked} violations={result.total}")
            if result.error:
                click.echo(f"  could not check: {result.error}")
            for violation in result.violations:
                message = violation.get("message", "")
                subject = " ".join(f"{k}={v}" for k, v in violation.items() if k != "message")
                click.echo(f"  {subject}: {message}")
            if result.total > len(result.violations):
                click.echo(f"  ... and {result.total - len(result.violations)} more")
        click.echo("all invariants hold" if report.ok else "INVARIANTS BROKEN")
    if not report.ok:
        raise click.exceptions.Exit(1)
