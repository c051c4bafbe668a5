"""examples/python/raft_cluster.py runs and shows what it promises."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_raft_cluster_example_runs() -> None:
    script = os.path.join(ROOT, "examples", "python", "raft_cluster.py")
    proc = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for marker in (
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
    ):
        assert marker in out, f"missing {marker!r} in:\n{out}"
    assert "entries: True" in out
