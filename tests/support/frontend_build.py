"""The built terminal (frontend/dist) for the tests that serve it: tests/deploy/test_nginx.py and the
browser tests.

`built_dist()` returns frontend/dist, building it first when it is missing or older than the app's
sources: `npm ci` when node_modules is missing or older than package-lock.json, then
`npm run build`. An exclusive lock makes test processes running side by side build once and never
read a half-written dist; a Vite build started outside the tests (`make run`, a developer) is
waited for, then the sources are compared again. The build gets no VITE_* / REACT_APP_* variables
from the caller's environment: the tests serve the app on the page's own origin, as a plain build
does.

TRADINGAPP_FRONTEND_DIST names a dist built elsewhere (CI building once for every job); it is
used as it is.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import ROOT

FRONTEND = ROOT / "frontend"
DIST = FRONTEND / "dist"
# Not sources of the bundle: outputs, caches, the serving side (nginx/, Dockerfile) and tooling.
NOT_SOURCES = {"node_modules", "dist", "coverage", "test-results", "playwright-report", ".vite", "nginx"}
NOT_SOURCE_FILES = {"Dockerfile", ".dockerignore", ".gitignore"}
BUILD_TIMEOUT = 600
# Vite refuses to build while another build of the project runs, naming that process.
OTHER_BUILD = re.compile(r"Found another Vite build process for this project \(PID (\d+)\)")


class FrontendBuildError(RuntimeError):
    pass


def built_dist() -> Path:
    """frontend/dist (or TRADINGAPP_FRONTEND_DIST), built when stale; raises FrontendBuildError."""
    override = os.environ.get("TRADINGAPP_FRONTEND_DIST")
    if override:
        dist = Path(override).resolve()
        if not (dist / "index.html").is_file():
            raise FrontendBuildError(f"TRADINGAPP_FRONTEND_DIST={override} has no index.html")
        return dist
    if not (FRONTEND / "package.json").is_file():
        raise FrontendBuildError(f"no frontend to build: {FRONTEND / 'package.json'} is missing")
    with _build_lock():
        if _needs_install():
            _npm("ci", "--no-audit", "--no-fund")
        deadline = time.monotonic() + BUILD_TIMEOUT
        while _needs_build():
            try:
                _npm("run", "build")
            except FrontendBuildError as exc:
                other = OTHER_BUILD.search(str(exc))
                if other is None or time.monotonic() > deadline:
                    raise
                _wait_for_exit(int(other.group(1)), deadline)
        if not (DIST / "index.html").is_file():
            raise FrontendBuildError(f"npm run build finished but {DIST / 'index.html'} is missing")
    return DIST


def newest_source_mtime() -> float:
    """The latest modification time of any file that goes into the bundle."""
    newest = 0.0
    for directory, subdirs, files in os.walk(FRONTEND):
        subdirs[:] = [d for d in subdirs if d not in NOT_SOURCES]
        for name in files:
            if directory == str(FRONTEND) and name in NOT_SOURCE_FILES:
                continue
            try:
                newest = max(newest, os.stat(os.path.join(directory, name)).st_mtime)
            except FileNotFoundError:  # an editor's temporary file, gone meanwhile
                continue
    return newest


def _needs_install() -> bool:
    # npm writes node_modules/.package-lock.json at the end of every install.
    marker = FRONTEND / "node_modules" / ".package-lock.json"
    lock = FRONTEND / "package-lock.json"
    return not marker.is_file() or (lock.is_file() and lock.stat().st_mtime > marker.stat().st_mtime)


def _needs_build() -> bool:
    index = DIST / "index.html"
    return not index.is_file() or index.stat().st_mtime < newest_source_mtime()


def _wait_for_exit(pid: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        except PermissionError:  # alive, another user's
            pass
        time.sleep(0.5)


def _npm(*args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise FrontendBuildError("npm is missing: the terminal needs Node.js 20+ and npm (apt-get install nodejs npm)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VITE_", "REACT_APP_"))}
    try:
        done = subprocess.run(
            [npm, *args], cwd=FRONTEND, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        raise FrontendBuildError(f"npm {' '.join(args)} took over {BUILD_TIMEOUT}s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise FrontendBuildError(f"npm {' '.join(args)} failed with {done.returncode}:\n{output}")


@contextmanager
def _build_lock() -> Iterator[None]:
    key = hashlib.sha1(str(FRONTEND).encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"tradingapp-frontend-build-{key}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
