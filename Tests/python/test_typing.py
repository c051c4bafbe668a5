"""Static typing: mypy --strict over the examples and these tests, and
mypy.stubtest comparing the shipped stubs with the installed extension."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALLOWLIST = os.path.join(ROOT, "bindings", "python", "stubtest-allowlist.txt")

pytest.importorskip("mypy", reason="mypy is part of the test requirements (make venv)")


def run(args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        # Run outside the repository so mypy cannot pick up the package source
        # tree instead of the installed package; the cache goes to scratch.
        env = dict(os.environ, MYPY_CACHE_DIR=os.path.join(scratch, "cache"))
        proc = subprocess.run(
            [sys.executable, "-m", *args],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{output}"


def test_mypy_strict_examples_and_tests() -> None:
    run(
        [
            "mypy",
            "--strict",
            "--no-incremental",
            os.path.join(ROOT, "examples", "python"),
            os.path.join(ROOT, "Tests", "python"),
        ]
    )


def test_stubtest() -> None:
    run(["mypy.stubtest", "luigi_node", "--allowlist", ALLOWLIST])
