"""Accept -> FILLED latency of MARKET orders on the paper broker, through every real process:
API (gunicorn, gevent) -> Postgres -> RQ -> worker -> paper broker -> RabbitMQ -> consumer -> Postgres.

Measured from the database's own timestamps (created_at at accept, the FILLED audit row's ts),
so client polling adds nothing. Baseline in the same run: the bare infrastructure hops of that
path without our code (Redis list push/pop, RabbitMQ publish with confirm + consume,
a Postgres INSERT + COMMIT, each twice as in the real path).

    python -m bench.order_latency [--orders 100]
"""

from __future__ import annotations

import argparse
import time
import uuid

import psycopg
import redis
import requests
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue

from bench.common import PG, bench_environment, fmt, percentiles
from tests.support.stack import Stack
from tradingapp.extensions import db
from tradingapp.models import Order, OrderEvent


def place_orders(stack: Stack, count: int) -> list[str]:
    http = requests.Session()
    login = http.post(
        f"{stack.base_url}/api/v1/auth/login",
        json={"email": "demo@tradingapp.local", "password": "demo-password-123"},
        timeout=10,
    )
    http.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    # Wait for the feed's first quotes: a MARKET order needs a price.
    deadline = time.monotonic() + 15
    while not http.get(f"{stack.base_url}/api/v1/quotes?instrument_ids=1", timeout=5).json().get("items"):
        if time.monotonic() > deadline:
            raise RuntimeError("no quotes from the feed")
        time.sleep(0.1)
    ids = []
    for i in range(count):
        body = {"instrument_id": 1 + i % 5, "side": "BUY" if i % 2 else "SELL", "quantity": 1, "order_type": "MARKET"}
        response = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
        response.raise_for_status()
        ids.append(response.json()["id"])
        time.sleep(0.02)  # one order at a time: latency, not throughput
    return ids


def fill_latencies(app, ids: list[str], timeout: float = 60) -> list[float]:
    wanted = [uuid.UUID(i) for i in ids]
    deadline = time.monotonic() + timeout
    with app.app_context():
        while True:
            rows = db.session.execute(
                sa.select(Order.created_at, OrderEvent.ts)
                .join(OrderEvent, OrderEvent.order_id == Order.id)
                .where(Order.id.in_(wanted), OrderEvent.to_status == "FILLED", OrderEvent.event == "fill")
            ).all()
            db.session.rollback()
            if len(rows) == len(wanted) or time.monotonic() > deadline:
                return [(filled - created).total_seconds() * 1000 for created, filled in rows]
            time.sleep(0.2)


def raw_baseline(env: dict, app, rounds: int) -> list[float]:
    r = redis.Redis(host=env["REDIS_HOST"], port=int(env["REDIS_PORT"]), db=int(env["REDIS_DB"]))
    exchange = Exchange(f"{env['NAMESPACE']}.bench.raw", type="direct", durable=False, auto_delete=True)
    queue = Queue(f"{env['NAMESPACE']}.bench.raw", exchange, routing_key="raw", auto_delete=True)
    samples = []
    with (
        Connection(app.config["AMQP_URL"], transport_options={"confirm_publish": True}) as amqp,
        psycopg.connect(dbname=env["DB_NAME"], **PG) as pg,
    ):
        pg.execute("CREATE TEMP TABLE raw_orders (id uuid primary key, status text)")
        simple = amqp.SimpleQueue(queue)
        for _ in range(rounds):
            started = time.perf_counter()
            oid = uuid.uuid4()
            pg.execute("INSERT INTO raw_orders VALUES (%s, 'PENDING')", (oid,))
            pg.commit()
            r.lpush("bench:raw", str(oid))
            r.brpop("bench:raw", timeout=5)
            simple.put({"order_id": str(oid)})
            simple.get(block=True, timeout=5).ack()
            pg.execute("UPDATE raw_orders SET status = 'FILLED' WHERE id = %s", (oid,))
            pg.commit()
            samples.append((time.perf_counter() - started) * 1000)
        simple.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    args = parser.parse_args()
    with bench_environment(FEED_INTERVAL_MS="200") as (env, app):
        stack = Stack(env)
        try:
            stack.start()
            ids = place_orders(stack, args.orders)
            ours = fill_latencies(app, ids)
        finally:
            stack.stop()
        baseline = raw_baseline(env, app, args.orders)
    if len(ours) != args.orders:
        raise SystemExit(f"only {len(ours)} of {args.orders} orders reached FILLED")
    print(f"accept -> FILLED, {args.orders} MARKET orders on the paper broker")
    print(f"  tradingapp : {fmt(percentiles(ours))}")
    print(f"  raw hops   : {fmt(percentiles(baseline))}")
    print(f"  ratio p50  : {percentiles(ours)['p50'] / percentiles(baseline)['p50']:.1f}x")


if __name__ == "__main__":
    main()
