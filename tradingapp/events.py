"""Broker events: the one schema every broker (paper, XTS bridge) publishes on `broker.events`
(routing key: the type, e.g. "order.fill") and the consumer applies. The message's fields, and
what each event type carries, are in docs/messages.md.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

ACCEPTED = "order.accepted"
REJECTED = "order.rejected"
FILL = "order.fill"
CANCELLED = "order.cancelled"
CANCEL_REJECTED = "order.cancel_rejected"
EXPIRED = "order.expired"
MODIFIED = "order.modified"
MODIFY_REJECTED = "order.modify_rejected"
PRICE_QUANTUM = Decimal("0.0001")
EVENT_TYPES = {ACCEPTED, REJECTED, FILL, CANCELLED, CANCEL_REJECTED, EXPIRED, MODIFIED, MODIFY_REJECTED}


class MalformedEvent(ValueError):
    """A message that can never be applied: it goes to the dead-letter queue."""


@dataclass(frozen=True)
class BrokerEvent:
    event_id: str
    type: str
    order_id: uuid.UUID
    broker: str
    broker_order_id: str | None
    ts: datetime
    execution_id: str | None = None
    quantity: int | None = None
    price: Decimal | None = None
    reason: str | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    seq: int | None = None


def make_event(
    type_: str,
    order_id: uuid.UUID,
    broker: str,
    broker_order_id: str | None,
    event_id: str,
    ts: datetime | None = None,
    **extra,
) -> dict:
    """A JSON-ready event body. `ts` is the time of the fact (default now): an event sent again
    carries the time it happened, not the time of the re-send."""
    body = {
        "event_id": event_id,
        "type": type_,
        "order_id": str(order_id),
        "broker": broker,
        "broker_order_id": broker_order_id,
        "ts": (ts or datetime.now(UTC)).astimezone(UTC).isoformat(),
    }
    for key, value in extra.items():
        body[key] = str(value) if isinstance(value, Decimal) else value
    return body


def parse_event(body: object) -> BrokerEvent:
    """Validate a message body; raises MalformedEvent with the reason."""
    if not isinstance(body, dict):
        raise MalformedEvent("event body is not an object")
    try:
        event_type = body["type"]
        if event_type not in EVENT_TYPES:
            raise MalformedEvent(f"unknown event type {event_type!r}")
        event_id = body["event_id"]
        if not isinstance(event_id, str) or not 0 < len(event_id) <= 100:
            raise MalformedEvent("event_id must be a non-empty string of at most 100 characters")
        event = BrokerEvent(
            event_id=event_id,
            type=event_type,
            order_id=uuid.UUID(str(body["order_id"])),
            broker=str(body.get("broker") or ""),
            broker_order_id=body.get("broker_order_id"),
            ts=datetime.fromisoformat(body["ts"]) if body.get("ts") else datetime.now(UTC),
            reason=body.get("reason"),
        )
        if event_type == FILL:
            quantity, price = body["quantity"], Decimal(str(body["price"]))
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                raise MalformedEvent("fill quantity must be a positive integer")
            if not price.is_finite() or price <= 0:
                raise MalformedEvent("fill price must be a positive decimal")
            # Our price columns hold 4 decimals: round here, once, so the trade, the order's
            # average and the position all book the same price (a fill is never refused for it).
            price = price.quantize(PRICE_QUANTUM, rounding=ROUND_HALF_UP)
            execution_id = str(body["execution_id"])
            event = BrokerEvent(
                **{**event.__dict__, "quantity": quantity, "price": price, "execution_id": execution_id}
            )
        if event_type == MODIFIED:
            event = BrokerEvent(**{**event.__dict__, **_modified_terms(body)})
        if event_type in (MODIFIED, MODIFY_REJECTED) and body.get("seq") is not None:
            seq = body["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool) or seq <= 0:
                raise MalformedEvent("seq must be a positive integer")
            event = BrokerEvent(**{**event.__dict__, "seq": seq})
        if event.ts.tzinfo is None:
            event = BrokerEvent(**{**event.__dict__, "ts": event.ts.replace(tzinfo=UTC)})
        return event
    except MalformedEvent:
        raise
    except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
        raise MalformedEvent(f"malformed event: {type(exc).__name__}: {exc}") from None


def _optional_price(body: dict, key: str) -> Decimal | None:
    value = body.get(key)
    if value is None:
        return None
    price = Decimal(str(value))
    if not price.is_finite() or price <= 0:
        raise MalformedEvent(f"{key} must be a positive decimal")
    return price


def _modified_terms(body: dict) -> dict:
    quantity = body["quantity"]
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
        raise MalformedEvent("modified quantity must be a positive integer")
    return {
        "quantity": quantity,
        "limit_price": _optional_price(body, "limit_price"),
        "stop_price": _optional_price(body, "stop_price"),
    }
