"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile).

A hash or a verification takes tens of milliseconds of CPU and 64 MiB; on a gevent worker that
time would stop every other request of the process. So under gevent both run in a small pool of
real threads (argon2 releases the GIL) while the calling greenlet waits and the loop keeps serving;
at most HASH_THREADS of them at once per process, the rest queue there. Outside gevent (the CLI,
tests, a plain thread) they run in the caller's thread.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from gevent import get_hub, getcurrent, monkey
from gevent.threadpool import ThreadPool

HASHER = PasswordHasher()
# Threads hashing at once per process: each holds 64 MiB while it works, and more threads than
# cores would only make every login slower.
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))

T = TypeVar("T")
_pool_lock = threading.Lock()
_pools: dict[int, ThreadPool] = {}  # id of a gevent hub -> its ThreadPool


def _gevent_hub():
    """The gevent hub when this process runs on gevent (monkey-patched, as a gunicorn gevent worker
    is) and the caller is a greenlet other than the hub itself, else None."""
    if not monkey.is_module_patched("threading"):
        return None
    hub = get_hub()
    return None if getcurrent() is hub else hub


def off_loop(fn: Callable[..., T], *args) -> T:
    """fn(*args), run in the hashing pool when called from a greenlet, so the event loop keeps
    serving meanwhile; in the caller's thread otherwise."""
    hub = _gevent_hub()
    if hub is None:
        return fn(*args)
    pool = _pools.get(id(hub))
    if pool is None:
        with _pool_lock:
            pool = _pools.get(id(hub))
            if pool is None:
                pool = _pools[id(hub)] = ThreadPool(HASH_THREADS, hub=hub)
    return pool.apply(fn, args)


def hash_password(password: str) -> str:
    return off_loop(HASHER.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_password(password_hash: str, password: str) -> bool:
    """True when `password` matches; False on a mismatch or an unreadable hash, never raises."""
    return off_loop(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's (e.g. older, cheaper ones)."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


@functools.cache
def _dummy_hash() -> str:
    # Made once per process with the current parameters, so it costs what a real user's hash costs.
    return HASHER.hash("dummy-password-for-unknown-accounts")


def burn_verification(password: str) -> None:
    """Spend the time of one real verification, so an unknown email answers as slowly as a known one."""
    off_loop(lambda: _verify(_dummy_hash(), password))
