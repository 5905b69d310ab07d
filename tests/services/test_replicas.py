"""Read replicas (tradingapp/replicas.py) against a real streaming standby: a throwaway primary on a
free port and a replica made from it by pg_basebackup. The read-only routes read from the replica
while it is within DB_READ_MAX_LAG; paused replay (pg_wal_replay_pause) makes it lag and the
primary serves; a replica that is down is skipped, even when it dies in the middle of a request.
Which server answered is told by the data itself: an order written while replay is paused exists
only on the primary."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid

import psycopg
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

import config
from tests.drills.cluster import Cluster, own, temp_root
from tests.support import env as suite
from tests.support.env import FAST_HASHER
from tests.support.factories import make_order
from tradingapp import create_app
from tradingapp.cli import seed_demo_data
from tradingapp.extensions import db
from tradingapp.models import User
from tradingapp.replicas import LAG_SQL, ReplicaSet, replica_set
from tradingapp.security.auth import issue_tokens

DB_NAME = "tradingapp_replicas"


@pytest.fixture(scope="module")
def servers():
    root = temp_root("tradingapp-replica-")
    primary = Cluster(root, "primary").initdb().start()
    replica = Cluster(root, "replica")
    try:
        with primary.connect() as conn:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        replica.dir.mkdir(parents=True)
        own(replica.dir)
        primary.run(
            "pg_basebackup", "-D", str(replica.data), "-h", "127.0.0.1", "-p", str(primary.port),
            "-U", "postgres", "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        replica.start()
        yield primary, replica
    finally:
        replica.stop("immediate")
        primary.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def caught_up(primary: Cluster, replica: Cluster, timeout: float = 60) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    with primary.connect() as conn:
        target = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.monotonic() + timeout
    with replica.connect() as conn:
        while not conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)).fetchone()[0]:
            assert time.monotonic() < deadline, f"the replica did not replay up to {target} in {timeout}s"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def app(servers):
    primary, replica = servers
    env = suite.test_env(
        DB_HOST="127.0.0.1",
        DB_PORT=str(primary.port),
        DB_NAME=DB_NAME,
        DB_READ_HOST=f"127.0.0.1:{replica.port}",
        DB_READ_MAX_LAG="2",
    )
    application = create_app(config.TestConfig(env))
    with application.app_context():
        upgrade(revision="heads")
        seed_demo_data(include_users=False)
        user = User(email="reader@example.com", password_hash=FAST_HASHER.hash("x" * 12), name="R", role="trader")
        db.session.add(user)
        db.session.commit()
        with application.test_request_context():
            token = issue_tokens(user)["access_token"]
        application.config["test.user"], application.config["test.token"] = user, token
        db.session.remove()
    caught_up(primary, replica)  # the schema and seed replayed: a test never races the migration
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
        replica_set(application).dispose()


@pytest.fixture
def replicas(app):
    """The app's replica set, checked on every request unless a test says otherwise; and a count
    of the statements the replica's engine ran."""
    replicas = replica_set(app)
    (only,) = replicas.replicas
    only.health = None
    replicas.check_every, replicas.max_lag = 0.0, 2.0
    statements: list[str] = []
    listener = lambda conn, cursor, statement, *rest: statements.append(statement)  # noqa: E731
    sa.event.listen(only.engine, "before_cursor_execute", listener)
    replicas.statements = statements
    yield replicas
    sa.event.remove(only.engine, "before_cursor_execute", listener)


def new_order(app) -> str:
    with app.app_context():
        order = make_order(app.config["test.user"], status="OPEN")
        db.session.remove()
    return str(order.id)


def on_replica(replica: Cluster, order_id: str) -> bool:
    with replica.connect(DB_NAME) as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE id = %s", (order_id,)).fetchone()[0] == 1


def wait_replayed(replica: Cluster, order_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not on_replica(replica, order_id):
        assert time.monotonic() < deadline, f"order {order_id} not replayed on the replica within {timeout}s"
        time.sleep(0.05)


def listed(app) -> list[str]:
    """The ids GET /api/v1/orders answers (a read-only route)."""
    client = app.test_client()
    answer = client.get("/api/v1/orders?limit=500", headers={"Authorization": f"Bearer {app.config['test.token']}"})
    assert answer.status_code == 200, answer.get_json()
    return [o["id"] for o in answer.get_json()["items"]]


def read_one(app, order_id: str) -> int:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.config['test.token']}"}
    return client.get(f"/api/v1/orders/{order_id}", headers=headers).status_code


def replica_reads(replicas) -> int:
    """Statements of the routes on the replica (its lag checks left out)."""
    return sum(1 for s in replicas.statements if "pg_last_wal_replay_lsn" not in s)


def test_reads_go_to_the_replica_within_the_bound(app, servers, replicas):
    _, replica = servers
    order_id = new_order(app)
    wait_replayed(replica, order_id)
    assert order_id in listed(app)
    assert replica_reads(replicas) > 0, replicas.statements
    before = replica_reads(replicas)
    assert read_one(app, order_id) == 200  # one order (read after writing it): the primary's
    assert replica_reads(replicas) == before


def test_a_paused_replica_serves_until_it_lags_past_the_bound(app, servers, replicas):
    _, replica = servers
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        replicas.max_lag = 3600.0
        order_id = new_order(app)
        time.sleep(0.3)  # the WAL reaches the replica, which does not replay it
        assert not on_replica(replica, order_id)
        assert order_id not in listed(app)  # the replica answered: within an hour's bound, it is fine
        assert read_one(app, order_id) == 200  # the order path never reads a replica
        replicas.max_lag = 1.0
        time.sleep(1.2)
        reads = replica_reads(replicas)
        assert order_id in listed(app)  # more than 1 s behind: the primary answered
        assert replica_reads(replicas) == reads
        assert replicas.replicas[0].health.lag > 1.0
    finally:
        with replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    wait_replayed(replica, order_id)
    reads = replica_reads(replicas)
    assert order_id in listed(app)  # caught up: back on the replica
    assert replica_reads(replicas) > reads
    assert replicas.replicas[0].health.lag == 0.0


def test_an_order_the_replica_has_not_replayed_yet_is_found_on_the_primary(app, servers, replicas):
    """Read after write: the order's audit trail asked for right after placing it. Within the lag
    bound the replica may not have it yet; the answer must not be a 404 for an order that exists."""
    _, replica = servers
    with replica.connect() as conn:
        conn.execute("SELECT pg_wal_replay_pause()")
    try:
        replicas.max_lag = 3600.0
        order_id = new_order(app)
        time.sleep(0.3)
        assert not on_replica(replica, order_id)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {app.config['test.token']}"}
        answer = client.get(f"/api/v1/orders/{order_id}/events", headers=headers)
        assert answer.status_code == 200, answer.get_json()
        missing = client.get(f"/api/v1/orders/{uuid.uuid4()}/events", headers=headers)
        assert missing.status_code == 404  # one that exists nowhere is still not found
    finally:
        with replica.connect() as conn:
            conn.execute("SELECT pg_wal_replay_resume()")
    wait_replayed(replica, order_id)


def test_the_lag_is_checked_once_a_second_not_per_request(app, replicas):
    replicas.check_every = 1.0
    for _ in range(5):
        listed(app)
    checks = [s for s in replicas.statements if "pg_last_wal_replay_lsn" in s]
    assert len(checks) == 1, checks


def test_a_hanging_replica_check_does_not_hold_up_the_other_requests():
    """A replica host that accepts connections and never answers (a hung machine, a dead NAT) costs
    its check the connect timeout. Only the request that checks it may wait that long: the others
    meanwhile read from the last known state (here none yet: the primary)."""
    listener = socket.create_server(("127.0.0.1", 0))  # accepts into the backlog, never answers
    port = listener.getsockname()[1]
    config_ = config.TestConfig(suite.test_env(DB_HOST="127.0.0.1", DB_READ_HOST=f"127.0.0.1:{port}"))
    replicas = ReplicaSet.from_config(config_)
    try:
        checking = threading.Thread(target=replicas.pick)
        checking.start()
        time.sleep(0.2)  # the first check is connecting
        started = time.monotonic()
        assert replicas.pick() is None
        waited = time.monotonic() - started
        checking.join(10)
        assert not checking.is_alive()
        assert replicas.replicas[0].health.lag is None  # its check found it unreachable
        assert waited < 0.5, f"a request waited {waited:.1f}s for another's replica check"
    finally:
        replicas.dispose()
        listener.close()


def test_an_unreachable_replica_is_left_alone_for_a_while():
    """Each check of an unreachable replica costs a request the connect timeout: once found down it
    is not asked again before DOWN_RECHECK, however often requests come."""
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]  # nothing listens there once closed
    config_ = config.TestConfig(suite.test_env(DB_HOST="127.0.0.1", DB_READ_HOST=f"127.0.0.1:{port}"))
    replicas = ReplicaSet.from_config(config_)
    replicas.check_every = 0.0
    (replica,) = replicas.replicas
    checks = []
    sa.event.listen(replica.engine, "do_connect", lambda *args: checks.append(time.monotonic()))
    try:
        for _ in range(5):
            assert replicas.pick() is None
        assert len(checks) == 1 and replica.health.lag is None
        replicas.down_recheck = 0.0  # its time has come: checked again
        assert replicas.pick() is None
        assert len(checks) == 2
    finally:
        replicas.dispose()


def test_replica_connections_give_up_on_a_hung_host_and_a_long_query():
    config_ = config.TestConfig(suite.test_env(DB_HOST="127.0.0.1", DB_NAME="postgres", DB_READ_HOST="127.0.0.1:5432"))
    replicas = ReplicaSet.from_config(config_)
    try:
        with replicas.replicas[0].engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "15s"
            assert conn.connection.dbapi_connection.info.get_parameters()["tcp_user_timeout"] == "10000"
    finally:
        replicas.dispose()


def test_the_lag_of_a_primary_is_zero(servers):
    primary, _ = servers
    with psycopg.connect(host="127.0.0.1", port=primary.port, user="postgres", dbname="postgres") as conn:
        assert conn.execute(str(LAG_SQL.compile())).fetchone()[0] == 0


def test_no_read_host_means_no_replicas(servers):
    primary, _ = servers
    plain = create_app(
        config.TestConfig(suite.test_env(DB_HOST="127.0.0.1", DB_PORT=str(primary.port), DB_NAME=DB_NAME))
    )
    assert replica_set(plain) is None


def test_a_replica_that_dies_mid_request_falls_back_to_the_primary(app, servers, replicas):
    """Last: it stops the replica."""
    _, replica = servers
    replicas.check_every = 3600.0  # the replica's last check said it was fine, and is trusted
    order_id = new_order(app)
    wait_replayed(replica, order_id)
    assert order_id in listed(app) and replica_reads(replicas) > 0
    replica.stop("immediate")
    assert order_id in listed(app)  # the replica failed under the view; the primary answered
    assert replicas.replicas[0].health.lag is None
    replicas.check_every = 0.0
    another = new_order(app)
    assert another in listed(app)  # down: skipped from the start
    assert replicas.replicas[0].health.lag is None
    assert uuid.UUID(another)
