"""deploy/elk/: the logging stack (Elasticsearch, Kibana, Filebeat) against the real log lines.

Docker, Elasticsearch, Kibana and Filebeat do not run here. What runs: the real processes (the test
stack, LOG_FORMAT=json) place an order, and every line they wrote goes through what Filebeat and
Elasticsearch would do with it, read from the files themselves: filebeat.yml's processors (their
conditions evaluated as Filebeat does for the kinds used), the ingest pipeline's processors (the date
formats translated from Java's pattern language; each `if` from a table of the conditions used), then
the index template's mapping: every field mapped, with a type its value fits. The files also have to
agree with each other (names, services) and with docker-compose.yml."""

from __future__ import annotations

import fnmatch
import importlib.util
import ipaddress
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
import yaml

from tests.support import ROOT, wait_until
from tests.support.stack import DEMO, SocketReader, Stack, demo_session, reset_to_demo_data, started
from tradingapp import logs

ELK = ROOT / "deploy" / "elk"
TEMPLATE = json.loads((ELK / "index-template.json").read_text())
PIPELINE = json.loads((ELK / "ingest-pipeline.json").read_text())
FILEBEAT = yaml.safe_load((ELK / "filebeat.yml").read_text())
COMPOSE_TEXT = (ELK / "compose.yml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
MAIN_COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
_spec = importlib.util.spec_from_file_location("elk_setup", ELK / "setup.py")
setup = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(setup)

PROCESSES = ["backend", "websocket", "worker", "consumer", "feed"]
MAPPINGS = TEMPLATE["template"]["mappings"]
# What Filebeat itself puts on an event before the processors run (the container as add_docker_metadata
# names it); the app's fields must not collide with these.
FILEBEAT_FIELDS = {"@timestamp", "stream", "log", "input", "agent", "ecs", "host", "container"}


# -- Elasticsearch's side: the mapping and the date formats -----------------------------------------------
def flatten(properties: dict, prefix: str = "") -> dict[str, dict]:
    fields = {}
    for name, mapping in properties.items():
        if "properties" in mapping:
            fields.update(flatten(mapping["properties"], f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = mapping
    return fields


MAPPED = flatten(MAPPINGS["properties"])

# The tokens of Java's DateTimeFormatter patterns that the pipeline's formats use, as regexes.
JAVA_TOKENS = {
    "yyyy": r"(?P<year>\d{4})",
    "uuuu": r"(?P<year>\d{4})",
    "MM": r"(?P<month>\d{2})",
    "dd": r"(?P<day>\d{2})",
    "HH": r"(?P<hour>\d{2})",
    "mm": r"(?P<minute>\d{2})",
    "ss": r"(?P<second>\d{2})",
    "SSS": r"(?P<fraction>\d{3})",
    "SSSSSS": r"(?P<fraction>\d{6})",
    "Z": r"(?P<offset>[+-]\d{4})",  # +HHMM, as Python's %z writes it
    "XXX": r"(?P<offset>Z|[+-]\d{2}:\d{2})",
}
# Elasticsearch's ISO8601 format, as far as the lines need it: the extended form, a fraction, Z or an offset.
ISO8601 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")


def java_pattern(pattern: str) -> re.Pattern:
    """A Java date pattern as a regex; an unknown letter fails the test (teach it here)."""
    out, i = "", 0
    while i < len(pattern):
        if pattern[i] == "'":
            end = pattern.index("'", i + 1)
            out += re.escape(pattern[i + 1 : end])
            i = end + 1
        elif pattern[i].isalpha():
            run = re.match(r"(.)\1*", pattern[i:]).group(0)
            assert run in JAVA_TOKENS, f"date pattern letter {run!r} of {pattern!r} is not translated"
            out += JAVA_TOKENS[run]
            i += len(run)
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def parse_date(value: str, formats: list[str]) -> datetime | None:
    """What the date processor makes of `value`: the first of its formats that parses it."""
    for fmt in formats:
        if fmt == "ISO8601":
            if ISO8601.fullmatch(value):
                return datetime.fromisoformat(value)
            continue
        match = java_pattern(fmt).fullmatch(value)
        if match:
            parts = match.groupdict()
            offset = parts.get("offset") or "Z"
            tz = UTC if offset == "Z" else datetime.strptime(offset.replace(":", ""), "%z").tzinfo
            fraction = int((parts.get("fraction") or "0").ljust(6, "0"))
            return datetime(*(int(parts[k]) for k in ("year", "month", "day", "hour", "minute", "second")),
                            fraction, tzinfo=tz)  # fmt: skip
    return None


def fits(value, mapping: dict) -> bool:
    """Whether Elasticsearch indexes `value` under `mapping` (not merely keeps it in _source)."""
    if value is None:
        return True
    if isinstance(value, list):
        return all(fits(item, mapping) for item in value)
    kind = mapping["type"]
    if kind == "keyword":
        return isinstance(value, str | int | float) and not isinstance(value, bool) and (
            len(str(value)) <= mapping.get("ignore_above", 2**31))  # fmt: skip
    if kind in {"text", "match_only_text"}:
        return isinstance(value, str)
    if kind in {"long", "integer", "short"}:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "ip":
        try:
            return isinstance(value, str) and bool(ipaddress.ip_address(value))
        except ValueError:
            return False
    if kind == "date":
        return isinstance(value, datetime)
    raise AssertionError(f"mapping type {kind} is not checked here")


def dynamic_mapping(value) -> dict | None:
    """The mapping a dynamic template of the index template gives an unmapped field, if any."""
    for entry in MAPPINGS.get("dynamic_templates", []):
        (rule,) = entry.values()
        if rule.get("match_mapping_type") == "string" and isinstance(value, str):
            return rule["mapping"]
    return None


def leaves(doc: dict, prefix: str = ""):
    for key, value in doc.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def get(doc: dict, path: str):
    for part in path.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def put(doc: dict, path: str, value) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[last] = value


def pop(doc: dict, path: str):
    *parents, last = path.split(".")
    for part in parents:
        doc = doc.get(part, {})
    return doc.pop(last, None)


# -- the ingest pipeline, processor by processor ------------------------------------------------------------
# Every `if` of ingest-pipeline.json, as Python. A new condition fails the test until it is added here.
PAINLESS = {
    "ctx.time != null": lambda doc: doc.get("time") is not None,
    "ctx.container?.labels?.com_docker_compose_service != null": lambda doc: (
        get(doc, "container.labels.com_docker_compose_service") is not None
    ),
    "ctx.process != null": lambda doc: doc.get("process") is not None,
}


def run_processors(processors: list[dict], doc: dict) -> None:
    for processor in processors:
        ((kind, options),) = processor.items()
        condition = options.get("if")
        if condition is not None:
            assert condition in PAINLESS, f"the pipeline's condition {condition!r} is not translated"
            if not PAINLESS[condition](doc):
                continue
        try:
            apply_processor(kind, options, doc)
        except ValueError:
            if "on_failure" not in options:
                raise
            run_processors(options["on_failure"], doc)


def apply_processor(kind: str, options: dict, doc: dict) -> None:
    field = options.get("field")
    if kind == "date":
        parsed = parse_date(get(doc, field), options["formats"])
        if parsed is None:
            raise ValueError(f"{field} does not parse with {options['formats']}")
        put(doc, options.get("target_field", "@timestamp"), parsed)
    elif kind == "remove":
        if get(doc, field) is None and not options.get("ignore_missing"):
            raise ValueError(f"{field} missing")
        pop(doc, field)
    elif kind == "rename":
        put(doc, options["target_field"], pop(doc, field))
    elif kind == "append":
        put(doc, field, [*(get(doc, field) or []), options["value"]])
    elif kind == "set":
        if options.get("override", True) or get(doc, field) is None:
            put(doc, field, get(doc, options["copy_from"]) if "copy_from" in options else options["value"])
    else:
        raise AssertionError(f"pipeline processor {kind} is not simulated here")


# -- Filebeat's side: the processors of filebeat.yml --------------------------------------------------------
def matches(condition: dict, event: dict) -> bool:
    """Filebeat's conditions, the kinds filebeat.yml uses."""
    ((kind, arg),) = condition.items()
    if kind == "and":
        return all(matches(c, event) for c in arg)
    if kind == "or":
        return any(matches(c, event) for c in arg)
    if kind == "not":
        return not matches(arg, event)
    if kind == "equals":
        return all(get(event, field) == value for field, value in arg.items())
    if kind == "regexp":
        return all(isinstance(get(event, f), str) and re.search(p, get(event, f)) for f, p in arg.items())
    raise AssertionError(f"filebeat condition {kind} is not evaluated here")


def filebeat_event(raw: str, service: str) -> dict:
    """An event as the filestream input and add_docker_metadata leave one line of a compose service."""
    return {
        "@timestamp": datetime.now(UTC),
        "message": raw,
        "stream": "stderr",
        "log": {"offset": 0, "file": {"path": "/var/lib/docker/containers/0123abcd/0123abcd-json.log"}},
        "input": {"type": "filestream"},
        "agent": {"type": "filebeat", "version": "8.17.0"},
        "ecs": {"version": "8.0.0"},
        "host": {"name": "5f1e2d3c4b5a"},
        "container": {
            "id": "0123abcd",
            "name": f"tradingapp-{service}-1",
            "image": {"name": "tradingapp/backend:latest"},
            "labels": {"com_docker_compose_service": service, "com_docker_compose_project": "tradingapp"},
        },
    }


def ship(raw: str, service: str) -> dict | None:
    """What Elasticsearch stores for one line of `service` (None: Filebeat drops it)."""
    event = filebeat_event(raw, service)
    for processor in FILEBEAT["processors"]:
        ((kind, options),) = processor.items()
        when = options.get("when")
        if when is not None and not matches(when, event):
            continue
        if kind == "add_docker_metadata":
            continue  # filebeat_event carries what it adds
        if kind == "drop_event":
            return None
        if kind == "drop_fields":
            for field in options["fields"]:
                pop(event, field)
        elif kind == "decode_json_fields":
            assert options["target"] == "" and options["overwrite_keys"] and options["fields"] == ["message"]
            try:
                decoded = json.loads(event["message"])
                collisions = FILEBEAT_FIELDS & set(decoded)
                assert not collisions, f"the line's {collisions} would replace Filebeat's own fields: {raw}"
                event.update(decoded)
            except json.JSONDecodeError as error:
                event["error"] = {"message": str(error), "type": "json"}
        else:
            raise AssertionError(f"filebeat processor {kind} is not simulated here")
    run_processors(PIPELINE["processors"], event)
    return event


def unmapped(doc: dict) -> list[str]:
    """The fields of a stored document that the template does not map to a type their value fits."""
    problems = []
    for path, value in leaves(doc):
        mapping = MAPPED.get(path) or dynamic_mapping(value)
        if mapping is None:
            problems.append(f"{path}={value!r} is not mapped")
        elif not fits(value, mapping):
            problems.append(f"{path}={value!r} does not fit {mapping}")
    return problems


# -- the run: the real processes place an order --------------------------------------------------------------
@dataclass
class Run:
    lines: dict[str, list[str]]  # process -> the lines of its log, in order
    started: datetime
    ended: datetime
    order: dict
    request_id: str
    client_order_id: str
    user_id: str
    secrets: list[str]

    def json_lines(self, process: str) -> list[dict]:
        return [json.loads(line) for line in self.lines[process] if line.startswith("{")]


@pytest.fixture(scope="module")
def run(app, env) -> Run:
    reset_to_demo_data(app)
    started_at = datetime.now(UTC)
    stack = Stack({**env, "FEED_INTERVAL_MS": "250"}, json_logs=True)
    with started(stack):
        login = requests.post(f"{stack.base_url}/api/v1/auth/login", json=DEMO, timeout=10).json()
        http = demo_session(stack.base_url)
        # A wrong password (a WARNING line) and a socket whose token rides in the query string.
        wrong = {"email": DEMO["email"], "password": "not-the-password-" + uuid.uuid4().hex[:8]}
        assert requests.post(f"{stack.base_url}/api/v1/auth/login", json=wrong, timeout=10).status_code == 401
        reader = SocketReader(f"{stack.ws_url}?token={http.token}")
        try:
            reader.send({"action": "subscribe", "instrument_ids": [1], "mode": "ltp"})
            reader.wait_for(lambda m: m.get("type") == "quote", what="quote")
            client_order_id = f"elk-{uuid.uuid4().hex[:12]}"
            body = {"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET",
                    "client_order_id": client_order_id}  # fmt: skip
            placed = http.post(f"{stack.base_url}/api/v1/orders", json=body, timeout=10)
            assert placed.status_code == 202, placed.text
            order_url = f"{stack.base_url}/api/v1/orders/{placed.json()['id']}"
            order = wait_until(lambda: (o := http.get(order_url, timeout=5).json())["status"] == "FILLED" and o,
                               timeout=20, details=stack.logs)  # fmt: skip
            for path in ("/health", "/ready", "/metrics", "/api/v1/nope"):
                requests.get(stack.base_url + path, timeout=10).close()
            user_id = http.get(f"{stack.base_url}/api/v1/auth/me", timeout=5).json()["id"]
        finally:
            reader.close()
            http.close()
    lines = {name: (stack.log_dir / f"{name}.log").read_text().splitlines() for name in PROCESSES}
    secrets = [DEMO["password"], wrong["password"], env["JWT_SECRET"], login["access_token"],
               login["refresh_token"], http.token]  # fmt: skip
    return Run(lines, started_at, datetime.now(UTC), order, placed.headers["X-Request-ID"], client_order_id,
               user_id, secrets)  # fmt: skip


def test_every_line_is_one_json_object(run):
    bad = [
        f"{name}: {line[:160]}"
        for name in PROCESSES
        for line in run.lines[name]
        if not (line.startswith("{") and isinstance(json.loads(line), dict))
    ]
    assert not bad, "lines Filebeat cannot decode:\n" + "\n".join(bad)


def test_every_line_names_its_process_and_its_event(run):
    for name in PROCESSES:
        assert run.json_lines(name), f"{name} wrote no JSON line"
        assert {line["process"] for line in run.json_lines(name)} == {name}
        for line in run.json_lines(name):
            if line["message"].startswith("event="):
                assert line["event"] == line["message"][6:].split(" ", 1)[0], line


def test_every_field_of_every_line_is_mapped_with_a_type_that_fits(run):
    problems, stored = [], 0
    for name in PROCESSES:
        for line in run.lines[name]:
            doc = ship(line, name)
            if doc is not None:
                stored += 1
                problems += [f"{name}: {problem}" for problem in unmapped(doc)]
    assert stored > 50
    assert not problems, "\n".join(sorted(set(problems)))


def test_the_time_of_every_line_becomes_its_timestamp(run):
    date = next(p["date"] for p in PIPELINE["processors"] if "date" in p)
    for name in PROCESSES:
        for line in run.json_lines(name):
            stamp = parse_date(line["time"], date["formats"])
            assert stamp is not None, f"{name}: time {line['time']!r} does not parse with {date['formats']}"
            # Whole seconds, UTC offset stated: the line's second, not another zone's.
            assert run.started - timedelta(seconds=2) <= stamp <= run.ended + timedelta(seconds=2), line
            doc = ship(json.dumps(line), name)
            assert doc is None or (doc["@timestamp"] == stamp and "time" not in doc and "tags" not in doc)


def test_the_ids_of_the_order_are_the_fields_the_template_maps(run):
    every = [(name, line) for name in PROCESSES for line in run.json_lines(name)]

    def carrying(field: str, value: str) -> set[str]:
        return {name for name, line in every if str(line.get(field)) == value}

    assert {MAPPED[field]["type"] for field in logs.CONTEXT_FIELDS} == {"keyword"}
    order = run.order
    assert {"backend", "worker", "consumer"} <= carrying("order_id", order["id"])
    assert {"backend", "worker", "consumer"} <= carrying("request_id", run.request_id)
    assert "backend" in carrying("client_order_id", run.client_order_id)
    assert {"worker", "consumer"} <= carrying("broker_order_id", order["broker_order_id"])
    assert "backend" in carrying("user_id", run.user_id)
    assert any(str(line.get("event_id", "")).startswith(f"paper:{order['id']}:") for _, line in every)
    # The access line of the order's request: gunicorn's fields, and the request id.
    [access] = [line for line in run.json_lines("backend")
                if line.get("path") == "/api/v1/orders" and line.get("method") == "POST"]  # fmt: skip
    assert (access["status"], access["request_id"], access["event"]) == (202, run.request_id, "http_request")
    assert ship(json.dumps(access), "backend") is not None


def test_no_line_carries_a_token_or_a_password(run):
    jwt = re.compile(r"eyJ[\w-]{8,}\.[\w-]{8,}\.")
    for name in PROCESSES:
        text = "\n".join(run.lines[name])
        assert not [secret for secret in run.secrets if secret in text], name
        assert not jwt.search(text) and "Bearer " not in text, name


def test_filebeat_drops_successful_probes_and_keeps_everything_else(run):
    access = [line for line in run.json_lines("backend") if line.get("logger") == "gunicorn.access"]
    shipped = {(line["path"], line["status"]): ship(json.dumps(line), "backend") is not None for line in access}
    assert shipped[("/health", 200)] is shipped[("/ready", 200)] is shipped[("/metrics", 200)] is False
    assert shipped[("/api/v1/orders", 202)] is shipped[("/api/v1/nope", 404)] is True
    assert shipped[("/api/v1/auth/login", 401)] is True
    failing_ready = {**next(line for line in access if line["path"] == "/ready"), "status": 503}
    assert ship(json.dumps(failing_ready), "backend") is not None


# -- lines the run does not produce ---------------------------------------------------------------------------
def json_line(**kwargs) -> str:
    """One line of logs.py's JSON formatter, as a process with LOG_FORMAT=json writes it."""
    logs.set_process("worker")
    record = logging.LogRecord("jobs.worker", logging.ERROR, __file__, 1, "event=boom order_id=%s", ("x",),
                               kwargs.pop("exc_info", None), **kwargs)  # fmt: skip
    record.order_id = "6b1c1d6e-5a3e-4f7e-9a57-1d2b3c4d5e6f"
    logs.ContextFilter().filter(record)
    return logs.json_formatter().format(record)


def test_a_traceback_and_a_stack_are_mapped():
    try:
        raise RuntimeError("broker down")
    except RuntimeError:
        line = json_line(exc_info=sys.exc_info(), sinfo="Stack (most recent call last):\n  File ...")
    doc = ship(line, "worker")
    assert "RuntimeError: broker down" in doc["exc_info"] and doc["stack_info"].startswith("Stack")
    assert doc["event"] == "boom" and doc["service"]["name"] == "worker"
    assert unmapped(doc) == []


def test_lines_that_are_not_the_apps_json_are_kept_as_text():
    crash = ship("Traceback (most recent call last):", "worker")
    assert crash["message"] == "Traceback (most recent call last):" and unmapped(crash) == []
    nginx = ship('{"status": "not a number", "event": {"nested": 1}}', "frontend")  # not decoded
    assert nginx["service"]["name"] == "frontend" and unmapped(nginx) == []
    broken = ship('{"time": "2024-05-02T09:15:01+0000", "level": ', "backend")
    assert broken["error"]["type"] == "json" and unmapped(broken) == []
    odd_time = ship(json.dumps({"time": "yesterday", "level": "INFO", "message": "m"}), "backend")
    assert odd_time["time_unparsed"] == "yesterday" and odd_time["tags"] == ["time_unparsed"]
    assert unmapped(odd_time) == []


def test_microsecond_iso_times_parse_too():
    # python-json-logger's own timestamp (timestamp="time"): ISO 8601 with microseconds, UTC.
    stamp = datetime(2024, 5, 2, 9, 15, 1, 123456, tzinfo=UTC)
    date = next(p["date"] for p in PIPELINE["processors"] if "date" in p)
    assert parse_date(stamp.isoformat(), date["formats"]) == stamp
    assert parse_date("2024-05-02T14:45:01+0530", date["formats"]) == datetime(2024, 5, 2, 9, 15, 1, tzinfo=UTC)


# -- the files agree with each other and with docker-compose.yml ----------------------------------------------
def test_filebeat_writes_the_data_stream_through_the_pipeline_setup_loads():
    output = FILEBEAT["output.elasticsearch"]
    assert output["index"] == output["pipeline"] == setup.NAME
    assert output["username"] == setup.WRITER_USER and output["password"] == "${FILEBEAT_PASSWORD}"
    assert FILEBEAT["setup.template.enabled"] is False and FILEBEAT["setup.template.name"] == setup.NAME
    assert any(fnmatch.fnmatch(setup.NAME, pattern) for pattern in TEMPLATE["index_patterns"])
    assert FILEBEAT["setup.template.pattern"] in TEMPLATE["index_patterns"]
    assert TEMPLATE["data_stream"] == {} and TEMPLATE["template"]["settings"]["index"]["default_pipeline"] == setup.NAME
    calls = {path: body for _, path, body in setup.elasticsearch_calls(dict.fromkeys(setup.PASSWORDS, "x" * 12))}
    assert calls[f"/_ingest/pipeline/{setup.NAME}"] == PIPELINE  # the files as they are: no placeholders
    assert "${" not in json.dumps([PIPELINE, TEMPLATE])
    assert calls[f"/_index_template/{setup.NAME}"] == TEMPLATE
    assert calls[f"/_security/user/{setup.WRITER_USER}"]["roles"] == [setup.WRITER_ROLE]
    [grant] = calls[f"/_security/role/{setup.WRITER_ROLE}"]["indices"]
    assert grant["names"] == TEMPLATE["index_patterns"]
    assert set(grant["privileges"]) == {"create_doc", "auto_configure", "view_index_metadata"}  # write only


def test_the_pipeline_parses_time_into_the_timestamp_and_drops_it():
    processors = [next(iter(p.items())) for p in PIPELINE["processors"]]
    date = next(options for kind, options in processors if kind == "date")
    assert (date["field"], date["target_field"], date["timezone"]) == ("time", "@timestamp", "UTC")
    assert ("remove", {"field": "time", "ignore_missing": True}) in processors
    assert MAPPED["@timestamp"] == {"type": "date", "ignore_malformed": False}  # a data stream's rule
    # logs.py's times (ISO 8601, UTC, milliseconds) parse to the millisecond.
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    stamp = json.loads(logs.json_formatter().format(record))["time"]
    created = datetime.fromtimestamp(record.created, UTC)
    assert parse_date(stamp, date["formats"]) == created.replace(microsecond=created.microsecond // 1000 * 1000)


def test_filebeat_decodes_the_services_built_from_this_repository_and_skips_the_logging_stack():
    decode = next(p["decode_json_fields"] for p in FILEBEAT["processors"] if "decode_json_fields" in p)
    [_, services] = decode["when"]["and"]
    decoded = {c["equals"]["container.labels.com_docker_compose_service"] for c in services["or"]}
    # The app's images (Dockerfile, Dockerfile.websocket); the postgres image built from deploy/pgbackrest
    # logs PostgreSQL's own lines, not the app's JSON.
    ours = {
        name
        for name, service in MAIN_COMPOSE["services"].items()
        if service.get("build", {}).get("context") == "."
        and not service["build"].get("dockerfile", "Dockerfile").startswith("deploy/")
    }
    assert decoded == ours
    drop = next(p["drop_event"] for p in FILEBEAT["processors"] if "drop_event" in p)
    dropped = {c["equals"]["container.labels.com_docker_compose_service"] for c in drop["when"]["or"]}
    assert dropped == set(COMPOSE["services"])
    inputs = FILEBEAT["filebeat.inputs"]
    assert [i["paths"] for i in inputs] == [["/var/lib/docker/containers/*/*-json.log"]]
    assert inputs[0]["parsers"] == [{"container": {"stream": "all", "format": "docker"}}]


def test_the_logging_stack_is_a_profile_on_loopback_with_security_on():
    services = COMPOSE["services"]
    assert {name for name, s in services.items() if s.get("profiles") == ["logging"]} == set(services)
    ports = [port for s in services.values() for port in s.get("ports", [])]
    assert ports and all(port.startswith("127.0.0.1:") for port in ports)
    es = services["elasticsearch"]["environment"]
    assert es["xpack.security.enabled"] == "true" and es["ELASTIC_PASSWORD"] == "${ELASTIC_PASSWORD:-}"
    assert "elasticsearch_data:/usr/share/elasticsearch/data" in services["elasticsearch"]["volumes"]
    versions = {s["image"].rsplit(":", 1)[1] for s in services.values() if s["image"].startswith("docker.elastic.co/")}
    assert len(versions) == 1  # Kibana and Filebeat match Elasticsearch's version
    assert set(services["filebeat"]["volumes"]) >= {
        "./filebeat.yml:/usr/share/filebeat/filebeat.yml:ro",
        "/var/lib/docker/containers:/var/lib/docker/containers:ro",
        "/var/run/docker.sock:/var/run/docker.sock:ro",
    }
    for name in ("filebeat", "kibana"):
        assert services[name]["depends_on"]["elk-setup"]["condition"] == "service_completed_successfully"
    assert services["elk-setup"]["command"] == ["python", "/elk/setup.py", "elasticsearch"]
    # Substituted with a default: `docker compose up` without the profile must not ask for them.
    substituted = re.findall(r"(?<!\$)\$\{([A-Z_]+)([^}]*)\}", COMPOSE_TEXT)
    assert {name for name, _ in substituted} == set(setup.PASSWORDS)
    assert {rest for _, rest in substituted} == {":-"}


def test_docker_compose_includes_the_logging_stack():
    included = [entry if isinstance(entry, str) else entry["path"] for entry in MAIN_COMPOSE.get("include", [])]
    assert "deploy/elk/compose.yml" in included


def test_setup_refuses_to_run_without_the_passwords():
    env = {k: v for k, v in os.environ.items() if k not in setup.PASSWORDS}
    result = subprocess.run([sys.executable, str(ELK / "setup.py")], env={**env, "KIBANA_PASSWORD": "short"},
                            capture_output=True, text=True, timeout=30)  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "set ELASTIC_PASSWORD, KIBANA_PASSWORD, FILEBEAT_PASSWORD in .env (12+ characters each)"
    )
