"""The worker's XTS duties (BROKER=xts), each in a thread of its own (a broker round trip or a long
download must not hold up the worker's scheduler): the book reconcile at start and every
RECONCILE_INTERVAL, and the daily instrument sync at INSTRUMENT_SYNC_TIME. One worker runs each
round (Redis locks). The reconcile itself is ours, not XTS's (services/orders/reconcile.py): the
worker hands it in. README: Reconciliation with XTS."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Flask

from tradingapp.brokers.xts.broker import XtsBroker
from tradingapp.brokers.xts.instrument_sync import scheduled_sync
from tradingapp.extensions import db
from tradingapp.process import Periodic, claim_round

log = logging.getLogger(__name__)

SYNC_CHECK_INTERVAL = 60  # seconds between checks whether the daily instrument sync is due
Report = TypeVar("Report")
Reconcile = Callable[[XtsBroker], object]  # one round against the broker's books


class BookReconciler(Periodic):
    """Our working orders against XTS's order and trade books (`reconcile`), with a broker of its
    own (its connection pools are not shared with the job thread's). It replaces the sweeper's
    per-order lookups, which XTS's one-request-a-second book limit cannot serve."""

    def __init__(self, app: Flask, reconcile: Reconcile):
        super().__init__("order-reconcile", app.config["RECONCILE_INTERVAL"])
        self.app, self.reconcile, self.broker = app, reconcile, None

    def duty(self) -> None:
        reconcile_round(self.app, self.get_broker, self.reconcile)

    def get_broker(self) -> XtsBroker:
        if self.broker is None:
            self.broker = XtsBroker.from_app(self.app)
        return self.broker

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.broker is not None:
                self.broker.close()


def reconcile_round(
    app: Flask, broker: Callable[[], XtsBroker], reconcile: Callable[[XtsBroker], Report]
) -> Report | None:
    """One book reconcile (`broker()` gives the XtsBroker), by one worker per RECONCILE_INTERVAL (a
    Redis lock); None when another worker holds the round."""
    interval = app.config["RECONCILE_INTERVAL"]
    with app.app_context():
        try:
            if not claim_round("reconcile-books", max(interval - 1, 1) if interval else 30):
                return None
            return reconcile(broker())
        finally:
            db.session.remove()


class InstrumentSync(Periodic):
    """The daily instrument master sync: checked every minute, run when INSTRUMENT_SYNC_TIME passed
    on a day not yet synced (scheduled_sync; one worker: its lock)."""

    def __init__(self, app: Flask, interval: float = SYNC_CHECK_INTERVAL):
        super().__init__("instrument-sync", interval)
        self.app = app

    def duty(self) -> None:
        with self.app.app_context():
            try:
                scheduled_sync()
            finally:
                db.session.remove()


def upkeep_threads(app: Flask, reconcile: Reconcile) -> list[Periodic]:
    """The threads of the worker's XTS duties (not started)."""
    threads: list[Periodic] = [BookReconciler(app, reconcile)]
    if app.config["XTS_MD_API_KEY"] and app.config["XTS_MD_API_SECRET"]:
        threads.append(InstrumentSync(app))
    else:
        log.warning("event=instruments_sync_off reason=no_market_data_app (XTS_MD_API_KEY/XTS_MD_API_SECRET)")
    return threads
