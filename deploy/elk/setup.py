"""Sets up the logging stack (deploy/elk/compose.yml runs it in python:3.12-alpine; the standard library only).

`python setup.py elasticsearch` (the elk-setup service, before Kibana and Filebeat start):
- kibana_system's password (KIBANA_PASSWORD), which Kibana logs in with;
- a role that may only write the tradingapp-logs data stream, and Filebeat's user with it
  (tradingapp_filebeat, FILEBEAT_PASSWORD): Filebeat never holds the superuser's password;
- the ingest pipeline (ingest-pipeline.json) and the index template (index-template.json), both named
  tradingapp-logs like the data stream filebeat.yml writes.
`python setup.py kibana` (the kibana-setup service, once Kibana answers): the data view tradingapp-logs*.

Each step is a PUT or POST of the whole object, so running it again (a new template, a changed
password) is safe. Elasticsearch's superuser (elastic, ELASTIC_PASSWORD) makes the calls.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAME = "tradingapp-logs"  # the data stream, its index template and its ingest pipeline
WRITER_ROLE = "tradingapp_logs_writer"
WRITER_USER = "tradingapp_filebeat"
PASSWORDS = ("ELASTIC_PASSWORD", "KIBANA_PASSWORD", "FILEBEAT_PASSWORD")
MIN_PASSWORD = 12
WAIT_SECONDS = 300


def load(name: str) -> dict:
    return json.loads((HERE / name).read_text())


def writer_role() -> dict:
    """What Filebeat needs to ship to the data stream through its pipeline, and nothing more."""
    return {
        "cluster": ["monitor", "read_pipeline"],
        "indices": [{"names": [f"{NAME}*"], "privileges": ["create_doc", "auto_configure", "view_index_metadata"]}],
    }


def elasticsearch_calls(env: dict[str, str]) -> list[tuple[str, str, dict]]:
    return [
        ("POST", "/_security/user/kibana_system/_password", {"password": env["KIBANA_PASSWORD"]}),
        ("PUT", f"/_security/role/{WRITER_ROLE}", writer_role()),
        ("PUT", f"/_security/user/{WRITER_USER}", {"password": env["FILEBEAT_PASSWORD"], "roles": [WRITER_ROLE]}),
        ("PUT", f"/_ingest/pipeline/{NAME}", load("ingest-pipeline.json")),
        ("PUT", f"/_index_template/{NAME}", load("index-template.json")),
    ]


def kibana_calls() -> list[tuple[str, str, dict]]:
    data_view = {"id": NAME, "title": f"{NAME}*", "name": "tradingapp logs", "timeFieldName": "@timestamp"}
    return [("POST", "/api/data_views/data_view", {"data_view": data_view, "override": True})]


def missing_passwords(env: dict[str, str]) -> list[str]:
    return [name for name in PASSWORDS if len(env.get(name, "")) < MIN_PASSWORD]


def call(base: str, method: str, path: str, body: dict | None, password: str) -> tuple[int, str]:
    token = base64.b64encode(f"elastic:{password}".encode()).decode()
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json", "kbn-xsrf": "setup"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def wait_until_up(base: str, path: str, password: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            status, _ = call(base, "GET", path, None, password)
            if status == 200:
                return
            reason = f"HTTP {status}"
            if status == 401:
                reason += (
                    ": elastic's password is not ELASTIC_PASSWORD (Elasticsearch keeps the one it first started"
                    " with in its volume: change it with bin/elasticsearch-reset-password, or start afresh)"
                )
        except OSError as error:
            reason = str(error)
        if time.monotonic() > deadline:
            raise SystemExit(f"{base}{path} not up after {WAIT_SECONDS} s: {reason}")
        time.sleep(3)


def main(argv: list[str]) -> int:
    target = argv[0] if argv else "elasticsearch"
    env = dict(os.environ)
    if missing := missing_passwords(env):
        print(f"set {', '.join(missing)} in .env ({MIN_PASSWORD}+ characters each)", file=sys.stderr)
        return 2
    if target == "elasticsearch":
        base, calls = env.get("ELASTICSEARCH_URL", "http://elasticsearch:9200"), elasticsearch_calls(env)
        wait_until_up(base, "/_cluster/health?wait_for_status=yellow&timeout=30s", env["ELASTIC_PASSWORD"])
    elif target == "kibana":
        base, calls = env.get("KIBANA_URL", "http://kibana:5601"), kibana_calls()
        wait_until_up(base, "/api/status", env["ELASTIC_PASSWORD"])
    else:
        print("usage: setup.py [elasticsearch|kibana]", file=sys.stderr)
        return 2
    for method, path, body in calls:
        status, text = call(base, method, path, body, env["ELASTIC_PASSWORD"])
        if status >= 300:
            print(f"{method} {path}: HTTP {status} {text}", file=sys.stderr)
            return 1
        print(f"{method} {path}: HTTP {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
