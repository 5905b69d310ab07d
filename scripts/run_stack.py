"""Run every tradingapp process on this machine, `make run` style.

backend and websocket (gunicorn, same app on PORT and WEBSOCKET_PORT), the RQ worker, the Kombu
consumer and the market feed (the XTS event bridge with BROKER=xts), each with its output prefixed
by its name. Ctrl-C or SIGTERM stops them all (SIGTERM, a grace period, then SIGKILL) and exits 0;
if one dies on its own, the rest are stopped and the exit code is 1.

`--xts-sim` (make run-xts) runs the whole stack against the XTS simulator: the simulator first, as
a process of the stack on --xts-sim-port, then every other process with BROKER=xts and XTS_API_URL,
the app and market-data keys pointing at it (the simulator's own credentials).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config import Config, ConfigError, load_config  # noqa: E402  (needs ROOT on sys.path)

# The XTS simulator's default credentials (python -m tradingapp.simulators.xts --help).
XTS_SIM_CREDENTIALS = {"XTS_API_KEY": "sim-app-key", "XTS_API_SECRET": "sim-secret-key",
                       "XTS_MD_API_KEY": "sim-md-key", "XTS_MD_API_SECRET": "sim-md-secret"}  # fmt: skip
# The servers listen here unless BIND_HOST says otherwise (config.py): a developer's stack is not for the network.
LOOPBACK = {"127.0.0.1", "::1", "localhost"}
READY_TIMEOUT = 20.0  # seconds a process with a ready_url has to answer before the next one starts


@dataclass
class Spec:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # the processes after it start once this answers 200


def xts_sim_env(port: int) -> dict[str, str]:
    """What every process of the stack gets to trade against the simulator on `port`."""
    return {"BROKER": "xts", "XTS_API_URL": f"http://127.0.0.1:{port}", "XTS_CLIENT_ID": "", **XTS_SIM_CREDENTIALS}


def xts_simulator(python: str, port: int) -> Spec:
    argv = [python, "-m", "tradingapp.simulators.xts", "--host", "127.0.0.1", "--port", str(port)]
    return Spec("xts-sim", argv, ready_url=f"http://127.0.0.1:{port}/_sim/state")


def specs(config: Config, bin_dir: Path, xts_sim_port: int | None = None) -> list[Spec]:
    gunicorn = [str(bin_dir / "gunicorn"), "-c", "gunicorn.conf.py", "wsgi:app"]
    python = str(bin_dir / "python")
    simulator = [xts_simulator(python, xts_sim_port)] if xts_sim_port else []
    return simulator + [
        Spec("backend", gunicorn, {"PORT": str(config.PORT)}),
        # The same app on the WebSocket port, as in the compose file's websocket service.
        Spec("websocket", gunicorn, {"PORT": str(config.WEBSOCKET_PORT)}),
        Spec("worker", [python, "-m", "jobs.worker"]),
        Spec("consumer", [python, "-m", "jobs.consumer"]),
        market_feed(config, python),
    ]


def market_feed(config: Config, python: str) -> Spec:
    """Simulated ticks, or with BROKER=xts the XTS event bridge: the broker's touchlines and its
    order and trade events (`python -m jobs.feed` would run it too; named for what it is)."""
    if config.BROKER == "xts":
        return Spec("bridge", [python, "-m", "jobs.xts_bridge"])
    return Spec("feed", [python, "-m", "jobs.feed"])


def banner(config: Config, xts_sim_port: int | None = None) -> str:
    from tradingapp.cli import DEMO_USERS

    api = f"http://localhost:{config.PORT}"
    lines = [
        f"tradingapp is starting (broker={config.BROKER}, database={'PostgreSQL' if config.is_postgres else 'SQLite'})",
        f"  terminal   {api}/  (open it in a browser and log in below)",
        f"  API        {api}  (REST under /api/v1)",
        f"  WebSocket  ws://localhost:{config.WEBSOCKET_PORT}/ws",
        f"  health     {api}/health    ready  {api}/ready",
    ]
    lines += metrics_lines(config, api)
    if xts_sim_port:
        lines.append(f"  XTS sim    http://127.0.0.1:{xts_sim_port}  (control API under /_sim, e.g. /_sim/state)")
    if config.BIND_HOST not in LOOPBACK:
        lines.append(f"  listening on {config.BIND_HOST} (BIND_HOST): other machines can reach this stack")
    lines += [f"  login      {email} / {password}  ({role})" for email, password, _, role in DEMO_USERS]
    lines.append("  Ctrl-C stops everything.")
    return "\n".join(lines)


def metrics_lines(config: Config, api: str) -> list[str]:
    """Where each process serves its metrics: backend and websocket on their own ports, the others on
    their *_METRICS_PORT on METRICS_HOST (the feed's place taken by the bridge with BROKER=xts)."""
    if not config.METRICS_ENABLED:
        return ["  metrics    off (METRICS_ENABLED=false)"]
    host = f"[{config.METRICS_HOST}]" if ":" in config.METRICS_HOST else config.METRICS_HOST
    feed = ("bridge", config.XTS_BRIDGE_METRICS_PORT) if config.BROKER == "xts" else ("feed", config.FEED_METRICS_PORT)
    ports = [("worker", config.WORKER_METRICS_PORT), ("consumer", config.CONSUMER_METRICS_PORT), feed]
    served = [f"{name} http://{host}:{port}/metrics" for name, port in ports if port]
    lines = [
        f"  metrics    backend {api}/metrics  websocket http://localhost:{config.WEBSOCKET_PORT}/metrics",
        "             " + "  ".join(served) if served else "             (no process port: *_METRICS_PORT=0)",
    ]
    if config.METRICS_TOKEN:
        lines.append("             each wants Authorization: Bearer <METRICS_TOKEN>")
    return lines


class Supervisor:
    def __init__(self, specs: list[Spec], grace: float, out=sys.stdout):
        self.specs = specs
        self.grace = grace
        self.out = out
        self.procs: dict[str, subprocess.Popen] = {}
        self.width = max(len(s.name) for s in specs)
        self.lock = threading.Lock()
        self.stop_requested = threading.Event()
        self.readers: list[threading.Thread] = []

    def say(self, name: str, line: str) -> None:
        with self.lock:
            self.out.write(f"{name.ljust(self.width)} | {line}\n")
            self.out.flush()

    def start(self, base_env: dict[str, str]) -> None:
        for spec in self.specs:
            env = {**base_env, **spec.env, "PYTHONUNBUFFERED": "1"}
            # Own session: the terminal's Ctrl-C reaches only us, and we stop children in order.
            proc = subprocess.Popen(spec.argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
            self.procs[spec.name] = proc
            reader = threading.Thread(target=self._pump, args=(spec.name, proc), daemon=True)
            reader.start()
            self.readers.append(reader)
            self.say("run", f"started {spec.name} pid={proc.pid}")
            if spec.ready_url:
                self._wait_ready(spec, proc)

    def _wait_ready(self, spec: Spec, proc: subprocess.Popen) -> None:
        """Block until the process answers its ready_url; OSError when it dies or stays silent."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self.stop_requested.is_set():
            if proc.poll() is not None:
                raise OSError(f"{spec.name} exited with code {proc.returncode} before it was ready")
            try:
                with urllib.request.urlopen(spec.ready_url, timeout=1) as answer:
                    if answer.status == 200:
                        self.say("run", f"{spec.name} is ready")
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        if not self.stop_requested.is_set():
            raise OSError(f"{spec.name} did not answer {spec.ready_url} within {READY_TIMEOUT:g}s")

    def _pump(self, name: str, proc: subprocess.Popen) -> None:
        for raw in iter(proc.stdout.readline, b""):
            self.say(name, raw.decode(errors="replace").rstrip("\n"))

    def wait(self) -> int:
        """Block until a signal asks us to stop (-> 0) or a process exits by itself (-> 1)."""
        while not self.stop_requested.wait(0.2):
            for name, proc in self.procs.items():
                code = proc.poll()
                if code is not None:
                    self.say("run", f"{name} exited with code {code}; stopping the other processes")
                    self.shutdown()
                    return 1
        self.say("run", "stopping every process")
        self.shutdown()
        return 0

    def shutdown(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for name, proc in self.procs.items():
            if proc.poll() is None:
                self.say("run", f"{name} still running after {self.grace:g}s; killing it")
            # SIGKILL the whole group: a gunicorn worker may outlive its master.
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        for reader in self.readers:
            reader.join(timeout=2)
        for name, proc in self.procs.items():
            proc.stdout.close()
            self.say("run", f"{name} stopped (exit code {proc.returncode})")


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is already gone


def take_terminal() -> tuple[int, int] | None:
    """Become the terminal's foreground process group, so Ctrl-C reaches this supervisor only.

    Under `make run` the terminal's SIGINT would also reach make, which then reports
    "Interrupt" and fails even though every process stopped cleanly. Returns what to restore.
    """
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp() or os.getsid(0) == os.getpid():
            return None
        previous = os.tcgetpgrp(fd)
        os.setpgid(0, 0)
        _set_foreground(fd, os.getpgrp())
        return fd, previous
    except (OSError, ValueError):
        return None


def _set_foreground(fd: int, pgrp: int) -> None:
    # A background group that changes the terminal gets SIGTTOU unless it ignores it.
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(fd, pgrp)
    finally:
        signal.signal(signal.SIGTTOU, old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grace", type=float, default=15.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--bin", type=Path, default=Path(sys.executable).parent, help="the venv's bin directory")
    parser.add_argument("--only", default="", help="comma-separated subset, e.g. backend,worker")
    parser.add_argument("--xts-sim", action="store_true", help="run against the XTS simulator (BROKER=xts)")
    parser.add_argument("--xts-sim-port", type=int, default=9200, help="the simulator's port (with --xts-sim)")
    args = parser.parse_args(argv)
    sim_port = args.xts_sim_port if args.xts_sim else None
    env = {**os.environ, **(xts_sim_env(sim_port) if sim_port else {})}
    try:
        config = load_config(env)
    except ConfigError as exc:
        print(f"run: configuration error: {exc}", file=sys.stderr)
        return 1
    chosen = [s for s in specs(config, args.bin, sim_port) if not args.only or s.name in args.only.split(",")]
    if not chosen:
        print(f"run: --only {args.only!r} names no process", file=sys.stderr)
        return 2
    supervisor = Supervisor(chosen, grace=args.grace)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stop_requested.set())
    terminal = take_terminal()
    try:
        print(banner(config, sim_port), flush=True)
        try:
            supervisor.start({**env, "FLASK_APP": "wsgi"})
        except OSError as exc:
            print(f"run: could not start a process: {exc}", file=sys.stderr)
            supervisor.shutdown()
            return 1
        return supervisor.wait()
    finally:
        if terminal:
            _set_foreground(*terminal)


if __name__ == "__main__":
    sys.exit(main())
