"""Table log benchmark: luigi-tablelog-bench (Swift, release) beside SQLite.

1. Durable commits: a 3-node Luigi cluster in one process, each node with
   its own write-ahead log on this disk (fdatasync), against SQLite in WAL
   mode with synchronous=FULL doing the same checks in one transaction per
   commit (a versions table, a live-files table and a txn-id index). Loads:
   1 writer; 16 writers racing on one table (losers rebase on the latest
   version and retry); 16 writers on 16 tables. Both sides check the work
   at the end (every acknowledged commit listed once, its files live).
2. Validation cost: one commit's decode + checks + apply on a table with
   1,000, 10,000 and 100,000 versions of history (Luigi: the state machine
   alone; SQLite: synchronous=OFF, so neither side syncs). It must stay flat.

Every repetition runs each case on both sides, alternating which goes
first; tables report the median and the range (min-max) over repetitions.

Usage: tablelog_bench.py BENCH_BINARY OUT_DIR [--quick]
Writes OUT_DIR/tablelog.json and OUT_DIR/TABLELOG.md.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from units import fmt_ns, fmt_rate

SCHEMA = """
CREATE TABLE tables (name TEXT PRIMARY KEY, schema BLOB NOT NULL, latest INTEGER NOT NULL);
CREATE TABLE versions (tbl TEXT NOT NULL, version INTEGER NOT NULL, txn_id TEXT NOT NULL,
                       contents BLOB NOT NULL, PRIMARY KEY (tbl, version));
CREATE UNIQUE INDEX versions_by_txn ON versions (tbl, txn_id);
CREATE TABLE files (tbl TEXT NOT NULL, path TEXT NOT NULL, rows INTEGER NOT NULL, size INTEGER NOT NULL,
                    part TEXT NOT NULL, min_stats BLOB, max_stats BLOB,
                    added INTEGER NOT NULL, removed INTEGER);
CREATE UNIQUE INDEX live_files ON files (tbl, path) WHERE removed IS NULL;
"""

File = tuple[str, int, int, str, bytes, bytes]


def data_file(path: str, n: int) -> File:
    """The same file shape as luigi-tablelog-bench's dataFile."""
    return (path, 1000 + n % 997, 1 << 20, f"day={n % 30}", bytes([n & 0xFF]) * 16, b"\xff" * 16)


class Conflict(Exception):
    def __init__(self, latest: int) -> None:
        super().__init__(f"latest is {latest}")
        self.latest = latest


def sqlite_open(path: str, synchronous: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=60)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def sqlite_commit(db: sqlite3.Connection, table: str, base: int, txn: str, adds: list[File], removes: list[str]) -> int:
    """The table log's five checks in order, then the apply, in one transaction."""
    adds = sorted(adds)
    removes = sorted(removes)
    if len({f[0] for f in adds}) != len(adds) or len(set(removes)) != len(removes):
        raise ValueError("a path twice in one commit")
    contents = repr((adds, removes)).encode()
    db.execute("BEGIN IMMEDIATE")
    try:
        row = db.execute("SELECT latest FROM tables WHERE name = ?", (table,)).fetchone()
        if row is None:
            raise ValueError(f"no table named {table}")
        latest = row[0]
        prev = db.execute("SELECT version, contents FROM versions WHERE tbl = ? AND txn_id = ?", (table, txn)).fetchone()
        if prev is not None:
            if prev[1] != contents:
                raise Conflict(latest)
            db.execute("ROLLBACK")
            return int(prev[0])
        if base != latest:
            raise Conflict(latest)
        live = "SELECT 1 FROM files WHERE tbl = ? AND path = ? AND removed IS NULL"
        for p in removes:
            if db.execute(live, (table, p)).fetchone() is None:
                raise ValueError(f"file {p} is not live")
        removing = set(removes)
        for f in adds:
            if f[0] not in removing and db.execute(live, (table, f[0])).fetchone() is not None:
                raise ValueError(f"file {f[0]} is already live")
        new = latest + 1
        db.executemany("UPDATE files SET removed = ? WHERE tbl = ? AND path = ? AND removed IS NULL",
                       [(new, table, p) for p in removes])
        db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", [(table, *f, new) for f in adds])
        db.execute("INSERT INTO versions VALUES (?, ?, ?, ?)", (table, new, txn, contents))
        db.execute("UPDATE tables SET latest = ? WHERE name = ?", (new, table))
        db.execute("COMMIT")
        return new
    except BaseException:
        db.execute("ROLLBACK")
        raise


def sqlite_durable(writers: int, tables: int, target: int) -> dict[str, Any]:
    """`writers` threads, one connection each, committing until `target`
    commits succeeded; a loser rebases on the latest version."""
    with tempfile.TemporaryDirectory(prefix="luigi-sqlite-") as d:
        path = os.path.join(d, "meta.db")
        setup = sqlite_open(path, "FULL")
        setup.executescript(SCHEMA)
        for t in range(tables):
            setup.execute("INSERT INTO tables VALUES (?, ?, 0)", (f"t{t}", b"id BIGINT, ts TIMESTAMP, payload BINARY"))
        lock = threading.Lock()
        counts = {"committed": 0, "conflicts": 0}
        latencies: list[int] = []
        acknowledged: dict[str, list[tuple[int, str]]] = {}  # table -> (version, txn id)

        def writer(w: int) -> None:
            db = sqlite_open(path, "FULL")
            base, n = 0, 0
            table = f"t{w % tables}"
            while True:
                with lock:
                    if counts["committed"] >= target:
                        break
                n += 1
                txn = f"w{w}-{n}"
                t0 = time.perf_counter_ns()
                try:
                    base = sqlite_commit(db, table, base, txn, [data_file(f"w{w}/{n}.parquet", n)], [])
                    elapsed = time.perf_counter_ns() - t0
                    with lock:
                        counts["committed"] += 1
                        latencies.append(elapsed)
                        acknowledged.setdefault(table, []).append((base, txn))
                except Conflict as c:
                    base = c.latest
                    with lock:
                        counts["conflicts"] += 1
            db.close()

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
        start = time.perf_counter_ns()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = (time.perf_counter_ns() - start) / 1e9
        for table, acks in acknowledged.items():  # the work was done
            txns = [txn for _, txn in sorted(acks)]
            got = [r[0] for r in setup.execute("SELECT txn_id FROM versions WHERE tbl = ? ORDER BY version", (table,))]
            live = setup.execute("SELECT COUNT(*) FROM files WHERE tbl = ? AND removed IS NULL", (table,)).fetchone()[0]
            assert got == txns and live == len(txns), f"SQLite {table}: the acknowledged commits are not all there"
        setup.close()
    latencies.sort()
    return {
        "writers": writers, "tables": tables, "commits": counts["committed"], "conflicts": counts["conflicts"],
        "seconds": seconds, "commits_per_second": counts["committed"] / seconds,
        "p50_ns": latencies[len(latencies) // 2], "p99_ns": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def sqlite_validation(db: sqlite3.Connection, history: int, count: int) -> dict[str, Any]:
    """`count` commits (one file in, one out) after `history` versions."""
    samples = []
    start = time.perf_counter_ns()
    for v in range(history, history + count):
        t0 = time.perf_counter_ns()
        sqlite_commit(db, "t", v, f"tx{v}", [data_file(f"f{v}", v)], [f"f{v - 100}"])
        samples.append(time.perf_counter_ns() - t0)
    total = time.perf_counter_ns() - start
    samples.sort()
    return {"history": history, "commits": count, "mean_ns": total // count,
            "p50_ns": samples[len(samples) // 2], "p99_ns": samples[int(len(samples) * 0.99)]}


def sqlite_history(path: str, history: int) -> sqlite3.Connection:
    """A database whose table has `history` versions (100 live files, then
    each version replaces one), loaded in bulk, as the Luigi side builds it."""
    db = sqlite_open(path, "OFF")
    db.executescript(SCHEMA)
    db.execute("BEGIN")
    db.execute("INSERT INTO tables VALUES ('t', x'', ?)", (history,))
    files, versions = [], []
    for v in range(history):
        f = data_file(f"f{v}", v)
        removes = [f"f{v - 100}"] if v >= 100 else []
        files.append(("t", *f, v + 1, (v + 101) if v + 100 < history else None))
        versions.append(("t", v + 1, f"tx{v}", repr(([f], removes)).encode()))
    db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", files)
    db.executemany("INSERT INTO versions VALUES (?, ?, ?, ?)", versions)
    db.execute("COMMIT")
    return db


def luigi(binary: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def luigi_durable(binary: str, writers: int, tables: int, target: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="luigi-tablelog-") as d:
        return luigi(binary, "durable", "--writers", str(writers), "--tables", str(tables),
                     "--commits", str(target), "--dir", d)


def summary(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = [float(r[key]) for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    binary, out_dir = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv
    reps = 1 if quick else 3
    loads = [(1, 1, 200 if quick else 500), (16, 1, 200 if quick else 500), (16, 16, 800 if quick else 3200)]
    histories = [1_000, 10_000, 100_000]
    validate_commits = 500 if quick else 2_000
    durable: dict[str, dict[str, list[dict[str, Any]]]] = {}
    validation: dict[int, dict[str, list[dict[str, Any]]]] = {}
    load_start = os.getloadavg()
    for rep in range(reps):
        for writers, tables, target in loads:
            key = f"{writers}w/{tables}t"
            runs = durable.setdefault(key, {"luigi": [], "sqlite": []})
            sides = [("luigi", lambda: luigi_durable(binary, writers, tables, target)),
                     ("sqlite", lambda: sqlite_durable(writers, tables, target))]
            for name, run in sides if rep % 2 == 0 else reversed(sides):
                r = run()
                runs[name].append(r)
                print(f"  rep {rep} {key} {name}: {fmt_rate(r['commits_per_second'])}, p50 {fmt_ns(r['p50_ns'])}", flush=True)
    with tempfile.TemporaryDirectory(prefix="luigi-sqlite-history-") as d:
        for h in histories:
            db = sqlite_history(os.path.join(d, f"h{h}.db"), h)
            runs = validation.setdefault(h, {"luigi": [], "sqlite": []})
            for rep in range(reps):
                sides = [("luigi", lambda: luigi(binary, "validate", "--history", str(h), "--commits", str(validate_commits))),
                         ("sqlite", lambda: sqlite_validation(db, h + rep * validate_commits, validate_commits))]
                for name, run in sides if rep % 2 == 0 else reversed(sides):
                    runs[name].append(run())
            db.close()
            print(f"  history {h}: luigi p50 {fmt_ns(summary(runs['luigi'], 'p50_ns')['median'])}, "
                  f"sqlite p50 {fmt_ns(summary(runs['sqlite'], 'p50_ns')['median'])}", flush=True)

    result = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "sqlite": sqlite3.sqlite_version,
                    "load_start": load_start, "load_end": os.getloadavg()},
        "repetitions": reps, "quick": quick, "durable": durable,
        "validation": {str(h): v for h, v in validation.items()},
    }
    with open(os.path.join(out_dir, "tablelog.json"), "w") as f:
        json.dump(result, f, indent=1)

    def cell(runs: list[dict[str, Any]], key: str, fmt: Any) -> str:
        s = summary(runs, key)
        return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"

    lines = [
        "# Table log benchmark results", "",
        f"Generated by `make bench` ({'quick' if quick else 'full'} run) on {result['generated']}, {os.cpu_count()} cores, "
        f"SQLite {sqlite3.sqlite_version}. {reps} repetitions, the two sides alternating; each cell is the median "
        "(min–max over repetitions). Command: `python3 benchmarks/tablelog_bench.py .build/release/luigi-tablelog-bench benchmarks/results`.",
        "", "## 1. Durable commits (256 B of metadata per file, one file per commit)", "",
        "Luigi: 3 Raft nodes in one process and one thread (`RaftCluster` + `TableLog`), each with its own WAL on this disk, "
        "fdatasync before every acknowledgement; the writers' commits of a round are proposed together, so their syncs are "
        "shared; the nodes' syncs run one after another (one thread). SQLite: one node, WAL, synchronous=FULL, one thread and "
        "connection per writer, the same five checks in one transaction per commit. Latency is one attempt's "
        "(propose to outcome); a writer that loses a race rebases on the latest version its conflict names.", "",
        "| writers / tables | system | commits/s | p50 | p99 | conflicts per commit | fdatasyncs per commit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, runs in durable.items():
        for name in ("luigi", "sqlite"):
            r = runs[name]
            conflicts = statistics.median(x["conflicts"] / x["commits"] for x in r)
            syncs = f"{statistics.median(x['fdatasyncs'] / x['commits'] for x in r):.2f} (3 nodes)" if name == "luigi" else "1 (WAL)"
            system = "Luigi table log, 3 nodes" if name == "luigi" else "SQLite, 1 node"
            lines.append(f"| {key} | {system} | {cell(r, 'commits_per_second', fmt_rate)} | {cell(r, 'p50_ns', fmt_ns)} | "
                         f"{cell(r, 'p99_ns', fmt_ns)} | {conflicts:.1f} | {syncs} |")
    lines += ["", "## 2. Validation cost against history (no sync on either side)", "",
              f"{validate_commits} commits, each adding one file and removing one, on a table with the given history "
              "(100 live files). Luigi: `TableLogMachine.apply` (decode, the five checks, apply). SQLite: the same "
              "transaction with synchronous=OFF.", "",
              "| versions of history | Luigi p50 | Luigi p99 | SQLite p50 | SQLite p99 |", "| --- | --- | --- | --- | --- |"]
    for h, runs in validation.items():
        lines.append(f"| {h:,} | {cell(runs['luigi'], 'p50_ns', fmt_ns)} | {cell(runs['luigi'], 'p99_ns', fmt_ns)} | "
                     f"{cell(runs['sqlite'], 'p50_ns', fmt_ns)} | {cell(runs['sqlite'], 'p99_ns', fmt_ns)} |")
    first, last = (summary(validation[h]["luigi"], "p50_ns")["median"] for h in (histories[0], histories[-1]))
    lines += ["", f"Flat: Luigi's p50 at 100,000 versions is {last / first:.2f}× its p50 at 1,000.", ""]
    with open(os.path.join(out_dir, "TABLELOG.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
