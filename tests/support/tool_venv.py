"""Tools the tests install on first use, cached under the watcher home: a virtualenv of its own for a
tool from PyPI whose pins clash with ours (checkov, moto's Batch server), built once under a file
lock when two test sessions start together."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from watcher.local.service import home, locked


def tool_venv(name: str, requirement: str, executable: str) -> Path:
    """``executable`` of a virtualenv ``<watcher home>/<name>`` holding ``requirement`` (pinned: it is
    the stamp), made on first use; raises when PyPI cannot give it."""
    venv = home() / name
    found, stamp = venv / "bin" / executable, venv / ".installed"
    with locked(home() / f"{name}.lock"):
        if found.exists() and stamp.exists() and stamp.read_text().strip() == requirement:
            return found
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        pip = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", requirement],
            timeout=900,
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            raise RuntimeError(f"cannot install {requirement} from PyPI:\n{pip.stderr[-3000:]}")
        stamp.write_text(requirement)
    return found
