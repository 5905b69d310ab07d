"""tradingapp/logs.py on its own: the JSON and text lines, the ids bound for a block of work, and
their isolation between threads and greenlets (gunicorn's gevent workers serve one request per
greenlet)."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid

import gevent
import pytest

from tradingapp import logs


@pytest.fixture
def capture():
    """A logger of its own with the platform's filter and a chosen formatter, written to a buffer."""
    made = []

    def make(fmt: str) -> tuple[logging.Logger, io.StringIO]:
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.addFilter(logs.ContextFilter())
        handler.setFormatter(logs.formatter(fmt))
        logger = logging.getLogger(f"tests.logs.{uuid.uuid4().hex[:8]}")
        logger.propagate = False
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
        made.append((logger, handler))
        return logger, buffer

    previous = logs._process["name"]
    yield make
    logs.set_process(previous)
    for logger, handler in made:
        logger.removeHandler(handler)
        handler.close()


def lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_json_line_has_the_fields_and_the_bound_ids(capture):
    logger, buffer = capture("json")
    logs.set_process("worker")
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    with logs.bind(request_id="req-1", user_id=user_id, order_id=order_id, client_order_id="c1"):
        with logs.bind(broker_order_id="P42", event_id="paper:1"):
            logger.info("event=order_placed qty=%s side=%s", 10, "BUY")
    (line,) = lines(buffer)
    assert line["level"] == "INFO" and line["process"] == "worker" and line["logger"] == logger.name
    assert line["message"] == "event=order_placed qty=10 side=BUY" and line["event"] == "order_placed"
    assert line["time"][:2] == "20" and "T" in line["time"]  # ISO-8601 with its offset
    assert (line["request_id"], line["client_order_id"], line["broker_order_id"], line["event_id"]) == (
        "req-1",
        "c1",
        "P42",
        "paper:1",
    )
    assert (line["order_id"], line["user_id"]) == (str(order_id), str(user_id))


def test_a_json_line_without_context_has_no_ids_and_no_event_unless_the_message_names_one(capture):
    logger, buffer = capture("json")
    logger.warning("plain words")
    (line,) = lines(buffer)
    assert "event" not in line and not set(logs.CONTEXT_FIELDS) & set(line)
    assert line["message"] == "plain words" and line["level"] == "WARNING"


def test_a_json_line_keeps_a_traceback_in_one_line(capture):
    logger, buffer = capture("json")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("event=failed")
    (line,) = lines(buffer)  # one line: a traceback never splits a JSON record
    assert "ValueError: boom" in line["exc_info"] and line["event"] == "failed"


def test_the_text_line_names_level_process_logger_and_the_ids_after_the_message(capture):
    logger, buffer = capture("text")
    logs.set_process("consumer")
    with logs.bind(request_id="r9", order_id="o1"):
        logger.info("event=broker_event_applied status=FILLED")
    line = buffer.getvalue().rstrip("\n")
    assert f"level=INFO process=consumer logger={logger.name} event=broker_event_applied status=FILLED" in line
    assert line.endswith("event=broker_event_applied status=FILLED request_id=r9 order_id=o1")


def test_the_text_line_does_not_repeat_an_id_the_message_names(capture):
    logger, buffer = capture("text")
    with logs.bind(request_id="r9", order_id="o1"):
        logger.info("event=order_accepted order_id=%s", "o1")
    line = buffer.getvalue().rstrip("\n")
    assert line.endswith("event=order_accepted order_id=o1 request_id=r9") and line.count("order_id=") == 1


def test_the_text_line_keeps_the_traceback_last(capture):
    logger, buffer = capture("text")
    with logs.bind(request_id="r9"):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("event=failed")
    head, _, rest = buffer.getvalue().partition("\n")
    assert head.endswith("event=failed request_id=r9") and rest.startswith("Traceback")


def test_bind_nests_overrides_skips_none_and_resets_on_exit():
    assert logs.current() == {}
    with logs.bind(request_id="outer", order_id="o1"):
        with logs.bind(request_id="inner", client_order_id=None, event_id="e1"):
            assert logs.current() == {"request_id": "inner", "order_id": "o1", "event_id": "e1"}
        assert logs.current() == {"request_id": "outer", "order_id": "o1"}
        try:
            with logs.bind(order_id="o2"):
                raise RuntimeError
        except RuntimeError:
            pass
        assert logs.current() == {"request_id": "outer", "order_id": "o1"}  # reset after an exception too
    assert logs.current() == {}


def test_current_is_a_copy():
    with logs.bind(request_id="r1"):
        logs.current()["request_id"] = "changed"
        assert logs.current() == {"request_id": "r1"}


def test_each_thread_sees_only_its_own_ids(capture):
    logger, buffer = capture("json")
    both_bound = threading.Barrier(2)

    def work(name: str) -> None:
        with logs.bind(request_id=name):
            both_bound.wait(5)  # the other thread has bound its own id by now
            logger.info("event=work")

    threads = [threading.Thread(target=work, args=(name,)) for name in ("t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(line["request_id"] for line in lines(buffer)) == ["t1", "t2"]
    assert logs.current() == {}


def test_each_greenlet_sees_only_its_own_ids_and_starts_clean(capture):
    logger, buffer = capture("json")

    def request(name: str) -> dict:
        started_with = logs.current()
        with logs.bind(request_id=name):
            gevent.sleep(0)  # the other greenlets run here, binding their own ids
            logger.info("event=work")
        return started_with

    with logs.bind(request_id="spawner"):
        greenlets = [gevent.spawn(request, f"g{n}") for n in range(3)]
        gevent.joinall(greenlets, timeout=5)
    assert [g.value for g in greenlets] == [{}, {}, {}]  # a new greenlet inherits nothing
    assert sorted(line["request_id"] for line in lines(buffer)) == ["g0", "g1", "g2"]


def test_configure_logging_installs_one_handler_and_switches_its_format(monkeypatch):
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # as in a process: nobody else's handler on the root
    monkeypatch.setattr(root, "level", root.level)
    previous = logs._process["name"]
    try:
        logs.configure_logging("INFO", "json", process="feed")
        logs.configure_logging("WARNING", "text")
        (handler,) = root.handlers
        assert isinstance(handler.formatter, logs.TextFormatter) and root.level == logging.WARNING
        assert logs._process["name"] == "feed"
    finally:
        logs.set_process(previous)
        for handler in root.handlers:
            handler.close()
