"""The code passes ``ruff check`` (the version pinned in the ``test`` extra), so CI fails on a new finding.

``ruff format`` is not used by this project: only the linter runs here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("src", "tests", "benchmarks")


def test_ruff_check_passes() -> None:
    pytest.importorskip("ruff", reason="ruff is not installed: pip install -e '.[test]' (pins the ruff version)")
    cmd = [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *PATHS]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=120)
    version = subprocess.run(
        [sys.executable, "-m", "ruff", "--version"], capture_output=True, text=True, check=False, timeout=30
    ).stdout.strip()
    assert out.returncode == 0, (
        f"`ruff check {' '.join(PATHS)}` ({version}) exited with {out.returncode}:\n{out.stdout}{out.stderr}"
    )
