"""Watchlists over HTTP: each status of the contract, lists kept per user (another user's is a 404),
and bad input that changes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tradingapp.extensions import db
from tradingapp.models import Instrument, Watchlist, WatchlistItem
from tradingapp.services.accounts.watchlists import MAX_INSTRUMENTS, MAX_LISTS

BASE = "/api/v1/watchlists"


def count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def create(client, headers, name="Watchlist 1") -> dict:
    response = client.post(BASE, json={"name": name}, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def listed(client, headers) -> list[dict]:
    response = client.get(BASE, headers=headers)
    assert response.status_code == 200
    return response.get_json()["items"]


def ids_of(watchlist: dict) -> list[int]:
    return [i["id"] for i in watchlist["instruments"]]


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()["error"]
    assert body["code"] == code
    return body


def add_instruments(n: int) -> list[int]:
    """n more instruments (the demo seed has six)."""
    rows = [
        Instrument(exchange_segment="NSECM", exchange_instrument_id=900000 + k, symbol=f"TEST{k}", name=f"Test {k}",
                   series="EQ", lot_size=1, tick_size=Decimal("0.05"))
        for k in range(n)
    ]  # fmt: skip
    db.session.add_all(rows)
    db.session.commit()
    return [row.id for row in rows]


# -- GET -----------------------------------------------------------------------------------------
def test_a_user_without_lists_gets_an_empty_list_and_nothing_is_created(client, trader_headers):
    assert listed(client, trader_headers) == []
    assert count(Watchlist) == 0


def test_lists_come_in_position_order_with_their_instruments(client, trader_headers):
    first = create(client, trader_headers, "Banks")
    second = create(client, trader_headers, "IT")
    client.put(f"{BASE}/{second['id']}/instruments/2", headers=trader_headers)
    client.put(f"{BASE}/{second['id']}/instruments/3", headers=trader_headers)
    items = listed(client, trader_headers)
    assert [(w["name"], w["position"]) for w in items] == [("Banks", 0), ("IT", 1)]
    assert items[0] == first and ids_of(items[1]) == [2, 3]


def test_the_instruments_are_the_objects_the_instrument_route_returns(client, trader_headers):
    watchlist = create(client, trader_headers)
    body = client.put(f"{BASE}/{watchlist['id']}/instruments/6", headers=trader_headers).get_json()
    assert body["instruments"] == [client.get("/api/v1/instruments/6", headers=trader_headers).get_json()]


def test_lists_need_a_token(client):
    error(client.get(BASE), 401, "unauthorized")
    error(client.post(BASE, json={"name": "x"}), 401, "unauthorized")


# -- POST ----------------------------------------------------------------------------------------
def test_create_answers_201_with_the_new_empty_list(client, trader_headers):
    response = client.post(BASE, json={"name": "  Watchlist 1  "}, headers=trader_headers)
    assert response.status_code == 201
    body = response.get_json()
    assert body == {"id": body["id"], "name": "Watchlist 1", "position": 0, "instruments": []}
    assert uuid.UUID(body["id"])


def test_a_name_of_40_characters_is_accepted(client, trader_headers):
    assert create(client, trader_headers, "x" * 40)["name"] == "x" * 40


@pytest.mark.parametrize(
    "body",
    [{}, {"name": None}, {"name": 7}, {"name": ""}, {"name": "   "}, {"name": "x" * 41}, {"name": "a\x00b"},
     {"name": "tab\tinside"}, {"name": "ok", "position": 3}],
    ids=["missing", "null", "number", "empty", "blank", "41 chars", "NUL", "control char", "unknown field"],
)  # fmt: skip
def test_a_bad_name_is_a_400_and_creates_nothing(client, trader_headers, body):
    details = error(client.post(BASE, json=body, headers=trader_headers), 400, "validation_error")["details"]
    assert set(details) & {"name", "unknown_fields"} or details.get("field") == "name"
    assert count(Watchlist) == 0


def test_a_body_that_is_not_an_object_is_a_400(client, trader_headers):
    error(client.post(BASE, json=["Watchlist 1"], headers=trader_headers), 400, "validation_error")
    assert count(Watchlist) == 0


def test_a_name_already_used_by_the_user_is_a_409_ignoring_case(client, trader_headers):
    create(client, trader_headers, "Banks")
    response = client.post(BASE, json={"name": " BANKS "}, headers=trader_headers)
    assert error(response, 409, "conflict")["details"] == {"name": "BANKS"}
    assert count(Watchlist) == 1


def test_two_users_may_use_the_same_name(client, trader_headers, make_user, auth_headers):
    create(client, trader_headers, "Banks")
    create(client, auth_headers(make_user()), "Banks")
    assert count(Watchlist) == 2


def test_the_eleventh_list_is_a_422(client, trader_headers):
    for n in range(MAX_LISTS):
        create(client, trader_headers, f"List {n}")
    response = client.post(BASE, json={"name": "One more"}, headers=trader_headers)
    assert error(response, 422, "validation_error")["details"] == {"limit": 10, "current": 10}
    assert count(Watchlist) == MAX_LISTS


def test_a_deleted_list_frees_its_place_and_the_next_goes_last(client, trader_headers):
    lists = [create(client, trader_headers, f"List {n}") for n in range(MAX_LISTS)]
    assert client.delete(f"{BASE}/{lists[0]['id']}", headers=trader_headers).status_code == 204
    assert create(client, trader_headers, "List 0")["position"] == MAX_LISTS


def test_the_database_refuses_two_names_differing_only_in_case(app, trader):
    db.session.add_all([Watchlist(user_id=trader.id, name="Banks"), Watchlist(user_id=trader.id, name="bANKS")])
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


# -- PATCH ---------------------------------------------------------------------------------------
def test_rename(client, trader_headers):
    watchlist = create(client, trader_headers, "Old")
    response = client.patch(f"{BASE}/{watchlist['id']}", json={"name": " New "}, headers=trader_headers)
    assert response.status_code == 200
    assert response.get_json() == {**watchlist, "name": "New"}
    assert listed(client, trader_headers)[0]["name"] == "New"


def test_a_list_may_change_the_case_of_its_own_name(client, trader_headers):
    watchlist = create(client, trader_headers, "banks")
    response = client.patch(f"{BASE}/{watchlist['id']}", json={"name": "Banks"}, headers=trader_headers)
    assert response.status_code == 200 and response.get_json()["name"] == "Banks"


def test_renaming_to_another_lists_name_is_a_409_and_changes_nothing(client, trader_headers):
    create(client, trader_headers, "Banks")
    other = create(client, trader_headers, "IT")
    response = client.patch(f"{BASE}/{other['id']}", json={"name": "banks", "instrument_ids": [1]},
                            headers=trader_headers)  # fmt: skip
    error(response, 409, "conflict")
    assert listed(client, trader_headers)[1] == other


def test_instrument_ids_replace_the_contents_in_the_given_order(client, trader_headers):
    watchlist = create(client, trader_headers)
    for iid in (1, 2, 3):
        client.put(f"{BASE}/{watchlist['id']}/instruments/{iid}", headers=trader_headers)
    response = client.patch(f"{BASE}/{watchlist['id']}", json={"instrument_ids": [3, 5, 1]}, headers=trader_headers)
    assert response.status_code == 200
    assert ids_of(response.get_json()) == [3, 5, 1]
    assert ids_of(listed(client, trader_headers)[0]) == [3, 5, 1]
    # appending after a reorder goes last
    body = client.put(f"{BASE}/{watchlist['id']}/instruments/2", headers=trader_headers).get_json()
    assert ids_of(body) == [3, 5, 1, 2]


def test_an_empty_instrument_list_empties_the_watchlist(client, trader_headers):
    watchlist = create(client, trader_headers)
    client.put(f"{BASE}/{watchlist['id']}/instruments/1", headers=trader_headers)
    response = client.patch(f"{BASE}/{watchlist['id']}", json={"instrument_ids": []}, headers=trader_headers)
    assert response.get_json()["instruments"] == [] and count(WatchlistItem) == 0


def test_name_and_instruments_change_together(client, trader_headers):
    watchlist = create(client, trader_headers)
    body = client.patch(f"{BASE}/{watchlist['id']}", json={"name": "Both", "instrument_ids": [4]},
                        headers=trader_headers).get_json()  # fmt: skip
    assert (body["name"], ids_of(body)) == ("Both", [4])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"instrument_ids": [1, 2, 1]}, "instrument_ids"),
        ({"instrument_ids": list(range(1, MAX_INSTRUMENTS + 2))}, "instrument_ids"),
        ({"instrument_ids": "1,2"}, "instrument_ids"),
        ({"instrument_ids": [1, "2"]}, "instrument_ids"),
        ({"instrument_ids": [1, True]}, "instrument_ids"),
        ({"instrument_ids": [0]}, "instrument_ids"),
        ({"instrument_ids": [2**31]}, "instrument_ids"),
        ({"instrument_ids": None}, "instrument_ids"),
        ({"name": ""}, "name"),
        ({"name": "ok", "instrument_ids": [1, 1]}, "instrument_ids"),
        ({}, "body"),
        ({"position": 2}, "unknown_fields"),
    ],
    ids=["duplicate", "251", "string", "string id", "bool id", "zero", "past int32", "null",
         "empty name", "valid name with duplicates", "empty body", "unknown field"],
)  # fmt: skip
def test_bad_changes_are_a_400_and_change_nothing(client, trader_headers, body, field):
    watchlist = create(client, trader_headers, "Keep")
    client.put(f"{BASE}/{watchlist['id']}/instruments/2", headers=trader_headers)
    before = listed(client, trader_headers)
    response = client.patch(f"{BASE}/{watchlist['id']}", json=body, headers=trader_headers)
    details = error(response, 400, "validation_error")["details"]
    assert any(key == field or key.startswith(f"{field}.") for key in details), details
    assert listed(client, trader_headers) == before


def test_unknown_instruments_are_named_in_a_422_and_change_nothing(client, trader_headers):
    """The body matches the document; the stored instruments refuse it."""
    watchlist = create(client, trader_headers)
    response = client.patch(f"{BASE}/{watchlist['id']}", json={"instrument_ids": [998, 1, 999]},
                            headers=trader_headers)  # fmt: skip
    assert error(response, 422, "validation_error")["details"] == {"instrument_ids": "unknown instruments: 998, 999"}
    assert listed(client, trader_headers)[0]["instruments"] == []


def test_250_instruments_fit_in_one_patch(client, trader_headers):
    ids = add_instruments(MAX_INSTRUMENTS - 6) + list(range(1, 7))
    watchlist = create(client, trader_headers)
    response = client.patch(f"{BASE}/{watchlist['id']}", json={"instrument_ids": ids}, headers=trader_headers)
    assert response.status_code == 200 and ids_of(response.get_json()) == ids


# -- DELETE ----------------------------------------------------------------------------------------
def test_delete_answers_204_and_removes_the_list_and_its_items(client, trader_headers):
    keep = create(client, trader_headers, "Keep")
    gone = create(client, trader_headers, "Gone")
    client.put(f"{BASE}/{gone['id']}/instruments/1", headers=trader_headers)
    response = client.delete(f"{BASE}/{gone['id']}", headers=trader_headers)
    assert (response.status_code, response.data) == (204, b"")
    assert listed(client, trader_headers) == [keep]
    assert count(WatchlistItem) == 0
    error(client.delete(f"{BASE}/{gone['id']}", headers=trader_headers), 404, "not_found")


# -- PUT / DELETE of one instrument --------------------------------------------------------------
def test_put_appends_and_is_idempotent(client, trader_headers):
    watchlist = create(client, trader_headers)
    first = client.put(f"{BASE}/{watchlist['id']}/instruments/5", headers=trader_headers)
    second = client.put(f"{BASE}/{watchlist['id']}/instruments/1", headers=trader_headers)
    again = client.put(f"{BASE}/{watchlist['id']}/instruments/5", headers=trader_headers)
    assert (first.status_code, second.status_code, again.status_code) == (200, 200, 200)
    assert ids_of(first.get_json()) == [5]
    assert ids_of(second.get_json()) == [5, 1]
    assert again.get_json() == second.get_json()
    assert count(WatchlistItem) == 2


def test_put_of_an_unknown_instrument_is_a_404_and_adds_nothing(client, trader_headers):
    watchlist = create(client, trader_headers)
    for path in ("999", "0", "99999999999"):
        error(client.put(f"{BASE}/{watchlist['id']}/instruments/{path}", headers=trader_headers), 404, "not_found")
    error(client.put(f"{BASE}/{watchlist['id']}/instruments/abc", headers=trader_headers), 404, "not_found")
    assert count(WatchlistItem) == 0


def test_put_on_a_full_list_is_a_422_but_an_instrument_already_there_is_still_200(client, trader_headers):
    ids = add_instruments(MAX_INSTRUMENTS - 5) + [1, 2, 3, 4, 5]
    watchlist = create(client, trader_headers)
    client.patch(f"{BASE}/{watchlist['id']}", json={"instrument_ids": ids}, headers=trader_headers)
    response = client.put(f"{BASE}/{watchlist['id']}/instruments/6", headers=trader_headers)
    assert error(response, 422, "validation_error")["details"] == {"limit": 250, "current": 250}
    assert client.put(f"{BASE}/{watchlist['id']}/instruments/1", headers=trader_headers).status_code == 200
    assert count(WatchlistItem) == MAX_INSTRUMENTS


def test_delete_of_an_instrument_removes_it_keeping_the_order(client, trader_headers):
    watchlist = create(client, trader_headers)
    client.patch(f"{BASE}/{watchlist['id']}", json={"instrument_ids": [4, 2, 6]}, headers=trader_headers)
    response = client.delete(f"{BASE}/{watchlist['id']}/instruments/2", headers=trader_headers)
    assert response.status_code == 200 and ids_of(response.get_json()) == [4, 6]


def test_delete_of_an_instrument_not_in_the_list_is_a_404(client, trader_headers):
    watchlist = create(client, trader_headers)
    client.put(f"{BASE}/{watchlist['id']}/instruments/1", headers=trader_headers)
    response = client.delete(f"{BASE}/{watchlist['id']}/instruments/2", headers=trader_headers)
    assert error(response, 404, "not_found")["message"] == "instrument not in this watchlist"
    assert count(WatchlistItem) == 1


# -- ownership and roles ---------------------------------------------------------------------------
def test_another_users_list_is_not_found_and_stays_unchanged(client, trader_headers, make_user, auth_headers):
    mine = create(client, trader_headers, "Mine")
    client.put(f"{BASE}/{mine['id']}/instruments/1", headers=trader_headers)
    before = listed(client, trader_headers)
    other = auth_headers(make_user())
    assert listed(client, other) == []
    attempts = [
        client.patch(f"{BASE}/{mine['id']}", json={"name": "Theirs"}, headers=other),
        client.delete(f"{BASE}/{mine['id']}", headers=other),
        client.put(f"{BASE}/{mine['id']}/instruments/2", headers=other),
        client.delete(f"{BASE}/{mine['id']}/instruments/1", headers=other),
    ]
    for response in attempts:
        assert error(response, 404, "not_found")["message"] == "watchlist not found"
    assert listed(client, trader_headers) == before


def test_a_malformed_list_id_is_a_404(client, trader_headers):
    for response in (
        client.patch(f"{BASE}/not-a-uuid", json={"name": "x"}, headers=trader_headers),
        client.delete(f"{BASE}/not-a-uuid", headers=trader_headers),
        client.put(f"{BASE}/not-a-uuid/instruments/1", headers=trader_headers),
        client.delete(f"{BASE}/{uuid.uuid4()}/instruments/1", headers=trader_headers),
    ):
        error(response, 404, "not_found")


def test_a_viewer_manages_its_own_lists(client, make_user, auth_headers):
    viewer = auth_headers(make_user(role="viewer"))
    watchlist = create(client, viewer, "Watching")
    assert client.put(f"{BASE}/{watchlist['id']}/instruments/1", headers=viewer).status_code == 200
    assert client.patch(f"{BASE}/{watchlist['id']}", json={"name": "Still"}, headers=viewer).status_code == 200
    assert client.delete(f"{BASE}/{watchlist['id']}/instruments/1", headers=viewer).status_code == 200
    assert client.delete(f"{BASE}/{watchlist['id']}", headers=viewer).status_code == 204
