"""The XTS broker: the broker interface (base.py) over XTS's Interactive REST API, and its
market-data API as the QuoteSource. Exactly-once placing (the resend horizon), how the broker's
decisions come back as events, and the credentials handed in: docs/xts.md, "Placing an order
exactly once".
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

import redis
import requests
import sqlalchemy as sa
from flask import Flask, current_app

from tradingapp import events as ev
from tradingapp.brokers.base import BrokerOrder, ModifyRequest, OrderRequest
from tradingapp.brokers.xts import errors as xe
from tradingapp.brokers.xts import mapping as xm
from tradingapp.brokers.xts.accounts import (
    CredentialsFor,
    CredentialsUnavailable,
    XtsCredentials,
    account_of,
    env_account,
)
from tradingapp.brokers.xts.books import XtsBooks, read_books
from tradingapp.brokers.xts.interactive import Interactive
from tradingapp.brokers.xts.marketdata import MarketData
from tradingapp.brokers.xts.portfolio import parse_balance, parse_positions
from tradingapp.brokers.xts.session import INTERACTIVE, MARKETDATA, TokenStore, XtsAccount, XtsSession
from tradingapp.brokers.xts.untrusted import same, shown
from tradingapp.extensions import db, get_redis
from tradingapp.messaging import get_publisher
from tradingapp.models import Order

log = logging.getLogger("tradingapp.brokers.xts")

TOMBSTONE = "cancelled before the order arrived"
TOMBSTONE_TTL = 7 * 86400
UNKNOWN_ORDER = "order not found at the broker"
MIN_RESEND_HORIZON = 30.0  # seconds: a place whose outcome is unknown may land this long after it was sent
PLACED_TTL = 86400  # an attempt's record outlives the order's session (an unsent order expires at its end)
# A place that certainly did nothing.
NOT_EXECUTED = (xe.XtsRejected, xe.XtsUnreached, xe.XtsRateLimited, xe.XtsAuthError)


def resend_horizon(timeout: float) -> float:
    """How long after an attempt whose outcome is unknown the broker may still book it: well past
    the client's timeout (a broker still working on a request answers late, not never)."""
    return max(4 * timeout, MIN_RESEND_HORIZON)


@dataclass(frozen=True)
class OrderFacts:
    """What the broker calls need of our order beyond its id (read from Postgres, not the job)."""

    user_id: uuid.UUID
    broker_order_id: str | None
    product: str
    order_type: str
    time_in_force: str


class XtsClient:
    """One account's two APIs (each with its own session) over one pool of keep-alive connections."""

    def __init__(self, account: XtsAccount, store: TokenStore):
        self.account = account
        self.http = requests.Session()
        self.interactive = Interactive(XtsSession(account, INTERACTIVE, self.http, store))
        self.md = MarketData(XtsSession(account, MARKETDATA, self.http, store))


class XtsBroker:
    name = xm.BROKER

    def __init__(self, store: TokenStore, credentials: CredentialsFor | None = None):
        self.store = store
        self.credentials = credentials  # None: the deployment's account only (market data, the book reads)
        self._clients: dict[XtsAccount, XtsClient] = {}

    @classmethod
    def from_app(cls, app: Flask, credentials: CredentialsFor | None = None) -> XtsBroker:
        env_account(app.config)  # refuse to start without credentials
        return cls(TokenStore(app.extensions["redis"], app.config.get("NAMESPACE", "")), credentials)

    def client(self, user_id: uuid.UUID | None = None) -> XtsClient:
        return self.client_for(self.account(user_id))

    def account(self, user_id: uuid.UUID | None) -> XtsAccount:
        """The account a user's orders go through, from the credentials handed in (resolved per call:
        a newly linked account takes effect at once). None (market data) is the deployment's."""
        config = current_app.config
        if user_id is None:
            return env_account(config)
        if self.credentials is None:
            raise xe.XtsAuthError(f"no credentials for user {user_id}: this broker was built without a resolver")
        reading = db.session().in_transaction()
        try:
            credentials = self.credentials(user_id)
        except CredentialsUnavailable as exc:
            raise xe.XtsAuthError(str(exc)) from None
        finally:
            if not reading:
                db.session.rollback()  # end the read it began: no transaction stays open over a broker call
        return account_of(config, credentials)

    def client_for(self, account: XtsAccount) -> XtsClient:
        """One account's client (the reconcile reads each account's books once, whoever its users)."""
        client = self._clients.get(account)
        if client is None:
            client = self._clients[account] = XtsClient(account, self.store)
        return client

    def close(self) -> None:
        """Close every account's connection pool (tests, shutdown)."""
        for client in self._clients.values():
            client.http.close()
        self._clients.clear()

    # -- place -------------------------------------------------------------------------------
    def place(self, request: OrderRequest) -> str:
        """Send the order once; returns the AppOrderID ('' when the broker refused it at once). After
        an attempt whose outcome is unknown, only past the resend horizon and a lookup that misses."""
        oid = request.order_id
        api = self.client(request.user_id).interactive
        api.session.login()  # before the order lock: a login (or the wait for another process's) never eats into it
        started = time.monotonic()
        with self._order_lock(oid, api):
            if self._tombstoned(oid):
                publish([_tombstone_event(oid)])
                log.info("event=xts_place_skipped order_id=%s reason=cancelled_before_arrival", oid)
                return ""
            if self._earlier_attempt(api, oid, "place"):
                known = self._find(api, oid)  # after the horizon: whatever was sent has landed by now
                if known is not None:
                    found = self._lookup(api, oid, known)
                    log.info(
                        "event=xts_place_found order_id=%s user_id=%s broker_order_id=%s broker_status=%s",
                        oid,
                        request.user_id,
                        known,
                        found.status if found else None,
                    )
                    return str(known)
                log.warning("event=xts_place_resend order_id=%s user_id=%s", oid, request.user_id)
            previous = self._record_attempt(oid)
            try:
                result = api.place(place_body(request))
            except NOT_EXECUTED as exc:
                self._forget_attempt(oid, previous)
                if not isinstance(exc, xe.XtsRejected):
                    raise
                publish(
                    [ev.make_event(ev.REJECTED, oid, xm.BROKER, None, f"xts:rejected:{oid}:place", reason=exc.reason)]
                )
                log.warning(
                    "event=xts_place_refused order_id=%s user_id=%s reason=%r", oid, request.user_id, exc.reason
                )
                return ""
        app_order_id = read_place_answer(result, oid)
        # Known to the broker now: the record only has to outlast a book that may lag behind its answer.
        get_redis().expire(self._key("placed_at", oid), math.ceil(resend_horizon(api.account.timeout)))
        publish([ev.make_event(ev.ACCEPTED, oid, xm.BROKER, str(app_order_id), f"xts:accepted:{app_order_id}")])
        log.info(
            "event=xts_place order_id=%s user_id=%s broker_order_id=%s type=%s elapsed_ms=%.1f",
            oid,
            request.user_id,
            app_order_id,
            request.order_type,
            (time.monotonic() - started) * 1000,
        )
        return str(app_order_id)

    # -- cancel ------------------------------------------------------------------------------
    def cancel(self, order_id: uuid.UUID) -> None:
        """Ask XTS to cancel; Cancelled arrives as a row. A refusal is order.cancel_rejected. An
        order the broker never got is tombstoned (a late place of it never goes out) and cancelled,
        but never while a place of it may still land (XtsPlaceInFlight: the cancel is retried)."""
        facts = order_facts(order_id)
        api = self.client(facts.user_id).interactive
        app_order_id = facts.broker_order_id or self._find(api, order_id)
        if app_order_id is None:
            with self._order_lock(order_id, api):  # a place in flight finishes first
                self._earlier_attempt(api, order_id, "cancel")  # one that may still land: never a tombstone
                app_order_id = self._find(api, order_id)
                if app_order_id is None:
                    get_redis().set(self._key("tombstone", order_id), 1, ex=TOMBSTONE_TTL)
                    publish([_tombstone_event(order_id)])
                    log.info("event=xts_cancel_tombstone order_id=%s", order_id)
                    return
        try:
            api.cancel(app_order_id, order_id)
        except xe.XtsRejected as refusal:
            if self._took_already(api, order_id, app_order_id, cancel_took):
                log.info(
                    "event=xts_cancel_took_already order_id=%s broker_order_id=%s reason=%r",
                    order_id,
                    app_order_id,
                    refusal.reason,
                )
                return
            # One refusal per cancel request: a retried job's second one finds the order no longer
            # CANCEL_PENDING, and the state machine leaves it alone.
            event_id = f"xts:cancel_rejected:{app_order_id}:{time.time_ns() // 1_000_000}"
            publish(
                [
                    ev.make_event(
                        ev.CANCEL_REJECTED, order_id, xm.BROKER, str(app_order_id), event_id, reason=refusal.reason
                    )
                ]
            )
            log.info("event=xts_cancel_refused order_id=%s reason=%r", order_id, refusal.reason)
            return
        log.info("event=xts_cancel order_id=%s broker_order_id=%s", order_id, app_order_id)

    # -- modify ------------------------------------------------------------------------------
    def modify(self, request: ModifyRequest) -> None:
        """Ask XTS for new terms; Replaced arrives as a row (order.modified). A refusal is
        order.modify_rejected for this seq."""
        oid = request.order_id
        facts = order_facts(oid)
        api = self.client(facts.user_id).interactive
        app_order_id = facts.broker_order_id or self._find(api, oid)
        refusal_id = f"xts:modify_rejected:{oid}:{request.seq}"
        try:
            if app_order_id is None:
                raise xe.XtsRejected(UNKNOWN_ORDER)
            api.modify(modify_body(request, facts, app_order_id))
        except xe.XtsRejected as refusal:
            took = app_order_id is not None and self._took_already(api, oid, app_order_id, modify_took(request, facts))
            if took:
                log.info(
                    "event=xts_modify_took_already order_id=%s seq=%d broker_order_id=%s reason=%r",
                    oid,
                    request.seq,
                    app_order_id,
                    refusal.reason,
                )
                return
            publish(
                [
                    ev.make_event(
                        ev.MODIFY_REJECTED,
                        oid,
                        xm.BROKER,
                        app_order_id and str(app_order_id),
                        refusal_id,
                        seq=request.seq,
                        reason=refusal.reason,
                    )
                ]
            )
            log.info("event=xts_modify_refused order_id=%s seq=%d reason=%r", oid, request.seq, refusal.reason)
            return
        log.info("event=xts_modify order_id=%s seq=%d broker_order_id=%s", oid, request.seq, app_order_id)

    # -- lookup ------------------------------------------------------------------------------
    def lookup(self, order_id: uuid.UUID) -> BrokerOrder | None:
        """The broker's record of our order (None: it never arrived). Like paper's, it re-publishes
        every event the order's history and trade rows state, under their deterministic ids."""
        facts = order_facts(order_id)
        api = self.client(facts.user_id).interactive
        app_order_id = facts.broker_order_id or self._find(api, order_id)
        if app_order_id is None:
            return None
        return self._lookup(api, order_id, app_order_id)

    def _lookup(self, api: Interactive, order_id: uuid.UUID, app_order_id: int | str) -> BrokerOrder | None:
        try:
            rows = self._history(api, order_id, app_order_id)
        except xe.XtsRejected as refusal:  # e.g. an order of an earlier day: the book holds today's only
            log.warning(
                "event=xts_lookup_unknown order_id=%s broker_order_id=%s reason=%r",
                order_id,
                app_order_id,
                refusal.reason,
            )
            return None
        return self._republish(api, order_id, app_order_id, rows)

    def _history(self, api: Interactive, order_id: uuid.UUID, app_order_id: int | str) -> list[xm.OrderRow]:
        rows = [xm.parse_order_row(r) for r in api.order_history(app_order_id)]
        if not rows or any(r.order_id != order_id for r in rows):
            raise xe.XtsResponseError(f"history of AppOrderID {app_order_id} is not order {order_id}'s")
        return rows

    def _took_already(
        self, api: Interactive, order_id: uuid.UUID, app_order_id: int | str, took: Callable[[list[xm.OrderRow]], bool]
    ) -> bool:
        """After a refused cancel or modify: whether the order's history shows the request took (an
        earlier attempt whose answer was lost: "already Cancelled"); then the rows' events go out in
        place of a refusal. A history we cannot read raises (retried), never a guessed refusal."""
        try:
            rows = self._history(api, order_id, app_order_id)
        except xe.XtsRejected:
            return False
        if not took(rows):
            return False
        self._republish(api, order_id, app_order_id, rows)
        return True

    def _republish(
        self, api: Interactive, order_id: uuid.UUID, app_order_id: int | str, rows: list[xm.OrderRow]
    ) -> BrokerOrder:
        """Publish every event the order's history and its trade rows state; the broker's standing."""
        trades = [xm.parse_trade_row(t) for t in api.trade_book() if _of_order(t, app_order_id)]
        events = xm.order_events(rows, trades)
        publish(events)
        summary = xm.summarize(rows, trades)
        log.info(
            "event=xts_lookup order_id=%s broker_order_id=%s status=%s filled=%d events=%d",
            order_id,
            app_order_id,
            summary.status,
            summary.filled_quantity,
            len(events),
        )
        return BrokerOrder(
            order_id=order_id,
            broker_order_id=str(app_order_id),
            status=summary.status,
            filled_quantity=summary.filled_quantity,
        )

    def _find(self, api: Interactive, order_id: uuid.UUID) -> int | None:
        """The AppOrderID of our order, searched in the order book by orderUniqueIdentifier."""
        found = sorted(
            {
                xm.parse_order_row(r).app_order_id
                for r in api.order_book()
                if xm.our_order_id(_field(r, "OrderUniqueIdentifier")) == order_id
            }
        )
        if len(found) > 1:
            log.error("event=xts_duplicate_at_broker order_id=%s app_order_ids=%s", order_id, found)
        return found[0] if found else None

    # -- books, portfolio --------------------------------------------------------------------
    def read_books(self, credentials: dict[uuid.UUID, XtsCredentials]) -> XtsBooks:
        """Our orders in the books of the accounts of the users' credentials (resolved by the caller),
        each account's read once (the book reconcile: services/orders/reconcile.py)."""
        return read_books(lambda account: self.client_for(account).interactive, credentials, publish)

    def order_book(self, user_id: uuid.UUID | None = None) -> tuple[list[xm.OrderRow], int]:
        """Every order row of the day and how many unreadable rows of other orders were skipped."""
        return parse_rows(self.client(user_id).interactive.order_book(), xm.parse_order_row)

    def trade_book(self, user_id: uuid.UUID | None = None) -> tuple[list[xm.TradeRow], int]:
        return parse_rows(self.client(user_id).interactive.trade_book(), xm.parse_trade_row)

    def positions(self, user_id: uuid.UUID | None = None, day_or_net: str = "NetWise") -> list[dict]:
        return parse_positions(self.client(user_id).interactive.positions(day_or_net))

    def balance(self, user_id: uuid.UUID | None = None) -> dict:
        return parse_balance(self.client(user_id).interactive.balance())

    # -- market data (QuoteSource) -------------------------------------------------------------
    def quote(self, instrument) -> dict | None:
        """The broker's REST touchline of an Instrument row, shaped like the quote cache's; None
        when the market-data app is not configured or XTS has no quote for it."""
        client = self.client(None)
        if not client.account.md_app_key:
            return None
        return client.md.quote(instrument.exchange_segment, instrument.exchange_instrument_id)

    def market_data(self) -> MarketData:
        """Instrument master, quotes and OHLC (`flask instruments sync` and friends)."""
        return self.client(None).md

    # -- helpers -----------------------------------------------------------------------------
    def _key(self, kind: str, order_id: uuid.UUID) -> str:
        return f"{self.store.root}:{kind}:{order_id}"

    @contextmanager
    def _order_lock(self, order_id: uuid.UUID, api: Interactive):
        """Held while an order's place is in flight, so a cancel of the unknown order waits for it
        (as long as one request takes; then it is retried later). It lives past the longest a call
        can take (the session is logged in before), and nothing rests on it alone: the attempt
        record (placed_at) is written before the place is sent, so a lock that expired anyway is let go
        quietly."""
        lock = get_redis().lock(
            self._key("order", order_id),
            timeout=api.session.max_call_seconds() + 5,
            blocking_timeout=sum(api.session.timeout) + 1,
        )
        if not lock.acquire():
            raise xe.XtsUnavailable(f"order {order_id}: another place or cancel of it is still in flight")
        try:
            yield
        finally:
            try:
                lock.release()
            except redis.exceptions.LockError:
                log.warning("event=xts_order_lock_expired order_id=%s", order_id)

    def _earlier_attempt(self, api: Interactive, order_id: uuid.UUID, action: str) -> bool:
        """Whether the order was sent before (outcome unknown); XtsPlaceInFlight while that attempt
        may still land (younger than the resend horizon). Call under the order lock."""
        raw = get_redis().get(self._key("placed_at", order_id))
        if raw is None:
            return False
        age, horizon = time.time() - float(raw), resend_horizon(api.account.timeout)
        if age < horizon:
            log.warning(
                "event=xts_place_in_flight order_id=%s action=%s attempt_age_s=%.1f retry_after_s=%.1f",
                order_id,
                action,
                age,
                horizon - age,
            )
            raise xe.XtsPlaceInFlight(
                f"order {order_id}: a place sent {age:.1f}s ago may still land at the broker; "
                f"{action} again after {horizon - age:.0f}s"
            )
        return True

    def _record_attempt(self, order_id: uuid.UUID) -> bytes | None:
        """Note a place about to be sent (before it is: a crash mid-send is an unknown outcome too);
        returns the record it replaces."""
        return get_redis().set(self._key("placed_at", order_id), repr(time.time()), ex=PLACED_TTL, get=True)

    def _forget_attempt(self, order_id: uuid.UUID, previous: bytes | None) -> None:
        """The attempt certainly did nothing at the broker: the record is what it was before it."""
        key = self._key("placed_at", order_id)
        if previous is None:
            get_redis().delete(key)
        else:
            get_redis().set(key, previous, ex=PLACED_TTL)

    def _tombstoned(self, order_id: uuid.UUID) -> bool:
        return bool(get_redis().exists(self._key("tombstone", order_id)))


def cancel_took(rows: list[xm.OrderRow]) -> bool:
    return any(row.status in (xm.PENDING_CANCEL, xm.CANCELLED) for row in rows)


def modify_took(request: ModifyRequest, facts: OrderFacts) -> Callable[[list[xm.OrderRow]], bool]:
    """Whether the history shows this modification: a replace in progress (the latest row
    PendingReplace), or a Replaced row with the requested terms."""
    limit = request.limit_price if facts.order_type in xm.WITH_LIMIT else None
    stop = request.stop_price if facts.order_type in xm.WITH_STOP else None

    def took(rows: list[xm.OrderRow]) -> bool:
        if max(rows, key=xm.OrderRow.order_key).status == xm.PENDING_REPLACE:
            return True
        return any(row.status == xm.REPLACED and row.terms == (request.quantity, limit, stop) for row in rows)

    return took


def place_body(request: OrderRequest) -> dict:
    order_type = xm.TO_XTS_ORDER_TYPE.get(request.order_type)
    if order_type is None:
        raise xe.XtsRejected(f"order type {request.order_type} is not supported by XTS")
    return {
        "exchangeSegment": request.exchange_segment,
        "exchangeInstrumentID": request.exchange_instrument_id,
        "productType": request.product,
        "orderType": order_type,
        "orderSide": request.side,
        "timeInForce": request.time_in_force,
        "disclosedQuantity": 0,
        "orderQuantity": request.quantity,
        "limitPrice": _price(request.limit_price if request.order_type in xm.WITH_LIMIT else None),
        "stopPrice": _price(request.stop_price if request.order_type in xm.WITH_STOP else None),
        "orderUniqueIdentifier": str(request.order_id),
    }


def modify_body(request: ModifyRequest, facts: OrderFacts, app_order_id: int | str) -> dict:
    return {
        "appOrderID": int(app_order_id),
        "modifiedProductType": facts.product,
        "modifiedOrderType": xm.TO_XTS_ORDER_TYPE[facts.order_type],
        "modifiedOrderQuantity": request.quantity,
        "modifiedDisclosedQuantity": 0,
        "modifiedLimitPrice": _price(request.limit_price if facts.order_type in xm.WITH_LIMIT else None),
        "modifiedStopPrice": _price(request.stop_price if facts.order_type in xm.WITH_STOP else None),
        "modifiedTimeInForce": facts.time_in_force,
        "orderUniqueIdentifier": str(request.order_id),
    }


def _price(value: Decimal | None) -> float:
    return 0 if value is None else float(value)


def read_place_answer(result: object, order_id: uuid.UUID) -> int:
    """The AppOrderID of a place answer; an answer that is not about our order is unreadable."""
    if not isinstance(result, dict):
        raise xe.XtsResponseError(f"place answered {type(result).__name__}, not an object")
    app_order_id = xm.to_int(result.get("AppOrderID"), "AppOrderID", 1, xm.MAX_ID)
    echoed = result.get("OrderUniqueIdentifier")
    if echoed is not None and xm.our_order_id(echoed) != order_id:
        raise xe.XtsResponseError(f"place answer names orderUniqueIdentifier {shown(echoed)}, not {order_id}")
    return app_order_id


def order_facts(order_id: uuid.UUID) -> OrderFacts:
    """Our order's owner, broker id and terms, on a connection of its own (the caller's session and
    transaction are left alone)."""
    columns = (Order.user_id, Order.broker_order_id, Order.product, Order.order_type, Order.time_in_force)
    with db.engine.connect() as conn:
        row = conn.execute(sa.select(*columns).where(Order.id == order_id)).first()
    if row is None:
        raise xe.XtsError(f"order {order_id} is not in our database")
    return OrderFacts(*row)


def _field(raw: object, name: str) -> object:
    if not isinstance(raw, dict):
        raise xe.XtsResponseError(f"row is not an object but {type(raw).__name__}")
    lowered = name.lower()
    return next((v for k, v in raw.items() if str(k).lower() == lowered), None)


def _of_order(raw: object, app_order_id: int | str) -> bool:
    """Whether a book row is of the order AppOrderID (compared as text: a number or a string)."""
    return same(_field(raw, "AppOrderID"), str(app_order_id))


def parse_rows(rows: list, parse: Callable) -> tuple[list, int]:
    """A book's rows parsed; an unreadable row of someone else's order is skipped and counted, one of
    ours is an error (never a silently missing fill)."""
    parsed, skipped = [], 0
    for raw in rows:
        try:
            parsed.append(parse(raw))
        except xe.XtsResponseError:
            if isinstance(raw, dict) and xm.our_order_id(_field(raw, "OrderUniqueIdentifier")) is not None:
                raise
            skipped += 1
    if skipped:
        log.warning("event=xts_rows_skipped count=%d", skipped)
    return parsed, skipped


def _tombstone_event(order_id: uuid.UUID) -> dict:
    return ev.make_event(
        ev.CANCELLED, order_id, xm.BROKER, None, f"xts:cancelled:{order_id}:tombstone", reason=TOMBSTONE
    )


def publish(events: list[dict]) -> None:
    publisher = get_publisher()
    for event in events:
        publisher.publish("broker_events", routing_key=event["type"], body=event, message_id=event["event_id"])
