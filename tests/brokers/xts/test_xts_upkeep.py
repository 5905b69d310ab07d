"""The worker's XTS duties (tradingapp/brokers/xts/upkeep.py) without a worker process: which threads
BROKER=xts starts, and one worker per book-reconcile round (the XTS simulator process, Redis)."""

from __future__ import annotations

import pytest

from jobs.worker import broker_upkeep
from tradingapp.brokers.xts.upkeep import BookReconciler, InstrumentSync, reconcile_round, upkeep_threads
from tradingapp.services.orders.reconcile import reconcile_books


def test_the_paper_worker_has_no_broker_upkeep(app):
    assert app.config["BROKER"] == "paper"
    assert broker_upkeep(app) == []


def test_xts_upkeep_is_the_book_reconcile_and_the_instrument_sync(xts_app):
    assert [type(thread) for thread in broker_upkeep(xts_app)] == [BookReconciler, InstrumentSync]


def test_without_a_market_data_app_there_is_no_instrument_sync(xts_app, monkeypatch, caplog):
    monkeypatch.setitem(xts_app.config, "XTS_MD_API_KEY", "")
    assert [type(thread) for thread in upkeep_threads(xts_app, reconcile_books)] == [BookReconciler]
    assert "event=instruments_sync_off" in caplog.text


@pytest.mark.usefixtures("close_publisher")
def test_one_worker_reconciles_the_books_per_round(xts_app, broker):
    report = reconcile_round(xts_app, lambda: broker, reconcile_books)
    assert (report.failed_accounts, report.orders) == (0, 0)
    # The round's lock holds for RECONCILE_INTERVAL: no second round, here or in another worker.
    assert reconcile_round(xts_app, lambda: broker, reconcile_books) is None
