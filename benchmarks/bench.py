"""Luigi vs pycrdt (Yrs) benchmarks; run by benchmarks/run.sh.

Workloads (see benchmarks/README.md for what each number means):
  a. local commit of 1-op and 10-op transactions from Python
  b. the same commits through the C ABI (bench_commit.c; results passed in)
  c. applying remote updates from wire bytes (ops/s), equal work on both sides
  d. delta sync of two replicas after K updates each (time and bytes)
  e. the simulator: rounds, messages and bytes to converge for N nodes

Writes results.json and RESULTS.md into the output directory. Timing uses
time.perf_counter_ns; every timed workload has a warm-up and several
repetitions. The Luigi and pycrdt cases of a workload are interleaved: each
repetition runs every case once, in an order shuffled by a fixed seed, so
drifting machine load hits both sides alike. Every workload reads its final
values back and checks them; a wrong value raises BenchmarkError and fails
the run.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import platform
import random
import statistics
import subprocess
import time
from typing import Any, Callable, Sequence

import luigi_node as ln
import pycrdt
from pycrdt import Doc, Map
from units import fmt_ns, fmt_rate

NS = 1_000_000_000
KEYS = [f"k{i}" for i in range(10)]
SEED = 20240601  # fixed: the interleaving order is the same in every run


# ----------------------------------------------------------------- helpers


class BenchmarkError(RuntimeError):
    """A workload did not produce the values it must have: the run fails."""


def check(ok: bool, what: str) -> None:
    """Not `assert`: this must hold under `python -O` too."""
    if not ok:
        raise BenchmarkError(what)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def spread(values: Sequence[float], digits: int = 1) -> dict[str, float]:
    """Median, IQR (nearest-rank p25 and p75) and min/max of some samples."""
    return {
        "median": round(statistics.median(values), digits),
        "q1": round(percentile(values, 25), digits),
        "q3": round(percentile(values, 75), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def summary(per_op_ns: list[float]) -> dict[str, float]:
    median = statistics.median(per_op_ns)
    return {
        "median_ns": round(median, 1),
        "q1_ns": round(percentile(per_op_ns, 25), 1),
        "q3_ns": round(percentile(per_op_ns, 75), 1),
        "p99_ns": round(percentile(per_op_ns, 99), 1),
        "min_ns": round(min(per_op_ns), 1),
        "max_ns": round(max(per_op_ns), 1),
        "ops_per_s": round(NS / median),
        "samples": len(per_op_ns),
    }


def paired_ratios(peer: Sequence[float], mine: Sequence[float]) -> dict[str, float]:
    """peer time / Luigi time of the same repetition (> 1: Luigi is faster).

    The two samples of a pair ran next to each other, so this ratio is less
    exposed to drift than the ratio of the two medians."""
    return spread([p / m for p, m in zip(peer, mine)], digits=3)


def interleaved(cases: dict[str, Callable[[], float]], reps: int, seed: int) -> dict[str, list[float]]:
    """Run every case once per repetition, in an order shuffled by `seed`."""
    rng = random.Random(seed)
    order = list(cases)
    out: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        rng.shuffle(order)
        for name in order:
            out[name].append(cases[name]())
    return out


def timer_overhead_ns() -> float:
    pc = time.perf_counter_ns
    samples = []
    for _ in range(20000):
        t0 = pc()
        t1 = pc()
        samples.append(t1 - t0)
    return float(statistics.median(samples))


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout)
    except (OSError, subprocess.CalledProcessError, ValueError):
        nproc = os.cpu_count() or 0
    return {
        "nproc": nproc,
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "luigi_node": ln.__version__,
        "pycrdt": pycrdt.__version__,
        "loadavg_start": list(os.getloadavg()),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


# ---------------------------------------------------- a. local commits


def luigi_with_1(r: ln.Replica) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            with r.transaction() as tx:
                tx.add("k0", 1)

    return run


def luigi_explicit_1(r: ln.Replica) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            tx = r.transaction()
            tx.add("k0", 1)
            tx.commit()

    return run


def luigi_with_10(r: ln.Replica) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            with r.transaction() as tx:
                for key in KEYS:
                    tx.add(key, 1)

    return run


def luigi_explicit_10(r: ln.Replica) -> Callable[[int], None]:
    def run(n: int) -> None:
        for _ in range(n):
            tx = r.transaction()
            for key in KEYS:
                tx.add(key, 1)
            tx.commit()

    return run


def luigi_verify(r: ln.Replica, keys: Sequence[str], name: str) -> Callable[[int], None]:
    """Every commit added 1 to every key: each counter must equal the commit count."""

    def verify(commits: int) -> None:
        for key in keys:
            got = r.value(key)
            check(got == commits, f"{name}: {key} = {got!r} after {commits} commits of +1")
        check(r.clock[r.node_id] == commits, f"{name}: clock {r.clock.items()} after {commits} commits")
        check(sorted(r.keys()) == sorted(keys), f"{name}: keys {r.keys()}")

    return verify


def new_doc(client_id: int) -> tuple[Doc[Any], Map[Any]]:
    doc: Doc[Any] = Doc(client_id=client_id)
    m: Map[Any] = Map()
    doc["m"] = m
    return doc, m


def pycrdt_1(doc: Doc[Any], m: Map[Any]) -> Callable[[int], None]:
    done = [0]  # commits so far: transaction i writes i, so the last value is commits - 1

    def run(n: int) -> None:
        base = done[0]
        for i in range(base, base + n):
            with doc.transaction():
                m["k0"] = i
        done[0] = base + n

    return run


def pycrdt_10(doc: Doc[Any], m: Map[Any]) -> Callable[[int], None]:
    done = [0]

    def run(n: int) -> None:
        base = done[0]
        for i in range(base, base + n):
            with doc.transaction():
                for key in KEYS:
                    m[key] = i
        done[0] = base + n

    return run


def pycrdt_verify(m: Map[Any], keys: Sequence[str], name: str) -> Callable[[int], None]:
    """Transaction i set every key to i: each key must hold commits - 1."""

    def verify(commits: int) -> None:
        got = m.to_py()
        want = {key: commits - 1 for key in keys}
        check(got == want, f"{name}: map {got!r} after {commits} commits, expected {want!r}")

    return verify


class CommitCase:
    """One commit workload on its own replica/doc, counting its commits so
    the final values can be checked after every timed batch."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ops = 10 if name.endswith("_10op") else 1
        keys = KEYS if self.ops == 10 else ["k0"]
        if name.startswith("pycrdt"):
            doc, m = new_doc(1)
            self.run = (pycrdt_10 if self.ops == 10 else pycrdt_1)(doc, m)
            self.verify = pycrdt_verify(m, keys, name)
        else:
            r = ln.Replica(1)
            form = {("with", 1): luigi_with_1, ("commit", 1): luigi_explicit_1,
                    ("with", 10): luigi_with_10, ("commit", 10): luigi_explicit_10}
            self.run = form[(name.split("_")[1], self.ops)](r)
            self.verify = luigi_verify(r, keys, name)
        self.commits = 0

    def untimed(self, n: int) -> None:
        self.run(n)
        self.commits += n
        self.verify(self.commits)

    def batch(self, n: int) -> float:
        """Mean ns per transaction of n transactions; values checked after (untimed)."""
        pc = time.perf_counter_ns
        t0 = pc()
        self.run(n)
        elapsed = pc() - t0
        self.commits += n
        self.verify(self.commits)
        return elapsed / n

    def single_calls(self, n: int) -> list[float]:
        """n transactions each timed alone (each sample includes one perf_counter_ns call)."""
        pc = time.perf_counter_ns
        run = self.run
        out = []
        for _ in range(n):
            t0 = pc()
            run(1)
            out.append(float(pc() - t0))
        self.commits += n
        self.verify(self.commits)
        return out


COMMIT_CASES = ["luigi_with_1op", "luigi_commit_1op", "pycrdt_1op",
                "luigi_with_10op", "luigi_commit_10op", "pycrdt_10op"]


def bench_commits(quick: bool) -> dict[str, Any]:
    rounds = 15 if quick else 120
    call_rounds = 5 if quick else 20
    out: dict[str, Any] = {"timer_overhead_ns": timer_overhead_ns(), "rounds": rounds,
                           "spread": "IQR (nearest-rank p25-p75) over batches"}
    batch = {name: 2000 if name.endswith("_1op") else 500 for name in COMMIT_CASES}
    cases = {name: CommitCase(name) for name in COMMIT_CASES}
    for name, case in cases.items():  # warm-up
        case.untimed(2 * batch[name])
    gc.collect()
    # One batch of every case per round, in a seeded shuffled order.
    per_op = interleaved({name: functools.partial(case.batch, batch[name]) for name, case in cases.items()},
                         rounds, SEED)
    # Single-call latencies on fresh replicas/docs, for an honest tail; also
    # interleaved, in chunks of 1,000 (1-op) or 250 (10-op) calls per round.
    fresh = {name: CommitCase(name) for name in COMMIT_CASES}
    chunk = {name: 1000 if name.endswith("_1op") else 250 for name in COMMIT_CASES}
    for name, case in fresh.items():
        case.untimed(2 * chunk[name])
    gc.collect()
    calls: dict[str, list[float]] = {name: [] for name in COMMIT_CASES}
    rng = random.Random(SEED + 1)
    order = list(COMMIT_CASES)
    for _ in range(call_rounds):
        rng.shuffle(order)
        for name in order:
            calls[name].extend(fresh[name].single_calls(chunk[name]))
    for name in COMMIT_CASES:
        result: dict[str, Any] = summary(per_op[name])
        result["per_call_p50_ns"] = round(percentile(calls[name], 50), 1)
        result["per_call_p99_ns"] = round(percentile(calls[name], 99), 1)
        result["per_call_samples"] = len(calls[name])
        result["batch_size"] = batch[name]
        result["commits_checked"] = cases[name].commits
        out[name] = result
    out["paired_ratios"] = {
        f"{form}_{ops}": paired_ratios(per_op[f"pycrdt_{ops}"], per_op[f"luigi_{form}_{ops}"])
        for ops in ("1op", "10op") for form in ("commit", "with")
    }
    return out


# ----------------------------------------------- c. applying remote updates


def make_luigi_updates(n: int) -> list[ln.Update]:
    src = ln.Replica(1)
    updates = []
    for i in range(n):
        tx = src.transaction()
        tx.add(KEYS[i % 10], 1)
        updates.append(tx.commit())
    return updates


def make_pycrdt_updates(n: int) -> list[bytes]:
    doc, m = new_doc(1)
    updates: list[bytes] = []
    sub = doc.observe(lambda event: updates.append(event.update))
    for i in range(n):
        with doc.transaction():
            m[KEYS[i % 10]] = i
    doc.unobserve(sub)
    return updates


APPLY_ROWS = [
    # (key, path, label, peer key)
    ("luigi_from_bytes_apply", "per_update",
     "Luigi `r.apply(Update.from_bytes(b))` for each", "pycrdt_apply_update"),
    ("luigi_from_bytes_apply_many", "per_update",
     "Luigi `r.apply_many([Update.from_bytes(b) for b in wire])`", "pycrdt_apply_update"),
    ("pycrdt_apply_update", "per_update", "pycrdt `doc.apply_update(b)` for each", None),
    ("luigi_apply_bytes_batch", "batch",
     "Luigi `r.apply_bytes(batch)` (one `Update.encode_many` buffer)", "pycrdt_apply_merged"),
    ("luigi_decode_many_apply_many", "batch",
     "Luigi `r.apply_many(Update.decode_many(batch))`", "pycrdt_apply_merged"),
    ("pycrdt_apply_merged", "batch",
     "pycrdt `doc.apply_update(merged)` (one `merge_updates` buffer)", None),
]


def bench_apply(quick: bool) -> dict[str, Any]:
    n = 5000 if quick else 20000
    reps = 5 if quick else 15
    check(n % 10 == 0, "n must be a multiple of 10")
    luigi_updates = make_luigi_updates(n)
    luigi_wire = [u.to_bytes() for u in luigi_updates]  # one message per transaction
    peer_wire = make_pycrdt_updates(n)
    # The sender builds one batch from its updates (one measurement each, not
    # part of the apply times below: these rows time the receiver).
    t0 = time.perf_counter_ns()
    luigi_batch = ln.Update.encode_many(luigi_updates)
    luigi_batch_ns = time.perf_counter_ns() - t0
    t0 = time.perf_counter_ns()
    peer_merged = pycrdt.merge_updates(*peer_wire)
    peer_merge_ns = time.perf_counter_ns() - t0
    del luigi_updates  # the receiver sees only bytes

    want_luigi = {key: n // 10 for key in KEYS}
    want_peer = {key: float(n - 10 + j) for j, key in enumerate(KEYS)}  # last write per key

    def check_luigi(r: ln.Replica, name: str, applied: int | None = None) -> None:
        got = {key: r.value(key) for key in r.keys()}
        check(got == want_luigi, f"{name}: replica {got!r}, expected {want_luigi!r}")
        check(r.clock[1] == n and r.pending == 0, f"{name}: clock {r.clock.items()}, pending {r.pending}")
        if applied is not None:
            check(applied == n, f"{name}: {applied} updates new, expected {n}")

    def check_peer(m: Map[Any], name: str) -> None:
        got = m.to_py()
        check(got == want_peer, f"{name}: map {got!r}, expected {want_peer!r}")

    def luigi_from_bytes_apply() -> float:
        target = ln.Replica(2)
        from_bytes, apply = ln.Update.from_bytes, target.apply
        gc.collect()
        t0 = time.perf_counter_ns()
        for b in luigi_wire:
            apply(from_bytes(b))
        elapsed = time.perf_counter_ns() - t0
        check_luigi(target, "luigi_from_bytes_apply")
        return elapsed / n

    def luigi_one_call(name: str, apply: Callable[[ln.Replica], int]) -> Callable[[], float]:
        """A case whose timed region is one call applying every update to a fresh replica."""

        def run() -> float:
            target = ln.Replica(2)
            gc.collect()
            t0 = time.perf_counter_ns()
            applied = apply(target)
            elapsed = time.perf_counter_ns() - t0
            check_luigi(target, name, applied)
            return elapsed / n

        return run

    from_bytes = ln.Update.from_bytes
    luigi_from_bytes_apply_many = luigi_one_call(
        "luigi_from_bytes_apply_many", lambda r: r.apply_many([from_bytes(b) for b in luigi_wire]))
    luigi_apply_bytes_batch = luigi_one_call("luigi_apply_bytes_batch", lambda r: r.apply_bytes(luigi_batch))
    luigi_decode_many_apply_many = luigi_one_call(
        "luigi_decode_many_apply_many", lambda r: r.apply_many(ln.Update.decode_many(luigi_batch)))

    def pycrdt_apply_update() -> float:
        target, m = new_doc(2)
        apply = target.apply_update
        gc.collect()
        t0 = time.perf_counter_ns()
        for u in peer_wire:
            apply(u)
        elapsed = time.perf_counter_ns() - t0
        check_peer(m, "pycrdt_apply_update")
        return elapsed / n

    def pycrdt_apply_merged() -> float:
        target, m = new_doc(2)
        gc.collect()
        t0 = time.perf_counter_ns()
        target.apply_update(peer_merged)
        elapsed = time.perf_counter_ns() - t0
        check_peer(m, "pycrdt_apply_merged")
        return elapsed / n

    cases: dict[str, Callable[[], float]] = {
        "luigi_from_bytes_apply": luigi_from_bytes_apply,
        "luigi_from_bytes_apply_many": luigi_from_bytes_apply_many,
        "pycrdt_apply_update": pycrdt_apply_update,
        "luigi_apply_bytes_batch": luigi_apply_bytes_batch,
        "luigi_decode_many_apply_many": luigi_decode_many_apply_many,
        "pycrdt_apply_merged": pycrdt_apply_merged,
    }
    for fn in cases.values():  # warm-up, and a first check of every path
        fn()
    per_op = interleaved(cases, reps, SEED + 2)
    out: dict[str, Any] = {"updates": n, "repetitions": reps,
                           "spread": "min-max over repetitions (IQR also given)"}
    for key, kind, _, peer in APPLY_ROWS:
        row: dict[str, Any] = summary(per_op[key])
        row["path"] = kind
        if peer:
            row["ratio_of_medians"] = round(statistics.median(per_op[peer]) / statistics.median(per_op[key]), 3)
            row["paired_ratio"] = paired_ratios(per_op[peer], per_op[key])
        out[key] = row
    out["luigi_update_bytes_mean"] = round(statistics.mean(len(b) for b in luigi_wire), 1)
    out["pycrdt_update_bytes_mean"] = round(statistics.mean(len(b) for b in peer_wire), 1)
    out["luigi_batch_bytes"] = len(luigi_batch)
    out["pycrdt_merged_bytes"] = len(peer_merged)
    out["sender_luigi_encode_many_ns_per_update"] = round(luigi_batch_ns / n, 1)
    out["sender_pycrdt_merge_updates_ns_per_update"] = round(peer_merge_ns / n, 1)
    return out


# ------------------------------------------------------- d. delta sync


def luigi_pair(k: int) -> tuple[ln.Replica, ln.Replica]:
    a, b = ln.Replica(1), ln.Replica(2)
    for r in (a, b):
        for i in range(k):
            tx = r.transaction()
            tx.add(f"k{i % 100}", 1)
            tx.commit()
    return a, b


def pycrdt_pair(k: int) -> tuple[Doc[Any], Doc[Any]]:
    docs = []
    for client in (1, 2):
        doc, m = new_doc(client)
        for i in range(k):
            with doc.transaction():
                m[f"k{i % 100}"] = i
        docs.append(doc)
    return docs[0], docs[1]


def luigi_sync(a: ln.Replica, b: ln.Replica) -> tuple[int, int]:
    """Both directions, everything crossing the 'wire' as bytes."""
    gc.collect()
    t0 = time.perf_counter_ns()
    clock_a, clock_b = bytes(a.clock), bytes(b.clock)  # each side sends its version vector
    # Each delta crosses as one checksummed batch, built and applied in the library.
    to_b = a.delta_bytes(ln.VectorClock.from_bytes(clock_b))
    to_a = b.delta_bytes(ln.VectorClock.from_bytes(clock_a))
    b.apply_bytes(to_b)
    a.apply_bytes(to_a)
    elapsed = time.perf_counter_ns() - t0
    sent = len(clock_a) + len(clock_b) + len(to_b) + len(to_a)
    return elapsed, sent


def pycrdt_sync(a: Doc[Any], b: Doc[Any]) -> tuple[int, int]:
    gc.collect()
    t0 = time.perf_counter_ns()
    state_a, state_b = a.get_state(), b.get_state()
    to_b = a.get_update(state_b)
    to_a = b.get_update(state_a)
    b.apply_update(to_b)
    a.apply_update(to_a)
    elapsed = time.perf_counter_ns() - t0
    return elapsed, len(state_a) + len(state_b) + len(to_b) + len(to_a)


def bench_delta(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"spread": "min-max over repetitions"}
    for k in (1000, 10000):
        reps = 3 if quick else (15 if k == 1000 else 7)
        row: dict[str, Any] = {"k": k, "repetitions": reps}
        sizes: dict[str, list[int]] = {"luigi": [], "pycrdt": []}

        def luigi_case() -> float:
            a, b = luigi_pair(k)  # setup, not timed
            elapsed, sent = luigi_sync(a, b)
            want = 2 * k // 100
            check(sorted(a.keys()) == sorted(b.keys()) == sorted(f"k{i}" for i in range(100)),
                  f"delta sync K={k}: Luigi keys differ")
            for x in a.keys():
                check(a.value(x) == b.value(x) == want,
                      f"delta sync K={k}: Luigi {x} = {a.value(x)!r} / {b.value(x)!r}, expected {want}")
            sizes["luigi"].append(sent)
            return float(elapsed)

        def pycrdt_case() -> float:
            da, db = pycrdt_pair(k)
            elapsed, sent = pycrdt_sync(da, db)
            ma, mb = da["m"].to_py(), db["m"].to_py()
            check(ma == mb and len(ma) == 100, f"delta sync K={k}: pycrdt docs differ after sync")
            sizes["pycrdt"].append(sent)
            return float(elapsed)

        cases = {"luigi": luigi_case, "pycrdt": pycrdt_case}
        for fn in cases.values():  # warm-up
            fn()
        sizes["luigi"].clear()
        sizes["pycrdt"].clear()
        times = interleaved(cases, reps, SEED + 3 + k)
        for name in cases:
            t = times[name]
            row[name] = {
                "median_ms": round(statistics.median(t) / 1e6, 3),
                "p99_ms": round(percentile(t, 99) / 1e6, 3),
                "min_ms": round(min(t) / 1e6, 3),
                "max_ms": round(max(t) / 1e6, 3),
                "bytes": int(statistics.median(sizes[name])),
                "bytes_per_update": round(statistics.median(sizes[name]) / (2 * k), 2),
            }
        row["paired_ratio"] = paired_ratios(times["pycrdt"], times["luigi"])
        out[f"k{k}"] = row
    return out


# -------------------------------------------------------- e. simulator


def bench_simulator(quick: bool) -> dict[str, Any]:
    seeds = range(1, 6 if quick else 32)
    out: dict[str, Any] = {"seeds": len(seeds), "fanout": 1, "faults": "none"}
    for n in (2, 5, 10, 20):
        rounds, messages, sent, shipped, wall = [], [], [], [], []
        for seed in seeds:
            c = ln.SimulatedCluster(n, seed=seed)
            for i in range(n):
                with c[i].transaction() as tx:
                    tx.add("k", 1)
            t0 = time.perf_counter_ns()
            r = c.run_until_converged(10_000)
            wall.append(time.perf_counter_ns() - t0)
            s = c.stats()
            check(c.converged() and all(c[i].value("k") == n for i in range(n)),
                  f"simulator N={n} seed={seed}: not converged to k = {n}")
            rounds.append(r)
            messages.append(s["messages"])
            sent.append(s["bytes"])
            shipped.append(s["updates_shipped"])
        deliveries = n * (n - 1)  # each of the n updates must reach n-1 other replicas
        out[f"n{n}"] = {
            "nodes": n,
            "rounds_median": statistics.median(rounds),
            "rounds_max": max(rounds),
            "messages_median": statistics.median(messages),
            "bytes_median": statistics.median(sent),
            "bytes_per_update": round(statistics.median(sent) / n, 1),
            "bytes_per_delivery": round(statistics.median(sent) / deliveries, 1),
            "shipped_per_delivery": round(statistics.median(shipped) / deliveries, 3),
            "wall_ms_median": round(statistics.median(wall) / 1e6, 3),
        }
    one = ln.SimulatedCluster(2, seed=1)
    with one[0].transaction() as tx:
        tx.add("k", 1)
    out["encoded_update_bytes"] = len(tx.update.to_bytes()) if tx.update else None
    return out


# ------------------------------------------------------------------ report


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def fmt_spread_ns(row: dict[str, Any], kind: str) -> str:
    if kind == "iqr":
        return f"{fmt_ns(row['q1_ns'])} – {fmt_ns(row['q3_ns'])}"
    return f"{fmt_ns(row['min_ns'])} – {fmt_ns(row['max_ns'])}"


def fmt_ratio(median: float, paired: dict[str, float], kind: str) -> str:
    lo, hi = (paired["q1"], paired["q3"]) if kind == "iqr" else (paired["min"], paired["max"])
    return f"{median:.2f}x (paired {lo:.2f}–{hi:.2f})"


def evaluate_goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    a = res["commit_python"]
    goals: list[dict[str, Any]] = []
    for form in ("luigi_commit_1op", "luigi_with_1op"):
        row = a[form]
        goals.append({
            "goal": f"1-op Python commit median <= 1 µs ({'tx.commit()' if 'commit' in form else 'with-block'})",
            "measured": f"{fmt_ns(row['median_ns'])} (IQR {fmt_spread_ns(row, 'iqr')})",
            "met": row["median_ns"] <= 1000,
        })
    for ops in ("1op", "10op"):
        peer = a[f"pycrdt_{ops}"]["ops_per_s"]
        for form in ("commit", "with"):
            mine = a[f"luigi_{form}_{ops}"]["ops_per_s"]
            ratio = mine / peer
            paired = a["paired_ratios"][f"{form}_{ops}"]
            goals.append({
                "goal": f">= 3x pycrdt transactions/s, {ops.replace('op', '-op')} "
                        f"({'tx.commit()' if form == 'commit' else 'with-block'})",
                "measured": f"{ratio:.2f}x ({fmt_rate(mine)} vs {fmt_rate(peer)}; "
                            f"per-round ratio IQR {paired['q1']:.2f}–{paired['q3']:.2f})",
                "met": ratio >= 3,
            })
    sim = res["simulator"]
    ns = [2, 5, 10, 20]
    per_log = {n: sim[f"n{n}"]["rounds_median"] / math.log2(n) for n in ns}
    growth = per_log[20] / per_log[5]
    goals.append({
        "goal": "rounds grow ~log N (rounds/log2 N at N=20 within 1.5x of N=5)",
        "measured": ", ".join(f"N={n}: {sim[f'n{n}']['rounds_median']:g} rounds ({per_log[n]:.2f}/log2 N)" for n in ns),
        "met": growth <= 1.5,
    })
    per_delivery = [sim[f"n{n}"]["bytes_per_delivery"] for n in ns]
    ratio_n = max(per_delivery) / min(per_delivery)
    goals.append({
        "goal": "bytes per update independent of N (bytes per update delivery, max/min over N <= 1.5)",
        "measured": ", ".join(f"N={n}: {b:g} B" for n, b in zip(ns, per_delivery)) + f" (max/min {ratio_n:.2f})",
        "met": ratio_n <= 1.5,
    })
    return goals


def write_markdown(res: dict[str, Any], path: str) -> None:
    m = res["machine"]
    a = res["commit_python"]
    c = res.get("commit_c") or {}
    ap = res["apply"]
    d = res["delta_sync"]
    sim = res["simulator"]
    L: list[str] = []
    L.append("# Luigi benchmark results")
    L.append("")
    L.append(f"Generated by `make bench` (benchmarks/run.sh) on {m['date_utc']} UTC"
             + (" with `--quick` (a smoke test, not for publishing)" if res.get("quick") else "")
             + ". See benchmarks/README.md for what each number means.")
    L.append("")
    L.append(f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['platform']}")
    L.append(f"- Load average (1 min) at start / end: {m['loadavg_start'][0]:.2f} / {m['loadavg_end'][0]:.2f}")
    L.append(f"- Python {m['python']}, luigi_node {m['luigi_node']}, pycrdt {m['pycrdt']} (Yrs)")
    L.append(f"- Wall time of bench.py (all but the C part): {res['wall_seconds']:.1f} s")
    L.append("- Luigi and pycrdt cases are interleaved (every repetition runs each case once, "
             "in an order shuffled with a fixed seed). Ratios are Luigi rate / pycrdt rate "
             "(> 1: Luigi faster), from the two medians; \"paired\" is the spread of the ratio "
             "taken per repetition.")
    L.append("")
    L.append("## Goals")
    L.append("")
    L.append("| goal | measured | verdict |")
    L.append("| --- | --- | --- |")
    for g in res["goals"]:
        L.append(f"| {g['goal']} | {g['measured']} | {verdict(g['met'])} |")
    L.append("")
    pu, ba = ap["luigi_from_bytes_apply"], ap["luigi_apply_bytes_batch"]
    L.append("Remote apply from bytes, equal work (not a goal of the issue; section c), Luigi updates/s "
             f"÷ pycrdt updates/s: one message per update, Luigi `from_bytes` + `apply` each "
             f"{pu['ratio_of_medians']:.2f}x pycrdt `apply_update` each; one batch for all updates, "
             f"Luigi `apply_bytes` {ba['ratio_of_medians']:.2f}x pycrdt `apply_update` of one "
             "`merge_updates` result" + (" (pycrdt is faster here)." if ba["ratio_of_medians"] < 1 else "."))
    L.append("")
    L.append("## a. Local commit from Python")
    L.append("")
    L.append(f"Mean latency of batches of transactions ({a['rounds']} interleaved rounds, one batch of each case "
             "per round): median, IQR (nearest-rank p25–p75 over batches) and p99 over batches; and "
             f"single-call latencies (each includes one `perf_counter_ns` call, ~{a['timer_overhead_ns']:.0f} ns "
             "here), also interleaved. pycrdt: one `with doc.transaction()` setting 1 or 10 values of a Map. "
             "After every batch the values are read back and checked (Luigi: every counter = number of "
             "commits; pycrdt: every key = index of the last transaction); "
             "a mismatch fails the run.")
    L.append("")
    L.append("| workload | median | IQR (batches) | p99 (batches) | per call p50 | per call p99 | transactions/s | "
             "vs pycrdt (paired IQR) |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for ops in ("1op", "10op"):
        peer = a[f"pycrdt_{ops}"]["ops_per_s"]
        for name, label in ((f"luigi_commit_{ops}", "Luigi, `tx.commit()`"),
                            (f"luigi_with_{ops}", "Luigi, `with r.transaction()`"),
                            (f"pycrdt_{ops}", "pycrdt")):
            row = a[name]
            if name.startswith("pycrdt"):
                ratio = "1.00x"
            else:
                form = "commit" if "_commit_" in name else "with"
                ratio = fmt_ratio(row["ops_per_s"] / peer, a["paired_ratios"][f"{form}_{ops}"], "iqr")
            L.append(f"| {ops.replace('op', '-op')}: {label} | {fmt_ns(row['median_ns'])} | "
                     f"{fmt_spread_ns(row, 'iqr')} | {fmt_ns(row['p99_ns'])} | "
                     f"{fmt_ns(row['per_call_p50_ns'])} | {fmt_ns(row['per_call_p99_ns'])} | "
                     f"{fmt_rate(row['ops_per_s'])} | {ratio} |")
    L.append("")
    L.append("## b. The same commits through the C ABI")
    L.append("")
    if c:
        L.append(f"`benchmarks/c/bench_commit.c`: batches of {c['commit_1op']['batch_size']} operations "
                 "timed with `clock_gettime(CLOCK_MONOTONIC)`; median and p99 of the batch means. "
                 "A commit includes begin, the ops, commit and freeing the txn and update handles. "
                 "(Run before bench.py, not interleaved with it.)")
        L.append("")
        L.append("| operation | median | p99 | ops/s |")
        L.append("| --- | --- | --- | --- |")
        for key, label in (("commit_1op", "commit, 1 op"), ("commit_10op", "commit, 10 ops"),
                           ("encode_1op", "encode a 1-op update"), ("decode_1op", "decode a 1-op update"),
                           ("apply_1op", "apply a 1-op remote update")):
            row = c[key]
            L.append(f"| {label} | {row['median_ns']:.0f} ns | {row['p99_ns']:.0f} ns | {fmt_rate(row['ops_per_s'])} |")
        py1 = a["luigi_commit_1op"]["median_ns"]
        L.append("")
        diff = py1 - c["commit_1op"]["median_ns"]
        L.append(f"Python `tx.commit()` minus C, 1-op commit medians: {diff:+.0f} ns"
                 + (" (negative: the two ran at different moments; this is noise, not a "
                    "faster Python path)." if diff < 0 else "."))
    else:
        L.append("(the C benchmark did not run)")
    L.append("")
    L.append("## c. Applying remote updates (equal work: both sides start from bytes)")
    L.append("")
    L.append(f"{ap['updates']} per-transaction updates (1 op each, 10 keys) from another replica/doc, applied to a "
             f"fresh one; {ap['repetitions']} interleaved repetitions. Every timed region starts from wire bytes "
             "and ends with the updates applied (decoding included on both sides); afterwards every key is "
             "read back and checked. Per update: median and min–max over repetitions. The ratio compares "
             "each Luigi row with the pycrdt row of the same path.")
    L.append("")
    L.append("| path | workload | per update (median) | min – max | updates/s | vs pycrdt (paired min–max) |")
    L.append("| --- | --- | --- | --- | --- | --- |")
    for key, kind, label, peer_key in APPLY_ROWS:
        row = ap[key]
        ratio = fmt_ratio(row["ratio_of_medians"], row["paired_ratio"], "minmax") if peer_key else "1.00x"
        where = "one message per update" if kind == "per_update" else "one batch for all"
        L.append(f"| {where} | {label} | {fmt_ns(row['median_ns'])} | {fmt_spread_ns(row, 'minmax')} | "
                 f"{fmt_rate(row['ops_per_s'])} | {ratio} |")
    L.append("")
    L.append(f"Mean encoded update: Luigi {ap['luigi_update_bytes_mean']} B, pycrdt {ap['pycrdt_update_bytes_mean']} B. "
             f"The batch: Luigi `Update.encode_many` {ap['luigi_batch_bytes']:,} B, pycrdt `merge_updates` "
             f"{ap['pycrdt_merged_bytes']:,} B. Building it is the sender's work and is not in the times above "
             f"(one measurement each: Luigi `encode_many` {fmt_ns(ap['sender_luigi_encode_many_ns_per_update'])} "
             f"per update from `Update` objects, pycrdt `merge_updates` "
             f"{fmt_ns(ap['sender_pycrdt_merge_updates_ns_per_update'])} per update from bytes).")
    L.append("")
    L.append("## d. Delta sync of two replicas after K updates each")
    L.append("")
    L.append("Both directions, state vectors and deltas crossing as bytes. Luigi: `bytes(clock)` → "
             "`delta_bytes(clock)` (one checksummed batch) → `apply_bytes`. pycrdt: `get_state` → "
             "`get_update(state)` → `apply_update`. Writes go to 100 keys. Luigi and pycrdt repetitions "
             "interleaved; time is median (min–max over repetitions); both sides checked equal after each sync.")
    L.append("")
    L.append("| K | reps | Luigi time, median (min–max) | pycrdt time, median (min–max) | time ratio (pycrdt/Luigi) | Luigi bytes | pycrdt bytes | Luigi B/update | pycrdt B/update |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key in ("k1000", "k10000"):
        row = d[key]
        lu, pc = row["luigi"], row["pycrdt"]
        L.append(f"| {row['k']} | {row['repetitions']} | {lu['median_ms']:.2f} ({lu['min_ms']:.2f}–{lu['max_ms']:.2f}) ms | "
                 f"{pc['median_ms']:.2f} ({pc['min_ms']:.2f}–{pc['max_ms']:.2f}) ms | "
                 f"{fmt_ratio(pc['median_ms'] / lu['median_ms'], row['paired_ratio'], 'minmax')} | "
                 f"{lu['bytes']:,} | {pc['bytes']:,} | {lu['bytes_per_update']} | {pc['bytes_per_update']} |")
    L.append("")
    L.append("## e. Simulator: convergence after one update per node")
    L.append("")
    L.append(f"Delta anti-entropy (pull, one sync in flight per node, fanout {sim['fanout']}, no faults); medians over {sim['seeds']} seeds. "
             "A delivery is one update reaching one other replica (N·(N−1) in all). "
             f"One encoded update here is {sim['encoded_update_bytes']} B.")
    L.append("")
    L.append("| N | rounds (median / max) | rounds / log2 N | messages | bytes | bytes per update | bytes per delivery | updates shipped per delivery |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in (2, 5, 10, 20):
        row = sim[f"n{n}"]
        L.append(f"| {n} | {row['rounds_median']:g} / {row['rounds_max']} | {row['rounds_median'] / math.log2(n):.2f} | "
                 f"{row['messages_median']:g} | {row['bytes_median']:,.0f} | {row['bytes_per_update']:g} | "
                 f"{row['bytes_per_delivery']:g} | {row['shipped_per_delivery']:g} |")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True, help="directory for results.json and RESULTS.md")
    parser.add_argument("--c-results", help="JSON written by bench_commit")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    args = parser.parse_args()

    started = time.perf_counter()
    res: dict[str, Any] = {"machine": machine_info(), "quick": args.quick, "interleave_seed": SEED}
    print(f"  load average at start: {' '.join(f'{x:.2f}' for x in res['machine']['loadavg_start'])}", flush=True)
    steps: list[tuple[str, Callable[[bool], dict[str, Any]]]] = [
        ("commit_python", bench_commits),
        ("apply", bench_apply),
        ("delta_sync", bench_delta),
        ("simulator", bench_simulator),
    ]
    for key, fn in steps:
        t0 = time.perf_counter()
        res[key] = fn(args.quick)
        print(f"  {key}: {time.perf_counter() - t0:.1f} s", flush=True)
    res["commit_c"] = None
    if args.c_results and os.path.exists(args.c_results):
        with open(args.c_results) as f:
            res["commit_c"] = json.load(f)
    res["machine"]["loadavg_end"] = list(os.getloadavg())
    print(f"  load average at end: {' '.join(f'{x:.2f}' for x in res['machine']['loadavg_end'])}", flush=True)
    res["goals"] = evaluate_goals(res)
    res["wall_seconds"] = round(time.perf_counter() - started, 1)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
        f.write("\n")
    write_markdown(res, os.path.join(args.out, "RESULTS.md"))
    for g in res["goals"]:
        print(f"  goal: {g['goal']}: {g['measured']} -> {'met' if g['met'] else 'NOT met'}")
    for key, _, label, peer in APPLY_ROWS:
        row = res["apply"][key]
        print(f"  apply: {label}: {fmt_ns(row['median_ns'])} ({fmt_spread_ns(row, 'minmax')})"
              + (f", {row['ratio_of_medians']:.2f}x pycrdt" if peer else ""))


if __name__ == "__main__":
    main()
