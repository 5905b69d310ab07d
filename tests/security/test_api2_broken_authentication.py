"""OWASP API2:2023 Broken Authentication: forged, expired, wrong-type, revoked and deactivated
tokens; lockout abuse (an anonymous caller must never lock a known user out); account enumeration
through registration, login and its throttle; a signed token with a malformed subject; logout with
the refresh token; revocation that must survive Redis losing everything; the development secret
and bind address of `make run`. The policy under test: docs/security.md."""

from __future__ import annotations

import ipaddress
import os
import runpy
import shutil
import stat
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import jwt as pyjwt
import pytest
from argon2 import PasswordHasher
from flask_jwt_extended import create_access_token

from config import BASE_DIR, DEFAULT_JWT_SECRET, Config, ConfigError, dev_jwt_secret, load_config
from config import TestConfig as AppConfig
from tests.support import env as test_run
from tests.support.net import free_port
from tests.support.stack import RUN_STACK_SCRIPT, wait_http_ok
from tradingapp import create_app
from tradingapp.extensions import db as _db
from tradingapp.extensions import get_redis
from tradingapp.security import passwords

PASSWORD = "correct-horse-battery"
REGISTER, LOGIN, REFRESH = "/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/refresh"
LOGOUT, ME, ADMIN_USERS = "/api/v1/auth/logout", "/api/v1/auth/me", "/api/v1/admin/users"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client, email: str, password: str = PASSWORD, ip: str = "127.0.0.1"):
    return client.post(LOGIN, json={"email": email, "password": password}, environ_base={"REMOTE_ADDR": ip})


def tokens_of(client, email: str, ip: str = "127.0.0.1") -> dict:
    response = login(client, email, ip=ip)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def assert_401(response) -> None:
    assert response.status_code == 401, (response.status_code, response.get_data(as_text=True))
    assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.fixture
def user(make_user):
    return make_user(email="alice@example.com", password=PASSWORD)


def claims_of(user, **overrides) -> dict:
    now = int(time.time())
    base = {"sub": str(user.id), "sid": uuid.uuid4().hex, "gen": 0, "role": user.role, "type": "access",
            "iat": now, "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex, "fresh": False}  # fmt: skip
    return {**base, **overrides}


# -- forged, expired, wrong type -------------------------------------------------------------------
def test_a_token_signed_with_another_secret_is_refused(client, user):
    token = pyjwt.encode(claims_of(user), "another-secret-that-is-long-enough-0123456789", algorithm="HS256")
    assert_401(client.get(ME, headers=bearer(token)))


def test_an_unsigned_alg_none_token_is_refused(client, user):
    token = pyjwt.encode(claims_of(user), key=None, algorithm="none")
    assert_401(client.get(ME, headers=bearer(token)))


def test_a_token_signed_with_the_old_public_development_constant_is_refused(client, user):
    token = pyjwt.encode(claims_of(user, role="admin"), DEFAULT_JWT_SECRET, algorithm="HS256")
    assert_401(client.get(ADMIN_USERS, headers=bearer(token)))


def test_an_expired_token_is_refused(client, app, user):
    with app.test_request_context():
        token = create_access_token(str(user.id), additional_claims={"role": "trader", "sid": "s1", "gen": 0},
                                    expires_delta=timedelta(seconds=-1))  # fmt: skip
    response = client.get(ME, headers=bearer(token))
    assert_401(response)
    assert response.get_json()["error"]["message"] == "token has expired"


def test_a_refresh_token_used_as_an_access_token_is_refused(client, user):
    assert_401(client.get(ME, headers=bearer(tokens_of(client, user.email)["refresh_token"])))


def test_an_access_token_used_to_refresh_is_refused(client, user):
    assert_401(client.post(REFRESH, headers=bearer(tokens_of(client, user.email)["access_token"])))


def test_a_role_claim_in_the_token_grants_nothing(client, app, user):
    """The role comes from the users row, never from the token: a trader's token that says admin
    (issued before a demotion, say) opens no admin route."""
    with app.test_request_context():
        token = create_access_token(str(user.id), additional_claims={"role": "admin", "sid": "s-role", "gen": 0})
    assert client.get(ADMIN_USERS, headers=bearer(token)).status_code == 403


@pytest.mark.parametrize(
    "claims",
    [{"sub": "admin"}, {"sub": ""}, {"sub": "' OR '1'='1"}, {"sub": "00000000-0000-0000-0000-00000000000g"},
     {"sub": "x" * 5000}, {"sid": None}, {"sid": ""}, {"sid": 7}, {"sid": "s" * 65}, {"gen": "0"}, {"gen": True},
     {"gen": 1.5}],
    ids=["word", "empty", "sql", "almost-uuid", "huge", "no-sid", "empty-sid", "int-sid", "long-sid", "text-gen",
         "bool-gen", "float-gen"],
)  # fmt: skip
def test_a_signed_token_with_malformed_claims_is_a_401_not_a_500(client, app, user, claims):
    secret = app.config["JWT_SECRET_KEY"]
    token = pyjwt.encode(claims_of(user, **claims), secret, algorithm="HS256")
    for response in (client.get(ME, headers=bearer(token)), client.post(LOGOUT, headers=bearer(token))):
        assert_401(response)


def test_a_signed_refresh_token_whose_sub_is_not_a_uuid_is_a_401_not_a_500(client, app, user):
    token = pyjwt.encode(claims_of(user, sub="root", type="refresh"), app.config["JWT_SECRET_KEY"], algorithm="HS256")
    assert_401(client.post(REFRESH, headers=bearer(token)))


# -- revoked, deactivated, logout ------------------------------------------------------------------
def test_a_logged_out_access_token_is_refused(client, user):
    tokens = tokens_of(client, user.email)
    assert client.post(LOGOUT, headers=bearer(tokens["access_token"])).status_code == 204
    assert_401(client.get(ME, headers=bearer(tokens["access_token"])))
    assert_401(client.post(REFRESH, headers=bearer(tokens["refresh_token"])))


def test_logout_with_the_refresh_token_ends_the_whole_session(client, user):
    tokens = tokens_of(client, user.email)
    refreshed = client.post(REFRESH, headers=bearer(tokens["refresh_token"])).get_json()["access_token"]
    other = tokens_of(client, user.email)  # another session of the same user
    assert client.post(LOGOUT, headers=bearer(tokens["refresh_token"])).status_code == 204
    for token in (tokens["access_token"], refreshed):
        assert_401(client.get(ME, headers=bearer(token)))
    assert_401(client.post(REFRESH, headers=bearer(tokens["refresh_token"])))
    assert client.get(ME, headers=bearer(other["access_token"])).status_code == 200


def deactivate(client, admin_headers, user, active: bool = False) -> None:
    response = client.patch(f"{ADMIN_USERS}/{user.id}", json={"active": active}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()


def test_a_deactivated_users_tokens_are_refused_and_stay_refused_after_reactivation(client, admin_headers, user):
    tokens = tokens_of(client, user.email)
    deactivate(client, admin_headers, user)
    assert_401(client.get(ME, headers=bearer(tokens["access_token"])))
    assert_401(client.post(REFRESH, headers=bearer(tokens["refresh_token"])))
    deactivate(client, admin_headers, user, active=True)
    assert_401(client.get(ME, headers=bearer(tokens["access_token"])))
    assert client.get(ME, headers=bearer(tokens_of(client, user.email)["access_token"])).status_code == 200


def test_a_deactivated_user_cannot_log_in(client, admin_headers, user):
    deactivate(client, admin_headers, user)
    assert_401(login(client, user.email))


def start_of_a_second() -> None:
    """Sleep to just past the next whole second, so the next few steps share one `iat` second."""
    time.sleep(1 - time.time() % 1 + 0.01)


def test_a_login_in_the_same_second_as_a_reactivation_gets_a_working_token(client, admin_headers, user):
    start_of_a_second()
    deactivate(client, admin_headers, user)
    deactivate(client, admin_headers, user, active=True)
    tokens = tokens_of(client, user.email)
    assert client.get(ME, headers=bearer(tokens["access_token"])).status_code == 200
    assert client.post(REFRESH, headers=bearer(tokens["refresh_token"])).status_code == 200


def test_a_token_issued_just_before_a_deactivation_dies_with_it_in_the_same_second(client, admin_headers, user):
    start_of_a_second()
    tokens = tokens_of(client, user.email)
    deactivate(client, admin_headers, user)
    deactivate(client, admin_headers, user, active=True)
    assert_401(client.get(ME, headers=bearer(tokens["access_token"])))


# -- revocation survives Redis losing everything ---------------------------------------------------
def test_a_logged_out_token_stays_refused_after_redis_loses_everything(client, user):
    tokens = tokens_of(client, user.email)
    client.post(LOGOUT, headers=bearer(tokens["access_token"]))
    get_redis().flushdb()  # a Redis restart without persistence
    assert_401(client.get(ME, headers=bearer(tokens["access_token"])))
    assert_401(client.post(REFRESH, headers=bearer(tokens["refresh_token"])))


def test_a_deactivated_users_token_stays_refused_after_redis_loses_everything(client, admin_headers, user):
    tokens = tokens_of(client, user.email)
    deactivate(client, admin_headers, user)
    deactivate(client, admin_headers, user, active=True)
    get_redis().flushdb()
    assert_401(client.get(ME, headers=bearer(tokens["access_token"])))
    assert client.get(ME, headers=bearer(tokens_of(client, user.email)["access_token"])).status_code == 200


@pytest.fixture
def app_without_redis(app, db):
    """The same database, with Redis at a port where nothing listens."""
    down = create_app(AppConfig(test_run.test_env(DB_NAME=app.config["DB_NAME"], REDIS_PORT=str(free_port()))))
    yield down
    with down.app_context():
        _db.session.remove()
        _db.engine.dispose()


def test_revocation_holds_while_redis_is_down(app, app_without_redis, user):
    with app_without_redis.test_request_context():
        from tradingapp.security.auth import issue_tokens

        kept, logged_out = issue_tokens(user), issue_tokens(user)
    client = app_without_redis.test_client()
    assert client.post(LOGOUT, headers=bearer(logged_out["access_token"])).status_code == 204
    assert_401(client.get(ME, headers=bearer(logged_out["access_token"])))
    assert client.get(ME, headers=bearer(kept["access_token"])).status_code == 200


# -- lockout abuse ---------------------------------------------------------------------------------
@pytest.mark.parametrize("role", ["trader", "admin"])
def test_anonymous_failures_from_other_addresses_never_lock_the_owner_out(client, app, make_user, role):
    owner = make_user(email=f"{role}@example.com", password=PASSWORD, role=role)
    for n in range(4):  # an attacker on four addresses, far past every free failure on each
        for _ in range(app.config["LOGIN_MAX_FAILURES"] + 6):
            login(client, owner.email, "guess-password", ip=f"198.51.100.{n + 1}")
    assert login(client, owner.email, "guess-password", ip="198.51.100.1").status_code == 429
    assert login(client, owner.email, ip="203.0.113.7").status_code == 200


def test_password_spraying_from_one_address_is_slowed_down(client, app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_ADDRESS_MAX_FAILURES", 5)
    accounts = [make_user() for _ in range(8)]
    codes = [login(client, account.email, "Summer2024!!", ip="192.0.2.66").status_code for account in accounts]
    assert codes[:6] == [401] * 6 and set(codes[6:]) == {429}
    assert login(client, accounts[7].email, ip="192.0.2.67").status_code == 200


def test_a_throttled_attempt_never_reveals_whether_the_password_was_right(client, app, user):
    for _ in range(app.config["LOGIN_MAX_FAILURES"] + 1):
        login(client, user.email, "guess-password", ip="198.51.100.9")
    right, wrong = login(client, user.email, ip="198.51.100.9"), login(client, user.email, "x" * 12, ip="198.51.100.9")
    assert right.status_code == wrong.status_code == 429
    assert right.get_json() == wrong.get_json()


# -- enumeration -----------------------------------------------------------------------------------
def test_register_answers_the_same_for_a_taken_and_a_new_email(client, user):
    taken = client.post(REGISTER, json={"email": user.email, "password": "another-password"})
    new = client.post(REGISTER, json={"email": "new-person@example.com", "password": "another-password"})
    assert (taken.status_code, taken.get_json()) == (new.status_code, new.get_json())
    assert taken.status_code == 202 and "id" not in taken.get_json() and "access_token" not in taken.get_json()
    assert dict(taken.headers).keys() == dict(new.headers).keys()


def test_login_answers_the_same_for_an_unknown_email_and_a_wrong_password(client, user):
    wrong, unknown = login(client, user.email, "wrong-password"), login(client, "nobody@example.com")
    assert (wrong.status_code, wrong.get_json()) == (unknown.status_code, unknown.get_json()) == (401, wrong.get_json())


class CountingHasher(PasswordHasher):
    def __init__(self):
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hash, password):  # noqa: A002 - argon2's own parameter name
        self.verified.append(hash)
        return super().verify(hash, password)


@pytest.mark.parametrize("who", ["unknown", "wrong-password", "inactive"])
def test_every_failed_login_costs_one_full_argon2_verification(client, make_user, monkeypatch, who):
    make_user(email="known@example.com", password=PASSWORD)
    make_user(email="inactive@example.com", password=PASSWORD, active=False)
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "HASHER", counting)
    email, password = {
        "unknown": ("nobody@example.com", PASSWORD),
        "wrong-password": ("known@example.com", "nope-nope!"),
        "inactive": ("inactive@example.com", PASSWORD),
    }[who]
    assert login(client, email, password).status_code == 401
    assert len(counting.verified) == 1
    if who == "unknown":  # the dummy hash, made with today's (production) parameters
        assert not PasswordHasher().check_needs_rehash(counting.verified[0])


def test_register_costs_one_hash_for_a_taken_email_as_for_a_new_one(client, user, monkeypatch):
    hashed = []

    def recording(password: str) -> str:
        hashed.append(password)
        return passwords.hash_password(password)

    monkeypatch.setattr("tradingapp.services.accounts.users.hash_password", recording)
    client.post(REGISTER, json={"email": user.email, "password": "another-password"})
    client.post(REGISTER, json={"email": "fresh@example.com", "password": "another-password"})
    assert hashed == ["another-password", "another-password"]


def test_the_login_throttle_answers_the_same_for_unknown_and_known_emails(client, app, user):
    answers = []
    for email in (user.email, "ghost@example.com"):
        for _ in range(app.config["LOGIN_MAX_FAILURES"] + 1):
            login(client, email, "wrong-password", ip="198.51.100.20")
        answers.append(login(client, email, "wrong-password", ip="198.51.100.20"))
    assert [(a.status_code, a.get_json(), a.headers["Retry-After"]) for a in answers] == [
        (429, answers[0].get_json(), "1")
    ] * 2


# -- make run: the development secret and the bind address -----------------------------------------
def test_the_development_jwt_secret_is_random_per_install_not_a_public_constant(tmp_path):
    first_install, second_install = tmp_path / "a" / "dev-jwt-secret", tmp_path / "b" / "dev-jwt-secret"
    secret = dev_jwt_secret(first_install)
    assert secret != DEFAULT_JWT_SECRET and len(secret) >= 48
    assert dev_jwt_secret(first_install) == secret  # made once, then read
    assert stat.S_IMODE(os.stat(first_install).st_mode) == 0o600
    assert dev_jwt_secret(second_install) != secret
    assert [p.name for p in first_install.parent.iterdir()] == ["dev-jwt-secret"]  # no draft left behind


def test_development_without_jwt_secret_uses_the_install_secret(monkeypatch, tmp_path):
    monkeypatch.setattr("config.DEV_JWT_SECRET_FILE", tmp_path / "dev-jwt-secret")
    config = Config({})
    assert config.JWT_SECRET == (tmp_path / "dev-jwt-secret").read_text().strip() != DEFAULT_JWT_SECRET


@pytest.mark.parametrize("secret", [None, DEFAULT_JWT_SECRET, "short"])
def test_production_refuses_to_start_without_a_real_jwt_secret(secret):
    env = {"APP_ENV": "production", "DB_HOST": "db", "DB_PASSWORD": "x7Qp2-vL9s", "REDIS_PASSWORD": "x7Qp2-vL9r",
           "RABBITMQ_PASSWORD": "x7Qp2-vL9q"}  # fmt: skip
    if secret is not None:
        env["JWT_SECRET"] = secret
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_config(env)


@pytest.mark.parametrize(
    ("env", "bind"),
    [({"APP_ENV": "development"}, "127.0.0.1:8080"), ({"APP_ENV": "test"}, "127.0.0.1:8080"),
     ({"APP_ENV": "development", "BIND_HOST": "0.0.0.0", "PORT": "9000"}, "0.0.0.0:9000"),
     ({"APP_ENV": "development", "BIND_HOST": "::1"}, "[::1]:8080")],
)  # fmt: skip
def test_make_runs_servers_listen_on_loopback_unless_told_otherwise(monkeypatch, env, bind):
    for name in ("BIND_HOST", "PORT", "WEBSOCKET_PORT", "APP_ENV"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"JWT_SECRET": "s" * 40, **env}.items():
        monkeypatch.setenv(name, value)
    assert load_gunicorn_conf()["bind"] == bind


def load_gunicorn_conf() -> dict:
    """gunicorn.conf.py run as gunicorn's master runs it, without leaving what it sets for its
    workers (PROMETHEUS_MULTIPROC_DIR and a temporary folder) in this process: every process the
    suite starts afterwards would write its metrics into that folder."""
    saved = dict(os.environ)
    try:
        settings = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
        if os.environ.get("TRADINGAPP_GUNICORN_METRICS_TMP"):
            shutil.rmtree(os.environ["TRADINGAPP_GUNICORN_METRICS_DIR"], ignore_errors=True)
        return settings
    finally:
        os.environ.clear()
        os.environ.update(saved)


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (/proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(str(ipaddress.ip_address(bytes.fromhex(address)[::-1])) if len(address) == 8 else address)
    return found


def test_make_run_is_not_reachable_from_the_network(env, tmp_path):
    """scripts/run_stack.py (make run) as a developer starts it: no BIND_HOST, no JWT_SECRET."""
    port = free_port()
    run_env = {**{k: v for k, v in os.environ.items() if k not in ("BIND_HOST", "JWT_SECRET")}, **env,
               "APP_ENV": "development", "DB_HOST": "", "SQLITE_PATH": str(tmp_path / "run.db"), "PORT": str(port),
               "WEBSOCKET_PORT": str(free_port())}  # fmt: skip
    run_env.pop("JWT_SECRET")
    proc = subprocess.Popen([sys.executable, str(RUN_STACK_SCRIPT), "--grace", "10", "--only", "backend"], cwd=BASE_DIR,
                            env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", lambda: None if proc.poll() is None else "run_stack exited")
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert "listening on" not in output  # the banner warns only when BIND_HOST opens the stack


def test_production_containers_listen_on_every_interface():
    env = {"APP_ENV": "production", "DB_HOST": "db", "DB_PASSWORD": "x7Qp2-vL9s", "REDIS_PASSWORD": "x7Qp2-vL9r",
           "RABBITMQ_PASSWORD": "x7Qp2-vL9q", "JWT_SECRET": "k" * 40}  # fmt: skip
    assert load_config(env).bind_address == "0.0.0.0:8080"
    # ...but the metrics of worker, consumer and feed stay on loopback unless METRICS_HOST says so
    # (compose sets 0.0.0.0 on its private network): a host install must not serve them to the world.
    assert load_config(env).METRICS_HOST == "127.0.0.1"
    assert load_config({**env, "METRICS_HOST": "10.0.0.5"}).METRICS_HOST == "10.0.0.5"


def test_login_backoff_turned_off_never_breaks_a_failed_login(make_app, user):
    # LOGIN_LOCKOUT=0 (no wait at all) once made the throttle's SET ... PX 0 a Redis error: a 503.
    client = make_app(LOGIN_LOCKOUT="0").test_client()
    for _ in range(8):
        assert_401(login(client, user.email, "wrong-password"))
    assert login(client, user.email).status_code == 200
