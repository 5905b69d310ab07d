"""The control API under /_sim: what tests and operators use to steer the simulator (prices, RMS
rejects, faults, sessions, sockets). Each route says what it takes; the table of them is in
docs/xts-simulator.md. Errors answer 400 {"error": "..."}; nothing changes.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask import Blueprint, jsonify, request

from tradingapp.simulators.xts.faults import FaultError
from tradingapp.simulators.xts.http import sim

bp = Blueprint("control", __name__, url_prefix="/_sim")


class ControlError(ValueError):
    pass


@bp.errorhandler(FaultError)
@bp.errorhandler(ControlError)
def _bad(err):
    return jsonify(error=str(err)), 400


def _payload() -> dict:
    data = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(data, dict):
        raise ControlError("a JSON object is expected")
    return data


def _decimal(value, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ControlError(f"{name} must be a number") from None
    if isinstance(value, bool) or not number.is_finite() or number <= 0:
        raise ControlError(f"{name} must be a positive number")
    return number


def _int(value, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ControlError(f"{name} must be a whole number >= {low}")
    return value


@bp.get("/state")
def state():
    """Knobs, prices, sessions, sockets, request and event counts."""
    s = sim()
    by_uid: dict[str, list[int]] = {}
    for order in s.exchange.orders.values():
        by_uid.setdefault(order.unique_id, []).append(order.app_order_id)
    prices = {
        f"{seg}:{ex_id}": {
            "ltp": str(b.ltp),
            "bid": str(b.bid),
            "ask": str(b.ask),
            "bid_size": b.bid_size,
            "ask_size": b.ask_size,
            "display_lots": b.display_lots,
        }
        for (seg, ex_id), b in s.market.books.items()
    }
    risk = s.exchange.risk
    return jsonify(
        faults=s.faults.as_dict(),
        risk={
            "margin_available": str(risk.margin_available),
            "max_notional": None if risk.max_notional is None else str(risk.max_notional),
            "reject_instruments": sorted(list(k) for k in risk.reject_instruments),
            "reject_next": risk.reject_next,
        },
        style=s.style.__dict__,
        frozen=s.market.frozen,
        prices=prices,
        orders=len(s.exchange.orders),
        orders_by_unique_id=by_uid,
        trades=len(s.exchange.trades),
        sessions=s.sessions.live(),
        sockets=s.streams.connected(),
        subscriptions={u: sorted(list(x) for x in subs) for u, subs in s.subscriptions.items()},
        requests=s.request_counts,
        events=s.streams.stats,
        queued_events=s.streams.queue.qsize(),
    )


@bp.get("/orders")
def orders():
    """Every order's current row (all accounts) and its history length."""
    ex = sim().exchange
    return jsonify(orders=[ex.current_row(o) | {"_history": len(o.history)} for o in ex.orders.values()])


@bp.post("/faults")
def faults():
    """Merge fault knobs (faults.py); answers the new knobs."""
    s = sim()
    s.faults.update(_payload())
    return jsonify(faults=s.faults.as_dict())


@bp.post("/reset")
def reset():
    """Fresh books, prices and knobs; {"sessions": true} also ends sessions."""
    sim().reset(sessions=bool(_payload().get("sessions", False)))
    return jsonify(reset=True)


@bp.post("/sessions/expire")
def expire_sessions():
    """End sessions now ({"userID", "api"} to narrow), a logout event on their sockets."""
    data = _payload()
    s = sim()
    ended = s.sessions.expire(user_id=data.get("userID"), api=data.get("api"))
    s.streams.log_out({e.token for e in ended})
    return jsonify(expired=len(ended))


@bp.post("/sockets/disconnect")
def disconnect_sockets():
    """{"mode": "drop"} cuts TCP (clients reconnect), "close" disconnects at the socket.io
    level; {"refuse_seconds": n} answers 503 meanwhile."""
    data = _payload()
    refuse = data.get("refuse_seconds", 0)
    if isinstance(refuse, bool) or not isinstance(refuse, int | float) or not 0 <= refuse <= 600:
        raise ControlError("refuse_seconds must be between 0 and 600")
    mode = data.get("mode", "drop")
    if mode not in ("drop", "close"):
        raise ControlError("mode is drop (cut the connections) or close (a socket.io disconnect)")
    return jsonify(disconnected=sim().streams.disconnect_all(mode, float(refuse)))


def _book(data: dict):
    s = sim()
    ins = s.instrument_by_code(data.get("exchangeSegment"), data.get("exchangeInstrumentID"))
    if ins is None:
        raise ControlError("unknown instrument (exchangeSegment, exchangeInstrumentID)")
    return ins.key, s.market.book(*ins.key)


@bp.post("/price")
def set_price():
    """{exchangeSegment, exchangeInstrumentID, price, bid?, ask?, bidSize?, askSize?}."""
    data = _payload()
    key, book = _book(data)
    s = sim()
    bid = _decimal(data["bid"], "bid") if "bid" in data else None
    ask = _decimal(data["ask"], "ask") if "ask" in data else None
    if bid is not None and ask is not None and bid >= ask:
        raise ControlError("bid must be below ask")
    s.market.set_price(book, _decimal(data.get("price"), "price"), bid, ask)
    if "bidSize" in data:
        book.bid_size = _int(data["bidSize"], "bidSize")
    if "askSize" in data:
        book.ask_size = _int(data["askSize"], "askSize")
    s.after_price(key)
    return jsonify(
        ltp=str(book.ltp), bid=str(book.bid), ask=str(book.ask), bid_size=book.bid_size, ask_size=book.ask_size
    )


@bp.post("/step")
def step():
    """{"count": n} random-walk steps of every instrument, matching after each."""
    count = _int(_payload().get("count", 1), "count", 1)
    if count > 10_000:
        raise ControlError("count must be at most 10000")
    s = sim()
    for _ in range(count):
        s.step()
    return jsonify(steps=count)


@bp.post("/market")
def market():
    """{"frozen": bool, "display_lots": n}: the timer's walk and the touch size."""
    data = _payload()
    s = sim()
    if "frozen" in data:
        if not isinstance(data["frozen"], bool):
            raise ControlError("frozen must be true or false")
        s.market.frozen = data["frozen"]
    if "display_lots" in data:
        lots = _int(data["display_lots"], "display_lots", 1)
        for book in s.market.books.values():
            book.display_lots = lots
    return jsonify(frozen=s.market.frozen)


@bp.post("/risk")
def risk():
    """{margin_available, max_notional, reject_instruments: [[seg, id]], reject_next}."""
    data = _payload()
    s = sim()
    r = s.exchange.risk
    staged = {}
    if "margin_available" in data:
        staged["margin_available"] = _decimal(data["margin_available"], "margin_available")
    if "max_notional" in data:
        value = data["max_notional"]
        staged["max_notional"] = None if value is None else _decimal(value, "max_notional")
    if "reject_next" in data:
        staged["reject_next"] = _int(data["reject_next"], "reject_next")
    if "reject_instruments" in data:
        keys = set()
        for item in data["reject_instruments"] if isinstance(data["reject_instruments"], list) else [None]:
            ins = s.instrument_by_code(*item) if isinstance(item, list) and len(item) == 2 else None
            if ins is None:
                raise ControlError("reject_instruments is a list of [exchangeSegment, exchangeInstrumentID]")
            keys.add(ins.key)
        staged["reject_instruments"] = keys
    for name, value in staged.items():
        setattr(r, name, value)
    return jsonify(ok=True)


@bp.post("/style")
def style():
    """{date_style: iso|dmy, thousands: bool, positions_shape: positionList|flat}."""
    data = _payload()
    s = sim()
    checks = {"date_style": ("iso", "dmy"), "thousands": (True, False), "positions_shape": ("positionList", "flat")}
    for key, value in data.items():
        if key not in checks or value not in checks[key] or (key == "thousands" and not isinstance(value, bool)):
            raise ControlError(f"{key} must be one of {list(checks.get(key, ()))}")
    for key, value in data.items():
        setattr(s.style, key, value)
    return jsonify(style=s.style.__dict__)
