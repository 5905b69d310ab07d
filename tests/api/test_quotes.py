"""GET /api/v1/quotes: latest quotes from the Redis cache."""

import pytest

from tradingapp.extensions import get_redis
from tradingapp.realtime import store_quote


def cache_quote(instrument_id: int, ltp: str, volume: int = 1200) -> None:
    pipe = get_redis().pipeline()
    store_quote(
        pipe,
        {
            "instrument_id": instrument_id,
            "ltp": ltp,
            "ltq": 5,
            "bid": ltp,
            "ask": ltp,
            "bid_qty": 10,
            "ask_qty": 20,
            "open": ltp,
            "high": ltp,
            "low": ltp,
            "close": ltp,
            "volume": volume,
            "ts": "2026-11-24T09:15:00.000000Z",
        },
        60,
    )
    pipe.execute()


def test_quotes_come_from_the_cache_in_request_order(client, trader_headers):
    cache_quote(1, "2900.05")
    cache_quote(2, "4100.10")
    response = client.get("/api/v1/quotes?instrument_ids=2,1", headers=trader_headers)
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [(q["instrument_id"], q["ltp"]) for q in items] == [(2, "4100.10"), (1, "2900.05")]


def test_quote_quantities_are_integers_and_prices_strings(client, trader_headers):
    cache_quote(1, "2900.05", volume=98765)
    quote = client.get("/api/v1/quotes?instrument_ids=1", headers=trader_headers).get_json()["items"][0]
    assert (quote["volume"], quote["ltq"], quote["bid_qty"], quote["ask_qty"]) == (98765, 5, 10, 20)
    assert (quote["bid"], quote["close"], quote["ts"]) == ("2900.05", "2900.05", "2026-11-24T09:15:00.000000Z")


def test_instruments_without_a_cached_quote_are_listed_as_missing(client, trader_headers):
    cache_quote(1, "2900.05")
    body = client.get("/api/v1/quotes?instrument_ids=1,3,999", headers=trader_headers).get_json()
    assert [q["instrument_id"] for q in body["items"]] == [1]
    assert body["missing"] == [3, 999]


def test_repeated_ids_give_one_quote(client, trader_headers):
    cache_quote(1, "2900.05")
    body = client.get("/api/v1/quotes?instrument_ids=1,1,1", headers=trader_headers).get_json()
    assert len(body["items"]) == 1


def test_quotes_require_login(client):
    response = client.get("/api/v1/quotes?instrument_ids=1")
    assert response.status_code == 401


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?instrument_ids=",
        "?instrument_ids=1,abc",
        "?instrument_ids=1.5",
        "?instrument_ids=0",
        "?instrument_ids=-2",
        "?instrument_ids=1,,2",
        "?instrument_ids=1, 2",
        "?instrument_ids=1&instrument_ids=2",
        "?instrument_ids=1&extra=2",
        "?instrument_ids=99999999999",
        "?instrument_ids=" + ",".join(str(i) for i in range(1, 102)),
    ],
)
def test_bad_instrument_ids_are_a_validation_error(client, trader_headers, query):
    response = client.get(f"/api/v1/quotes{query}", headers=trader_headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"
