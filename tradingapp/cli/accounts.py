"""`flask accounts rotate-keys`: re-encrypt every linked broker account's secrets under the first of
SECRETS_ENCRYPTION_KEYS (rotation: put a new key first, run this, then drop the old key)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from tradingapp.security.crypto import SecretsUnavailable

accounts_command = AppGroup("accounts", help="Linked broker accounts.")


@accounts_command.command("rotate-keys")
def rotate_keys_command():
    """Re-encrypt every stored broker secret under the first key of SECRETS_ENCRYPTION_KEYS.

    Secrets already under it are left alone, so running it again changes nothing. Exit status 1
    when a secret opens with none of the keys (its account is listed: the user must PUT new
    secrets, or the key that encrypted it must be put back)."""
    from tradingapp.services.accounts.broker_accounts import rotate_secrets

    try:
        report = rotate_secrets()
    except SecretsUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"accounts={report.accounts} rotated={report.rotated} already_current={report.current} "
        f"unreadable={len(report.unreadable)}"
    )
    if report.unreadable:
        for account_id in report.unreadable:
            click.echo(f"unreadable: account {account_id} (no key opens its secret)", err=True)
        raise click.exceptions.Exit(1)
