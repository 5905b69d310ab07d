"""The invariants of the order book, checked against the database, the paper exchange's book,
RabbitMQ's dead-letter queue and RQ's failed jobs: what must hold after any crash, restart or
network fault once the system has settled (`flask check-invariants`, the chaos suite; README,
"Chaos"). Each check reads only and reports its first `limit` violations and how many in all;
what each one holds is in its docstring (orders, money, audit, queues)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from tradingapp.extensions import db
from tradingapp.models.types import utcnow
from tradingapp.services.invariants import audit, money, orders, queues
from tradingapp.services.invariants.base import DEFAULT_GRACE, DEFAULT_LIMIT, Report, Result, Scope, parse_since

__all__ = ["DEFAULT_GRACE", "DEFAULT_LIMIT", "Report", "Result", "check_all", "parse_since"]


def check_all(
    since: datetime | None = None,
    grace: timedelta = DEFAULT_GRACE,
    limit: int = DEFAULT_LIMIT,
    dead_letters: bool = True,
    now: datetime | None = None,
) -> Report:
    """Every invariant over the orders created since `since` (all without it), and the positions
    and funds of the users who traded in that window. Orders touched within `grace` of now are in
    flight: the checks comparing them with the broker wait for them."""
    scope = Scope(since, grace, now or utcnow(), limit)
    checks: list[tuple[str, Callable[[Scope, Result], None]]] = [
        ("orders_settled", orders.orders_settled),
        ("sent_once", orders.sent_once),
        ("broker_agrees", orders.broker_agrees),
        ("fills_match_trades", orders.fills_match_trades),
        ("positions_match_fills", money.positions_match_fills),
        ("funds_consistent", money.funds_consistent),
        ("audit_complete", audit.audit_complete),
    ]
    if dead_letters:
        checks.append(("dead_letters_explained", queues.dead_letters_explained))
    results = []
    for name, check in checks:
        result = Result(name)
        try:
            check(scope, result)
        except Exception as exc:  # a service out of reach: reported, and the report is not ok
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            db.session.rollback()
        results.append(result)
    return Report(results, since, grace, scope.now)
