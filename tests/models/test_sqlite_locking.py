"""SQLite (the `make run` database) has no row locks: every transaction takes the file's write lock
when it begins, so a read-then-write never overwrites another process's commit."""

import threading
import time

import sqlalchemy as sa

import tradingapp  # noqa: F401  (registers the engine events under test)


def test_a_second_transaction_waits_for_the_first_and_sees_its_commit(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (status TEXT)")
        conn.exec_driver_sql("INSERT INTO orders VALUES ('PENDING')")
    steps = []

    def worker_claims():
        with engine.begin() as conn:  # waits here while the first transaction holds the lock
            status = conn.exec_driver_sql("SELECT status FROM orders").scalar()
            steps.append(f"worker read {status}")
            if status == "PENDING":
                conn.exec_driver_sql("UPDATE orders SET status = 'SUBMITTED'")

    api = engine.connect()
    transaction = api.begin()
    assert api.exec_driver_sql("SELECT status FROM orders").scalar() == "PENDING"  # the API's read
    worker = threading.Thread(target=worker_claims)
    worker.start()
    time.sleep(0.3)
    steps.append("api cancels")
    api.exec_driver_sql("UPDATE orders SET status = 'CANCELLED'")
    transaction.commit()
    api.close()
    worker.join(timeout=15)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT status FROM orders").scalar() == "CANCELLED"
    assert steps == ["api cancels", "worker read CANCELLED"]
    engine.dispose()
