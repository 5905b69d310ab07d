"""HTTP to XTS: one pooled keep-alive `requests.Session`, the envelope check, and the login session
shared through Redis (TokenStore). What each kind of answer means (retried, refused, unknown) and
why one login serves every process: docs/xts.md, "HTTP answers and the shared login".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
import redis
import requests
import urllib3

from tradingapp import metrics
from tradingapp.brokers.xts import untrusted
from tradingapp.brokers.xts.errors import (
    XtsAuthError,
    XtsError,
    XtsRateLimited,
    XtsRejected,
    XtsResponseError,
    XtsUnavailable,
    XtsUnreached,
)

log = logging.getLogger("tradingapp.brokers.xts")

INTERACTIVE, MARKETDATA = "interactive", "marketdata"
SOURCE = "WEBAPI"
RATE_LIMIT_BACKOFF = (0.25, 0.5, 1.0, 2.0)  # seconds before each retry of a 429; ~3.75 s at most
MAX_RETRY_AFTER = 2.0  # a Retry-After header is honoured up to this
CONNECT_TIMEOUT = 3.05
DEFAULT_TOKEN_TTL = 8 * 3600  # when the token says nothing of its expiry
MAX_TOKEN_TTL = 24 * 3600
MAX_TOKEN_CHARS = 4096  # an XTS session token is a JWT of ~300 characters
CHUNK = 64 * 1024  # an answer is read this much at a time, counted against its cap and deadline
# Answers bigger than MAX_ANSWER_BYTES: the instrument master (docs/xts.md, "Reading what XTS sends").
BIG_ANSWERS = {"/instruments/master": untrusted.MAX_MASTER_BYTES}
BIG_ANSWER_SECONDS = 120.0  # the master's download, whatever the timeout (tens of MiB)


@dataclass(frozen=True)
class XtsAccount:
    """One XTS account: where it is, its apps' keys and, for a dealer, the client it acts for."""

    url: str
    app_key: str
    secret_key: str = field(repr=False)
    client_id: str = ""
    md_app_key: str = ""
    md_secret_key: str = field(default="", repr=False)
    md_prefix: str = "/apimarketdata"
    timeout: float = 7.0

    def keys(self, api: str) -> tuple[str, str]:
        return (self.app_key, self.secret_key) if api == INTERACTIVE else (self.md_app_key, self.md_secret_key)

    def root(self, api: str) -> str:
        base = self.url.rstrip("/")
        return f"{base}/interactive" if api == INTERACTIVE else f"{base}{self.md_prefix}"


@dataclass(frozen=True)
class Login:
    token: str = field(repr=False)
    user_id: str
    investor: bool | None = None


class TokenStore:
    """Session tokens in Redis, one per (API, account), shared by every process."""

    def __init__(self, client: redis.Redis, namespace: str = ""):
        self.redis = client
        self.root = f"{namespace}:xts" if namespace else "xts"  # every Redis key of the XTS client
        self.prefix = f"{self.root}:session"

    def key(self, api: str, account: XtsAccount) -> str:
        """The session's key: a digest of the URL, app key AND secret, so an account linked with the
        right app key but a wrong secret never picks up the session another account logged in."""
        app_key, secret_key = account.keys(api)
        digest = hashlib.sha256(f"{account.url.rstrip('/')}|{app_key}|{secret_key}".encode()).hexdigest()[:32]
        return f"{self.prefix}:{api}:{digest}"

    def get(self, key: str) -> Login | None:
        raw = self._redis(lambda: self.redis.get(key))
        if not raw:
            return None
        try:
            data = json.loads(raw)
            return Login(str(data["token"]), str(data["user_id"]), data.get("investor"))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: log in again

    def put(self, key: str, login: Login) -> None:
        body = json.dumps({"token": login.token, "user_id": login.user_id, "investor": login.investor})
        self._redis(lambda: self.redis.set(key, body, ex=token_ttl(login.token)))

    def lock(self, key: str, timeout: float):
        return self.redis.lock(f"{key}:login", timeout=timeout, blocking_timeout=timeout)

    @staticmethod
    def _redis(work: Callable):
        try:
            return work()
        except redis.RedisError as exc:
            raise XtsUnavailable(f"session store unavailable: {type(exc).__name__}") from None


def token_ttl(token: str) -> int:
    """Seconds the token lives (XTS tokens are JWTs with an exp), a minute early; a default otherwise."""
    try:
        expires = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except (jwt.PyJWTError, ValueError, RecursionError):  # an unreadable payload: NaN, 5000 digits, nesting
        return DEFAULT_TOKEN_TTL
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not 0 < expires < 2**40:
        return DEFAULT_TOKEN_TTL
    return int(min(max(expires - time.time() - 60, 60), MAX_TOKEN_TTL))


class _InvalidToken(Exception):
    pass


class _Limited(Exception):
    def __init__(self, retry_after: float):
        super().__init__("rate limited")
        self.retry_after = retry_after


class XtsSession:
    """One API (interactive or market data) of one account: calls with its shared session token."""

    def __init__(
        self,
        account: XtsAccount,
        api: str,
        http: requests.Session,
        store: TokenStore,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.account, self.api, self.http, self.store = account, api, http, store
        self.sleep = sleep
        self.key = store.key(api, account)
        self.timeout = (min(CONNECT_TIMEOUT, account.timeout), account.timeout)
        self.login_lock_seconds = 3 * account.timeout + 5  # a login (under the lock) never outlasts it
        self._login: Login | None = None

    # -- calls -------------------------------------------------------------------------------
    def call(self, method: str, path: str, payload: dict | None = None):
        """The result of one call. Invalid Token: one new login and the call again; 429: bounded
        backoff. Raises XtsRejected, XtsUnavailable, XtsRateLimited, XtsResponseError, XtsAuthError."""
        login = self._for_this_account(self.login())
        logged_in, renewals = False, 0
        delays = iter(RATE_LIMIT_BACKOFF)
        while True:
            try:
                return self._once(method, path, payload, login.token)
            except _InvalidToken:
                # The shared token may be dead too (both expired): then one login of our own, no more.
                if logged_in or renewals >= 3:
                    metrics.XTS_SESSION_UP.labels(self.api).set(0)
                    raise XtsAuthError(f"{self.api} session invalid again right after a new login") from None
                log.info("event=xts_session_invalid api=%s path=%s", self.api, path)
                login, fresh = self._renew(login.token)
                login = self._for_this_account(login)
                logged_in, renewals = logged_in or fresh, renewals + 1
            except _Limited as limited:
                delay = next(delays, None)
                if delay is None:
                    raise XtsRateLimited(
                        f"{method} {path}: still rate limited after {len(RATE_LIMIT_BACKOFF)} retries"
                    ) from None
                delay = max(delay / 2 + random.uniform(0, delay / 2), min(limited.retry_after, MAX_RETRY_AFTER))
                log.info("event=xts_rate_limited api=%s path=%s retry_in=%.2f", self.api, path, delay)
                self.sleep(delay)

    def _once(self, method: str, path: str, payload: dict | None, token: str):
        payload = dict(payload or {})
        if self.api == INTERACTIVE and self.account.client_id:
            payload["clientID"] = self.account.client_id
        headers = {"Authorization": token, "Content-Type": "application/json"}
        url = self.account.root(self.api) + path
        body = {"params": payload} if method in ("GET", "DELETE") else {"data": json.dumps(payload)}
        try:
            response = self.http.request(method, url, headers=headers, timeout=self.timeout, stream=True, **body)
        except requests.RequestException as exc:
            unreached = XtsUnreached if never_sent(exc) else XtsUnavailable
            raise unreached(f"{method} {path}: {type(exc).__name__}") from None
        limit = BIG_ANSWERS.get(path, untrusted.MAX_ANSWER_BYTES)
        seconds = BIG_ANSWER_SECONDS if path in BIG_ANSWERS else self.account.timeout
        return read_answer(response, f"{method} {path}", limit, seconds)

    def max_call_seconds(self) -> float:
        """The longest one `call` takes: every try to its timeouts (the 429 retries with their
        waits, and after an Invalid Token the wait for the login lock, one login, the call again)."""
        request = sum(self.timeout) + self.account.timeout  # connect, the first byte, then the whole body
        waits = sum(max(delay, MAX_RETRY_AFTER) for delay in RATE_LIMIT_BACKOFF)
        return (len(RATE_LIMIT_BACKOFF) + 3) * request + waits + self.login_lock_seconds

    def _for_this_account(self, login: Login) -> Login:
        """A dealer's session acts for a client named on every call: without one, refuse here (the
        session itself is kept for every other user of it, not logged in again per call)."""
        if self.api == INTERACTIVE and login.investor is False and not self.account.client_id:
            raise XtsAuthError(
                "a dealer account (isInvestorClient false) needs a client id: XTS_CLIENT_ID for "
                "the deployment's account, client_id for a linked one"
            )
        return login

    # -- the session -------------------------------------------------------------------------
    def login(self) -> Login:
        """The session in use: this process's, else the shared one, else a new login."""
        if self._login is None:
            try:
                self._login = self.store.get(self.key) or self.relogin(None)
            except XtsError:
                metrics.XTS_SESSION_UP.labels(self.api).set(0)
                raise
            metrics.XTS_SESSION_UP.labels(self.api).set(1)
        return self._login

    def relogin(self, stale_token: str | None) -> Login:
        """A new session in place of `stale_token`, unless another process has made one already."""
        return self._renew(stale_token)[0]

    def _renew(self, stale_token: str | None) -> tuple[Login, bool]:
        """(session, whether this call logged in): under the lock, a shared session newer than
        `stale_token` is taken as it is; otherwise one login, stored for every process. The
        session's gauge (XTS_SESSION_UP) says whether that worked."""
        try:
            renewed = self._renew_locked(stale_token)
        except XtsError:
            metrics.XTS_SESSION_UP.labels(self.api).set(0)
            raise
        metrics.XTS_SESSION_UP.labels(self.api).set(1)
        return renewed

    def _renew_locked(self, stale_token: str | None) -> tuple[Login, bool]:
        try:
            with self.store.lock(self.key, timeout=self.login_lock_seconds):
                shared = self.store.get(self.key)
                if shared is not None and shared.token != stale_token:
                    self._login = shared
                    return shared, False
                login = self._login_call()
                self.store.put(self.key, login)
                self._login = login
                return login, True
        except redis.exceptions.LockError:
            raise XtsUnavailable(f"{self.api} login: the session lock stayed taken") from None
        except redis.RedisError as exc:
            raise XtsUnavailable(f"{self.api} login: session store unavailable: {type(exc).__name__}") from None

    def _login_call(self) -> Login:
        """One login at XTS, counted by outcome (XTS_LOGINS)."""
        try:
            login = self._login_once()
        except Exception:
            metrics.XTS_LOGINS.labels(self.api, "failed").inc()
            raise
        metrics.XTS_LOGINS.labels(self.api, "ok").inc()
        return login

    def _login_once(self) -> Login:
        app_key, secret_key = self.account.keys(self.api)
        if not (app_key and secret_key):
            raise XtsAuthError(f"no XTS {self.api} app key and secret configured")
        path = "/user/session" if self.api == INTERACTIVE else "/auth/login"
        body = {"appKey": app_key, "secretKey": secret_key, "source": SOURCE}
        try:
            response = self.http.post(
                self.account.root(self.api) + path,
                data=json.dumps(body),
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
                stream=True,
            )
            result = read_answer(response, f"{self.api} login", seconds=self.account.timeout)
        except (_InvalidToken, XtsRejected) as exc:
            raise XtsAuthError(f"{self.api} login refused: {exc}") from None
        except _Limited:
            raise XtsUnavailable(f"{self.api} login rate limited") from None
        except requests.RequestException as exc:
            raise XtsUnavailable(f"{self.api} login: {type(exc).__name__}") from None
        token = result.get("token") if isinstance(result, dict) else None
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            raise XtsResponseError(f"{self.api} login answered without a token")
        investor = result.get("isInvestorClient")
        user_id = untrusted.text(result.get("userID"), "userID", limit=64)
        login = Login(token, user_id, investor if isinstance(investor, bool) else None)
        log.info("event=xts_login api=%s user_id=%s", self.api, login.user_id)
        return login


def never_sent(exc: requests.RequestException) -> bool:
    """No connection was made (refused, connect timeout, name resolution): the request never left.
    A connection dropped after sending is not this: the broker may have the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectionError) and isinstance(reason, urllib3.exceptions.NewConnectionError)


def read_answer(response: requests.Response, what: str, limit: int = untrusted.MAX_ANSWER_BYTES, seconds: float = 30.0):
    """The result of an XTS answer, or the exception that says what it was. The body is read at
    most `limit` bytes (decompressed) and `seconds` long, then parsed as untrusted JSON."""
    status = response.status_code
    if status >= 500:
        response.close()
        raise XtsUnavailable(f"{what}: HTTP {status}")
    if status == 429:
        response.close()
        raise _Limited(_retry_after(response))
    data = untrusted.loads(read_body(response, what, limit, seconds), f"{what}: HTTP {status} answer")
    if not isinstance(data, dict) or data.get("type") not in ("success", "error"):
        raise XtsResponseError(f"{what}: HTTP {status} answer has no XTS envelope")
    description = _text(data.get("description"))
    if data["type"] == "error":
        if 400 <= status < 500 and description.lower() == "invalid token":
            raise _InvalidToken()
        if 400 <= status < 500:
            raise XtsRejected(_reason(description, data.get("result")), _text(data.get("code"), 64), status)
        raise XtsResponseError(f"{what}: HTTP {status} with an error envelope: {description[:200]}")
    if not 200 <= status < 300 or "result" not in data:
        raise XtsResponseError(f"{what}: HTTP {status} success without a result")
    return data["result"]


def read_body(response: requests.Response, what: str, limit: int, seconds: float) -> bytes:
    """The answer's body, refused (XtsResponseError) past `limit` bytes, declared or received, and
    given up (XtsUnavailable) past `seconds`: a broker dripping bytes within the read timeout, or a
    small gzip that inflates to gigabytes, costs the bound and no more."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and len(declared) < 20 and int(declared) > limit:
        response.close()
        raise XtsResponseError(f"{what}: answer of {declared} bytes, more than the {limit} accepted")
    deadline = time.monotonic() + seconds
    chunks, size = [], 0
    try:
        for chunk in response.iter_content(CHUNK):
            size += len(chunk)
            if size > limit:
                raise XtsResponseError(f"{what}: answer past the {limit} bytes accepted")
            if time.monotonic() > deadline:
                raise XtsUnavailable(f"{what}: answer still arriving after {seconds:.0f} s")
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise XtsUnavailable(f"{what}: answer cut off: {type(exc).__name__}") from None
    finally:
        response.close()
    return b"".join(chunks)


def _retry_after(response: requests.Response) -> float:
    try:
        seconds = float(response.headers.get("Retry-After", 0))
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds > 0 else 0.0


def _text(value: object, limit: int = 200) -> str:
    """A free-text field of an answer (a description, a message), cut to `limit`; "" for a field
    that is not text."""
    return value.strip()[:limit] if isinstance(value, str) else ""


def _reason(description: str, result: object) -> str:
    """The broker's description, with the messages of the fields its validation names."""
    messages = []
    errors = result.get("errors") if isinstance(result, dict) else None
    for error in errors[:10] if isinstance(errors, list) else []:
        if isinstance(error, dict) and isinstance(error.get("messages"), list):
            messages += [_text(m) for m in error["messages"][:10] if isinstance(m, str)]
    reason = description or "refused by the broker"
    return f"{reason}: {'; '.join(messages)}" if messages else reason
