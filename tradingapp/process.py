"""What our long-running processes (jobs/: worker, consumer, feed, xts_bridge) share: stopping on
SIGTERM/SIGINT, a duty repeated in a thread of its own, one worker per round of a duty.
The processes are listed in the README (Processes)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from flask import current_app

from tradingapp.extensions import get_redis

log = logging.getLogger(__name__)


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Call `stop` on SIGTERM and SIGINT. It must only set flags: logging in a signal handler
    could re-enter a half-written log line."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda _signum, _frame: stop())


class StopFlag:
    """Set from a signal handler: a plain attribute, no lock the handler could deadlock on."""

    def __init__(self):
        self.stopped = False

    def set(self) -> None:
        self.stopped = True

    def is_set(self) -> bool:
        return self.stopped

    @classmethod
    def on_signals(cls) -> StopFlag:
        """A flag that SIGTERM and SIGINT set."""
        flag = cls()
        on_stop_signals(flag.set)
        return flag


class Periodic(threading.Thread):
    """A duty in a thread of its own: at start, then every `interval` seconds (0: only at start)."""

    def __init__(self, name: str, interval: float):
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()

    def duty(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                self.duty()
            except Exception:  # Postgres, Redis or the broker away for a moment: next round
                log.exception("event=%s_failed", self.name)
            if not self.interval or self._stop_event.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop_event.set()


def claim_round(name: str, seconds: int) -> bool:
    """Whether this process runs this round of the duty `name`: one process per `seconds` across
    all of them (a Redis lock, never released: it expires). Needs an app context."""
    namespace = current_app.config.get("NAMESPACE", "")
    # One prefix for every duty's round (the sweeper's, the first): the keys stay as deployed.
    key = f"{namespace}:orders:{name}" if namespace else f"orders:{name}"
    return bool(get_redis().set(key, "1", nx=True, ex=seconds))
