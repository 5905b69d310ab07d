"""The XTS client against the simulator process over real HTTP: the shared session (one login for
many calls, one re-login after expiry, two processes that never log each other out), and an order
placed through our API with BROKER=xts reaching the simulator exactly once under every fault:
latency, 5xx before and after the work, a place accepted and never answered (slept past the timeout,
or the line cut), session expiry, 429, malformed answers."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

import pytest
import requests

from tests.support import wait_until
from tests.support.factories import reload, set_quote
from tests.support.jobs import retry_due_jobs, run_worker
from tests.support.xts import MARKET, at_simulator, claimed, past_the_horizon, place_via_api, settle, xts_orders
from tradingapp import events as ev
from tradingapp.brokers.xts.broker import MIN_RESEND_HORIZON, XtsBroker, resend_horizon
from tradingapp.brokers.xts.errors import XtsAuthError, XtsRateLimited, XtsResponseError, XtsUnavailable
from tradingapp.brokers.xts.session import INTERACTIVE, MARKETDATA, TokenStore, XtsAccount, XtsSession
from tradingapp.extensions import get_redis
from tradingapp.services.accounts.broker_accounts import credentials_for
from tradingapp.services.orders import jobqueue
from tradingapp.services.orders.sweeper import sweep_once

pytestmark = pytest.mark.usefixtures("close_publisher")


def logins(xts) -> int:
    return xts.state()["requests"].get("login", 0)


@pytest.fixture
def jobs_log(caplog):
    caplog.set_level(logging.INFO, logger="jobs.order_jobs")
    caplog.set_level(logging.INFO, logger="tradingapp.brokers.xts")
    return caplog


# -- the session ---------------------------------------------------------------------------------
def test_one_login_serves_many_calls(broker, xts):
    for _ in range(5):
        broker.order_book()
    broker.positions()
    assert logins(xts) == 1
    assert xts.state()["requests"]["orders"] == 5


def test_session_expiry_mid_run_logs_in_once_and_the_call_goes_through(broker, xts):
    broker.order_book()
    xts.control("sessions/expire", {"api": "interactive"})
    rows, skipped = broker.order_book()
    assert (rows, skipped) == ([], 0)
    assert logins(xts) == 2
    assert xts.state()["requests"]["orders"] == 3  # the refused call, then the same call again


def test_two_processes_share_one_session_and_never_log_each_other_out(xts_app, xts):
    """XTS ends a session at the next login of the same user (the simulator's single_session)."""
    store = TokenStore(get_redis(), xts_app.config["NAMESPACE"])
    first, second = XtsBroker(store), XtsBroker(store)  # two workers: nothing shared but Redis
    try:
        for _ in range(3):
            first.order_book()
            second.order_book()
        assert logins(xts) == 1
        xts.control("sessions/expire", {})
        first.order_book()  # logs in again
        second.order_book()  # its token is the dead one: picks up the new shared session, no login
        first.order_book()
        assert logins(xts) == 2
        assert len([s for s in xts.state()["sessions"] if s["api"] == INTERACTIVE]) == 1
    finally:
        first.close()
        second.close()


def test_a_shared_session_that_died_too_is_replaced_by_one_login(xts_app, xts):
    store = TokenStore(get_redis(), xts_app.config["NAMESPACE"])
    first, second = XtsBroker(store), XtsBroker(store)
    try:
        first.order_book()
        xts.control("sessions/expire", {})
        second.order_book()  # the shared token is first's dead one: second logs in
        xts.control("sessions/expire", {})  # and that one dies too
        first.order_book()  # its own token dead, the shared one dead: one login of its own
        assert logins(xts) == 3
    finally:
        first.close()
        second.close()


def test_wrong_credentials_are_an_auth_error(xts_app, xts, monkeypatch):
    monkeypatch.setitem(xts_app.config, "XTS_API_SECRET", "wrong")
    broker = XtsBroker.from_app(xts_app)
    try:
        with pytest.raises(XtsAuthError, match="Invalid appKey or secretKey"):
            broker.order_book()
    finally:
        broker.close()


def test_a_linked_account_with_a_wrong_secret_never_rides_on_another_users_session(xts_app, xts, client,
                                                                                   trader_headers, make_user,
                                                                                   auth_headers, tap):  # fmt: skip
    """The shared session is keyed by URL, app key and secret: the right dealer app key with a wrong
    secret logs in (and is refused) instead of acting for any client id through a live session."""
    good = {"broker": "xts", "app_key": "sim-dealer-key", "secret_key": "sim-dealer-secret", "client_id": "CLIENT1"}
    assert client.post("/api/v1/broker-accounts", json=good, headers=trader_headers).status_code == 201
    set_quote(1, MARKET)
    first = place_via_api(client, trader_headers)
    run_worker(xts_app)
    assert len(at_simulator(xts, first)) == 1  # the dealer's session is live and shared
    mallory = auth_headers(make_user())
    bad = {"broker": "xts", "app_key": "sim-dealer-key", "secret_key": "WRONG-secret-xyz", "client_id": "CLIENT2"}
    assert client.post("/api/v1/broker-accounts", json=bad, headers=mallory).status_code == 201
    second = place_via_api(client, mallory)
    run_worker(xts_app)
    assert [r for r in xts_orders(xts) if r["OrderUniqueIdentifier"] == str(second)] == []
    assert reload(second).status == "SUBMITTED"  # the job failed on the refused login, nothing sent


def test_the_session_key_is_a_digest_of_the_url_app_key_and_secret(xts_app):
    store = TokenStore(get_redis(), xts_app.config["NAMESPACE"])
    account = XtsAccount(url="http://xts.example", app_key="key", secret_key="secret-one")
    keys = {store.key(INTERACTIVE, account), store.key(INTERACTIVE, replace(account, secret_key="secret-two")),
            store.key(INTERACTIVE, replace(account, app_key="other")), store.key(MARKETDATA, account)}  # fmt: skip
    assert len(keys) == 4
    assert store.key(INTERACTIVE, account) == store.key(INTERACTIVE, replace(account, client_id="C1"))
    assert not any("secret" in key for key in keys)


def test_dealer_account_without_a_client_id_is_refused_clearly_and_logs_in_once(xts_app, xts, monkeypatch):
    monkeypatch.setitem(xts_app.config, "XTS_API_KEY", "sim-dealer-key")
    monkeypatch.setitem(xts_app.config, "XTS_API_SECRET", "sim-dealer-secret")
    broker = XtsBroker.from_app(xts_app)
    try:
        for _ in range(3):
            with pytest.raises(XtsAuthError, match="needs a client id: XTS_CLIENT_ID .* client_id for a linked one"):
                broker.order_book()
        assert logins(xts) == 1  # the session is kept (other users of it stay logged in)
        assert xts.state()["requests"].get("orders", 0) == 0
    finally:
        broker.close()


def test_dealer_account_sends_its_client_id_on_every_call(xts_app, xts, monkeypatch, trader, tap):
    monkeypatch.setitem(xts_app.config, "XTS_API_KEY", "sim-dealer-key")
    monkeypatch.setitem(xts_app.config, "XTS_API_SECRET", "sim-dealer-secret")
    without = XtsBroker.from_app(xts_app)
    dealer = XtsBroker.from_app(xts_app, credentials_for)
    try:
        with pytest.raises(XtsAuthError, match="XTS_CLIENT_ID"):
            without.order_book()
        monkeypatch.setitem(xts_app.config, "XTS_CLIENT_ID", "CLIENT2")  # accounts are resolved per call
        request = order_request(trader)
        app_order_id = int(dealer.place(request))
        assert [r.app_order_id for r in dealer.order_book()[0]] == [app_order_id]
        assert requests.get(f"{xts.url}/_sim/orders", timeout=5).json()["orders"][0]["ClientID"] == "CLIENT2"
    finally:
        without.close()
        dealer.close()


def test_a_broker_built_without_credentials_sends_no_users_order(xts_app, xts, trader):
    """Only a broker handed the users' credentials (the factory's) trades for them; one without them
    serves the deployment's account alone and never guesses a user's."""
    broker = XtsBroker.from_app(xts_app)
    try:
        request = order_request(trader)
        with pytest.raises(XtsAuthError, match="without a resolver"):
            broker.place(request)
        assert at_simulator(xts, request.order_id) == []
        assert broker.order_book() == ([], 0)  # the deployment's account: no user in it
    finally:
        broker.close()


def test_a_users_linked_account_places_their_orders(xts_app, xts, client, trader_headers, make_user, auth_headers,
                                                     tap):  # fmt: skip
    link = {"broker": "xts", "app_key": "sim-dealer-key", "secret_key": "sim-dealer-secret", "client_id": "CLIENT1"}
    assert client.post("/api/v1/broker-accounts", json=link, headers=trader_headers).status_code == 201
    set_quote(1, MARKET)
    linked = place_via_api(client, trader_headers)
    default = place_via_api(client, auth_headers(make_user()))
    run_worker(xts_app)
    by_order = {r["OrderUniqueIdentifier"]: r for r in xts_orders(xts)}
    assert (by_order[str(linked)]["LoginID"], by_order[str(linked)]["ClientID"]) == ("SIMDEALER", "CLIENT1")
    assert by_order[str(default)]["LoginID"] == "SIMUSER1"
    settle(tap)
    assert xts_app.extensions["tradingapp.broker"].lookup(linked).status == "filled"  # through the dealer's session


def test_an_invalid_token_place_creates_no_order_at_the_simulator(xts):
    """Why a place answered "Invalid Token" may be sent again after the re-login."""
    response = xts.place("not-a-token")
    assert response.status_code == 400 and response.json()["description"] == "Invalid Token"
    assert xts.state()["orders"] == 0


def test_an_order_after_session_expiry_reaches_the_simulator_once(xts_app, broker, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    broker.order_book()
    xts.control("sessions/expire", {})
    order_id = place_via_api(client, trader_headers)
    run_worker(xts_app)
    assert len(at_simulator(xts, order_id)) == 1
    assert (logins(xts), xts.state()["requests"]["place"]) == (2, 2)  # refused (Invalid Token), then sent
    assert not jobqueue.get_queue().scheduled_job_registry.get_job_ids()


def order_request(user, **overrides):
    from tradingapp.brokers.base import OrderRequest

    values = dict(order_id=uuid.uuid4(), user_id=user.id, instrument_id=1, exchange_segment="NSECM",
                  exchange_instrument_id=2885, side="BUY", quantity=10, order_type="MARKET", limit_price=None,
                  stop_price=None, product="MIS", time_in_force="DAY")  # fmt: skip
    return OrderRequest(**(values | overrides))


# -- the full path: POST /orders -> the RQ job -> the simulator ------------------------------------
def test_order_through_our_api_reaches_the_simulator_once_and_fills(xts_app, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    order_id = place_via_api(client, trader_headers)
    run_worker(xts_app)
    assert placed_once(xts, tap, order_id).status == "OPEN"
    known = xts_app.extensions["tradingapp.broker"].lookup(order_id)  # what the bridge would deliver
    assert (known.status, known.filled_quantity) == ("filled", 10)
    assert [e["type"] for e in settle(tap)] == [ev.ACCEPTED, ev.FILL]
    order = reload(order_id)
    assert (order.status, order.filled_quantity, order.broker) == ("FILLED", 10, "xts")


def placed_once(xts, tap, order_id, sent: int | None = None):
    """The order is at the simulator exactly once (after `sent` place requests, when given) and ours,
    its events applied, carries that AppOrderID: our order, reloaded."""
    [app_order_id] = at_simulator(xts, order_id)
    if sent is not None:
        assert xts.state()["requests"]["place"] == sent
    settle(tap)
    order = reload(order_id)
    assert order.broker_order_id == str(app_order_id)
    return order


def run_with_one_retry(app) -> None:
    """The job fails (BrokerError), RQ schedules its retry, the retry runs."""
    run_worker(app)
    assert jobqueue.get_queue().scheduled_job_registry.get_job_ids(), "the job did not fail"
    retry_due_jobs(app)


@pytest.mark.parametrize(
    "fault",
    [
        {"hang_place": {"count": 1, "mode": "sleep", "seconds": 2}},
        {"hang_place": {"count": 1, "mode": "drop"}},
        {"fail_next": {"place": {"count": 1, "status": 502, "after": True}}},
        {"malformed": {"place": {"count": 1, "kind": "non_json"}}},
        {"malformed": {"place": {"count": 1, "kind": "truncated"}}},
        {"malformed": {"place": {"count": 1, "kind": "wrong_shape"}}},
        {"malformed": {"place": {"count": 1, "kind": "no_envelope"}}},
    ],
    ids=["hang-sleep", "hang-drop", "5xx-after-accept", "non_json", "truncated", "wrong_shape", "no_envelope"],
)
def test_a_place_accepted_but_not_answered_is_looked_up_not_sent_again(xts_app, xts, client, trader_headers, tap,
                                                                       jobs_log, fault):  # fmt: skip
    set_quote(1, MARKET)
    xts.faults(**fault)
    order_id = place_via_api(client, trader_headers)
    run_with_one_retry(xts_app)
    assert f"event=submit_already_at_broker order_id={order_id}" in jobs_log.text
    order = placed_once(xts, tap, order_id, sent=1)
    assert (order.status, order.filled_quantity) == ("FILLED", 10)


def resubmit_by_the_sweeper(app, monkeypatch, order_id) -> None:
    """The job's retries are over; the sweeper queues the stranded submission again and it runs."""
    jobqueue.get_queue().scheduled_job_registry.remove(jobqueue.submit_job_id(order_id), delete_job=True)
    monkeypatch.setitem(app.config, "SWEEP_PENDING_AFTER", 0)
    assert sweep_once(app).submits == 1
    run_worker(app)


def test_a_slow_place_past_the_timeout_is_never_sent_twice(xts_app, xts, client, trader_headers, tap, jobs_log,
                                                          monkeypatch):  # fmt: skip
    """The broker takes 4 s on the place (the client gives up after 1 s): the retry's lookup misses
    while the first request is still being worked on, and nothing is sent again inside the horizon."""
    set_quote(1, MARKET)
    xts.faults(latency_ms={"place": 4000})
    order_id = place_via_api(client, trader_headers)
    run_with_one_retry(xts_app)  # timeout; the retry: lookup misses, the place refuses to resend
    assert f"event=xts_place_in_flight order_id={order_id} action=place" in jobs_log.text
    assert "event=submit_resend" in jobs_log.text and xts.state()["requests"]["place"] == 1
    xts.faults(latency_ms={"place": 0})
    wait_until(lambda: at_simulator(xts, order_id), timeout=6)  # the first request lands at last
    past_the_horizon(xts_app, order_id)
    resubmit_by_the_sweeper(xts_app, monkeypatch, order_id)
    assert f"event=submit_already_at_broker order_id={order_id}" in jobs_log.text
    placed_once(xts, tap, order_id, sent=1)


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_before_the_work_is_sent_again_once_past_the_horizon(xts_app, xts, client, trader_headers, tap,
                                                                  jobs_log, monkeypatch, status):  # fmt: skip
    """A 5xx may come from a gateway before or after the broker did the work: not sent again until
    an earlier attempt can no longer land, then once, after a lookup that misses."""
    set_quote(1, MARKET)
    xts.faults(fail_next={"place": {"count": 1, "status": status}})
    order_id = place_via_api(client, trader_headers)
    run_with_one_retry(xts_app)
    assert f"event=xts_place_in_flight order_id={order_id}" in jobs_log.text
    assert xts.state()["requests"]["place"] == 1 and at_simulator(xts, order_id) == []
    assert reload(order_id).status == "SUBMITTED"
    past_the_horizon(xts_app, order_id)
    resubmit_by_the_sweeper(xts_app, monkeypatch, order_id)
    assert f"event=xts_place_resend order_id={order_id}" in jobs_log.text
    placed_once(xts, tap, order_id, sent=2)


def test_a_place_that_certainly_did_nothing_is_sent_again_at_once(broker, xts, trader, tap):
    """Refused before execution (429 past the backoff): no horizon to wait out."""
    xts.faults(rate_limit=True, order_rate=1)
    broker.place(order_request(trader))
    request = order_request(trader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tradingapp.brokers.xts.session.RATE_LIMIT_BACKOFF", (0.01, 0.01))
        with pytest.raises(XtsRateLimited):
            broker.place(request)
    assert not get_redis().exists(broker._key("placed_at", request.order_id))
    xts.faults(rate_limit=False)
    assert int(broker.place(request)) in at_simulator(xts, request.order_id)


def test_a_place_logs_in_before_it_takes_the_order_lock(broker, xts, trader, tap, monkeypatch):
    """A login (or the wait for another process's) must not eat into the order lock's life."""
    request = order_request(trader)
    api = broker.client(trader.id).interactive.session
    get_redis().delete(api.key)  # no shared session yet
    lock_held_at_login = []
    real_login = XtsSession._login_call

    def login_call(session):
        lock_held_at_login.append(get_redis().exists(broker._key("order", request.order_id)))
        return real_login(session)

    monkeypatch.setattr(XtsSession, "_login_call", login_call)
    assert int(broker.place(request)) in at_simulator(xts, request.order_id)
    assert lock_held_at_login == [0]
    assert api.max_call_seconds() > resend_horizon(0) / 2  # the lock outlives any call (timeout 1 s here)


def test_an_order_lock_that_expired_during_the_place_is_let_go_quietly(broker, xts, trader, tap, monkeypatch,
                                                                        jobs_log):  # fmt: skip
    request = order_request(trader)
    monkeypatch.setattr(XtsSession, "max_call_seconds", lambda session: -4.9)  # the lock lives 0.1 s
    xts.faults(latency_ms={"place": 400})
    app_order_id = broker.place(request)  # answered after the lock expired: still the answer
    assert [int(app_order_id)] == at_simulator(xts, request.order_id)
    assert f"event=xts_order_lock_expired order_id={request.order_id}" in jobs_log.text
    assert [e["type"] for e in tap.drain()] == [ev.ACCEPTED]


def test_retries_of_an_order_job_reach_past_the_resend_horizon(app):
    assert sum(jobqueue.RETRY_INTERVALS[:-1]) < resend_horizon(app.config["XTS_TIMEOUT"] or 7)
    assert jobqueue.RETRY_INTERVALS[-1] >= MIN_RESEND_HORIZON


def test_latency_below_the_timeout_is_just_slow(xts_app, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    xts.faults(latency_ms={"place": 300, "orders": 300})
    order_id = place_via_api(client, trader_headers)
    run_worker(xts_app)
    assert len(at_simulator(xts, order_id)) == 1
    assert not jobqueue.get_queue().scheduled_job_registry.get_job_ids()


def test_rate_limited_place_backs_off_and_goes_through_once(xts_app, xts, client, trader_headers, tap):
    set_quote(1, MARKET)
    xts.faults(rate_limit=True, order_rate=1)
    first, second = place_via_api(client, trader_headers), place_via_api(client, trader_headers, quantity=5)
    run_worker(xts_app)  # the second place meets the 1/s window, waits and goes through
    assert len(at_simulator(xts, first)) == 1 and len(at_simulator(xts, second)) == 1
    assert xts.state()["requests"]["place"] >= 3
    assert not jobqueue.get_queue().scheduled_job_registry.get_job_ids()


def test_a_rate_limit_that_outlasts_the_backoff_is_a_broker_error(broker, xts, trader, tap):
    xts.faults(rate_limit=True, order_rate=1)
    broker.place(order_request(trader))
    with pytest.MonkeyPatch.context() as patch:  # retries far inside the 1 s window: every one meets a 429
        patch.setattr("tradingapp.brokers.xts.session.RATE_LIMIT_BACKOFF", (0.01, 0.01))
        request = order_request(trader)
        with pytest.raises(XtsRateLimited):
            broker.place(request)
    assert at_simulator(xts, request.order_id) == []


def test_broker_down_leaves_the_order_submitted_and_the_sweeper_resolves_it(xts_app, xts, client, trader_headers,
                                                                           tap, monkeypatch, jobs_log):  # fmt: skip
    set_quote(1, MARKET)
    monkeypatch.setitem(xts_app.config, "XTS_API_URL", "http://127.0.0.1:9")  # nothing listens there
    xts_app.extensions.pop("tradingapp.broker", None)
    order_id = place_via_api(client, trader_headers)
    run_worker(xts_app)
    order = reload(order_id)
    assert (order.status, order.broker_order_id) == ("SUBMITTED", None)
    assert tap.drain() == []
    # The broker comes back after the job's retries ran out; the sweeper's resend asks first, then sends.
    monkeypatch.setitem(xts_app.config, "XTS_API_URL", xts.url)
    jobqueue.get_queue().scheduled_job_registry.remove(jobqueue.submit_job_id(order_id), delete_job=True)
    monkeypatch.setitem(xts_app.config, "SWEEP_PENDING_AFTER", 0)
    assert sweep_once(xts_app).submits == 1
    run_worker(xts_app)
    assert f"event=submit_resend order_id={order_id}" in jobs_log.text
    placed_once(xts, tap, order_id)


@pytest.mark.parametrize("kind", ["non_json", "truncated", "wrong_shape", "no_envelope"])
def test_a_malformed_book_answer_is_a_clear_error_and_publishes_nothing(broker, xts, trader, tap, kind):
    request = claimed(trader)
    broker.place(request)
    tap.drain()
    xts.faults(malformed={"orders": {"count": 1, "kind": kind}})
    with pytest.raises(XtsResponseError):
        broker.lookup(request.order_id)
    assert tap.drain() == []
    assert reload(request.order_id).status == "SUBMITTED"
    assert broker.lookup(request.order_id).status == "filled"  # the next answer is fine again


def test_unreachable_broker_is_unavailable(xts_app, monkeypatch, trader):
    monkeypatch.setitem(xts_app.config, "XTS_API_URL", "http://127.0.0.1:9")
    broker = XtsBroker.from_app(xts_app, credentials_for)
    try:
        with pytest.raises(XtsUnavailable):
            broker.place(order_request(trader))
    finally:
        broker.close()
