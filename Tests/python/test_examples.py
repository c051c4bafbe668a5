"""The Python examples run and show what they promise."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quickstart_runs() -> None:
    script = os.path.join(ROOT, "examples", "python", "quickstart.py")
    proc = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for marker in (
        "== vector clocks",
        "a vs b: BEFORE   b vs c: CONCURRENT",
        "tokyo applies it again: new=False",
        "'visits': 8",
        "rejected, nothing changed (visits=8)",
        "set() refused",
        "converged? False",
        "[150, 150, 150, 150, 150]",
    ):
        assert marker in out, f"missing {marker!r} in:\n{out}"
