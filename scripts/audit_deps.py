"""`make audit`: every locked dependency checked against a vendored, dated snapshot of advisories.

pip-audit cannot audit here (the registry's per-version JSON is not served, and OSV's API is not
reachable) and the npm registry here refuses `npm audit`'s endpoint, so the advisories are vendored
in OSV format under advisories/ (the snapshot's source and date: advisories/SOURCE.txt) and matched
against the locks offline: requirements.lock, requirements-dev.lock (PyPI, PEP 440 versions with
`packaging`) and frontend/package-lock.json (npm, semver). docs/dependencies.md tells how to
refresh the snapshot.

Prints one line per vulnerable package and advisory, then a summary; exits 1 when any package is
affected (an advisory judged not to apply is listed, with why, in advisories/ignored.txt), 2 when
the snapshot cannot be read.

    python scripts/audit_deps.py [--advisories DIR] [--lock FILE ...] [--package-lock FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
PYTHON_LOCKS = (ROOT / "requirements.lock", ROOT / "requirements-dev.lock")
PACKAGE_LOCK = ROOT / "frontend" / "package-lock.json"
ADVISORIES = ROOT / "advisories"
PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
STALE_DAYS = 90
# Renamed copies of upstream releases: advisories name the upstream package, so each is audited
# under that name too, at the same version (docs/dependencies.md, "Unmaintained packages").
AUDITED_AS = {"python-engineio-v3": "python-engineio", "python-socketio-v4": "python-socketio"}


@dataclass(frozen=True)
class Package:
    ecosystem: str  # "PyPI" | "npm"
    name: str  # canonical: PEP 503 for PyPI, as written for npm
    version: str
    where: str  # the lock it is pinned in (and "dev" for an npm dev dependency)


@dataclass(frozen=True)
class Finding:
    package: Package
    advisory: str
    aliases: tuple[str, ...]
    summary: str
    fixed: tuple[str, ...]


# -- the locks ----------------------------------------------------------------------------------
def python_packages(path: Path) -> list[Package]:
    """The `name==version` pins of a uv/pip-compile lock (hashes, markers and comments skipped); a
    renamed copy (AUDITED_AS) once more under its upstream name."""
    found = []
    for line in path.read_text().splitlines():
        match = PINNED.match(line.strip())
        if match:
            name, version = canonicalize_name(match[1]), match[2]
            found.append(Package("PyPI", name, version, path.name))
            if name in AUDITED_AS:
                found.append(Package("PyPI", AUDITED_AS[name], version, f"{path.name} as {name}"))
    return found


def npm_packages(path: Path) -> list[Package]:
    """Every package of an npm lockfile (v2/v3 `packages`), nested copies included."""
    lock = json.loads(path.read_text())
    found = set()
    for key, entry in (lock.get("packages") or {}).items():
        if "node_modules/" not in key or "version" not in entry or entry.get("link"):
            continue
        name = key.rsplit("node_modules/", 1)[1]
        where = f"{path.parent.name}/{path.name}" + (" (dev)" if entry.get("dev") else "")
        found.add(Package("npm", name, entry["version"], where))
    return sorted(found, key=lambda p: (p.name, p.version))


# -- versions -----------------------------------------------------------------------------------
def semver_key(text: str) -> tuple:
    """Semantic Versioning 2.0 precedence: numbers, then a pre-release (numeric identifiers below
    alphanumeric ones, compared field by field) below its release; build metadata ignored."""
    match = SEMVER.match(text.strip())
    if not match:
        raise ValueError(f"not a semantic version: {text!r}")
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), (1,))
    fields = tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in pre.split("."))
    return (int(major), int(minor), int(patch), (0, fields))


def version_key(ecosystem: str, text: str):
    """A sortable key of a version of the ecosystem; "0" (OSV's "from the first") sorts lowest."""
    if text == "0":
        return (0,)
    if ecosystem == "npm":
        return (1, semver_key(text))
    return (1, Version(text))


# -- the advisories ------------------------------------------------------------------------------
def load_advisories(folder: Path) -> list[dict]:
    """Every OSV record under `folder`: .json, or .yaml/.yml as the PyPA advisory database keeps them."""
    records = []
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".json":
            records.append(json.loads(path.read_text()))
        elif path.suffix in (".yaml", ".yml"):
            import yaml  # requirements-dev.txt: only the PyPA records need it

            records.append(yaml.safe_load(path.read_text()))
    return [r for r in records if isinstance(r, dict) and r.get("id") and not r.get("withdrawn")]


def in_range(ecosystem: str, version: str, events: list[dict]) -> bool:
    """OSV's evaluation of one ECOSYSTEM or SEMVER range: events in version order, the version is
    affected from an `introduced` up to a `fixed` (excluded) or a `last_affected` (included)."""
    key = version_key(ecosystem, version)

    def event_key(event: dict):
        return version_key(ecosystem, str(next(iter(event.values()))))

    affected = False
    for event in sorted(events, key=event_key):
        if "introduced" in event and key >= version_key(ecosystem, str(event["introduced"])):
            affected = True
        elif "fixed" in event and key >= version_key(ecosystem, str(event["fixed"])):
            affected = False
        elif "last_affected" in event and key > version_key(ecosystem, str(event["last_affected"])):
            affected = False
    return affected


def affects(record: dict, package: Package) -> tuple[bool, tuple[str, ...]]:
    """Whether the record names this package at this version; the versions that fix it."""
    hit, fixed = False, []
    for affected in record.get("affected") or []:
        named = affected.get("package") or {}
        if named.get("ecosystem") != package.ecosystem or _name(package.ecosystem, named.get("name")) != package.name:
            continue
        if package.version in [str(v) for v in affected.get("versions") or []]:
            hit = True
        for rng in affected.get("ranges") or []:
            if rng.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue  # GIT ranges name commits, not releases
            events = rng.get("events") or []
            fixed += [str(e["fixed"]) for e in events if "fixed" in e]
            try:
                hit = hit or in_range(package.ecosystem, package.version, events)
            except (InvalidVersion, ValueError) as exc:
                print(f"warning: {record['id']}: a range not comparable with {package.version}: {exc}", file=sys.stderr)
    return hit, tuple(dict.fromkeys(fixed))


def _name(ecosystem: str, name: object) -> str:
    return canonicalize_name(str(name)) if ecosystem == "PyPI" else str(name)


def audit(packages: list[Package], records: list[dict], ignored: dict[str, str]) -> list[Finding]:
    findings = []
    for package in packages:
        for record in records:
            hit, fixed = affects(record, package)
            ids = {record["id"], *record.get("aliases", [])}
            if hit and not ids & set(ignored):
                summary = str(record.get("summary") or record.get("details") or "").strip().splitlines()[0][:100]
                findings.append(Finding(package, record["id"], tuple(record.get("aliases", [])), summary, fixed))
    return findings


def read_ignored(path: Path) -> dict[str, str]:
    """advisories/ignored.txt: `ID reason` a line (an advisory judged not to apply, and why)."""
    if not path.exists():
        return {}
    entries = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip() and line[0] != "#")
    return {parts[0]: parts[1] if len(parts) > 1 else "" for parts in entries}


def snapshot_date(folder: Path) -> date | None:
    """The snapshot's date: the first YYYY-MM-DD in SOURCE.txt."""
    source = folder / "SOURCE.txt"
    match = re.search(r"\d{4}-\d{2}-\d{2}", source.read_text()) if source.exists() else None
    return date.fromisoformat(match[0]) if match else None


def merged(pinned: list[Package]) -> list[Package]:
    """One package a (ecosystem, name, version), naming every lock that pins it."""
    where: dict[tuple[str, str, str], list[str]] = {}
    for p in pinned:
        where.setdefault((p.ecosystem, p.name, p.version), []).append(p.where)
    return [Package(*key, ", ".join(dict.fromkeys(locks))) for key, locks in sorted(where.items())]


def main(argv: list[str] | None = None, today: date | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--advisories", type=Path, default=ADVISORIES)
    parser.add_argument("--lock", type=Path, action="append", help="a requirements lock (default: both)")
    parser.add_argument("--package-lock", type=Path, default=PACKAGE_LOCK)
    args = parser.parse_args(argv)
    if not args.advisories.is_dir():
        print(f"audit: no advisory snapshot at {args.advisories}", file=sys.stderr)
        return 2
    pinned = [p for lock in args.lock or PYTHON_LOCKS for p in python_packages(lock)]
    if args.package_lock.exists():
        pinned += npm_packages(args.package_lock)
    packages = merged(pinned)
    records = load_advisories(args.advisories)
    findings = audit(packages, records, read_ignored(args.advisories / "ignored.txt"))
    for f in findings:
        aliases = f" ({', '.join(f.aliases)})" if f.aliases else ""
        fix = f"fixed in {', '.join(f.fixed)}" if f.fixed else "no fixed version"
        package = f"{f.package.ecosystem} {f.package.name}=={f.package.version} [{f.package.where}]"
        print(f"{package}: {f.advisory}{aliases}: {f.summary}; {fix}")
    taken = snapshot_date(args.advisories)
    ecosystems = {e: sum(p.ecosystem == e for p in packages) for e in ("PyPI", "npm")}
    print(
        f"audit: {len(packages)} locked packages ({ecosystems['PyPI']} PyPI, {ecosystems['npm']} npm) against "
        f"{len(records)} advisories of the snapshot of {taken or 'an unknown date'}: "
        f"{len({f.package for f in findings})} vulnerable"
    )
    age = ((today or date.today()) - taken).days if taken else None
    if age is None or age > STALE_DAYS:
        said = f"{age} days old" if age is not None else "of no known date"
        print(f"audit: warning: the advisory snapshot is {said}; refresh it (docs/dependencies.md)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
