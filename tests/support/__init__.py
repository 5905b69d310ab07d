"""Helpers shared by the tests (fixtures stay in conftest.py files)."""

import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate, timeout: float = 10, details=lambda: "", interval: float = 0.05):
    """The first truthy value of predicate() within timeout seconds, else AssertionError (with details())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s. {details()}")
