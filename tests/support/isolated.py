"""Run test code in a fresh interpreter: for what a process reads once (its imports, ONEDNN_MAX_CPU_ISA)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping


def run_python(code: str, *, env: Mapping[str, str] | None = None, timeout: float = 180) -> str:
    """Run ``code`` (dedented) with this interpreter, extra ``env`` variables set; assert it exits 0, return stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr
    return done.stdout
