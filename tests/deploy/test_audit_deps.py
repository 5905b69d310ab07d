"""scripts/audit_deps.py (`make audit`): the locks matched offline against OSV records. Hand-written
records for the matching rules (PEP 440 and semver ranges, explicit versions, last_affected, an
ignored advisory), and the vendored snapshot itself against versions it is known to name."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.support import ROOT

spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
audit_deps = importlib.util.module_from_spec(spec)
sys.modules["audit_deps"] = audit_deps  # its dataclasses look their module up there
spec.loader.exec_module(audit_deps)

TODAY = date(2024, 11, 1)


def osv(id_: str, ecosystem: str, name: str, events: list[dict], versions=(), kind=None, **extra) -> dict:
    range_type = kind or ("SEMVER" if ecosystem == "npm" else "ECOSYSTEM")
    affected = {"package": {"ecosystem": ecosystem, "name": name}, "ranges": [{"type": range_type, "events": events}]}
    if versions:
        affected["versions"] = list(versions)
    return {"id": id_, "summary": f"{name} is broken", "affected": [affected], **extra}


@pytest.fixture
def snapshot(tmp_path):
    """A folder of advisories, the locks it is run against, and the script's main()."""
    folder = tmp_path / "advisories"
    (folder / "pypi").mkdir(parents=True)
    (folder / "npm").mkdir()
    (folder / "SOURCE.txt").write_text("hand-written records of 2024-10-10\n")
    lock = tmp_path / "requirements.lock"
    package_lock = tmp_path / "frontend" / "package-lock.json"
    package_lock.parent.mkdir()

    def write(record: dict) -> None:
        sub = "npm" if record["affected"][0]["package"]["ecosystem"] == "npm" else "pypi"
        (folder / sub / f"{record['id']}.json").write_text(json.dumps(record))

    def pin(python: dict[str, str], npm: dict[str, tuple[str, bool]] | None = None) -> None:
        lock.write_text("".join(f"{n}=={v} \\\n    --hash=sha256:00\n" for n, v in python.items()))
        packages = {"": {"name": "frontend"}}
        for name, (version, dev) in (npm or {}).items():
            packages[f"node_modules/{name}"] = {"version": version, **({"dev": True} if dev else {})}
        package_lock.write_text(json.dumps({"lockfileVersion": 3, "packages": packages}))

    def run(capsys) -> tuple[int, str]:
        code = audit_deps.main(
            ["--advisories", str(folder), "--lock", str(lock), "--package-lock", str(package_lock)], today=TODAY
        )
        return code, capsys.readouterr().out

    return write, pin, run, folder


def test_a_pypi_version_inside_a_range_is_reported_with_its_fix(snapshot, capsys):
    write, pin, run, _ = snapshot
    write(osv("PYSEC-1", "PyPI", "Flask_Cors", [{"introduced": "0"}, {"fixed": "4.0.1"}], aliases=["CVE-1"]))
    pin({"flask-cors": "4.0.0", "other": "1.0"})
    code, out = run(capsys)
    assert code == 1
    assert "PyPI flask-cors==4.0.0 [requirements.lock]: PYSEC-1 (CVE-1): Flask_Cors is broken; fixed in 4.0.1" in out
    assert "1 vulnerable" in out


@pytest.mark.parametrize(
    ("version", "hit"),
    [("4.2.9", False), ("4.3.0", True), ("4.3.5", True), ("4.3.6", False), ("4.4.2", True), ("4.5.0rc1", False),
     ("4.5.3", True), ("4.5.4", False)],
)  # fmt: skip
def test_pep440_ranges_with_several_introduced_and_fixed_events(snapshot, capsys, version, hit):
    write, pin, run, _ = snapshot
    events = [{"introduced": "4.3.0"}, {"fixed": "4.3.6"}, {"introduced": "4.4.0"}, {"fixed": "4.4.3"},
              {"introduced": "4.5.1"}, {"last_affected": "4.5.3"}]  # fmt: skip
    write(osv("PYSEC-2", "PyPI", "redis", events))
    pin({"redis": version})
    assert run(capsys)[0] == (1 if hit else 0)


@pytest.mark.parametrize(
    ("version", "hit"),
    [("1.0.0-alpha", False), ("1.0.0-beta.2", True), ("1.0.0-beta.11", True), ("1.0.0-rc.1", True), ("1.0.0", True),
     ("1.2.9", True), ("1.2.10", False), ("1.10.0", False)],
)  # fmt: skip
def test_semver_ranges_order_prereleases_and_numbers_as_npm_does(snapshot, capsys, version, hit):
    """1.0.0-alpha < 1.0.0-beta.2 < 1.0.0-beta.11 < 1.0.0-rc.1 < 1.0.0 < 1.2.9 < 1.2.10 (not text order)."""
    write, pin, run, _ = snapshot
    write(osv("GHSA-npm-1", "npm", "cookie", [{"introduced": "1.0.0-beta.2"}, {"fixed": "1.2.10"}]))
    pin({}, {"cookie": (version, False)})
    code, out = run(capsys)
    assert code == (1 if hit else 0)
    assert (f"npm cookie=={version} [frontend/package-lock.json]" in out) is hit


def test_an_npm_dev_dependency_is_reported_as_dev(snapshot, capsys):
    write, pin, run, _ = snapshot
    write(osv("GHSA-npm-2", "npm", "vite", [{"introduced": "0"}, {"fixed": "5.0.1"}]))
    pin({}, {"vite": ("5.0.0", True), "react": ("19.0.0", False)})
    code, out = run(capsys)
    assert code == 1 and "npm vite==5.0.0 [frontend/package-lock.json (dev)]" in out


def test_explicit_versions_are_matched_and_other_ecosystems_ignored(snapshot, capsys):
    write, pin, run, _ = snapshot
    write(osv("PYSEC-3", "PyPI", "six", [], versions=["1.16.0"]))
    write(osv("GHSA-npm-3", "npm", "six", [{"introduced": "0"}]))  # an npm package of the same name
    pin({"six": "1.16.0"})
    code, out = run(capsys)
    assert code == 1 and out.count("six==1.16.0") == 1 and "PYSEC-3" in out


def test_git_ranges_and_withdrawn_records_are_not_matched(snapshot, capsys):
    write, pin, run, _ = snapshot
    write(osv("PYSEC-4", "PyPI", "gevent", [{"introduced": "0"}, {"fixed": "2f53c85"}], kind="GIT"))
    write(osv("PYSEC-5", "PyPI", "gevent", [{"introduced": "0"}], withdrawn="2024-01-01T00:00:00Z"))
    pin({"gevent": "23.7.0"})
    assert run(capsys)[0] == 0


def test_an_advisory_listed_as_ignored_is_not_reported(snapshot, capsys):
    write, pin, run, folder = snapshot
    write(osv("PYSEC-6", "PyPI", "jinja2", [{"introduced": "0"}], aliases=["CVE-6"]))
    (folder / "ignored.txt").write_text("# id  why\nCVE-6 the sandbox is not used\n")
    pin({"jinja2": "3.1.4"})
    code, out = run(capsys)
    assert code == 0 and "0 vulnerable" in out


def test_a_stale_snapshot_is_said_on_stderr(tmp_path, capsys):
    folder = tmp_path / "advisories"
    folder.mkdir()
    (folder / "SOURCE.txt").write_text("taken 2024-01-01\n")
    lock = tmp_path / "requirements.lock"
    lock.write_text("flask==3.1.3\n")
    argv = ["--advisories", str(folder), "--lock", str(lock), "--package-lock", str(tmp_path / "none.json")]
    assert audit_deps.main(argv, today=TODAY) == 0
    assert "the advisory snapshot is 305 days old" in capsys.readouterr().err


def test_the_vendored_snapshot_names_the_versions_it_is_known_to(tmp_path, capsys):
    """advisories/ as vendored: gevent before 23.9.0 (PYSEC-2023-177) and redis 4.5.2 (PYSEC-2023-45,
    a range of three introduced/fixed pairs) are found; the locked versions are not."""
    lock = tmp_path / "old.lock"
    lock.write_text("gevent==23.7.0\nredis==4.5.2\nurllib3==2.8.0\n")
    code = audit_deps.main(["--lock", str(lock), "--package-lock", str(tmp_path / "none.json")])
    out = capsys.readouterr().out
    assert code == 1
    assert "PyPI gevent==23.7.0 [old.lock]: PYSEC-2023-177 (CVE-2023-41419)" in out
    assert "PyPI redis==4.5.2 [old.lock]: PYSEC-2023-45" in out and "urllib3" not in out.split("\naudit:")[0]


def test_a_renamed_copy_of_an_upstream_release_is_audited_under_the_upstream_name(tmp_path, capsys):
    """python-engineio-v3 is python-engineio 3.x renamed: PYSEC-2019-170 (python-engineio before
    3.9.0) names it only under the upstream name."""
    lock = tmp_path / "old.lock"
    lock.write_text("python-engineio-v3==3.8.0\n")
    assert audit_deps.main(["--lock", str(lock), "--package-lock", str(tmp_path / "none.json")]) == 1
    assert "PyPI python-engineio==3.8.0 [old.lock as python-engineio-v3]: PYSEC-2019-170" in capsys.readouterr().out


def test_the_locks_are_clean_against_the_vendored_snapshot(capsys):
    assert audit_deps.main([]) == 0, capsys.readouterr().out
    assert Path(ROOT / "advisories" / "SOURCE.txt").read_text().startswith("Advisory snapshot of ")
