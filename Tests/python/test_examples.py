"""The Python examples run and show what they promise."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_example(name: str) -> str:
    """Runs examples/python/<name> and returns what it printed."""
    script = os.path.join(ROOT, "examples", "python", name)
    proc = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def assert_shows(out: str, *markers: str) -> None:
    for marker in markers:
        assert marker in out, f"missing {marker!r} in:\n{out}"


def test_quickstart_runs() -> None:
    assert_shows(
        run_example("quickstart.py"),
        "== vector clocks",
        "a vs b: BEFORE   b vs c: CONCURRENT",
        "tokyo applies it again: new=False",
        "'visits': 8",
        "rejected, nothing changed (visits=8)",
        "local set() refused",
        "proposed at log index 3: committed",
        "lyon: owner=8 handovers=2",
        "converged? False",
        "[150, 150, 150, 150, 150]",
    )


def test_raft_cluster_example_runs() -> None:
    out = run_example("raft_cluster.py")
    assert_shows(
        out,
        "nodes [1, 2, 3]; node ",
        "get color -> b'red'",
        "cas color red->blue: True",
        "cas color red->green: False",
        "cas fresh absent->1: True",
        "delete fresh: True; get fresh -> None",
        "took over in term",
        "get color -> b'violet'",
        "same log as the leader: True",
        "the majority commits: get color -> b'indigo'",
        "every node applied the same",
        "the history is linearizable",
    )
    assert "entries: True" in out


def test_watermark_bank_example_runs() -> None:
    out = run_example("watermark_bank.py")
    assert_shows(
        out,
        "== watermark commit, a leader crash mid-run",
        "crashed; node ",
        "== two-phase commit (the baseline), fault-free",
        "== side by side",
        "fast path rate",
    )
    assert out.count("check(): every invariant holds") == 2
    assert out.count("money: 200000 of 200000") == 2
    assert "LOST" not in out


def test_tablelog_race_example_runs() -> None:
    out = run_example("tablelog_race.py")  # exits non-zero on any mismatch
    assert_shows(
        out,
        "== two writers on table 'events', 3 nodes",
        "crashed under 1 commit(s) whose outcome is unknown",
        "is retried as it is",
        "restarted; leader node",
        "conflicts retried on the latest version",
        "== versions of 'events'",
        "every acknowledged commit is in the log exactly once",
        "rows: 1266 of 1266 ingested",
        "every version's files equal the fold of the acknowledged commits",
    )
    assert "MISMATCH" not in out


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
