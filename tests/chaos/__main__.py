"""`python -m tests.chaos` (make chaos): the full fault schedule under load, its table, and the
report as JSON (--json PATH, default chaos-report.json in the system's temp directory)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from pathlib import Path

from tests.chaos.runner import FAST_SWEEPS, FULL, SHORT, Chaos, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--schedule", choices=("full", "short"), default="full")
    parser.add_argument("--users", type=int, default=4, help="traders placing orders (default 4)")
    parser.add_argument("--rate", type=float, default=2.0, help="actions per second per trader (default 2)")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of load after each recovery (default 10)")
    parser.add_argument("--fast-sweeps", action="store_true", help="the sweeper every 2 s instead of as deployed")
    parser.add_argument("--json", type=Path, default=Path(tempfile.gettempdir()) / "chaos-report.json")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway services' directory (logs)")
    args = parser.parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the throwaway services and processes are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    chaos = Chaos(
        FULL if args.schedule == "full" else SHORT,
        users=args.users,
        rate=args.rate,
        settle=args.settle,
        sweeps=FAST_SWEEPS if args.fast_sweeps else None,
        keep=args.keep,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    report = chaos.run()
    args.json.write_text(json.dumps(report, indent=2, default=str))
    print(table(report))
    invariants = report["invariants"]
    print(
        f"invariants: {'all hold' if invariants.get('ok') else 'BROKEN'}"
        + "".join(
            f"\n  {i['name']}: {i['violations']} {i['listed'][:3]}"
            for i in invariants.get("invariants", [])
            if not i["ok"]
        )
    )
    ws = report["websocket"]
    print(
        f"websocket: {ws['orders']} orders of {ws['users']} users; missed {ws['missed']}, wrong {ws['wrong']} "
        f"({ws['connects']} connects, {ws['snapshots']} snapshots, {ws['updates_from_socket']} socket updates)"
    )
    print(f"revoked token: {report['revocation']}")
    print(f"report: {args.json} ({report['seconds']} s)")
    totals = report["totals"]
    ok = invariants.get("ok") and not totals["lost"] and not totals["duplicated"] and not ws["missed"] + ws["wrong"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
