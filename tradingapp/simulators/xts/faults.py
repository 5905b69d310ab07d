"""Fault knobs and rate limits: what the broker does wrong, set at start or at run time.

Route names (for per-route knobs; "*" means every route): login, logout, profile, balance, place,
modify, cancel, cancelall, orders (book and history), trades, positions, holdings, md_login,
md_logout, md_config, master, quotes, subscribe, unsubscribe, ohlc, search.

Plain Python: the caller supplies the clock and the random generator.
"""

from __future__ import annotations

import random
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field

from tradingapp.simulators.xts import hostile as hostile_kinds

ROUTES = {
    "login",
    "logout",
    "profile",
    "balance",
    "place",
    "modify",
    "cancel",
    "cancelall",
    "orders",
    "trades",
    "positions",
    "holdings",
    "md_login",
    "md_logout",
    "md_config",
    "master",
    "quotes",
    "subscribe",
    "unsubscribe",
    "ohlc",
    "search",
}
ORDER_ROUTES = {"place", "modify", "cancel", "cancelall"}
BOOK_ROUTES = {"orders", "trades", "positions", "holdings", "balance"}
MALFORMED_KINDS = ("non_json", "truncated", "wrong_shape", "no_envelope")
EVENT_KINDS = ("order", "trade", "position")


class FaultError(ValueError):
    """A control request that does not describe a fault."""


@dataclass
class EventFaults:
    """Interactive socket events: drop, duplicate or swap with the next one."""

    drop_next: int = 0
    drop_prob: float = 0.0
    duplicate_next: int = 0
    duplicate_prob: float = 0.0
    reorder_next: int = 0
    reorder_prob: float = 0.0
    kinds: list[str] = field(default_factory=lambda: list(EVENT_KINDS))

    def decide(self, kind: str, rng: random.Random) -> str:
        """'drop', 'duplicate', 'reorder' or 'send' for one event; counts are used up first."""
        if kind not in self.kinds:
            return "send"
        for action in ("drop", "duplicate", "reorder"):
            left = getattr(self, f"{action}_next")
            if left > 0:
                setattr(self, f"{action}_next", left - 1)
                return action
        for action in ("drop", "duplicate", "reorder"):
            if rng.random() < getattr(self, f"{action}_prob"):
                return action
        return "send"


@dataclass
class Faults:
    latency_ms: dict[str, int] = field(default_factory=dict)
    fail_next: dict[str, dict] = field(default_factory=dict)  # route -> {count, status, after}
    hang_place: dict = field(default_factory=lambda: {"count": 0, "mode": "sleep", "seconds": 30.0})
    malformed: dict[str, dict] = field(default_factory=dict)  # route -> {count, kind}
    hostile: dict[str, dict] = field(default_factory=dict)  # route -> {count, kind, field, bytes} (hostile.py)
    hostile_events: dict = field(default_factory=lambda: {"count": 0})  # {count, kind, field, bytes, events}
    events: EventFaults = field(default_factory=EventFaults)
    rate_limit: bool = True
    order_rate: int = 10
    book_rate: int = 1
    stale_order_book: int = 0
    ack_delay_ms: int = 0
    single_session: bool = True

    def as_dict(self) -> dict:
        return asdict(self)

    # ---- consuming ---------------------------------------------------------------------------------
    def latency(self, route: str) -> float:
        return self.latency_ms.get(route, self.latency_ms.get("*", 0)) / 1000.0

    def _take(self, table: dict[str, dict], route: str) -> dict | None:
        for name in (route, "*"):
            entry = table.get(name)
            if entry and entry.get("count", 0) > 0:
                entry["count"] -= 1
                return dict(entry)
        return None

    def take_failure(self, route: str, after: bool) -> int | None:
        """The 5xx status to answer with now, if a failure is due at this point of the request."""
        for name in (route, "*"):
            entry = self.fail_next.get(name)
            if entry and entry.get("count", 0) > 0 and bool(entry.get("after", False)) == after:
                entry["count"] -= 1
                return int(entry.get("status", 500))
        return None

    def take_malformed(self, route: str) -> str | None:
        entry = self._take(self.malformed, route)
        return entry["kind"] if entry else None

    def take_hostile(self, route: str) -> dict | None:
        return self._take(self.hostile, route)

    def take_hostile_event(self, name: str) -> dict | None:
        """The hostile spec for this socket event, if one is due (its count is used up)."""
        spec = self.hostile_events
        if spec.get("count", 0) > 0 and name in spec["events"]:
            spec["count"] -= 1
            return dict(spec)
        return None

    def take_hang(self) -> dict | None:
        if self.hang_place.get("count", 0) > 0:
            self.hang_place["count"] -= 1
            return dict(self.hang_place)
        return None

    # ---- setting -----------------------------------------------------------------------------------
    def update(self, payload: dict) -> None:
        """Merge a control request into the knobs; a bad request changes nothing."""
        if not isinstance(payload, dict):
            raise FaultError("a JSON object of knobs is expected")
        staged = Faults(**{k: v for k, v in asdict(self).items() if k != "events"}, events=EventFaults())
        staged.events = EventFaults(**asdict(self.events))
        for key, value in payload.items():
            setter = getattr(staged, f"_set_{key}", None)
            if setter is None:
                raise FaultError(f"unknown knob {key!r}")
            setter(value)
        self.__dict__.update(staged.__dict__)

    def _set_latency_ms(self, value) -> None:
        for route, ms in _route_map(value).items():
            self.latency_ms[route] = _int(ms, "latency_ms", 0, 120_000)

    def _set_fail_next(self, value) -> None:
        for route, spec in _route_map(value).items():
            spec = {"count": spec} if isinstance(spec, int) else spec
            if not isinstance(spec, dict):
                raise FaultError("fail_next values are a count or {count, status, after}")
            status = _int(spec.get("status", 500), "status", 500, 599)
            after = spec.get("after", False)
            if not isinstance(after, bool):
                raise FaultError("fail_next.after is true or false")
            self.fail_next[route] = {
                "count": _int(spec.get("count", 1), "count", 0, 10_000),
                "status": status,
                "after": after,
            }

    def _set_malformed(self, value) -> None:
        for route, spec in _route_map(value).items():
            spec = {"count": spec} if isinstance(spec, int) else spec
            kind = spec.get("kind", "non_json") if isinstance(spec, dict) else None
            if kind not in MALFORMED_KINDS:
                raise FaultError(f"malformed kind is one of {', '.join(MALFORMED_KINDS)}")
            self.malformed[route] = {"count": _int(spec.get("count", 1), "count", 0, 10_000), "kind": kind}

    def _set_hostile(self, value) -> None:
        for route, spec in _route_map(value).items():
            self.hostile[route] = _hostile(spec)

    def _set_hostile_events(self, value) -> None:
        spec = _hostile(value)
        events = value.get("events", ["order", "trade"])
        if not isinstance(events, list) or not events or not set(events) <= set(hostile_kinds.EVENTS):
            raise FaultError(f"hostile_events.events is a list drawn from {', '.join(hostile_kinds.EVENTS)}")
        self.hostile_events = spec | {"events": list(events)}

    def _set_hang_place(self, value) -> None:
        value = {"count": value} if isinstance(value, int) else value
        if not isinstance(value, dict) or value.get("mode", "sleep") not in ("sleep", "drop"):
            raise FaultError("hang_place is a count or {count, mode: sleep|drop, seconds}")
        seconds = value.get("seconds", self.hang_place.get("seconds", 30.0))
        if not isinstance(seconds, int | float) or not 0 <= seconds <= 600:
            raise FaultError("hang_place.seconds is between 0 and 600")
        self.hang_place = {
            "count": _int(value.get("count", 1), "count", 0, 10_000),
            "mode": value.get("mode", "sleep"),
            "seconds": float(seconds),
        }

    def _set_events(self, value) -> None:
        if not isinstance(value, dict):
            raise FaultError("events is an object")
        for key, v in value.items():
            if not hasattr(self.events, key):
                raise FaultError(f"unknown events knob {key!r}")
            if key.endswith("_next"):
                setattr(self.events, key, _int(v, key, 0, 10_000))
            elif key.endswith("_prob"):
                if not isinstance(v, int | float) or not 0 <= v <= 1:
                    raise FaultError(f"{key} is a probability")
                setattr(self.events, key, float(v))
            elif key == "kinds" and isinstance(v, list) and set(v) <= set(EVENT_KINDS):
                self.events.kinds = list(v)
            else:
                raise FaultError(f"events.kinds is a list drawn from {', '.join(EVENT_KINDS)}")

    def _set_rate_limit(self, value) -> None:
        if not isinstance(value, bool):
            raise FaultError("rate_limit is true or false")
        self.rate_limit = value

    def _set_single_session(self, value) -> None:
        if not isinstance(value, bool):
            raise FaultError("single_session is true or false")
        self.single_session = value

    def _set_order_rate(self, value) -> None:
        self.order_rate = _int(value, "order_rate", 1, 100_000)

    def _set_book_rate(self, value) -> None:
        self.book_rate = _int(value, "book_rate", 1, 100_000)

    def _set_stale_order_book(self, value) -> None:
        self.stale_order_book = _int(value, "stale_order_book", 0, 10_000)

    def _set_ack_delay_ms(self, value) -> None:
        self.ack_delay_ms = _int(value, "ack_delay_ms", 0, 60_000)


def _route_map(value) -> dict:
    if not isinstance(value, dict):
        raise FaultError("a per-route knob is an object of route -> value")
    unknown = set(value) - ROUTES - {"*"}
    if unknown:
        raise FaultError(f"unknown route {sorted(unknown)[0]!r}")
    return value


def _hostile(spec) -> dict:
    """{count, kind, field?, bytes?}: what hostile.py writes in place of the answer or the field."""
    if not isinstance(spec, dict) or spec.get("kind") not in hostile_kinds.KINDS:
        kinds = ", ".join(hostile_kinds.KINDS)
        raise FaultError(f"a hostile spec is {{count, kind, field, bytes}}, its kind one of {kinds}")
    name = spec.get("field")
    if name is None and spec["kind"] not in hostile_kinds.WHOLE_OK:
        raise FaultError(f"hostile kind {spec['kind']} needs the field it replaces")
    if name is not None and (not isinstance(name, str) or not name):
        raise FaultError("hostile field is the name of a field")
    return {
        "count": _int(spec.get("count", 1), "count", 0, 10_000),
        "kind": spec["kind"],
        "field": name,
        "bytes": _int(spec.get("bytes", hostile_kinds.DEFAULT_BYTES), "bytes", 1, 2**31),
    }


def _int(value, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"{name} is a whole number from {low} to {high}")
    return value


class RateLimiter:
    """Sliding one-second windows: order calls together per user, each book call per user."""

    def __init__(self, clock):
        self.clock = clock
        self.windows: dict[tuple[str, str], deque] = defaultdict(deque)

    def allow(self, user: str, route: str, faults: Faults) -> bool:
        if not faults.rate_limit:
            return True
        if route in ORDER_ROUTES:
            group, limit = "order-calls", faults.order_rate
        elif route in BOOK_ROUTES:
            group, limit = route, faults.book_rate
        else:
            return True
        now = self.clock()
        window = self.windows[(user, group)]
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(now)
        return True
