"""`flask instruments sync` and brokers/xts/instrument_sync.py: the XTS instrument master (the simulator
process, and master payloads through the real parser) upserted into instruments; instruments that
left the master are inactive and refuse new orders, as do expired contracts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from config import Config, ConfigError
from tests.support.factories import set_quote
from tradingapp.brokers.xts import instrument_sync as sync
from tradingapp.brokers.xts.errors import XtsUnavailable
from tradingapp.brokers.xts.marketdata import MasterResult, parse_master
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.models import Instrument

RELIANCE = "NSECM|2885|8|RELIANCE|RELIANCE-EQ|EQ|RELIANCE-EQ|1100100002885|3480|2320|100000|0.05|1|1|RELIANCE|INE002A01018|1|1|RELIANCE-EQ|-1|-1|-1"  # noqa: E501
TCS = "NSECM|11536|8|TCS|TCS-EQ|EQ|TCS-EQ|1100100011536|4900|3300|100000|0.05|1|1|TCS|INE467B01029|1|1|TCS-EQ|-1|-1|-1"
FUTURE = "NSEFO|35001|1|NIFTY|NIFTY26JANFUT|FUTIDX|NIFTY26JANFUT|2100100035001|26000|22000|1800|0.10|75|1|26000|Nifty 50|2099-01-29T14:30:00|NIFTY 29JAN2099|1|1|NIFTY26JANFUT"  # noqa: E501
OPTION = "NSEFO|35002|2|NIFTY|NIFTY26JAN24000CE|OPTIDX|NIFTY26JAN24000CE|2100100035002|400|1|1800|0.05|75|1|26000|Nifty 50|2099-01-29T14:30:00|24000|3|NIFTY 29JAN2099 CE 24000|1|1|NIFTY26JAN24000CE"  # noqa: E501


class TextMaster:
    """A master payload through the real parser, where the simulator cannot change its own."""

    def __init__(self, *lines: str):
        self.text = "\n".join(lines)

    def instrument_master(self, segments: list[str]) -> MasterResult:
        return parse_master(self.text)


def instrument(ex_id: int) -> Instrument:
    _db.session.rollback()
    return _db.session.scalar(sa.select(Instrument).where(Instrument.exchange_instrument_id == ex_id))


def count() -> int:
    _db.session.rollback()
    return _db.session.scalar(sa.select(sa.func.count()).select_from(Instrument))


def run_sync(app, *args: str):
    return app.test_cli_runner().invoke(args=["instruments", "sync", *args])


# -- against the simulator ---------------------------------------------------------------------------
def test_sync_inserts_new_instruments_and_updates_the_seeded_ones(xts_app, xts):
    result = run_sync(xts_app)
    assert result.exit_code == 0, result.output
    assert "upserting instruments" in result.output  # the progress bar's label
    assert "instruments in the master: 7 (NSECM=5 NSEFO=2)" in result.output
    assert "inserted=1 updated=6 unchanged=0 deactivated=0 skipped_lines=0" in result.output
    option = instrument(35002)
    assert (option.series, option.lot_size, option.tick_size) == ("OPTIDX", 75, Decimal("0.05"))
    assert option.symbol.startswith("NIFTY") and option.symbol.endswith("24000CE")
    assert (option.strike, option.option_type, option.freeze_quantity, option.active) == (
        Decimal("24000"), "CE", 1800, True)  # fmt: skip
    future = instrument(35001)
    assert future.expiry == option.expiry and future.expiry > date.today()
    assert (future.symbol.endswith("FUT"), future.strike, future.option_type, future.lot_size) == (True, None, None, 75)
    reliance = instrument(2885)
    assert (reliance.id, reliance.symbol, reliance.series, reliance.freeze_quantity) == (1, "RELIANCE", "EQ", 100000)
    assert count() == 7


def test_a_second_sync_changes_nothing(xts_app, xts):
    assert run_sync(xts_app).exit_code == 0
    result = run_sync(xts_app)
    assert result.exit_code == 0, result.output
    assert "inserted=0 updated=0 unchanged=7 deactivated=0 skipped_lines=0" in result.output
    assert count() == 7


def test_segments_option_narrows_the_sync(xts_app, xts):
    result = run_sync(xts_app, "--segments", "nsefo")
    assert result.exit_code == 0, result.output
    assert "instruments in the master: 2 (NSEFO=2)" in result.output
    assert "inserted=1 updated=1 unchanged=0" in result.output
    assert instrument(2885).name == "Reliance Industries"  # NSECM untouched


def test_an_unknown_segment_is_a_usage_error(xts_app, xts):
    result = run_sync(xts_app, "--segments", "NSECM,NYSE")
    assert result.exit_code == 2
    assert "--segments" in result.output and "NYSE" in result.output


def test_a_broker_failure_exits_1_and_changes_nothing(xts_app, xts):
    xts.faults(fail_next={"master": {"count": 1, "status": 503}})
    result = run_sync(xts_app)
    assert result.exit_code == 1
    assert "the broker failed (XtsUnavailable" in result.output and "nothing changed" in result.output
    assert (count(), instrument(2885).name) == (6, "Reliance Industries")


def test_a_wrong_market_data_secret_exits_1(xts_app, xts, monkeypatch):
    monkeypatch.setitem(xts_app.config, "XTS_MD_API_SECRET", "not-the-secret")
    result = run_sync(xts_app)
    assert result.exit_code == 1
    assert "the broker failed (Xts" in result.output and "not-the-secret" not in result.output
    assert count() == 6


def test_another_sync_running_exits_1(xts_app, xts):
    with xts_app.app_context(), sync.sync_lock():
        result = run_sync(xts_app)
    assert result.exit_code == 1
    assert "another instrument sync is running" in result.output
    assert count() == 6


def test_paper_without_xts_market_data_says_what_is_needed(app, db, monkeypatch):
    for key in ("XTS_API_URL", "XTS_MD_API_KEY", "XTS_MD_API_SECRET"):
        monkeypatch.setitem(app.config, key, "")
    result = run_sync(app)
    assert result.exit_code == 1
    assert "set XTS_API_URL, XTS_MD_API_KEY, XTS_MD_API_SECRET" in result.output
    assert "BROKER=paper" in result.output


def test_paper_syncs_from_xts_market_data_when_it_is_configured(xts_app, xts, monkeypatch):
    monkeypatch.setitem(xts_app.config, "BROKER", "paper")
    monkeypatch.setitem(xts_app.config, "XTS_API_KEY", "")  # the master needs no interactive login
    result = run_sync(xts_app)
    assert result.exit_code == 0, result.output
    assert count() == 7


# -- master payloads through the parser ----------------------------------------------------------------
def apply(*lines: str, segments=("NSECM", "NSEFO")) -> sync.SyncReport:
    return sync.sync_instruments(TextMaster(*lines), list(segments))


def test_changed_lot_tick_freeze_and_name_are_updated(app, db):
    apply(RELIANCE, TCS, FUTURE, OPTION)
    changed = FUTURE.replace("|1800|0.10|75|", "|1200|0.05|50|").replace("NIFTY 29JAN2099", "NIFTY JAN FUT")
    report = apply(RELIANCE, TCS, changed, OPTION)
    assert (report.inserted, report.updated, report.unchanged, report.deactivated) == (0, 1, 3, 0)
    future = instrument(35001)
    assert (future.lot_size, future.tick_size, future.freeze_quantity, future.name) == (
        50, Decimal("0.05"), 1200, "NIFTY JAN FUT")  # fmt: skip


def test_bad_lines_are_counted_and_the_rest_applied(app, db):
    report = apply(RELIANCE, "NSECM|2885|8|RELIANCE", TCS.replace("|0.05|", "|zero|"), OPTION, OPTION, "")
    assert report.skipped_lines == 3  # too short, a bad tick size, the option repeated
    assert (report.in_master, report.inserted, report.updated) == (2, 1, 1)


def test_an_instrument_that_left_the_master_is_deactivated_and_refuses_orders(app, db, client, trader_headers):
    apply(RELIANCE, TCS, FUTURE, OPTION)
    report = apply(RELIANCE, FUTURE, OPTION)  # TCS delisted; INFY, HDFCBANK, SBIN never listed
    assert report.deactivated == 1 and not instrument(11536).active
    tcs = instrument(11536).id
    set_quote(tcs, "4100.00")
    response = client.post("/api/v1/orders", json={"instrument_id": tcs, "side": "BUY", "quantity": 1,
                                                  "order_type": "MARKET"}, headers=trader_headers)  # fmt: skip
    assert response.status_code == 422
    assert "no longer in the broker's instrument master" in response.get_json()["error"]["details"]["instrument_id"]
    listed = client.get("/api/v1/instruments?q=tcs", headers=trader_headers).get_json()["items"]
    assert listed == []
    everything = client.get("/api/v1/instruments?q=tcs&include_inactive=true", headers=trader_headers).get_json()
    assert [i["active"] for i in everything["items"]] == [False]
    assert client.get(f"/api/v1/instruments/{tcs}", headers=trader_headers).get_json()["active"] is False
    back = apply(RELIANCE, TCS, FUTURE, OPTION)  # listed again: tradable again
    assert back.updated == 1 and instrument(11536).active


def test_a_segment_the_master_lists_nothing_for_is_left_alone(app, db):
    apply(RELIANCE, TCS, FUTURE, OPTION)
    report = apply(RELIANCE, TCS)
    assert (report.deactivated, report.empty_segments) == (0, ["NSEFO"])
    assert instrument(35001).active and instrument(35002).active


def test_an_expired_contract_refuses_orders(app, db, client, trader_headers):
    future = instrument(35001)
    future.expiry = date.today() - timedelta(days=2)
    _db.session.commit()
    set_quote(future.id, "24000.00")
    response = client.post("/api/v1/orders", json={"instrument_id": future.id, "side": "BUY", "quantity": 75,
                                                  "order_type": "MARKET"}, headers=trader_headers)  # fmt: skip
    assert response.status_code == 422
    assert "expired on" in response.get_json()["error"]["details"]["instrument_id"]


def test_the_sync_lock_is_freed_after_a_failure(app, db):
    class Failing:
        def instrument_master(self, segments):
            raise XtsUnavailable("down")

    with pytest.raises(XtsUnavailable):
        sync.sync_instruments(Failing(), ["NSECM"])
    assert apply(RELIANCE).updated == 1
    assert not get_redis().keys("*sync-lock*")


def test_xts_segments_config_is_validated():
    assert Config({"XTS_SEGMENTS": "nsecm, BSEFO,nsecm"}).XTS_SEGMENTS == ["NSECM", "BSEFO"]
    assert Config({}).XTS_SEGMENTS == ["NSECM", "NSEFO"]
    with pytest.raises(ConfigError, match="XTS_SEGMENTS"):
        Config({"XTS_SEGMENTS": "NSECM,LSE"})
