"""Throttles of the anonymous auth routes, kept in Redis: failed logins (backoff per account and
address pair, and per address across accounts) and registrations per address. The policy and its
reasons: docs/security.md.

No key names an account: emails are hashed (the key length stays bounded whatever a client sends,
and a Redis dump lists no addresses of users). IPv6 clients are counted by their /64, the block one
subscriber holds, so an attacker cannot sidestep the limits by walking through it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
from dataclasses import dataclass

import redis
from flask import current_app

from tradingapp.domain.errors import Refused, Unavailable
from tradingapp.extensions import get_redis

log = logging.getLogger(__name__)

# KEYS: per scope, its failure counter then its wait key. ARGV: memory in ms, then per scope its free
# failures and its longest wait in ms. Counts one failure in every scope; past a scope's free
# failures, its wait key lives for 1 s * 2^(failures past free - 1), at most the longest (a longest
# of 0, LOGIN_LOCKOUT=0, sets no wait). Returns the waits set, in ms (0: none).
_RECORD_FAILURE = """
local memory = tonumber(ARGV[1])
local waits = {}
for i = 1, #KEYS / 2 do
    local count_key, wait_key = KEYS[2 * i - 1], KEYS[2 * i]
    local free, longest = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    local failures = redis.call('INCR', count_key)
    redis.call('PEXPIRE', count_key, memory)
    local wait = 0
    if failures > free then
        wait = math.floor(math.min(longest, 1000 * 2 ^ math.min(failures - free - 1, 40)))
        if wait > 0 then
            redis.call('SET', wait_key, failures, 'PX', wait)
        end
    end
    waits[i] = wait
end
return waits
"""


def client_address(remote_addr: str | None) -> str:
    """The address a throttle counts by: an IPv4 address as it is, an IPv6 one as its /64 block."""
    try:
        ip = ipaddress.ip_address((remote_addr or "").strip())
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _run(pipe_or_call):
    try:
        return pipe_or_call()
    except redis.RedisError:
        log.warning("event=auth_throttle_unavailable")
        raise Unavailable("logging in and registering are temporarily unavailable") from None


def too_many(message: str, retry_after: int) -> Refused:
    return Refused(message, {"retry_after": retry_after}, code="rate_limited", retry_after=retry_after)


@dataclass(frozen=True)
class _Scope:
    name: str
    count_key: str
    wait_key: str
    free: int


class LoginThrottle:
    """Failed logins of one email from one client address. `check` refuses (429 with Retry-After)
    while the pair or the address is waiting out a backoff; the password is not even looked at
    then. A failure counts in both scopes; a success forgets the pair's failures, never the
    address's (one good account must not reset a sprayer's count)."""

    def __init__(self, email: str, remote_addr: str | None):
        config = current_app.config
        self.address = client_address(remote_addr)
        self.longest_ms = int(config["LOGIN_LOCKOUT"] * 1000)
        self.memory_ms = int(config["LOGIN_FAILURE_MEMORY"] * 1000)
        pair, address = _digest(email, self.address), _digest(self.address)
        self.pair = _Scope("account_address", f"auth:login:fails:pair:{pair}", f"auth:login:wait:pair:{pair}",
                           config["LOGIN_MAX_FAILURES"])  # fmt: skip
        self.by_address = _Scope("address", f"auth:login:fails:addr:{address}", f"auth:login:wait:addr:{address}",
                                 config["LOGIN_ADDRESS_MAX_FAILURES"])  # fmt: skip

    def check(self) -> None:
        scopes = (self.pair, self.by_address)
        waits = _run(lambda: get_redis().pipeline(transaction=False).pttl(scopes[0].wait_key)
                     .pttl(scopes[1].wait_key).execute())  # fmt: skip
        waiting = [(scope, ms) for scope, ms in zip(scopes, waits, strict=True) if ms and ms > 0]
        if waiting:
            scope, ms = max(waiting, key=lambda item: item[1])
            retry_after = max(1, math.ceil(ms / 1000))
            log.info("event=login_throttled scope=%s address=%s retry_after=%s", scope.name, self.address, retry_after)
            raise too_many("too many failed logins, try again later", retry_after)

    def record_failure(self) -> None:
        scopes = (self.pair, self.by_address)
        keys = [key for scope in scopes for key in (scope.count_key, scope.wait_key)]
        argv = [self.memory_ms]
        for scope in scopes:
            argv += [scope.free, self.longest_ms]
        waits = _run(lambda: get_redis().eval(_RECORD_FAILURE, len(keys), *keys, *argv))
        for scope, ms in zip(scopes, waits, strict=True):
            if ms:
                log.info("event=login_backoff scope=%s address=%s wait_ms=%s", scope.name, self.address, ms)

    def record_success(self) -> None:
        _run(lambda: get_redis().delete(self.pair.count_key, self.pair.wait_key))


def check_registration(remote_addr: str | None) -> None:
    """Count one registration from this address; 429 past REGISTER_MAX_PER_ADDRESS in the window
    (fixed, from the address's first registration in it)."""
    config = current_app.config
    address = client_address(remote_addr)
    key = f"auth:register:addr:{_digest(address)}"
    window = config["REGISTER_WINDOW"]
    pipe = get_redis().pipeline()
    pipe.set(key, 0, ex=window, nx=True).incr(key).ttl(key)
    _, count, ttl = _run(pipe.execute)
    if count > config["REGISTER_MAX_PER_ADDRESS"]:
        retry_after = ttl if ttl and ttl > 0 else window
        log.info("event=register_throttled address=%s retry_after=%s", address, retry_after)
        raise too_many("too many registrations from this address, try again later", retry_after)
