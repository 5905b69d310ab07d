"""`flask check-invariants`: exit 0 and `all invariants hold` on a book the order path made, exit 1
naming the broken invariant and the order when one is broken, JSON for machines."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.support.book import trade_a_book
from tradingapp.models import Order

pytestmark = pytest.mark.usefixtures("close_publisher")


@pytest.fixture
def book(app, trader, start_consumer):
    return trade_a_book(app, trader, start_consumer)


def run(app, *args):
    return app.test_cli_runner().invoke(args=["check-invariants", "--grace", "0", *args])


def test_a_sound_book_exits_0(app, book):
    result = run(app)
    assert result.exit_code == 0, result.output
    assert "fills_match_trades       ok     checked=4 violations=0" in result.output
    assert result.output.rstrip().endswith("all invariants hold")


def test_json_lists_every_invariant(app, book):
    report = json.loads(run(app, "--json").output)
    assert report["ok"] is True and report["grace_seconds"] == 0
    assert [i["name"] for i in report["invariants"]] == [
        "orders_settled", "sent_once", "broker_agrees", "fills_match_trades", "positions_match_fills",
        "funds_consistent", "audit_complete", "dead_letters_explained",
    ]  # fmt: skip


def test_a_broken_invariant_exits_1_naming_it_and_the_order(app, db, book):
    db.session.execute(sa.update(Order).where(Order.id == book.bought.id).values(filled_value=1))
    db.session.commit()
    result = run(app)
    assert result.exit_code == 1
    assert "fills_match_trades       BROKEN checked=4 violations=1" in result.output
    assert f"order_id={book.bought.id}: filled value 1.0000, trades " in result.output
    assert result.output.rstrip().endswith("INVARIANTS BROKEN")
    assert json.loads(run(app, "--json").output)["ok"] is False


def test_since_and_no_dead_letters_narrow_the_check(app, db, book):
    report = json.loads(run(app, "--json", "--since", "1h", "--no-dead-letters").output)
    assert "dead_letters_explained" not in [i["name"] for i in report["invariants"]]
    assert report["since"] is not None and report["ok"]


def test_a_bad_since_is_a_usage_error(app, db):
    result = run(app, "--since", "last week")
    assert result.exit_code == 2
    assert "expected a duration such as 30m, 24h, 7d or an ISO-8601 time" in result.output
