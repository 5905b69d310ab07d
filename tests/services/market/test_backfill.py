"""`flask backfill`: ticks and one-minute bars from CSV files, on the real Postgres."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tradingapp.extensions import db as _db
from tradingapp.models import Candle1m, Instrument, Tick
from tradingapp.models.types import iso
from tradingapp.services.market.ticks import ingest_ticks

MINUTE = datetime(2026, 11, 23, 4, 5, tzinfo=UTC)  # 09:35 in Asia/Kolkata

TICKS = """instrument_id,ts,seq,ltp,ltq,bid,ask
1,2026-11-23T04:05:01Z,1,100.50,10,100.45,100.55
1,2026-11-23T04:05:30Z,2,101.00,5,,
1,2026-11-23T04:06:10Z,3,99.75,7,,
2,2026-11-23T04:05:02+00:00,1,3500,2,,
"""

BARS = """symbol,bucket,open,high,low,close,volume
RELIANCE,2026-11-23T04:05:00Z,100,102,99,101,1000
RELIANCE,2026-11-23T04:06:00Z,101,101.5,100.25,100.5,700
TCS,2026-11-23T09:35:00+05:30,3500,3510,3490,3505,40
"""


@pytest.fixture
def backfill(app, db, tmp_path):
    """backfill(csv_text, *options) -> the CLI result, running `flask backfill` on a file."""
    runner = app.test_cli_runner()

    def run(text: str, *options: str, name: str = "data.csv"):
        path = tmp_path / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        result = runner.invoke(args=["backfill", str(path), *options])
        _db.session.expire_all()
        return result

    return run


def ticks() -> list[tuple]:
    rows = _db.session.execute(sa.select(Tick.instrument_id, Tick.ts, Tick.seq, Tick.ltp, Tick.ltq).order_by(
        Tick.instrument_id, Tick.ts, Tick.seq))  # fmt: skip
    return [tuple(row) for row in rows]


def candles() -> list[tuple]:
    c = Candle1m
    rows = _db.session.execute(sa.select(c.instrument_id, c.bucket, c.open, c.high, c.low, c.close, c.volume)
                               .order_by(c.instrument_id, c.bucket))  # fmt: skip
    return [tuple(row) for row in rows]


# -- ticks ----------------------------------------------------------------------------------------


def test_ticks_are_stored_and_folded_into_candles(backfill):
    result = backfill(TICKS)
    assert result.exit_code == 0, result.output
    assert "ticks: 4 rows, 4 new, 0 already stored" in result.output
    assert len(ticks()) == 4
    assert candles() == [
        (1, MINUTE, Decimal("100.5"), 101, Decimal("100.5"), 101, 15),
        (1, MINUTE + timedelta(minutes=1), Decimal("99.75"), Decimal("99.75"), Decimal("99.75"), Decimal("99.75"), 7),
        (2, MINUTE, 3500, 3500, 3500, 3500, 2),
    ]


def test_running_a_tick_file_again_stores_nothing_and_adds_no_volume(backfill):
    backfill(TICKS)
    before = candles()
    result = backfill(TICKS)
    assert result.exit_code == 0, result.output
    assert "4 rows, 0 new, 4 already stored" in result.output
    assert candles() == before and len(ticks()) == 4


def test_ticks_already_stored_by_the_feed_are_not_counted_again(backfill):
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": "2026-11-23T04:05:01Z", "ltp": "100.50", "ltq": 10}])
    result = backfill(TICKS)
    assert "4 rows, 3 new, 1 already stored" in result.output
    assert candles()[0][-1] == 15


def test_small_batches_store_the_whole_file(backfill):
    result = backfill(TICKS, "--batch", "1")
    assert result.exit_code == 0, result.output
    assert len(ticks()) == 4 and candles()[0][-1] == 15


def test_instruments_named_by_segment_and_symbol_or_symbol_alone(backfill):
    text = """exchange_segment,symbol,ts,seq,ltp
NSECM,TCS,2026-11-23T04:05:00Z,1,3500
,INFY,2026-11-23T04:05:00Z,1,1500
"""
    result = backfill(text)
    assert result.exit_code == 0, result.output
    tcs, infy = (_db.session.scalar(sa.select(Instrument.id).where(Instrument.symbol == s)) for s in ("TCS", "INFY"))
    assert [(row[0], row[3]) for row in ticks()] == sorted([(tcs, 3500), (infy, 1500)])


def test_a_one_instrument_file_names_it_with_the_option(backfill):
    result = backfill("ts,seq,ltp\n2026-11-23T04:05:00Z,1,2900.05\n", "--instrument", "NSECM:RELIANCE")
    assert result.exit_code == 0, result.output
    assert ticks()[0][0] == 1 and ticks()[0][3] == Decimal("2900.05")


def test_without_a_seq_column_same_time_ticks_are_numbered_and_a_rerun_is_harmless(backfill):
    text = """instrument_id,ts,ltp,ltq
1,2026-11-23T04:05:00Z,100,1
1,2026-11-23T04:05:00Z,101,2
1,2026-11-23T04:05:01Z,102,3
"""
    backfill(text)
    result = backfill(text)
    assert "3 rows, 0 new" in result.output
    assert [(row[2], row[3]) for row in ticks()] == [(0, 100), (1, 101), (0, 102)]
    assert candles()[0][-1] == 6


def test_without_a_seq_column_same_time_ticks_on_lines_apart_are_numbered_in_file_order(backfill):
    text = """instrument_id,ts,ltp,ltq
1,2026-11-23T04:05:01Z,100,1
1,2026-11-23T04:05:02Z,101,2
1,2026-11-23T04:05:01Z,102,4
"""
    result = backfill(text)
    assert "3 rows, 3 new, 0 already stored" in result.output
    assert [(row[2], row[3]) for row in ticks()] == [(0, 100), (1, 102), (0, 101)]
    assert candles()[0][-1] == 7
    assert "3 rows, 0 new, 3 already stored" in backfill(text).output


def test_an_empty_seq_cell_is_a_bad_row(backfill):
    text = "instrument_id,ts,seq,ltp,ltq\n1,2026-11-23T04:05:01Z,,100,1\n1,2026-11-23T04:05:01Z,,101,2\n"
    result = backfill(text)
    assert result.exit_code == 1
    assert "line 2: seq is empty (a file with a seq column needs it on every row)" in result.stderr.splitlines()
    assert ticks() == []


def test_a_tick_key_repeated_in_the_file_is_counted_apart_from_ticks_already_stored(backfill):
    text = TICKS + "1,2026-11-23T04:05:01Z,1,100.60,10,,\n"
    assert "5 rows, 4 new, 0 already stored, 1 repeated in the file (the first taken)" in backfill(text).output
    assert "5 rows, 0 new, 4 already stored, 1 repeated in the file" in backfill(text).output
    assert ticks()[0][3] == Decimal("100.5") and candles()[0][-1] == 15


def test_times_without_a_zone_are_read_in_the_given_timezone(backfill):
    text = "instrument_id,ts,seq,ltp\n1,2026-11-23 09:35:00,1,100\n"
    refused = backfill(text)
    assert refused.exit_code == 1 and "has no time zone" in refused.output
    result = backfill(text, "--timezone", "Asia/Kolkata")
    assert result.exit_code == 0, result.output
    assert ticks()[0][1] == MINUTE


def test_an_unknown_timezone_is_a_usage_error(backfill):
    result = backfill(TICKS, "--timezone", "Mars/Olympus")
    assert result.exit_code == 2 and "unknown time zone" in result.output


# -- bad input ------------------------------------------------------------------------------------

BAD_TICKS = """instrument_id,ts,seq,ltp,ltq
1,2026-11-23T04:05:01Z,1,100.50,10
1,2026-11-23T04:05:02Z,2,-5,10
999,2026-11-23T04:05:03Z,3,100,1
1,yesterday,4,100,1
1,2026-11-23T04:05:04Z,5,100.12345,1
1,2026-11-23T04:05:05Z,six,100,1
1,2026-11-23T04:05:06Z,7
1,2026-11-23T04:05:07Z,8,101,2
"""


def test_a_file_with_bad_rows_imports_nothing_and_lists_each_line_and_reason(backfill):
    result = backfill(BAD_TICKS)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert "line 3: ltp must be positive, below 1e14, with at most 4 decimal places" in lines
    assert "line 4: unknown instrument_id 999" in lines
    assert "line 5: ts 'yesterday' is not an ISO-8601 time" in lines
    assert "line 6: ltp must be positive, below 1e14, with at most 4 decimal places" in lines
    assert "line 7: seq 'six' is not an integer" in lines
    assert "line 8: 3 fields, the header has 5" in lines
    assert "6 bad row(s) of 8: nothing imported" in result.output and "--skip-bad" in result.output
    assert ticks() == [] and candles() == []


def test_skip_bad_imports_the_good_rows_and_lists_the_bad(backfill):
    result = backfill(BAD_TICKS, "--skip-bad")
    assert result.exit_code == 0, result.output
    assert "line 4: unknown instrument_id 999" in result.stderr
    assert "8 rows, 2 new, 0 already stored, 6 bad skipped" in result.output
    assert [row[2] for row in ticks()] == [1, 8]


def test_skip_bad_without_a_seq_column_is_refused_so_a_fixed_row_never_shifts_the_numbers(backfill):
    # Numbered in file order, a skipped row would take no number: fixed and imported again, the
    # rows after it would shift (one stored twice, one never).
    broken = """instrument_id,ts,ltp,ltq
1,2026-11-23T04:05:01Z,100,1
1,2026-11-23T04:05:01Z,abc,2
1,2026-11-23T04:05:01Z,102,3
"""
    result = backfill(broken, "--skip-bad")
    assert result.exit_code == 1
    assert "line 3: ltp is not a decimal" in result.stderr and "--skip-bad needs a seq column" in result.output
    assert ticks() == []
    assert backfill(broken.replace(",abc,", ",101,")).exit_code == 0
    assert [(row[2], row[3]) for row in ticks()] == [(0, 100), (1, 101), (2, 102)]
    assert candles()[0][-1] == 6


def many_ticks_then(last_line: bytes) -> bytes:
    good = "".join(f"1,2026-11-23T04:05:{i % 60:02d}Z,{i},100,1\n" for i in range(1, 3000))  # lines 2-3000
    return b"instrument_id,ts,seq,ltp,ltq\n" + good.encode() + last_line


def test_skip_bad_reads_the_whole_file_first_so_an_unreadable_one_imports_nothing(backfill):
    result = backfill(many_ticks_then(b"1,2026-11-23T04:06:00Z,99,\xff\xfe,1\n"), "--skip-bad", "--batch", "10")
    assert result.exit_code == 1
    assert "line 3001: not UTF-8 text; nothing imported" in result.output
    assert ticks() == []


def test_a_file_unreadable_only_at_import_says_what_was_written(backfill, monkeypatch):
    # The check pass found nothing wrong: the file changed before the import pass got to its end.
    from tradingapp.services.market import backfill as service

    monkeypatch.setattr(service, "check_file", lambda *args, **kwargs: service.Report())
    result = backfill(many_ticks_then(b"1,2026-11-23T04:06:00Z,99,\xff\xfe,1\n"), "--batch", "1000")
    assert result.exit_code == 1
    assert (
        "line 3001: not UTF-8 text; rows up to line 2001 were imported (2000 new): running again after the fix is "
        "harmless" in result.output
    )
    assert len(ticks()) == 2000


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("", (), "the file is empty"),
        ("instrument_id,ts,seq\n1,2026-11-23T04:05:00Z,1\n", (), "missing column(s) ltp"),
        ("instrument_id,ts,seq,ltp,price\n", (), "unknown column(s) price"),
        ("instrument_id,ts,ts,ltp\n", (), "column(s) named twice: ts"),
        ("ts,seq,ltp\n2026-11-23T04:05:00Z,1,100\n", (), "no instrument: add an instrument_id"),
        (TICKS, ("--instrument", "1"), "--instrument given but the file names instruments too"),
        ("ts,seq,ltp\n", ("--instrument", "NOPE"), "--instrument: unknown instrument NOPE"),
        ("ts,open,high,low\n", ("--kind", "bars", "--instrument", "1"), "missing column(s) close"),
    ],
)
def test_a_bad_file_is_refused_with_the_reason_and_nothing_imported(backfill, text, options, message):
    result = backfill(text, *options)
    assert result.exit_code == 1
    assert message in result.output and "nothing imported" in result.output
    assert ticks() == []


def test_a_file_that_is_not_utf8_is_refused(backfill):
    result = backfill(b"instrument_id,ts,seq,ltp\n1,2026-11-23T04:05:00Z,1,\xff\xfe100\n")
    assert result.exit_code == 1 and "not UTF-8 text" in result.output
    assert ticks() == []


def test_tick_rows_past_the_retention_or_within_a_day_of_it_are_refused(backfill):
    # Retention deletes ticks but keeps their candles: a pruned tick imported again would count twice.
    now = datetime.now(UTC)
    rows = [(now - timedelta(days=days)).isoformat() for days in (400, 364.5, 363)]
    text = "instrument_id,ts,seq,ltp,ltq\n" + "".join(f"1,{ts},1,100,5\n" for ts in rows)
    result = backfill(text)
    assert result.exit_code == 1
    message = "older than the tick retention (365 days): import bars for this range"
    assert result.stderr.splitlines()[:2] == [f"line 2: {message}", f"line 3: {message}"]
    assert ticks() == []
    result = backfill(text, "--skip-bad")
    assert "3 rows, 1 new" in result.output and len(ticks()) == 1


def test_the_check_and_the_import_pass_judge_times_by_one_clock(db, tmp_path):
    # The CLI reads the clock once: a row the check passed is not refused by the import a moment later.
    from tradingapp.services.market import backfill as service

    checked_at = datetime.now(UTC) - timedelta(days=10)
    path = tmp_path / "edge.csv"
    path.write_text(f"instrument_id,ts,seq,ltp,ltq\n1,{(checked_at - timedelta(days=360)).isoformat()},1,100,5\n")
    instruments = service.Instruments()
    assert service.check_file(str(path), "ticks", instruments, now=checked_at).bad_count == 0
    assert service.check_file(str(path), "ticks", instruments).bad_count == 1  # by today's clock: too old
    assert service.import_file(str(path), "ticks", instruments, now=checked_at).written == 1


def test_with_retention_off_old_tick_rows_are_imported(backfill, app, monkeypatch):
    monkeypatch.setitem(app.config, "TICK_RETENTION_DAYS", 0)
    result = backfill("instrument_id,ts,seq,ltp,ltq\n1,2020-01-02T04:05:00Z,1,100,5\n")
    assert result.exit_code == 0, result.output
    assert len(ticks()) == 1


def test_a_tick_row_ahead_of_the_clock_is_refused(backfill):
    ahead = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    result = backfill(f"instrument_id,ts,seq,ltp,ltq\n1,{ahead},1,100,5\n")
    assert result.exit_code == 1 and "is more than 5 minutes ahead of the clock" in result.stderr


# -- bars -----------------------------------------------------------------------------------------


def test_bars_become_candles_and_the_candles_endpoint_serves_them(backfill, client, trader_headers):
    result = backfill(BARS, "--kind", "bars")
    assert result.exit_code == 0, result.output
    assert "bars: 3 rows, 3 written" in result.output
    assert candles()[:2] == [
        (1, MINUTE, 100, 102, 99, 101, 1000),
        (1, MINUTE + timedelta(minutes=1), 101, Decimal("101.5"), Decimal("100.25"), Decimal("100.5"), 700),
    ]
    start, end = iso(MINUTE - timedelta(minutes=5)), iso(MINUTE + timedelta(minutes=10))
    items = client.get(f"/api/v1/instruments/1/candles?interval=5m&start={start}&end={end}",
                       headers=trader_headers).get_json()["items"]  # fmt: skip
    assert items == [{"ts": iso(MINUTE), "open": "100", "high": "102", "low": "99", "close": "100.5", "volume": 1700}]


def test_a_bar_imported_again_replaces_its_candle_without_doubling_volume(backfill):
    backfill(BARS, "--kind", "bars")
    corrected = BARS.replace("100,102,99,101,1000", "100,103,99,102,1100")
    assert backfill(corrected, "--kind", "bars").exit_code == 0
    backfill(corrected, "--kind", "bars")
    assert candles()[0] == (1, MINUTE, 100, 103, 99, 102, 1100)


def test_a_bar_replaces_a_candle_built_from_ticks(backfill):
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": iso(MINUTE + timedelta(seconds=5)), "ltp": "90", "ltq": 3}])
    backfill(BARS, "--kind", "bars")
    assert candles()[0] == (1, MINUTE, 100, 102, 99, 101, 1000)


def test_a_live_tick_after_a_bar_widens_it_and_adds_volume_but_keeps_open_and_close(backfill):
    backfill(BARS, "--kind", "bars")
    ingest_ticks([{"instrument_id": 1, "seq": 1, "ts": iso(MINUTE + timedelta(seconds=59)), "ltp": "104", "ltq": 3},
                  {"instrument_id": 1, "seq": 2, "ts": iso(MINUTE), "ltp": "98", "ltq": 2}])  # fmt: skip
    assert candles()[0] == (1, MINUTE, 100, 104, 98, 101, 1005)


def test_no_tick_of_a_bars_minute_moves_its_open_or_close_whatever_its_seq(backfill):
    backfill(BARS, "--kind", "bars")
    last = MINUTE + timedelta(seconds=59, microseconds=999_999)
    first = {"instrument_id": 1, "seq": 0, "ts": iso(MINUTE), "ltp": "98.5", "ltq": 1}
    ingest_ticks([first, {**first, "seq": 2**63 - 2, "ts": last.isoformat(), "ltp": "103.5"}])
    assert candles()[0] == (1, MINUTE, 100, Decimal("103.5"), Decimal("98.5"), 101, 1002)


def test_the_same_bar_twice_in_a_file_is_taken_once_the_later_winning(backfill):
    text = BARS + "RELIANCE,2026-11-23T04:05:00Z,100,105,99,104,1200\n"
    result = backfill(text, "--kind", "bars")
    assert result.exit_code == 0, result.output
    assert candles()[0] == (1, MINUTE, 100, 105, 99, 104, 1200)


def test_a_bar_of_the_current_minute_or_later_is_refused(backfill):
    if datetime.now(UTC).second >= 58:  # the import must run in the minute the rows were made in
        time.sleep(3)
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    rows = "".join(f"1,{(minute + timedelta(minutes=m)).isoformat()},100,102,99,101,10\n" for m in (-1, 0, 1))
    result = backfill("instrument_id,ts,open,high,low,close,volume\n" + rows, "--kind", "bars", "--skip-bad")
    assert result.stderr.splitlines() == [
        f"line 3: ts {minute.isoformat()} is the current minute or later: bars are for minutes that have passed",
        f"line 4: ts {(minute + timedelta(minutes=1)).isoformat()} is the current minute or later: bars are for "
        "minutes that have passed",
    ]
    assert [row[1] for row in candles()] == [minute - timedelta(minutes=1)]


def test_bad_bars_are_listed_and_nothing_is_written(backfill):
    text = """instrument_id,ts,open,high,low,close,volume
1,2026-11-23T04:05:30Z,100,102,99,101,10
1,2026-11-23T04:06:00Z,100,102,101,101,10
1,2026-11-23T04:07:00Z,100,99,98,99,10
1,2026-11-23T04:08:00Z,100,,98,99,10
1,2026-11-23T04:09:00Z,100,102,98,99,-1
1,2026-11-23T04:10:00Z,100,102,98,99,10
"""
    result = backfill(text, "--kind", "bars")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:-1] == [
        "line 2: ts '2026-11-23T04:05:30Z' is not the start of a minute (bars are one-minute bars)",
        "line 3: low must be <= open and close, high >= open and close",
        "line 4: low must be <= open and close, high >= open and close",
        "line 5: high is empty",
        f"line 6: volume must be an integer between 0 and {2**63 - 1}",
    ]
    assert candles() == []


def test_a_symbol_on_several_instruments_asks_for_the_id(backfill, db):
    db.session.add(Instrument(exchange_segment="BSECM", exchange_instrument_id=500325, symbol="RELIANCE",
                              name="Reliance", series="EQ", lot_size=1, tick_size=Decimal("0.05")))  # fmt: skip
    db.session.commit()
    result = backfill(BARS, "--kind", "bars")
    assert result.exit_code == 1
    assert "line 2: RELIANCE names 2 instruments: use instrument_id (or add exchange_segment)" in result.stderr
