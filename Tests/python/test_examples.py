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


def test_c_example_links_against_the_shipped_library(tmp_path: "os.PathLike[str]") -> None:
    """What a C user of the pip-installed package does: compile against
    include_dir() and link the libluigi.so that ships inside the package."""
    import luigi_node as ln

    lib_dir = os.path.dirname(ln.library_path())
    exe = os.path.join(os.fspath(tmp_path), "quickstart")
    source = os.path.join(ROOT, "examples", "c", "quickstart.c")
    build = subprocess.run(
        ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", ln.include_dir(), source,
         "-o", exe, lib_dir + "/libluigi.so", "-Wl,-rpath," + lib_dir],
        capture_output=True, text=True, timeout=120,
    )
    assert build.returncode == 0, build.stderr
    run = subprocess.run([exe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "quickstart: all checks passed" in run.stdout
