"""Accept -> broker latency with BROKER=xts: POST /api/v1/orders on the real backend (gunicorn), one
RQ worker (`python -m jobs.worker`) placing through the XTS client into the XTS simulator process
over HTTP.

"Accept" is the order's created_at (stamped before the API's INSERT); "broker" is the simulator's
own record of the place: OrderGeneratedDateTime, its clock the moment it took the order (same
machine, same clock). Split at the worker's claim (the `submitted` audit row).

Baselines in the same run:
- bare HTTP: the place call alone, straight to the simulator on a keep-alive session, timed by the
  caller (what the client's own work adds to it is claim -> broker minus this);
- BROKER=paper: the same orders through the same backend and a worker on the paper exchange
  (accept -> paper place() entered, its book row's created_at), the pipeline without a remote broker.

    python -m bench.xts_latency [--orders 200] [--rate 20]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests
import sqlalchemy as sa

from bench.common import bench_environment, fmt, percentiles
from bench.order_throughput import make_users, set_quotes, start_worker
from tests.support.stack import BIN, Stack
from tests.support.xts_sim import APP_KEY, MD_KEY, MD_SECRET, SECRET_KEY, start_simulator, stop_simulator
from tradingapp.brokers.paper.models import PaperOrder
from tradingapp.brokers.xts.mapping import parse_time
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent

LIMIT = "2755.00"  # 5% under the market: the order rests, at the simulator and at the paper exchange


def xts_env(url: str) -> dict[str, str]:
    return {
        "BROKER": "xts",
        "XTS_API_URL": url,
        "XTS_API_KEY": APP_KEY,
        "XTS_API_SECRET": SECRET_KEY,
        "XTS_MD_API_KEY": MD_KEY,
        "XTS_MD_API_SECRET": MD_SECRET,
        "XTS_TIMEOUT": "7s",
    }


def post_orders(stack: Stack, headers: list[dict], count: int, rate: float, tag: str) -> None:
    """`count` LIMIT orders at `rate`/s, round-robin over the traders (distinct quantities: none is a
    duplicate of another working one)."""
    http = requests.Session()
    started = time.monotonic()
    for n in range(count):
        due = started + n / rate
        time.sleep(max(due - time.monotonic(), 0))
        body = {
            "instrument_id": 1,
            "side": "BUY",
            "quantity": n + 1,
            "order_type": "LIMIT",
            "limit_price": LIMIT,
            "client_order_id": f"{tag}-{n}",
        }
        response = http.post(f"{stack.base_url}/api/v1/orders", json=body, headers=headers[n % len(headers)])
        if response.status_code != 202:
            raise SystemExit(f"order refused: {response.status_code} {response.text}\n{stack.logs()}")
    http.close()


def our_orders(app, since: datetime) -> list[tuple]:
    """(id, created_at, claimed_at) of the orders placed since `since`."""
    query = (
        sa.select(Order.id, Order.created_at, OrderEvent.ts)
        .join(OrderEvent, sa.and_(OrderEvent.order_id == Order.id, OrderEvent.event == "submitted"))
        .where(Order.created_at >= since)
    )
    with app.app_context():
        rows = db.session.execute(query).all()
        db.session.rollback()
    return rows


def sim_received(url: str) -> dict[str, datetime]:
    """When the simulator took each order, by orderUniqueIdentifier."""
    rows = requests.get(f"{url}/_sim/orders", timeout=10).json()["orders"]
    return {r["OrderUniqueIdentifier"]: parse_time(r["OrderGeneratedDateTime"]) for r in rows}


def wait_for(predicate, what: str, stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}\n{stack.logs()}")
        time.sleep(0.2)


def ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


def xts_phase(args, app, stack: Stack, headers: list[dict], url: str) -> dict[str, list[float]]:
    since = datetime.now(UTC)
    post_orders(stack, headers, args.orders, args.rate, "xts")
    ours = lambda: our_orders(app, since)  # noqa: E731
    wait_for(
        lambda: len(ours()) >= args.orders and sum(str(o[0]) in sim_received(url) for o in ours()) >= args.orders,
        "the simulator to receive every order",
        stack,
    )
    received = sim_received(url)
    rows = ours()
    return {
        "total": [ms(created, received[str(oid)]) for oid, created, _ in rows],
        "to_claim": [ms(created, claimed) for _, created, claimed in rows],
        "claim_to_broker": [ms(claimed, received[str(oid)]) for oid, _, claimed in rows],
    }


def paper_phase(args, app, stack: Stack, headers: list[dict]) -> dict[str, list[float]]:
    set_quotes(app)
    since = datetime.now(UTC)
    post_orders(stack, headers, args.orders, args.rate, "paper")
    query = (
        sa.select(Order.created_at, OrderEvent.ts, PaperOrder.created_at)
        .join(PaperOrder, PaperOrder.order_id == Order.id)
        .join(OrderEvent, sa.and_(OrderEvent.order_id == Order.id, OrderEvent.event == "submitted"))
        .where(Order.created_at >= since)
    )

    def rows():
        with app.app_context():
            found = db.session.execute(query).all()
            db.session.rollback()
        return found

    wait_for(lambda: len(rows()) >= args.orders, "the paper exchange to book every order", stack)
    found = rows()
    return {
        "total": [ms(created, placed) for created, _, placed in found],
        "to_claim": [ms(created, claimed) for created, claimed, _ in found],
        "claim_to_broker": [ms(claimed, placed) for _, claimed, placed in found],
    }


def bare_http(url: str, count: int, rate: float) -> list[float]:
    """The place call alone: login once, then POST /interactive/orders on one keep-alive session."""
    http = requests.Session()
    credentials = {"appKey": APP_KEY, "secretKey": SECRET_KEY, "source": "WEBAPI"}
    login = http.post(f"{url}/interactive/user/session", json=credentials, timeout=5).json()["result"]
    headers = {"Authorization": login["token"], "Content-Type": "application/json"}
    samples = []
    started = time.monotonic()
    for n in range(count):
        time.sleep(max(started + n / rate - time.monotonic(), 0))
        body = {
            "exchangeSegment": "NSECM",
            "exchangeInstrumentID": 2885,
            "productType": "MIS",
            "orderType": "LIMIT",
            "orderSide": "BUY",
            "timeInForce": "DAY",
            "disclosedQuantity": 0,
            "orderQuantity": n + 1,
            "limitPrice": float(LIMIT),
            "stopPrice": 0,
            "orderUniqueIdentifier": str(uuid.uuid4()),
        }
        t0 = time.perf_counter()
        response = http.post(f"{url}/interactive/orders", data=json.dumps(body), headers=headers, timeout=5)
        samples.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    http.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200, help="orders per phase")
    parser.add_argument("--rate", type=float, default=20.0, help="orders/s offered")
    parser.add_argument("--users", type=int, default=16, help="traders the orders are spread over")
    args = parser.parse_args()
    sim, url = start_simulator(Path(tempfile.mkdtemp(prefix="xts-bench-")) / "simulator.log")
    try:
        requests.post(f"{url}/_sim/faults", json={"rate_limit": False}, timeout=5).raise_for_status()
        results = run(args, url)
    finally:
        stop_simulator(sim)
    report(args, results)


def run(args, url: str) -> dict:
    overrides = {"LOG_LEVEL": "WARNING", "SWEEP_PENDING_AFTER": "1h", **xts_env(url)}
    with bench_environment(**overrides) as (env, app):
        headers = make_users(app, args.users)
        set_quotes(app)
        stack = Stack(env)
        try:
            stack.start_one(
                "backend",
                [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app", "-b", f"127.0.0.1:{stack.http_port}"],
                {"PORT": str(stack.http_port)},
            )
            stack.wait_http(f"{stack.base_url}/health", "backend")
            start_worker(stack, app)
            results = {"xts": xts_phase(args, app, stack, headers, url)}
            stack.kill("worker", signal.SIGTERM)  # warm shutdown; the same worker on the paper exchange next
            stack.env = {**stack.env, "BROKER": "paper"}
            start_worker(stack, app)
            results["paper"] = paper_phase(args, app, stack, headers)
        finally:
            stack.stop()
    results["bare"] = bare_http(url, args.orders, args.rate)
    return results


def report(args, r: dict) -> None:
    print(
        f"accept -> broker, {args.orders} LIMIT orders per phase at {args.rate:.0f}/s, gunicorn backend, "
        f"one RQ worker (python -m jobs.worker), {sys.platform}"
    )
    for name, title in (("xts", "BROKER=xts -> simulator over HTTP"), ("paper", "BROKER=paper (baseline)")):
        part = r[name]
        print(f" {title}:")
        print(f"  {'accept -> broker':<30} {fmt(percentiles(part['total']))}")
        print(f"  {'  accept -> worker claim':<30} {fmt(percentiles(part['to_claim']))}")
        print(f"  {'  claim -> broker':<30} {fmt(percentiles(part['claim_to_broker']))}")
    print(" bare HTTP place to the simulator (keep-alive, client-timed round trip; baseline):")
    print(f"  {'POST /interactive/orders':<30} {fmt(percentiles(r['bare']))}")
    xts_total, paper_total = percentiles(r["xts"]["total"]), percentiles(r["paper"]["total"])
    bare, claim = percentiles(r["bare"]), percentiles(r["xts"]["claim_to_broker"])
    print(
        f"  xts / paper accept->broker:   p50 {xts_total['p50'] / paper_total['p50']:.2f}x  "
        f"p99 {xts_total['p99'] / paper_total['p99']:.2f}x"
    )
    print(
        f"  xts claim->broker / bare round trip: p50 {claim['p50'] / bare['p50']:.2f}x "
        f"(the round trip includes the answer; claim->broker only the way there)"
    )


if __name__ == "__main__":
    main()
