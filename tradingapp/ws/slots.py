"""WS_MAX_SOCKETS_PER_USER across every websocket process: each open socket holds a lease in a
per-user sorted set in Redis (member: the socket's id, score: when the lease ends, by Redis's clock).
A socket takes one when it opens, if fewer than the limit are alive; the process renews the leases
of its sockets while they live and gives them back when they close. A process killed without
closing its sockets leaves leases that lapse within WS_SLOT_LEASE: no place leaks for good.

With Redis down the process's own limit (the hub's) still holds, and sockets are let in.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import redis

log = logging.getLogger(__name__)

# KEYS[1]: the user's leases. ARGV: limit, lease in ms, the socket's id. 1 taken, 0 refused.
_TAKE = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
# KEYS: users' leases; ARGV: lease in ms, then per key a space-separated list of its socket ids.
# Renews only leases still present (one dropped by a lapse is not revived: its place may be taken).
_RENEW = """
local now = redis.call('TIME')
local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
    for member in string.gmatch(ARGV[i + 1], '%S+') do
        redis.call('ZADD', key, 'XX', until_ms, member)
    end
    redis.call('PEXPIRE', key, tonumber(ARGV[1]))
end
return #KEYS
"""


class SocketSlots:
    def __init__(self, client: redis.Redis, namespace: str, limit: int, lease_seconds: float):
        self.redis = client
        self.namespace = namespace
        self.limit = limit
        self.lease_ms = int(lease_seconds * 1000)
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)

    def _key(self, user_id: str) -> str:
        key = f"ws:sockets:{user_id}"
        return f"{self.namespace}:{key}" if self.namespace else key

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def take(self, user_id: str, slot_id: str) -> bool:
        """Whether the user may open one more socket (and it now holds a place)."""
        try:
            return bool(self._take(keys=[self._key(user_id)], args=[self.limit, self.lease_ms, slot_id]))
        except redis.RedisError as exc:
            log.warning("event=ws_slots_unavailable user_id=%s error=%s", user_id, type(exc).__name__)
            return True

    def give_back(self, user_id: str, slot_id: str) -> None:
        try:
            self.redis.zrem(self._key(user_id), slot_id)
        except redis.RedisError:
            pass  # the lease lapses on its own

    def renew(self, held: Iterable[tuple[str, str]]) -> None:
        """Extend the leases of the sockets this process holds: (user id, slot id) pairs."""
        by_user: dict[str, list[str]] = {}
        for user_id, slot_id in held:
            by_user.setdefault(user_id, []).append(slot_id)
        users = list(by_user)
        for start in range(0, len(users), 500):
            batch = users[start : start + 500]
            keys = [self._key(user_id) for user_id in batch]
            args = [self.lease_ms, *(" ".join(by_user[user_id]) for user_id in batch)]
            self._renew(keys=keys, args=args)
