"""TLS from every process to PostgreSQL, Redis and RabbitMQ, against throwaway servers that speak
TLS only (tests/support/tls.py: a CA made here, `hostnossl ... reject`, Redis `--port 0`, RabbitMQ
`listeners.tcp = none`). Each client the processes use connects with the server's certificate
and host name verified; another CA, another host name or a plain connection is refused; and the
real stack places an order that fills with all three connections encrypted. docs/encryption.md.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask_migrate import upgrade
from rq import Queue, SimpleWorker
from rq.connections import parse_connection

from config import TestConfig as AppConfig
from jobs.consumer import QueueSampler
from tests.support.env import test_env as run_env
from tests.support.stack import Stack, demo_session, reset_to_demo_data, started
from tests.support.tls import OTHER_ADDRESS, TlsServices
from tradingapp import create_app, metrics
from tradingapp.cli.setup import create_database_if_missing
from tradingapp.extensions import db, get_redis
from tradingapp.messaging import Topology, amqp_connection, get_publisher
from tradingapp.preflight import check_postgres, check_rabbitmq, check_redis


@pytest.fixture(scope="module")
def servers():
    # Not pytest's tmp_path: it is private to root, and PostgreSQL runs as the postgres user.
    root = Path(tempfile.mkdtemp(prefix="tradingapp-tls-"))
    try:  # a server that fails to start (or Ctrl-C) must not leave the directory behind
        running = TlsServices(root).start()
        yield running
        running.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_env(servers):
    return run_env(
        **servers.env(),
        DB_NAME=f"tradingapp_tls_{uuid.uuid4().hex[:8]}",
        TIMESCALEDB="off",
        NAMESPACE=f"tls{uuid.uuid4().hex[:6]}",
    )


@pytest.fixture(scope="module")
def app(tls_env):
    """The app on the TLS servers: its database created (create-db) and migrated over TLS."""
    config = AppConfig(tls_env)
    assert create_database_if_missing(config) is True
    application = create_app(config)
    with application.app_context():
        upgrade(revision="heads")
    yield application
    # Every TLS socket the app opened, closed here: one left to the garbage collector surfaces as an
    # unraisable ResourceWarning in whichever later test happens to collect it.
    publisher = application.extensions.pop("tradingapp.publisher", None)
    if publisher is not None:
        publisher.close()
    application.extensions["redis"].close()
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


def refused(check) -> str:
    assert not check.ok, f"{check.service} accepted the connection"
    return check.detail


# -- each client, verified -----------------------------------------------------------------------
def test_the_engine_connects_with_verify_full_and_the_session_is_encrypted(app):
    assert "sslmode=verify-full" in app.config["SQLALCHEMY_DATABASE_URI"]
    with app.app_context():
        row = db.session.execute(sa.text("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).one()
        db.session.rollback()
    assert row.ssl is True and row.version.startswith("TLSv1.")


def test_preflight_passes_on_all_three_over_tls(app):
    config = app.extensions["tradingapp.config"]
    checks = [check(config) for check in (check_postgres, check_redis, check_rabbitmq)]
    assert [(c.service, c.ok) for c in checks] == [("PostgreSQL", True), ("Redis", True), ("RabbitMQ", True)]


def test_the_redis_extension_and_rq_carry_tls_with_the_ca(app, servers):
    with app.app_context():
        client = get_redis()
        assert client.connection_pool.connection_class is redis.SSLConnection
        assert client.connection_pool.connection_kwargs["ssl_ca_certs"] == str(servers.ca.cert)
        assert client.ping() is True
        # RQ's scheduler and worker pool build their own connections from these.
        connection_class, pool_class, pool_kwargs = parse_connection(client)
        assert pool_class is redis.SSLConnection and pool_kwargs["ssl_cert_reqs"] == "required"
        queue = Queue(f"{app.config['NAMESPACE']}.tls-check", connection=client)
        job = queue.enqueue("builtins.sum", [2, 3])
        SimpleWorker([queue], connection=client).work(burst=True)
        job.refresh()
        assert job.is_finished and job.return_value() == 5


def test_the_publisher_and_the_consumers_connections_use_tls(app):
    with app.app_context():
        assert app.config["AMQP_URL"].startswith("amqps://")
        assert app.config["AMQP_SSL"]["cert_reqs"] == ssl.CERT_REQUIRED
        topology = Topology(app.config["NAMESPACE"])
        get_publisher().publish("broker_events", "tls.check", {"hello": "tls"}, message_id="tls-1")
        with amqp_connection() as connection:
            assert connection.transport.client.ssl == app.config["AMQP_SSL"]
            message = connection.SimpleQueue(topology.q_broker_events).get(timeout=5)
            assert message.payload == {"hello": "tls"}
            message.ack()
        # The consumer process's other connection: the queue sampler.
        sampler = QueueSampler(app.config["AMQP_URL"], topology, None, ssl=app.config["AMQP_SSL"])
        try:
            sampler.sample()
        finally:
            sampler.close()
        assert metrics.QUEUE_MESSAGES.labels("events")._value.get() == 0


def test_ready_is_green_over_tls(app):
    response = app.test_client().get("/ready")
    assert response.status_code == 200, response.get_json()


# -- refused: another CA, another host name, no TLS ---------------------------------------------
def test_a_server_signed_by_another_ca_is_refused(servers, tls_env):
    config = AppConfig({**tls_env, **servers.env(ca=servers.other_ca.cert)})
    for check in (check_postgres, check_redis, check_rabbitmq):
        assert "certificate verify failed" in refused(check(config))


def test_a_certificate_for_another_host_name_is_refused(servers, tls_env):
    config = AppConfig({**tls_env, **servers.env(host=OTHER_ADDRESS)})
    assert "does not match host name" in refused(check_postgres(config))
    for check in (check_redis, check_rabbitmq):
        assert "IP address mismatch" in refused(check(config))


def test_a_plain_connection_is_refused_by_each_server(servers, tls_env):
    plain = {"DB_SSL_MODE": "disable", "DB_SSL_ROOT_CERT": "", "REDIS_SSL": "false", "RABBITMQ_SSL": "false"}
    config = AppConfig({**tls_env, **plain})
    assert "no encryption" in refused(check_postgres(config))  # pg_hba: hostnossl ... reject
    refused(check_redis(config))  # a TLS port: the plain client's bytes end the connection
    refused(check_rabbitmq(config))


# -- the real stack over TLS --------------------------------------------------------------------
def test_the_stack_over_tls_places_an_order_that_fills(app, tls_env, servers):
    reset_to_demo_data(app)
    logs = servers.root / "stack-logs"  # removed with the servers' directory
    logs.mkdir()
    with (
        started(Stack({**tls_env, "FEED_INTERVAL_MS": "250"}, log_dir=logs)) as stack,
        demo_session(stack.base_url) as http,
    ):
        assert http.get(f"{stack.base_url}/ready", timeout=5).status_code == 200
        body = {"instrument_id": 2, "side": "BUY", "quantity": 3, "order_type": "MARKET"}
        response = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=5)
        assert response.status_code == 202, response.text
        order_id = response.json()["id"]
        deadline = time.monotonic() + 30
        while (order := http.get(f"{stack.base_url}/api/v1/orders/{order_id}", timeout=5).json())[
            "status"
        ] != "FILLED" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert order["status"] == "FILLED", f"{order}\n{stack.logs()}"
        trades = http.get(f"{stack.base_url}/api/v1/trades?order_id={order_id}", timeout=5).json()["items"]
        assert [t["quantity"] for t in trades] == [3]
        stack.assert_alive()
