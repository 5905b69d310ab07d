"""The XTS event bridge (`python -m jobs.xts_bridge`; with BROKER=xts `python -m jobs.feed` runs it).
It holds XTS's two socket.io streams and turns what they say into our messages: order and trade
events -> `broker.events`, touchlines -> `market.ticks`. Reconnects, reconciles and publishing:
docs/xts.md, "The event bridge". It serves its metrics on XTS_BRIDGE_METRICS_PORT (logins,
reconnects, session gauges, ticks published, the market-data gauges) and beats its heartbeat
(HEARTBEAT_DIR/xts_bridge) from its main loop.
"""

from __future__ import annotations

import logging
import threading
import time

import requests
import sqlalchemy as sa
from flask import Flask

from tradingapp import logs, metrics
from tradingapp.brokers.xts.market_stream import MarketStream
from tradingapp.brokers.xts.order_stream import OrderStream
from tradingapp.brokers.xts.outbox import Outbox
from tradingapp.brokers.xts.session import INTERACTIVE, MARKETDATA, TokenStore, XtsAccount, XtsSession
from tradingapp.brokers.xts.stream import quiet_client_loggers
from tradingapp.extensions import db, get_redis
from tradingapp.heartbeat import Heartbeat
from tradingapp.messaging import Publisher
from tradingapp.models import Instrument
from tradingapp.process import StopFlag
from tradingapp.services.market import gauges

log = logging.getLogger("jobs.xts_bridge")

INSTRUMENT_REFRESH_SECONDS = 60
ACCOUNT_REFRESH_SECONDS = 30  # linked accounts: a stream starts for a new one, stops for an unlinked one
REFRESH_RETRY_SECONDS = 2
LOG_SECONDS = 60
JOIN_SECONDS = 10.0


class InstrumentMap:
    """XTS (segment, exchange instrument id) -> our instrument id, from the instruments table."""

    def __init__(self):
        self.ids: dict[tuple[str, int], int] = {}

    def refresh(self) -> list[tuple[str, int]]:
        """Reload; returns the keys that are new since the last load."""
        try:
            rows = db.session.execute(
                sa.select(Instrument.exchange_segment, Instrument.exchange_instrument_id, Instrument.id)
            ).all()
        finally:
            db.session.remove()  # no connection held between refreshes
        ids = {(segment.upper(), int(ex_id)): iid for segment, ex_id, iid in rows}
        new = [key for key in ids if key not in self.ids]
        self.ids = ids  # one assignment: readers on other threads see the old map or the new one
        return new

    def get(self, segment: str, exchange_instrument_id: int) -> int | None:
        return self.ids.get((segment, exchange_instrument_id))

    def keys(self) -> list[tuple[str, int]]:
        return list(self.ids)


def account_from(
    config, app_key: str, secret_key: str, client_id: str = "", md_app_key: str = "", md_secret_key: str = ""
) -> XtsAccount:
    return XtsAccount(
        url=config["XTS_API_URL"],
        app_key=app_key,
        secret_key=secret_key,
        client_id=client_id,
        md_app_key=md_app_key,
        md_secret_key=md_secret_key,
        md_prefix=config["XTS_MARKET_DATA_PREFIX"],
        timeout=float(config["XTS_TIMEOUT"]),
    )


def default_account(config) -> XtsAccount:
    """The deployment's account (XTS_API_KEY/XTS_API_SECRET...; empty keys when there is none)."""
    return account_from(
        config,
        config["XTS_API_KEY"],
        config["XTS_API_SECRET"],
        config["XTS_CLIENT_ID"],
        config["XTS_MD_API_KEY"],
        config["XTS_MD_API_SECRET"],
    )


def watched_accounts(config) -> dict[str, XtsAccount]:
    """label -> account: the deployment's (when it has keys) and every active linked account
    (users who linked their own trade through it: their events come on its own socket)."""
    from tradingapp.services.accounts.broker_accounts import linked_credentials

    accounts: dict[str, XtsAccount] = {}
    default = default_account(config)
    if default.app_key and default.secret_key:
        accounts["default"] = default
    try:
        linked = linked_credentials()
    finally:
        db.session.remove()
    for c in linked:
        account = account_from(config, c.app_key, c.secret_key, c.client_id)
        if account not in accounts.values():  # one stream per account, whoever linked it
            accounts[str(c.account_id)] = account
    return accounts


class Bridge:
    def __init__(self, app: Flask, stop: StopFlag):
        cfg = app.config
        self.config = cfg
        self.stop = stop
        self.halt = threading.Event()  # the threads' view of `stop` (set by the main loop)
        self.account = default_account(cfg)
        self.store = TokenStore(get_redis(), cfg.get("NAMESPACE", ""))
        self.http = requests.Session()
        self.eio = cfg["XTS_SOCKETIO_EIO"]
        self.instruments = InstrumentMap()
        self.outbox = Outbox(
            lambda: Publisher(cfg["AMQP_URL"], cfg.get("NAMESPACE", ""), cfg["AMQP_SSL"]),
            flush_interval=max(cfg["XTS_TICK_FLUSH_MS"], 1) / 1000,
            on_recovered=self.reconcile_all,
        )
        self.orders: dict[str, OrderStream] = {}  # label -> the stream of one account
        self.heartbeat = Heartbeat(cfg["HEARTBEAT_DIR"], "xts_bridge")
        self.market = None
        if self.account.md_app_key and self.account.md_secret_key:
            self.market = MarketStream(
                XtsSession(self.account, MARKETDATA, self.http, self.store),
                self.outbox,
                self.eio,
                self.halt,
                self.instruments.get,
                self.instruments.keys,
            )

    def run(self) -> None:
        quiet_client_loggers()  # their INFO lines carry the session token
        log.info(
            "event=xts_bridge_started url=%s eio=%d market_data=%s", self.account.url, self.eio, self.market is not None
        )
        if self.market is None:
            log.warning("event=xts_bridge_no_market_data reason='XTS_MD_API_KEY/XTS_MD_API_SECRET not set'")
        next_refresh = next_accounts = logged_at = 0.0
        if self.market is not None:  # the instruments are known before the stream first subscribes
            next_refresh = time.monotonic() + self.refresh_instruments()
        outbox = threading.Thread(target=self.outbox.run, name="xts-outbox")
        streams = self.market.threads() if self.market else []
        for thread in [outbox, *streams]:
            thread.start()
        try:
            while not self.stop.is_set():
                self.heartbeat.beat()
                now = time.monotonic()
                if now >= next_accounts:
                    next_accounts = now + self.refresh_accounts()
                if self.market is not None and now >= next_refresh:
                    next_refresh = now + self.refresh_instruments()
                if now - logged_at >= LOG_SECONDS:
                    logged_at = now
                    self.log_progress()
                time.sleep(0.05)
        finally:
            self.halt.set()  # the streams close their sockets, the reconcilers stop
            for orders in self.orders.values():
                orders.stop()
            for orders in self.orders.values():
                orders.stop(wait=JOIN_SECONDS)
            for thread in streams:
                thread.join(JOIN_SECONDS)
            self.outbox.stop()  # order events still waiting get a few seconds to go out
            outbox.join(JOIN_SECONDS + 10)
            self.log_progress()
            log.info("event=xts_bridge_stopped")
        self.heartbeat.clear()  # a clean stop (a crash leaves the file to go stale)

    def refresh_accounts(self) -> float:
        """Start a stream for each account to watch, stop those of accounts gone (unlinked, or
        linked again with new secrets); seconds until the next refresh."""
        try:
            wanted = watched_accounts(self.config)
        except Exception as exc:  # the database is down: keep the streams running
            log.warning("event=xts_accounts_refresh_failed error=%s", type(exc).__name__)
            return REFRESH_RETRY_SECONDS
        for label, orders in list(self.orders.items()):
            if wanted.get(label) != orders.session.account:
                log.info("event=xts_account_stream_stopped account=%s", label)
                self.orders.pop(label).stop()
        for label, account in wanted.items():
            if label not in self.orders:
                session = XtsSession(account, INTERACTIVE, self.http, self.store)
                orders = self.orders[label] = OrderStream(
                    session, self.outbox, self.eio, self.config["XTS_RECONCILE_INTERVAL"], label
                )
                orders.start()
                log.info("event=xts_account_stream_started account=%s", label)
        if not self.orders:
            log.warning("event=xts_bridge_no_account reason='no XTS_API_KEY and no linked account'")
        return ACCOUNT_REFRESH_SECONDS

    def reconcile_all(self, reason: str) -> None:
        for orders in list(self.orders.values()):
            orders.reconciler.request(reason)

    def refresh_instruments(self) -> float:
        """Reload the instrument map, subscribe new instruments; seconds until the next refresh."""
        try:
            new = self.instruments.refresh()
        except Exception as exc:  # keep the old map and try again soon
            log.warning("event=xts_instruments_refresh_failed error=%s", type(exc).__name__)
            return REFRESH_RETRY_SECONDS
        try:
            self.market.added(new)
        except Exception as exc:  # subscribed again at the stream's next connect
            log.warning("event=xts_subscribe_failed error=%s: %s", type(exc).__name__, exc)
        return INSTRUMENT_REFRESH_SECONDS

    def log_progress(self) -> None:
        counts: dict[str, int] = dict(self.market.counts) if self.market else {}
        for orders in list(self.orders.values()):
            for key, value in orders.counts.items():
                counts[key] = counts.get(key, 0) + value
        streams = list(self.orders.values())
        log.info(
            "event=xts_bridge_progress accounts=%d interactive_connections=%d marketdata_connections=%d "
            "reconciles=%d %s %s",
            len(streams),
            sum(o.stream.connections for o in streams),
            self.market.stream.connections if self.market else 0,
            sum(o.reconciler.runs for o in streams),
            " ".join(f"{k}={v}" for k, v in sorted(counts.items())),
            " ".join(f"outbox_{k}={v}" for k, v in self.outbox.stats.items()),
        )


def serve(app: Flask) -> None:
    """Run the bridge until SIGTERM/SIGINT (also what `python -m jobs.feed` does with BROKER=xts)."""
    logs.set_process("xts_bridge")
    config = app.extensions["tradingapp.config"]
    metrics.serve(
        "xts_bridge", config.METRICS_HOST, config.XTS_BRIDGE_METRICS_PORT, config.METRICS_TOKEN, [gauges.collector(app)]
    )
    stop = StopFlag.on_signals()
    with app.app_context():
        Bridge(app, stop).run()


def main() -> None:
    from tradingapp import create_app

    logs.set_process("xts_bridge")
    serve(create_app())


if __name__ == "__main__":
    main()
