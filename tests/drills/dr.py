"""The disaster-recovery drill: lose a PostgreSQL cluster's disk under the application's order load
and restore it with pgBackRest, latest and to a point in time. `make dr-drill` (DRILL_FLAGS=--small
for the ~40 s version that tests/drills/test_dr_drill.py runs).

1. A throwaway cluster (tests/drills/cluster.py) archiving its WAL to a throwaway, encrypted
   pgBackRest repository in another directory (its own pgbackrest.conf, aes-256-cbc with a random
   pass, the retention of deploy/pgbackrest/pgbackrest.conf); stanza-create and check.
2. `flask create-db`, `flask db upgrade`, `flask seed`, then the real processes (backend, worker,
   consumer, feed) and a steady order load over the HTTP API (tests/drills/load.py): MARKET orders
   the paper exchange fills, LIMIT orders that stay open. Every acknowledged order is recorded
   outside the cluster.
3. A full backup, then an incremental one, both while the load writes. A recovery target between
   two known orders (A acknowledged before it, B sent after it). More writes; a snapshot of the
   books (orders, order_events -- the audit trail --, trades, positions, accounts, the paper
   exchange's orders and events, processed events) with each row's commit time
   (track_commit_timestamp), kept outside the cluster; more writes, then the loss: kill -9 of the
   postmaster and its backends, rm -rf of the data directory. The worker, consumer and feed are
   stopped then, so nothing writes to the restored books before they are compared; the backend
   keeps running, as it would in production, and reconnects by itself.
4. Latest: `pgbackrest restore` into the emptied directory, start, and the running backend's /ready
   green: RTO = loss -> /ready. RPO = the acknowledged orders missing, and the seconds between the
   last commit the restore replayed and the loss. The restored books must equal the snapshot up to
   the recovery point, and no order acknowledged before the recovery point may be missing.
5. Point in time: `pgbackrest restore --type=time --target=<between A and B>` into a fresh
   directory on another port, a backend pointed at it, /ready green; the books must hold exactly
   the rows committed before the target: A present, B absent.

Prints the figures and the checks; exits 1 when a check fails. --json writes them to a file.

The drill's archive_timeout is 30 s, production's (deploy/pgbackrest/postgresql.backup.conf); the
small drill uses 5 s so that a 40 s run still sees segments switched by the timeout, and says so.
"""

from __future__ import annotations

import argparse
import configparser
import json
import re
import secrets
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.drills.cluster import Cluster, own, temp_root
from tests.drills.load import DB_NAME, DrillApp, OrderLoad, login, ready_seconds
from tests.support import ROOT

STANZA = "drill"
DEPLOY = ROOT / "deploy" / "pgbackrest"
PRODUCTION_STANZA = "main"
BOOKS = (
    "orders",
    "order_events",
    "trades",
    "positions",
    "accounts",
    "paper_orders",
    "paper_events",
    "processed_events",
    "admin_actions",
)
VISIBILITY_MARGIN = 1.0
RTO_TARGET = 15 * 60.0
RPO_TARGET = 5 * 60.0


@dataclass
class Plan:
    """How long each phase writes (seconds) and the archive_timeout the drill's cluster uses.

    The incremental backup ends with a WAL switch; the loss comes 9 s (small) or 57 s (full) after
    it, late in an archive_timeout cycle: the segment being written then is ~4 s or ~27 s old, near
    the worst case (a loss just after a switch would lose almost nothing and flatter the RPO)."""

    rate: float
    warmup: float
    between_backups: float
    around_target: float
    after_snapshot: float
    before_snapshot: float
    archive_timeout: int

    @classmethod
    def small(cls) -> Plan:
        return cls(
            rate=8,
            warmup=2,
            between_backups=2,
            around_target=1.5,
            before_snapshot=4,
            after_snapshot=3.5,
            archive_timeout=5,
        )

    @classmethod
    def full(cls) -> Plan:
        return cls(
            rate=10,
            warmup=20,
            between_backups=20,
            around_target=2,
            before_snapshot=50,
            after_snapshot=5,
            archive_timeout=30,
        )


@dataclass
class Repository:
    """A pgBackRest repository in `root/repo` with its own config file (readable by the server's user
    only: it holds the cipher pass)."""

    root: Path
    cluster: Cluster
    cipher_pass: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def __post_init__(self):
        for name in ("repo", "log", "lock", "spool"):
            (self.root / name).mkdir(exist_ok=True)
            own(self.root / name)
        # Production's options (deploy/pgbackrest/pgbackrest.conf), its paths replaced by the drill's.
        production = production_config()
        production["global"].update(
            {
                "repo1-path": str(self.root / "repo"),
                "repo1-cipher-pass": self.cipher_pass,
                "lock-path": str(self.root / "lock"),
                "log-path": str(self.root / "log"),
                "spool-path": str(self.root / "spool"),
            }
        )
        sections = {name: dict(production[name]) for name in production.sections() if name != PRODUCTION_STANZA}
        sections[STANZA] = {
            "pg1-path": str(self.cluster.data),
            "pg1-port": str(self.cluster.port),
            "pg1-socket-path": str(self.cluster.dir),
        }
        self.config = self.root / "pgbackrest.conf"
        self.config.write_text(
            "".join(
                f"[{name}]\n" + "".join(f"{k}={v}\n" for k, v in opts.items()) + "\n" for name, opts in sections.items()
            )
        )
        own(self.config)
        self.config.chmod(0o600)

    def archive_command(self) -> str:
        return f"pgbackrest --config={self.config} --stanza={STANZA} archive-push %p"

    def run(self, *argv: str, timeout: float = 600) -> str:
        done = self.cluster.run("pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *argv, timeout=timeout)
        return done.stdout

    def info(self) -> dict:
        return json.loads(self.run("info", "--output=json"))[0]


def production_config(path: Path = DEPLOY / "pgbackrest.conf") -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    config.optionxform = str  # option names as written
    config.read(path)
    return config


def production_settings(path: Path = DEPLOY / "postgresql.backup.conf") -> dict[str, str]:
    """The postgresql.conf snippet's settings (name -> value, quotes removed)."""
    settings = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            name, value = (part.strip() for part in line.split("=", 1))
            settings[name] = value[1:-1].replace("''", "'") if value.startswith("'") else value
    return settings


def snapshot(cluster: Cluster) -> tuple[float, dict[str, dict[str, tuple[str, float]]]]:
    """The books as one consistent snapshot: {table: {primary key: (row as JSON, commit time)}}, and
    a time before the snapshot was taken: every row committed by then is in it. A commit's time is
    taken before its WAL is flushed and it becomes visible: one second of margin covers that. A
    frozen row's commit time is unknown: -inf (old)."""
    before = time.time() - VISIBILITY_MARGIN
    books: dict[str, dict[str, tuple[str, float]]] = {}
    with cluster.connect(DB_NAME, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        for table in BOOKS:
            keys = [
                r[0]
                for r in conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid"
                    " AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary"
                    " ORDER BY a.attnum",
                    (table,),
                )
            ]
            if not conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]:
                continue
            key = "json_build_array(" + ", ".join(f't."{k}"' for k in keys) + ")::text" if keys else "t::text"
            rows = conn.execute(
                f"SELECT {key}, row_to_json(t)::text,"  # noqa: S608 -- names from BOOKS and the catalog
                f" extract(epoch from pg_xact_commit_timestamp(t.xmin))::float8 FROM {table} t"
            ).fetchall()
            books[table] = {k: (row, ts if ts is not None else float("-inf")) for k, row, ts in rows}
        conn.rollback()
    return before, books


def compare(source, restored, point: float, source_taken: float) -> dict:
    """Restored books against the source's snapshot (taken at `source_taken`) up to `point`, the
    recovery point (epoch seconds):
    - every source row committed at or before `point` is in the restored books: the same row, or a
      later version committed after the snapshot (which the snapshot cannot show);
    - every restored row committed at or before the snapshot is the source's, or a version of it
      the source superseded after `point`;
    - no restored row was committed after `point` (recovery stopped there).
    Returns counts per table and problem, and up to 5 examples of each problem."""
    problems: dict[str, list] = {"missing": [], "different": [], "extra": [], "after_point": []}
    counts = {}
    for table, rows in source.items():
        got = restored.get(table, {})
        expected = {k: v for k, v in rows.items() if v[1] <= point}
        counts[table] = {"source": len(rows), "expected": len(expected), "restored": len(got)}
        for k, (row, _ts) in expected.items():
            if k not in got:
                problems["missing"].append((table, k, pg_time(_ts)))
            elif got[k][0] != row and got[k][1] <= source_taken:
                problems["different"].append((table, k, row, got[k][0], pg_time(_ts), pg_time(got[k][1])))
        for k, (_row, ts) in got.items():
            if ts > point:
                problems["after_point"].append((table, k, pg_time(ts)))
            elif k not in rows and ts <= source_taken:
                problems["extra"].append((table, k, pg_time(ts)))
    return {
        "tables": counts,
        "problems": {name: len(found) for name, found in problems.items()},
        "examples": {name: found[:5] for name, found in problems.items() if found},
        "equal": not any(problems.values()),
    }


def last_replayed(log: Path) -> float | None:
    """The commit time of the last transaction recovery replayed (the server log says it at the end
    of recovery), as epoch seconds."""
    text = log.read_text(errors="replace")
    found = re.findall(r"last completed transaction was at log time (\S+ \S+)", text)
    if not found:
        return None
    return datetime.fromisoformat(found[-1]).timestamp()


def pg_time(epoch: float) -> str:
    if epoch == float("-inf"):
        return "frozen"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


class Drill:
    def __init__(self, plan: Plan, keep: bool = False, log=print):
        self.plan, self.keep, self.log = plan, keep, log
        self.root = temp_root("tradingapp-dr-")
        self.figures: dict = {"archive_timeout_s": plan.archive_timeout}
        self.checks: dict[str, bool] = {}
        self.app: DrillApp | None = None
        self.load: OrderLoad | None = None
        self.clusters: list[Cluster] = []

    def say(self, text: str) -> None:
        self.log(f"[dr {time.strftime('%H:%M:%S')}] {text}")

    def check(self, name: str, ok: bool) -> None:
        self.checks[name] = bool(ok)
        self.say(f"check {name}: {'ok' if ok else 'FAILED'}")

    # -- the run -----------------------------------------------------------------------------------------
    def run(self) -> dict:
        try:
            self.prepare()
            self.write_and_back_up()
            self.lose()
            self.restore_latest()
            self.restore_to_time()
        finally:
            self.teardown()
        self.figures["checks"] = self.checks
        self.figures["ok"] = all(self.checks.values()) and bool(self.checks)
        return self.figures

    def prepare(self) -> None:
        self.source = Cluster(self.root, "source")
        self.clusters.append(self.source)
        self.repo = Repository(self.root, self.source)
        self.source.settings.update(production_settings())  # deploy/pgbackrest/postgresql.backup.conf
        self.source.settings.update(
            {
                "archive_command": self.repo.archive_command(),
                "archive_timeout": self.plan.archive_timeout,
                # The drill's own: each row's commit time, to compare books at a recovery point.
                "track_commit_timestamp": "on",
                "timezone": "UTC",
                "log_timezone": "UTC",
                "max_connections": 200,
            }
        )
        self.source.initdb().start()
        self.repo.run("stanza-create")
        self.repo.run("check")  # archive_command works: a WAL segment reached the repository
        self.say(f"cluster on {self.source.port}, repository {self.repo.root / 'repo'} (aes-256-cbc)")
        self.app = DrillApp(self.root, self.source.port)
        self.app.migrate()
        self.stack = self.app.start()
        self.app.wait_for_quotes(self.stack)
        with self.source.connect(DB_NAME) as conn:
            found = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        self.figures["timescaledb"] = found[0] if found else None

    def write_and_back_up(self) -> None:
        plan = self.plan
        self.load = OrderLoad(self.stack.base_url, rate=plan.rate)
        self.load.start()
        time.sleep(plan.warmup)
        for kind in ("full", "incr"):
            started = time.monotonic()
            self.repo.run("backup", f"--type={kind}")
            self.figures[f"backup_{kind}_s"] = round(time.monotonic() - started, 1)
            self.say(f"{kind} backup in {self.figures[f'backup_{kind}_s']} s, orders so far {len(self.load.acks)}")
            if kind == "full":
                time.sleep(plan.between_backups)
        info = self.repo.info()
        self.figures["backups"] = [
            {
                "label": b["label"],
                "type": b["type"],
                "database_bytes": b["info"]["size"],
                "stored_bytes": b["info"]["repository"]["delta"],  # compressed, encrypted, its own files
            }
            for b in info["backup"]
        ]
        # The recovery target: a moment between order A (acknowledged before it) and order B (sent after it).
        time.sleep(plan.around_target)
        self.target = time.time()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not [a for a in self.load.acknowledged() if a.sent > self.target]:
            time.sleep(0.1)
        acks = self.load.acknowledged()
        self.order_a = max((a for a in acks if a.acked < self.target), key=lambda a: a.acked)
        self.order_b = min((a for a in acks if a.sent > self.target), key=lambda a: a.sent)
        self.say(
            f"target {pg_time(self.target)}: order A {self.order_a.order_id} before, B {self.order_b.order_id} after"
        )
        time.sleep(plan.before_snapshot)
        self.source_taken, self.source_books = snapshot(self.source)
        time.sleep(plan.after_snapshot)

    def lose(self) -> None:
        self.loss_wall, self.loss = time.time(), time.monotonic()
        self.source.destroy()
        self.say(f"LOSS: postmaster killed (-9) and {self.source.data} removed")
        self.load.stop()
        for name in ("worker", "consumer", "feed"):  # nothing writes to the restored books before the checks
            self.stack.kill(name, signal.SIGKILL)
        self.acks = self.load.acknowledged()
        self.figures["orders_acknowledged"] = len(self.acks)
        self.figures["load_outcomes"] = dict(self.load.outcomes)

    def restore_latest(self) -> None:
        self.source.data.mkdir(mode=0o700)
        own(self.source.data)
        started = time.monotonic()
        self.repo.run("restore")
        self.figures["restore_latest_s"] = round(time.monotonic() - started, 1)
        self.source.start(timeout=600)
        self.source.wait_writable(600)
        self.figures["rto_s"] = round(ready_seconds(f"{self.stack.base_url}/ready", self.loss, RTO_TARGET), 1)
        self.say(f"latest restored: /ready green {self.figures['rto_s']} s after the loss")
        _taken, books = snapshot(self.source)
        point = last_replayed(self.source.log)
        self.check("latest: recovery point found in the server log", point is not None)
        point = point or float("-inf")
        self.figures["recovery_point"] = pg_time(point) if point > 0 else None
        restored_orders = {json.loads(k)[0] for k in books.get("orders", {})}
        missing = [a for a in self.acks if a.order_id not in restored_orders]
        self.figures["rpo_orders"] = len(missing)
        self.figures["rpo_s"] = round(max(0.0, self.loss_wall - point), 1)
        self.figures["rpo_lost_writes_s"] = (
            round(self.acks[-1].acked - min(a.sent for a in missing), 1) if missing else 0.0
        )
        self.check(
            "latest: no order acknowledged before the recovery point is missing",
            not [a for a in missing if a.acked <= point],
        )
        result = compare(self.source_books, books, point, self.source_taken)
        self.figures["latest_books"] = result
        self.check("latest: books equal the source up to the recovery point", result["equal"])
        self.check(f"latest: RTO <= {RTO_TARGET:.0f} s", self.figures["rto_s"] <= RTO_TARGET)
        self.check(f"latest: RPO <= {RPO_TARGET:.0f} s", self.figures["rpo_s"] <= RPO_TARGET)
        # The application writes again: one order through the API on the restored cluster.
        with login(self.stack.base_url) as session:
            answer = session.post(
                f"{self.stack.base_url}/api/v1/orders",
                json={"instrument_id": 1, "side": "BUY", "quantity": 1, "order_type": "MARKET", "product": "MIS"},
                timeout=30,
            )
        self.check("latest: the API accepts an order after the restore", answer.status_code in (200, 201, 202))

    def restore_to_time(self) -> None:
        pitr = Cluster(self.root, "pitr")
        self.clusters.append(pitr)
        pitr.dir.mkdir()
        own(pitr.dir)
        pitr.data.mkdir(mode=0o700)
        own(pitr.data)
        started = time.monotonic()
        self.repo.run(
            "restore",
            f"--pg1-path={pitr.data}",
            "--type=time",
            f"--target={pg_time(self.target)}",
            "--target-action=promote",
        )
        # The copy must not archive into the production stanza (a second timeline from an old point).
        with open(pitr.data / "postgresql.auto.conf", "a") as conf:
            conf.write("archive_mode = off\n")
        pitr.start(timeout=600)
        pitr.wait_writable(600)
        self.figures["restore_pitr_s"] = round(time.monotonic() - started, 1)
        stack = self.app.start(["backend"], db_port=pitr.port)
        self.figures["pitr_ready_s"] = round(ready_seconds(f"{stack.base_url}/ready", started, 600), 1)
        _taken, books = snapshot(pitr)
        result = compare(self.source_books, books, self.target, self.source_taken)
        self.figures["pitr_books"] = result
        self.figures["pitr_target"] = pg_time(self.target)
        restored_orders = {json.loads(k)[0] for k in books.get("orders", {})}
        self.check("pitr: books hold exactly the rows committed before the target", result["equal"])
        self.check("pitr: order A (before the target) present", self.order_a.order_id in restored_orders)
        self.check("pitr: order B (after the target) absent", self.order_b.order_id not in restored_orders)
        early = [a for a in self.acks if a.acked < self.target]
        late = [a for a in self.acks if a.sent > self.target]
        self.check(
            "pitr: every order acknowledged before the target present, none sent after it",
            all(a.order_id in restored_orders for a in early) and not any(a.order_id in restored_orders for a in late),
        )
        self.say(f"point in time restored and /ready green in {self.figures['pitr_ready_s']} s")

    def teardown(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.app is not None:
            self.app.close()
        for cluster in self.clusters:
            cluster.stop("immediate")
        if self.keep:
            self.say(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)


def report(figures: dict) -> str:
    lines = [
        "disaster-recovery drill (pgBackRest, latest and point in time)",
        f"  archive_timeout            {figures['archive_timeout_s']} s",
        f"  TimescaleDB                {figures.get('timescaledb') or 'no (plain PostgreSQL)'}",
        f"  orders acknowledged        {figures.get('orders_acknowledged')}",
        f"  full / incr backup         {figures.get('backup_full_s')} s / {figures.get('backup_incr_s')} s",
        f"  restore latest (pgbackrest){figures.get('restore_latest_s')} s",
        f"  RTO loss -> /ready         {figures.get('rto_s')} s   (target {RTO_TARGET:.0f} s)",
        f"  RPO                        {figures.get('rpo_orders')} orders, {figures.get('rpo_s')} s"
        f" (recovery point {figures.get('recovery_point')}; lost writes span {figures.get('rpo_lost_writes_s')} s)",
        f"  PITR restore -> /ready     {figures.get('pitr_ready_s')} s (target {figures.get('pitr_target')})",
    ]
    for name in ("latest_books", "pitr_books"):
        if name in figures:
            tables = ", ".join(f"{t} {c['restored']}" for t, c in figures[name]["tables"].items())
            lines.append(f"  {name:<27}{tables}; problems {figures[name]['problems']}")
    lines += [f"  [{'ok' if ok else 'FAILED'}] {name}" for name, ok in figures["checks"].items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.drills.dr", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a short load (~40 s), as the test runs it")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, repository)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = Drill(Plan.small() if args.small else Plan.full(), keep=args.keep).run()
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
