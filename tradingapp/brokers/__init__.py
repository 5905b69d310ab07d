"""Brokers: the interface (base), the paper exchange (paper) and XTS (xts/)."""

from __future__ import annotations

from flask import Flask, current_app

from config import ConfigError
from tradingapp.brokers.base import Broker, BrokerError, BrokerOrder, OrderRequest

__all__ = ["Broker", "BrokerError", "BrokerOrder", "OrderRequest", "get_broker"]


def get_broker(app: Flask | None = None) -> Broker:
    """The broker named by config BROKER, built once per app."""
    app = app or current_app._get_current_object()
    broker = app.extensions.get("tradingapp.broker")
    if broker is not None:
        return broker
    name = app.config["BROKER"]
    if name == "paper":
        from tradingapp.brokers.paper.broker import PaperBroker

        broker = PaperBroker(max_quote_age=app.config["PAPER_MAX_QUOTE_AGE"])
    elif name == "xts":
        from tradingapp.brokers.xts.broker import XtsBroker

        # each user's XTS account, resolved per order by what create_app registered
        broker = XtsBroker.from_app(app, app.extensions["tradingapp.broker_credentials"])
    else:
        raise ConfigError(f"BROKER must be 'paper' or 'xts', got {name!r}")
    app.extensions["tradingapp.broker"] = broker
    return broker
