"""Flask CLI commands, one module per command group: setup (create-db, seed, create-user,
preflight), market (backfill, prune-ticks), accounts (accounts rotate-keys), instruments
(instruments sync), checks (check-invariants)."""

from __future__ import annotations

from flask import Flask

from tradingapp.cli.accounts import accounts_command
from tradingapp.cli.checks import check_invariants_command
from tradingapp.cli.instruments import instruments_command
from tradingapp.cli.market import backfill_command, prune_ticks_command
from tradingapp.cli.setup import DEMO_INSTRUMENTS, DEMO_USERS, register, seed_demo_data

__all__ = ["DEMO_INSTRUMENTS", "DEMO_USERS", "init_app", "seed_demo_data"]


def init_app(app: Flask) -> None:
    register(app)
    for command in (
        backfill_command,
        prune_ticks_command,
        accounts_command,
        instruments_command,
        check_invariants_command,
    ):
        app.cli.add_command(command)
