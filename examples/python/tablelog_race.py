"""luigi_node table log: two writers race on one table over a simulated
3-node Raft cluster, and the leader crashes in the middle.

The "ingest" writer appends data files; the "compact" writer merges the
ingested files it sees at a version into one. Each round both propose at
once (commit_many: concurrent writers), so they keep colliding: the loser
gets a ConflictError naming the latest version and retries the same commit
(same transaction id, same files) on that base. A commit that times out
(its outcome is unknown: the leader crashed under it) is retried the same
way; if it did land, the log answers with its original version, so nothing
applies twice. At the end every acknowledged commit must be in the log
exactly once and every version's files must equal the fold of the
acknowledged commits; the script exits non-zero otherwise.

Run it with the package installed:  python examples/python/tablelog_race.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional, TypeVar

import luigi_node as ln

TABLE = "events"
INGESTS = 12
T = TypeVar("T")


def patiently(call: Callable[[], T]) -> T:
    """Reads are linearizable (ReadIndex through the leader); one may time
    out while the cluster elects a leader: ask again."""
    for _ in range(20):
        try:
            return call()
        except ln.LuigiTimeoutError:
            pass
    return call()


@dataclass
class Commit:
    txn_id: str
    adds: tuple[ln.DataFile, ...]
    removes: tuple[str, ...]


@dataclass
class Writer:
    name: str
    base: int = 0
    pending: Optional[Commit] = None
    conflicts: int = 0
    timeouts: int = 0
    acked: list[tuple[int, Commit]] = field(default_factory=list)

    def request(self) -> ln.CommitRequest:
        assert self.pending is not None
        return ln.CommitRequest(TABLE, self.base, self.pending.txn_id, self.pending.adds,
                                self.pending.removes)

    def settle(self, result: int | ln.LuigiError) -> None:
        """One outcome of commit_many for this writer's pending commit."""
        assert self.pending is not None
        if isinstance(result, int):
            self.acked.append((result, self.pending))
            self.base, self.pending = result, None
        elif isinstance(result, ln.ConflictError):
            assert result.latest is not None
            self.conflicts += 1
            self.base = result.latest  # retry the same commit on the latest version
        elif isinstance(result, ln.LuigiTimeoutError):
            self.timeouts += 1  # outcome unknown: retry it as it is
        else:
            raise result  # refused as invalid: a bug in this script


def plan_ingest(writer: Writer, n: int) -> None:
    writer.pending = Commit(
        f"ingest-{n:03}", (ln.DataFile(f"ingest/{n:03}.parquet", 100 + n, 4096 + n, "day=1"),), ())


def plan_compaction(log: ln.TableLog, writer: Writer, n: int, minimum: int) -> bool:
    """Merge the ingested files live at the latest version (read at that
    version: a consistent snapshot) into one file, if there are enough."""
    writer.base = patiently(lambda: log.latest(TABLE))
    small = [f for f in patiently(lambda: log.files(TABLE, writer.base))
             if f.path.startswith("ingest/")]
    if len(small) < minimum:
        return False
    merged = ln.DataFile(f"compact/{n:03}.parquet", sum(f.rows for f in small),
                         sum(f.size for f in small), "day=1")
    writer.pending = Commit(f"compact-{n:03}", (merged,), tuple(f.path for f in small))
    return True


def main() -> int:
    cluster = ln.RaftCluster(3, seed=7, state_machine="tables")
    log = ln.TableLog(cluster)
    log.create_table(TABLE, b'{"columns": ["ts", "event"]}')
    ingest, compact = Writer("ingest"), Writer("compact")
    ingested = compactions = 0
    crashed: Optional[int] = None

    print(f"== two writers on table {TABLE!r}, 3 nodes, leader node {cluster.leader()}")
    for round_ in range(200):
        if ingest.pending is None and ingested < INGESTS:
            plan_ingest(ingest, ingested)
            ingested += 1
        if compact.pending is None and plan_compaction(
                log, compact, compactions, 3 if ingested < INGESTS else 1):
            compactions += 1
        # Who proposes first alternates, and so does who wins a collision.
        order = (ingest, compact) if round_ % 2 == 0 else (compact, ingest)
        writers = [w for w in order if w.pending is not None]
        if not writers:
            break
        timeout = 1000
        if round_ == 6:
            timeout = 1  # the leader crashes under these commits: outcome unknown
        results = log.commit_many([w.request() for w in writers], timeout=timeout)
        for writer, result in zip(writers, results):
            writer.settle(result)
        if round_ == 6:
            crashed = cluster.leader()
            assert crashed is not None
            cluster.crash(crashed)
            unknown = [w.request().txn_id for w, r in zip(writers, results)
                       if isinstance(r, ln.LuigiTimeoutError)]
            print(f"round {round_}: leader node {crashed} crashed under {len(unknown)} "
                  f"commit(s) whose outcome is unknown: {unknown}")
            landed = {v.txn_id: v.version for v in patiently(lambda: log.versions(TABLE))}
            for txn_id in unknown:  # the new leader's log tells; the retry does not care
                where = f"in the log at v{landed[txn_id]}" if txn_id in landed else "not in the log"
                print(f"  {txn_id} is {where}; it is retried as it is")
        if round_ == 12 and crashed is not None:
            cluster.restart(crashed)
            print(f"round {round_}: node {crashed} restarted; leader node {cluster.leader()}")
    else:
        print("the writers did not finish")
        return 1

    for w in (ingest, compact):
        print(f"{w.name}: {len(w.acked)} commits acknowledged, {w.conflicts} conflicts "
              f"retried on the latest version, {w.timeouts} unknown outcomes retried")

    versions = patiently(lambda: log.versions(TABLE))
    print(f"\n== versions of {TABLE!r}")
    for v in versions:
        print(f"  v{v.version:<3} {v.txn_id or '(created)':<12} +{v.added} -{v.removed}")

    # Every acknowledged commit exactly once, at its version; nothing else.
    acked = sorted(ingest.acked + compact.acked, key=lambda a: a[0])
    ok = True
    logged = [(v.version, v.txn_id) for v in versions if v.version > 0]
    if logged != [(version, c.txn_id) for version, c in acked]:
        print(f"MISMATCH: the log holds {logged}, the writers acknowledged "
              f"{[(version, c.txn_id) for version, c in acked]}")
        ok = False
    txn_ids = [v.txn_id for v in versions]
    if any(txn_ids.count(c.txn_id) != 1 for _, c in acked):
        print("MISMATCH: a commit is in the log more than once")
        ok = False
    if ok:
        print(f"every acknowledged commit is in the log exactly once ({len(acked)} commits)")

    # Every version's files are the fold of the acknowledged commits up to it.
    files: dict[str, ln.DataFile] = {}
    folds = [dict(files)]
    for _, c in acked:
        for path in c.removes:
            del files[path]
        files.update((f.path, f) for f in c.adds)
        folds.append(dict(files))
    for number, want in enumerate(folds):
        got = patiently(lambda: log.files(TABLE, number))
        if got != sorted(want.values(), key=lambda f: f.path.encode()):
            print(f"MISMATCH: version {number} holds {[f.path for f in got]}, the fold gives "
                  f"{sorted(want)}")
            ok = False
            break
    live = patiently(lambda: log.files(TABLE))
    rows = sum(f.rows for f in live)
    expected_rows = sum(100 + n for n in range(INGESTS))
    print(f"latest files: {[f.path for f in live]}")
    print(f"rows: {rows} of {expected_rows} ingested")
    if rows != expected_rows:
        print("MISMATCH: rows were lost or counted twice")
        ok = False
    if ok:
        print("every version's files equal the fold of the acknowledged commits")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
