"""deploy/pgbackrest: pgBackRest itself accepts every option of both repository variants (names and
values), the retention and encryption are what the docs promise, and the PostgreSQL snippet, the
crontab, the compose schedule script and the Dockerfile agree with the config. No server is
contacted (pgBackRest's `help` parses the whole configuration and shows the current values)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.drills.dr import DEPLOY, PRODUCTION_STANZA, production_config, production_settings

BOOLEANS = {"y": "true", "n": "false"}  # how `help` shows a boolean
CONFIGS = ["pgbackrest.conf", "pgbackrest.s3.conf"]
PGBACKREST = shutil.which("pgbackrest") or "pgbackrest"  # make drill-tools installs it


def pgbackrest(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([PGBACKREST, *argv], capture_output=True, text=True, timeout=30)


def current(config: str, command: str, option: str) -> str:
    done = pgbackrest(f"--config={DEPLOY / config}", f"--stanza={PRODUCTION_STANZA}", "help", command, option)
    assert done.returncode == 0 and "ERROR" not in done.stdout + done.stderr, done.stdout + done.stderr
    found = re.search(r"^current: (.*)$", done.stdout, re.M)
    return found.group(1) if found else ""


@pytest.mark.parametrize("config", CONFIGS)
def test_every_option_is_one_pgbackrest_knows_with_a_valid_value(config):
    parsed = production_config(DEPLOY / config)
    for section in parsed.sections():
        command = section.split(":", 1)[1] if ":" in section else None
        for option, value in parsed[section].items():
            # A name valid for one of the commands that read it (an unknown name: exit 31).
            commands = [command] if command else ["backup", "archive-push", "restore", "archive-get"]
            answers = [pgbackrest("help", c, option) for c in commands]
            assert any(a.returncode == 0 for a in answers), f"{config} [{section}] {option}: {answers[0].stdout}"
            # The value, as pgBackRest parsed it from the file.
            known = next(c for c, a in zip(commands, answers, strict=True) if a.returncode == 0)
            got = current(config, known, option)
            assert got.replace(" ", "") == BOOLEANS.get(value, value), (config, option, value, got)


@pytest.mark.parametrize("config", CONFIGS)
def test_repository_is_encrypted_and_keeps_two_weeks_of_daily_fulls(config):
    assert current(config, "backup", "repo1-cipher-type") == "aes-256-cbc"
    assert current(config, "backup", "repo1-retention-full-type") == "count"
    assert current(config, "backup", "repo1-retention-full") == "14"
    # The pass is never in the file: a compose secret (conf.d) or the environment.
    assert "cipher-pass" not in "".join(
        line for line in (DEPLOY / config).read_text().splitlines() if not line.startswith("#")
    )
    # The repository is not the database's disk.
    repo, data = current(config, "backup", "repo1-path"), current(config, "backup", "pg1-path")
    assert not repo.startswith(data) and not data.startswith(repo), (repo, data)


def test_s3_variant_names_a_bucket_and_endpoint_but_no_credentials():
    assert current("pgbackrest.s3.conf", "backup", "repo1-type") == "s3"
    assert current("pgbackrest.s3.conf", "backup", "repo1-s3-bucket")
    assert current("pgbackrest.s3.conf", "backup", "repo1-s3-endpoint")
    text = (DEPLOY / "pgbackrest.s3.conf").read_text()
    assert not re.search(r"^repo1-s3-key(-secret)?=", text, re.M)


def test_postgresql_snippet_archives_to_the_stanza_within_the_rpo():
    settings = production_settings()
    assert settings["wal_level"] in ("replica", "logical")
    assert settings["archive_mode"] == "on"
    assert f"--stanza={PRODUCTION_STANZA} archive-push %p" in settings["archive_command"]
    assert 0 < int(settings["archive_timeout"]) <= 60


def test_schedules_take_a_daily_full_at_one_and_hourly_incrementals():
    jobs = [
        line.split(None, 6)
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert [(j[0], j[1], j[5], j[6]) for j in jobs] == [
        ("0", "1", "postgres", f"pgbackrest --stanza={PRODUCTION_STANZA} --type=full backup"),
        ("0", "0,2-23", "postgres", f"pgbackrest --stanza={PRODUCTION_STANZA} --type=incr backup"),
    ]
    script = DEPLOY / "backup-schedule.sh"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "BACKUP_FULL_HOUR:-1" in text and "backup full" in text and "backup incr" in text


def test_dockerfile_copies_files_that_exist():
    copied = re.findall(r"^COPY (?:--\S+ )*(\S+) ", (DEPLOY / "Dockerfile").read_text(), re.M)
    assert copied and all((DEPLOY.parent.parent / path).is_file() for path in copied), copied
