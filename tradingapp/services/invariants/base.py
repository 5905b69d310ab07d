"""What every invariant check shares: its scope, its result, the report, durations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from tradingapp.domain.order_lifecycle import Status
from tradingapp.models import Order
from tradingapp.models.types import Price, iso, utcnow

TRANSIENT = (Status.PENDING, Status.SUBMITTED, Status.CANCEL_PENDING, Status.MODIFY_PENDING)
WORKING = (Status.OPEN, Status.PARTIALLY_FILLED, Status.CANCEL_PENDING, Status.MODIFY_PENDING)
DEFAULT_GRACE = timedelta(minutes=5)  # the sweeper's re-queues back off up to 300 s
DEFAULT_LIMIT = 20
ZERO = Decimal(0)
AMOUNT = Price(24, 4)


@dataclass
class Result:
    name: str
    checked: int = 0
    violations: list[dict] = field(default_factory=list)
    total: int = 0  # violations in all (only the first `limit` are listed)
    error: str | None = None  # the check could not run (a service out of reach): not a pass

    @property
    def ok(self) -> bool:
        return self.total == 0 and self.error is None

    def add(self, limit: int, **violation) -> None:
        self.total += 1
        if len(self.violations) < limit:
            self.violations.append(violation)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "ok": self.ok,
            "checked": self.checked,
            "violations": self.total,
            "listed": self.violations,
            "error": self.error,
        }


@dataclass
class Report:
    results: list[Result]
    since: datetime | None
    grace: timedelta
    checked_at: datetime

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def result(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "checked_at": iso(self.checked_at),
            "since": iso(self.since),
            "grace_seconds": int(self.grace.total_seconds()),
            "invariants": [r.to_dict() for r in self.results],
        }


@dataclass(frozen=True)
class Scope:
    since: datetime | None
    grace: timedelta
    now: datetime
    limit: int

    def orders(self, query: sa.Select) -> sa.Select:
        """Orders created within the window (all of them without --since)."""
        return query if self.since is None else query.where(Order.created_at >= self.since)

    @property
    def settled_before(self) -> datetime:
        return self.now - self.grace


def age(now: datetime, then: datetime) -> str:
    seconds = int((now - then).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


def parse_since(value: str, now: datetime | None = None) -> datetime:
    """`--since`: a duration back from now (90s, 30m, 24h, 7d) or an ISO-8601 time (UTC if no zone)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = value.strip()
    if text[:-1].isdigit() and text[-1:].lower() in units:
        return (now or utcnow()) - timedelta(seconds=int(text[:-1]) * units[text[-1].lower()])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected a duration such as 30m, 24h, 7d or an ISO-8601 time, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
