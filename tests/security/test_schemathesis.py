"""schemathesis over /api/v1/openapi.json against the real processes, every check on.

Two runs: a fixed seed (the same cases every time) and a rotating one (the date's, so each day
tries new cases; set SCHEMATHESIS_SEED to replay one). A failure prints schemathesis' report,
its seed and the command line that replays it.

Identities (a WFC auth document, logged in through POST /auth/login as a client does, again after
a logout revoked the token): the trader first, then anonymous, then the admin for what the trader
is refused; `peer` is a second trader, so object_level_authorization checks that neither reads the
other's objects. The admin's PATCH /admin/users/{id} is pointed at a user of its own, so the run
cannot demote or deactivate the identities it runs as.

Expected statuses, as the API's contract (API.md "Errors") defines them: a request that matches
the document may still be refused by a business rule (422 validation_error or risk_rejected, 423
trading halted); a request that does not match is refused with 400, or with 404/405/413/415 before
its body is read. Instruments, candles and quotes are market data every user reads, not objects
a user owns: object_level_authorization is off for those reads only.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import schemathesis.specs.openapi.checks  # noqa: F401 (registers the OpenAPI checks by name)
from schemathesis.checks import CHECKS

from tests.support.env import FAST_HASHER
from tests.support.stack import Stack, reset_to_demo_data, started
from tradingapp.extensions import db
from tradingapp.models import User

pytestmark = pytest.mark.e2e

ST = Path(sys.executable).parent / "st"
PASSWORD = "fuzz-password-123"
IDENTITIES = {"trader": "trader", "peer": "trader", "admin": "admin"}
TARGET = uuid.UUID("00000000-0000-4000-8000-00000000f022")  # the user the admin's PATCH changes
EXAMPLES = 10  # per operation and phase: both runs stay under two minutes on two cores
MARKET_DATA = r"^/api/v1/(quotes|instruments)"


def seeds() -> list[tuple[str, int]]:
    rotating = int(os.environ.get("SCHEMATHESIS_SEED") or datetime.date.today().strftime("%Y%m%d"))
    return [("fixed", 1), ("rotating", rotating)]


def email(name: str) -> str:
    return f"fuzz-{name}@example.com"


def seed_identities() -> None:
    for name, role in IDENTITIES.items():
        db.session.add(User(email=email(name), password_hash=FAST_HASHER.hash(PASSWORD), name=name, role=role))
    db.session.add(User(id=TARGET, email=email("target"), password_hash=FAST_HASHER.hash(PASSWORD), name="target",
                        role="trader"))  # fmt: skip


@pytest.fixture(scope="module")
def stack(app, env):
    reset_to_demo_data(app, seed_identities)
    with started(Stack(env)) as running:
        yield running


def login_entry(name: str) -> dict:
    token = {"extractFrom": "body", "extractSelector": "/access_token", "sendIn": "header",
             "sendName": "Authorization", "sendTemplate": "Bearer {token}"}  # fmt: skip
    payload = json.dumps({"email": email(name), "password": PASSWORD})
    login = {"endpoint": "/api/v1/auth/login", "verb": "POST", "contentType": "application/json",
             "payloadRaw": payload, "token": token}  # fmt: skip
    return {"name": name, "loginEndpointAuth": login}


def configuration(folder: Path) -> Path:
    """Every check the pinned schemathesis has, on (named here rather than with --checks all: a name
    given on the command line would override the market-data exception below)."""
    auth = folder / "auth.json"
    auth.write_text(json.dumps({"auth": [login_entry(name) for name in IDENTITIES]}))
    tuned = ("positive_data_acceptance", "negative_data_rejection")
    every_check = "\n".join(f"[checks.{name}]\nenabled = true" for name in CHECKS.get_all_names() if name not in tuned)
    config = folder / "schemathesis.toml"
    config.write_text(
        f"""
{every_check}

[auth.wfc]
path = "{auth}"
peers = ["trader", "peer"]

[checks.positive_data_acceptance]
enabled = true
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "423", "429"]

[checks.negative_data_rejection]
enabled = true
expected-statuses = ["400", "401", "403", "404", "405", "413", "415", "422"]

[[operations]]
include-path = "/api/v1/admin/users/{{user_id}}"
parameters = {{ user_id = "{TARGET}" }}

[[operations]]
include-path-regex = "{MARKET_DATA}"
include-method = "GET"
checks.object_level_authorization.enabled = false
"""
    )
    return config


@pytest.mark.parametrize(("kind", "seed"), seeds(), ids=[kind for kind, _ in seeds()])
def test_every_generated_request_is_answered_as_the_document_says(stack, tmp_path, kind, seed):
    config = configuration(tmp_path)
    # One worker: with two threads, hypothesis' ast.parse of its strategies' lambdas raised CPython
    # 3.11's "SystemError: AST constructor recursion depth mismatch" (that check is not thread-safe).
    command = [str(ST), "--no-color", "--config-file", str(config), "run", f"{stack.base_url}/api/v1/openapi.json",
               "--url", stack.base_url, "--max-examples", str(EXAMPLES), "--seed", str(seed),
               "--workers", "1", "--request-timeout", "10"]  # fmt: skip
    print(f"schemathesis {kind} seed {seed}: SCHEMATHESIS_SEED={seed} pytest {__file__}")
    print(f"checks: {', '.join(CHECKS.get_all_names())}")
    started_at = time.monotonic()
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    print(f"schemathesis {kind} seed {seed}: {time.monotonic() - started_at:.1f}s")
    summary = run.stdout[-6000:]
    assert run.returncode == 0, f"seed {seed}\n{summary}\n{run.stderr[-2000:]}\n{stack.logs()}"
    stack.assert_alive()
