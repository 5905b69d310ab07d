"""Fixtures of the XTS client wired to the simulator process: the app with BROKER=xts and its broker.
Registered as a plugin by tests/conftest.py, beside the simulator's (helpers: tests/support/xts.py)."""

from __future__ import annotations

import pytest

from tests.support.xts_sim import APP_KEY, MD_KEY, MD_SECRET, SECRET_KEY
from tradingapp.brokers import get_broker

TIMEOUT = 1  # seconds: a hung place is given up quickly


def xts_config(url: str, **overrides) -> dict:
    return {"BROKER": "xts", "XTS_API_URL": url, "XTS_API_KEY": APP_KEY, "XTS_API_SECRET": SECRET_KEY,
            "XTS_MD_API_KEY": MD_KEY, "XTS_MD_API_SECRET": MD_SECRET, "XTS_MARKET_DATA_PREFIX": "/apimarketdata",
            "XTS_TIMEOUT": TIMEOUT, "XTS_CLIENT_ID": ""} | overrides  # fmt: skip


@pytest.fixture
def xts_app(app, db, xts, monkeypatch):
    """The test app with BROKER=xts pointing at the simulator (a broker of its own, closed after)."""
    for key, value in xts_config(xts.url).items():
        monkeypatch.setitem(app.config, key, value)
    app.extensions.pop("tradingapp.broker", None)
    yield app
    broker = app.extensions.pop("tradingapp.broker", None)
    if broker is not None:
        broker.close()


@pytest.fixture
def broker(xts_app):
    return get_broker(xts_app)
