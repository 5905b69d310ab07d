"""An order request while PostgreSQL or Redis cannot be reached: a 503 with Retry-After in the JSON
envelope (the client retries with its Idempotency-Key), never a 500."""

from tests.support.net import free_port

ORDER = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET", "product": "MIS"}


def broken_client(make_app, unreachable: str):
    return make_app(**{unreachable: str(free_port())}).test_client()


def assert_retry_later(response) -> None:
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["code"] == "unavailable"


def test_every_order_route_while_postgres_is_unreachable_is_a_503_to_retry(db, make_app, trader_headers):
    client = broken_client(make_app, "DB_PORT")
    headers = {**trader_headers, "Idempotency-Key": "outage-pg"}
    assert_retry_later(client.post("/api/v1/orders", json=ORDER, headers=headers))
    assert_retry_later(client.get("/api/v1/orders", headers=trader_headers))
    assert_retry_later(client.delete("/api/v1/orders", headers=trader_headers))


def test_an_order_while_redis_is_unreachable_is_a_503_and_the_book_stays_readable(db, make_app, trader_headers):
    client = broken_client(make_app, "REDIS_PORT")
    headers = {**trader_headers, "Idempotency-Key": "outage-redis"}
    assert_retry_later(client.post("/api/v1/orders", json=ORDER, headers=headers))
    # Tokens are checked against PostgreSQL when the Redis cache is away: reads go on.
    assert client.get("/api/v1/orders", headers=trader_headers).status_code == 200
