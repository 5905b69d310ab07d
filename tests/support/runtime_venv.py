"""A venv holding the runtime lock alone, installed with the Dockerfile's own pip command.

The dev venv carries pytest and the other tools, which pull in packages the runtime may need
without declaring them (gunicorn's gevent worker imports `packaging`); this venv has only what
users and the images get. It is cached by the lock's and the command's hash, so only the first run
after a lock change pays for the install.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

CACHE = Path(os.environ.get("TRADINGAPP_CACHE", Path.home() / ".cache" / "tradingapp"))
DOCKERFILES = ("Dockerfile", "Dockerfile.websocket")
PIP_RUN = re.compile(r"^RUN\s+pip install\s+(.+)$", re.MULTILINE)


def dockerfile_pip_args(dockerfile: str = "Dockerfile") -> list[str]:
    """The arguments of the image's one `RUN pip install ...` line."""
    found = PIP_RUN.findall((ROOT / dockerfile).read_text())
    assert len(found) == 1, f"{dockerfile}: expected one 'RUN pip install' line, found {found}"
    return shlex.split(found[0])


def runtime_venv() -> Path:
    """The cached venv's bin directory, built first when the lock or the command changed."""
    args = dockerfile_pip_args()
    digest = hashlib.sha256()
    digest.update((ROOT / "requirements.lock").read_bytes())
    digest.update(" ".join(args).encode() + sys.version.encode())
    venv = CACHE / f"runtime-venv-{digest.hexdigest()[:16]}"
    if not (venv / ".complete").exists():
        _build(venv, args)
    for stale in CACHE.glob("runtime-venv-*"):
        if stale != venv:
            shutil.rmtree(stale, ignore_errors=True)
    return venv / "bin"


def _build(venv: Path, pip_args: list[str]) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    # The image's command, from the repository root where the Dockerfile's COPY put the lock.
    subprocess.run([*pip, "install", *pip_args], cwd=ROOT, check=True, timeout=600)
    subprocess.run([*pip, "check"], check=True, timeout=60)
    (venv / ".complete").write_text(" ".join(pip_args) + "\n")
