"""Heartbeats of the processes without HTTP (worker, consumer, feed, xts_bridge).

Each touches HEARTBEAT_DIR/<process> from its main loop (never from a side thread: a wedged loop must
go quiet), at most once a second. `python -m tradingapp.heartbeat check <process>` exits 1 when the
file is missing or older than HEARTBEAT_MAX_AGE: compose's healthcheck, so `docker compose ps` shows a
wedged consumer as unhealthy. It reads no service (Redis away must not make every process unhealthy:
their own loops say whether they still turn).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

PROCESSES = ("worker", "consumer", "feed", "xts_bridge")


class Heartbeat:
    """Touches the file at most every `every` seconds; `beat()` is cheap enough for a hot loop."""

    def __init__(self, directory: str, process: str, every: float = 1.0):
        self.path = Path(directory) / process
        self.every = every
        self._last = 0.0

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError:  # a full or read-only disk must not stop trading; the healthcheck will say so
            pass

    def clear(self) -> None:
        """At a clean stop: the next start must earn its first beat."""
        try:
            self.path.unlink()
        except OSError:
            pass


def age(directory: str, process: str) -> float | None:
    """Seconds since the process last beat, None if it never did."""
    try:
        return max(time.time() - os.stat(Path(directory) / process).st_mtime, 0.0)
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    from config import load_config

    parser = argparse.ArgumentParser(prog="python -m tradingapp.heartbeat")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="exit 1 unless the process beat within HEARTBEAT_MAX_AGE")
    check.add_argument("process", choices=PROCESSES)
    check.add_argument("--max-age", type=float, default=None, help="seconds (default HEARTBEAT_MAX_AGE)")
    args = parser.parse_args(argv)
    config = load_config()
    max_age = args.max_age if args.max_age is not None else config.HEARTBEAT_MAX_AGE
    seconds = age(config.HEARTBEAT_DIR, args.process)
    if seconds is None:
        print(f"{args.process}: no heartbeat in {config.HEARTBEAT_DIR}", file=sys.stderr)
        return 1
    if seconds > max_age:
        print(f"{args.process}: last heartbeat {seconds:.0f} s ago (limit {max_age:.0f} s)", file=sys.stderr)
        return 1
    print(f"{args.process}: last heartbeat {seconds:.1f} s ago")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
