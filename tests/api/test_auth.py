"""Auth API on the real services: registration, login and its throttle, tokens, logout. The attacks
on them, named for what they attack: tests/security/test_api2_broken_authentication.py."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from argon2 import PasswordHasher
from flask_jwt_extended import create_access_token, decode_token

import config
from tests.support import env as test_run
from tradingapp import create_app
from tradingapp.api.auth import REGISTERED
from tradingapp.extensions import db as _db
from tradingapp.models import User
from tradingapp.security.passwords import burn_verification, hash_password, needs_rehash, verify_password

PASSWORD = "correct-horse-battery"
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, email: str, password: str = PASSWORD, ip: str = "127.0.0.1"):
    return client.post(LOGIN, json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


@pytest.fixture
def user(make_user):
    return make_user(email="alice@example.com", name="Alice")


@pytest.fixture
def tokens(client, user):
    response = login(client, user.email)
    assert response.status_code == 200
    return response.get_json()


# -- passwords -------------------------------------------------------------------------


def test_verify_password_accepts_the_right_password_and_rejects_a_wrong_one():
    hashed = hash_password("a-long-password")
    assert verify_password(hashed, "a-long-password") is True
    assert verify_password(hashed, "another-password") is False


def test_verify_password_is_false_for_an_unreadable_hash():
    assert verify_password("not-an-argon2-hash", "whatever-password") is False


def test_a_hash_with_cheaper_parameters_needs_rehash():
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("a-long-password")
    assert needs_rehash(cheap) is True
    assert needs_rehash(hash_password("a-long-password")) is False


def test_burn_verification_takes_as_long_as_a_real_verification():
    real = hash_password("a-long-password")
    burn_verification("wrong-password")  # the first call also builds the dummy hash
    # Minimum of a few runs: load on the machine can only make a run slower, never faster.
    real_seconds = min(timed(verify_password, real, "wrong-password") for _ in range(3))
    burn_seconds = min(timed(burn_verification, "wrong-password") for _ in range(3))
    assert burn_seconds > real_seconds / 3


def timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


# -- register --------------------------------------------------------------------------


def test_register_creates_a_trader(client):
    response = client.post(REGISTER, json={"email": " Bob@Example.COM ", "password": "s3cret-enough", "name": "Bob"})
    assert (response.status_code, response.get_json()) == (202, REGISTERED)
    stored = _db.session.query(User).one()
    assert (stored.email, stored.name, stored.role, stored.active) == ("bob@example.com", "Bob", "trader", True)
    assert verify_password(stored.password_hash, "s3cret-enough")


def test_registered_user_can_log_in(client):
    client.post(REGISTER, json={"email": "carol@example.com", "password": "s3cret-enough"})
    assert login(client, "CAROL@example.com", "s3cret-enough").status_code == 200


@pytest.mark.parametrize("extra", [{"role": "admin"}, {"id": str(uuid.uuid4())}, {"active": False}])
def test_register_refuses_fields_it_does_not_own(client, extra):
    response = client.post(REGISTER, json={"email": "eve@example.com", "password": "s3cret-enough", **extra})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"]["unknown_fields"] == ", ".join(extra)  # the API gate's answer (api/openapi.py)
    assert _db.session.query(User).count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "s3cret-enough"}, "email"),
        ({"email": "a@b", "password": "s3cret-enough"}, "email"),
        ({"email": 42, "password": "s3cret-enough"}, "email"),
        ({"password": "s3cret-enough"}, "email"),
        ({"email": "dan@example.com", "password": "short"}, "password"),
        ({"email": "dan@example.com", "password": "x" * 129}, "password"),
        ({"email": "dan@example.com"}, "password"),
        ({"email": "dan@example.com", "password": "s3cret-enough", "name": "n" * 101}, "name"),
        ({"email": "dan@example.com", "password": "s3cret-enough", "name": 7}, "name"),
    ],
)
def test_register_rejects_invalid_fields(client, body, field):
    response = client.post(REGISTER, json=body)
    assert response.status_code == 400
    assert list(response.get_json()["error"]["details"]) == [field]
    assert _db.session.query(User).count() == 0


def test_register_with_a_taken_email_answers_as_for_a_new_one_and_changes_nothing(client, user):
    before = (user.password_hash, user.name)
    response = client.post(REGISTER, json={"email": "ALICE@example.com", "password": "s3cret-enough", "name": "Eve"})
    assert (response.status_code, response.get_json()) == (202, REGISTERED)
    _db.session.expire_all()
    stored = _db.session.query(User).one()
    assert (stored.password_hash, stored.name) == before
    assert login(client, "alice@example.com", "s3cret-enough").status_code == 401


def test_register_racing_another_insert_of_the_same_email_keeps_the_first(client, env):
    # An uncommitted row is invisible to the pre-check; our INSERT then waits on the unique
    # index and fails when the other transaction commits: the race path, deterministically.
    other = psycopg.connect(dbname=env["DB_NAME"], **test_run.PG)
    other.execute(
        "INSERT INTO users (id, email, password_hash, name, role, active, created_at)"
        " VALUES (%s, 'race@example.com', 'x', '', 'trader', true, %s)",
        (uuid.uuid4(), datetime.now(UTC)),
    )
    committer = threading.Timer(0.5, other.commit)
    committer.start()
    try:
        response = client.post(REGISTER, json={"email": "race@example.com", "password": "s3cret-enough"})
    finally:
        committer.join()
        other.close()
    assert (response.status_code, response.get_json()) == (202, REGISTERED)
    assert _db.session.query(User).one().password_hash == "x"


def test_register_is_refused_when_registration_is_disabled(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "ALLOW_REGISTRATION", False)
    response = client.post(REGISTER, json={"email": "fay@example.com", "password": "s3cret-enough"})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert _db.session.query(User).count() == 0


def test_allow_registration_false_in_the_environment_disables_registration(app, db):
    closed = create_app(config.TestConfig(test_run.test_env(ALLOW_REGISTRATION="false")))
    response = closed.test_client().post(REGISTER, json={"email": "gil@example.com", "password": "s3cret-enough"})
    with closed.app_context():
        _db.engine.dispose()
    assert response.status_code == 403


def test_malformed_json_is_a_validation_error(client):
    response = client.post(REGISTER, data='{"email": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "validation_error"


# -- login -----------------------------------------------------------------------------


def test_login_returns_bearer_tokens(client, user, app):
    response = login(client, "Alice@Example.com")
    assert response.status_code == 200
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["JWT_EXPIRATION"]
    assert body["access_token"] and body["refresh_token"]
    assert client.get(ME, headers=bearer(body["access_token"])).get_json()["email"] == "alice@example.com"


def test_login_upgrades_a_cheap_hash_to_current_parameters(client, user):
    assert needs_rehash(user.password_hash)
    login(client, user.email)
    _db.session.expire_all()
    stored = _db.session.get(User, user.id)
    assert not needs_rehash(stored.password_hash)
    assert verify_password(stored.password_hash, PASSWORD)


def test_wrong_password_and_unknown_user_get_identical_answers(client, user):
    wrong = login(client, user.email, "wrong-password")
    unknown = login(client, "nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()
    assert wrong.get_json()["error"]["code"] == "unauthorized"


def test_inactive_user_cannot_log_in_and_gets_the_same_answer(client, make_user):
    inactive = make_user(email="gone@example.com", active=False)
    response = login(client, inactive.email)
    assert response.status_code == 401
    assert response.get_json() == login(client, "nobody@example.com").get_json()


def test_login_without_a_password_is_a_validation_error(client, user):
    response = client.post(LOGIN, json={"email": user.email})
    assert response.status_code == 400


# -- throttling (the policy: docs/security.md) -----------------------------------------


def fail(client, email: str, times: int, ip: str = "127.0.0.1") -> list[int]:
    return [login(client, email, "wrong-password", ip=ip).status_code for _ in range(times)]


def test_failures_past_the_free_ones_make_the_pair_wait_with_retry_after(client, app, user):
    free = app.config["LOGIN_MAX_FAILURES"]
    assert fail(client, user.email, free + 1) == [401] * (free + 1)  # the last one starts a 1 s wait
    response = login(client, user.email)  # even the right password: it is not looked at meanwhile
    assert response.status_code == 429
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert response.headers["Retry-After"] == "1"


def test_each_failure_past_the_free_ones_doubles_the_wait(client, app, user):
    free = app.config["LOGIN_MAX_FAILURES"]
    fail(client, user.email, free + 1)
    time.sleep(1.05)
    assert fail(client, user.email, 1) == [401]
    assert login(client, user.email).headers["Retry-After"] == "2"


def test_the_wait_never_exceeds_login_lockout(client, app, user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_MAX_FAILURES", 0)
    monkeypatch.setitem(app.config, "LOGIN_LOCKOUT", 1)
    for _ in range(3):
        assert fail(client, user.email, 1) == [401]
        assert login(client, user.email).headers["Retry-After"] == "1"
        time.sleep(1.05)
    assert login(client, user.email).status_code == 200


def test_the_wait_ends_and_the_right_password_then_works(client, app, user):
    fail(client, user.email, app.config["LOGIN_MAX_FAILURES"] + 1)
    assert login(client, user.email).status_code == 429
    time.sleep(1.05)
    assert login(client, user.email).status_code == 200


def test_a_waiting_pair_leaves_the_same_account_from_another_address_alone(client, app, user):
    fail(client, user.email, app.config["LOGIN_MAX_FAILURES"] + 3, ip="10.9.9.9")
    assert login(client, user.email, ip="10.9.9.9").status_code == 429
    assert login(client, user.email, ip="10.1.1.1").status_code == 200


def test_successful_login_clears_the_pairs_failure_count(client, app, user):
    free = app.config["LOGIN_MAX_FAILURES"]
    assert fail(client, user.email, free, ip="10.0.0.1") == [401] * free
    assert login(client, user.email, ip="10.0.0.1").status_code == 200
    assert fail(client, user.email, free, ip="10.0.0.1") == [401] * free
    assert login(client, user.email, ip="10.0.0.1").status_code == 200


def test_many_failures_from_one_address_across_accounts_make_that_address_wait(client, app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_MAX_FAILURES", 3)
    victims = [make_user() for _ in range(5)]
    for victim in victims[:4]:  # one failure each: no pair waits, the address's fourth failure does
        assert fail(client, victim.email, 1, ip="10.6.6.6") == [401]
    response = login(client, victims[4].email, ip="10.6.6.6")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
    assert login(client, victims[4].email, ip="10.7.7.7").status_code == 200


def test_one_good_login_does_not_reset_an_addresss_failures(client, app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_MAX_FAILURES", 2)
    sprayed = [make_user() for _ in range(3)]
    mine = make_user()
    fail(client, sprayed[0].email, 1, ip="10.6.6.7")
    fail(client, sprayed[1].email, 1, ip="10.6.6.7")
    assert login(client, mine.email, ip="10.6.6.7").status_code == 200
    assert fail(client, sprayed[2].email, 1, ip="10.6.6.7") == [401]  # the third: a wait begins
    assert login(client, mine.email, ip="10.6.6.7").status_code == 429


def test_ipv6_addresses_of_one_64_block_count_as_one_address(client, app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_MAX_FAILURES", 2)
    victims = [make_user() for _ in range(3)]
    for n, victim in enumerate(victims):
        assert fail(client, victim.email, 1, ip=f"2001:db8:1:2::{n + 1:x}") == [401]
    assert login(client, victims[0].email, ip="2001:db8:1:2:ffff::9").status_code == 429
    assert login(client, victims[0].email, ip="2001:db8:1:3::1").status_code == 200


def test_registration_is_throttled_per_address_with_retry_after(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTER_MAX_PER_ADDRESS", 2)
    bodies = [{"email": f"r{n}@example.com", "password": "s3cret-enough"} for n in range(4)]
    codes = [
        client.post(REGISTER, json=body, environ_base={"REMOTE_ADDR": "10.3.3.3"}).status_code for body in bodies[:3]
    ]
    assert codes == [202, 202, 429]
    refused = client.post(REGISTER, json=bodies[3], environ_base={"REMOTE_ADDR": "10.3.3.3"})
    assert 0 < int(refused.headers["Retry-After"]) <= app.config["REGISTER_WINDOW"]
    assert client.post(REGISTER, json=bodies[3], environ_base={"REMOTE_ADDR": "10.4.4.4"}).status_code == 202
    assert _db.session.query(User).count() == 3


def test_an_invalid_registration_costs_no_place_in_the_address_budget(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "REGISTER_MAX_PER_ADDRESS", 1)
    for _ in range(3):
        assert client.post(REGISTER, json={"email": "bad", "password": "s3cret-enough"}).status_code == 400
    assert client.post(REGISTER, json={"email": "ok@example.com", "password": "s3cret-enough"}).status_code == 202


# -- refresh, logout, me ---------------------------------------------------------------


def test_refresh_issues_a_new_access_token_of_the_same_session(client, app, tokens):
    response = client.post(REFRESH, headers=bearer(tokens["refresh_token"]))
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "expires_in"}
    with app.test_request_context():
        assert decode_token(body["access_token"])["sid"] == decode_token(tokens["access_token"])["sid"]
    assert client.get(ME, headers=bearer(body["access_token"])).status_code == 200


def test_refresh_with_an_access_token_is_unauthorized(client, tokens):
    response = client.post(REFRESH, headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_refresh_token_is_not_an_access_token(client, tokens):
    assert client.get(ME, headers=bearer(tokens["refresh_token"])).status_code == 401


def test_logout_revokes_the_access_token(client, tokens):
    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 204
    response = client.get(ME, headers=bearer(tokens["access_token"]))
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_logout_revokes_the_refresh_token(client, tokens):
    client.post(LOGOUT, headers=bearer(tokens["access_token"]))
    assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 401


def test_logout_with_the_refresh_token_revokes_the_whole_session(client, tokens):
    refreshed = client.post(REFRESH, headers=bearer(tokens["refresh_token"])).get_json()["access_token"]
    assert client.post(LOGOUT, headers=bearer(tokens["refresh_token"])).status_code == 204
    for token in (tokens["access_token"], refreshed):
        assert client.get(ME, headers=bearer(token)).status_code == 401
    assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 401


def test_logout_leaves_other_sessions_working(client, user, tokens):
    second = login(client, user.email).get_json()
    client.post(LOGOUT, headers=bearer(tokens["access_token"]))
    assert client.get(ME, headers=bearer(second["access_token"])).status_code == 200


def test_me_returns_the_caller(client, user, tokens):
    body = client.get(ME, headers=bearer(tokens["access_token"])).get_json()
    assert body == {"id": str(user.id), "email": "alice@example.com", "name": "Alice", "role": "trader"}


def test_a_viewer_can_read_me(client, make_user, auth_headers):
    viewer = make_user(role="viewer")
    response = client.get(ME, headers=auth_headers(viewer))
    assert response.status_code == 200
    assert response.get_json()["role"] == "viewer"


def test_an_expired_token_is_unauthorized(client, app, user):
    with app.test_request_context():
        token = create_access_token(
            identity=str(user.id),
            additional_claims={"role": "trader", "sid": "s1"},
            expires_delta=timedelta(seconds=-1),
        )
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 401
    assert response.get_json()["error"]["message"] == "token has expired"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer"}, {"Authorization": "Token abc"}, {"Authorization": "Bearer not.a.jwt"}]
)
def test_a_missing_or_malformed_authorization_header_is_a_json_401(client, headers):
    response = client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.is_json
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_a_deactivated_users_token_stops_working(client, user, tokens):
    user.active = False
    _db.session.commit()
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 401
