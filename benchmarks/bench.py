"""Luigi vs pycrdt (Yrs) benchmarks; run by benchmarks/run.sh.

Workloads (see benchmarks/README.md for what each number means):
  a. local commit of 1-op and 10-op transactions from Python
  b. the same commits through the C ABI (bench_commit.c; results passed in)
  c. applying remote updates (ops/s)
  d. delta sync of two replicas after K updates each (time and bytes)
  e. the simulator: rounds, messages and bytes to converge for N nodes

Writes results.json and RESULTS.md into the output directory. Timing uses
time.perf_counter_ns; every timed workload has a warm-up and several
repetitions, and the tables show medians and p99s of those.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
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


# ----------------------------------------------------------------- helpers


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def summary(per_op_ns: list[float]) -> dict[str, float]:
    median = statistics.median(per_op_ns)
    return {
        "median_ns": round(median, 1),
        "p99_ns": round(percentile(per_op_ns, 99), 1),
        "min_ns": round(min(per_op_ns), 1),
        "ops_per_s": round(NS / median),
        "samples": len(per_op_ns),
    }


def timer_overhead_ns() -> float:
    pc = time.perf_counter_ns
    samples = []
    for _ in range(20000):
        t0 = pc()
        t1 = pc()
        samples.append(t1 - t0)
    return float(statistics.median(samples))


def per_call(run_one: Callable[[], None], n: int, warmup: int) -> list[float]:
    """Latency of each single call (includes one perf_counter_ns call)."""
    for _ in range(warmup):
        run_one()
    gc.collect()
    pc = time.perf_counter_ns
    out = []
    for _ in range(n):
        t0 = pc()
        run_one()
        out.append(float(pc() - t0))
    return out


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


def new_doc(client_id: int) -> tuple[Doc[Any], Map[Any]]:
    doc: Doc[Any] = Doc(client_id=client_id)
    m: Map[Any] = Map()
    doc["m"] = m
    return doc, m


def pycrdt_1(doc: Doc[Any], m: Map[Any]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for i in range(n):
            with doc.transaction():
                m["k0"] = i

    return run


def pycrdt_10(doc: Doc[Any], m: Map[Any]) -> Callable[[int], None]:
    def run(n: int) -> None:
        for i in range(n):
            with doc.transaction():
                for key in KEYS:
                    m[key] = i

    return run


def bench_commits(quick: bool) -> dict[str, Any]:
    samples = 15 if quick else 120
    out: dict[str, Any] = {"timer_overhead_ns": timer_overhead_ns()}
    cases: list[tuple[str, int, Callable[[], Callable[[int], None]]]] = [
        ("luigi_with_1op", 1, lambda: luigi_with_1(ln.Replica(1))),
        ("luigi_commit_1op", 1, lambda: luigi_explicit_1(ln.Replica(1))),
        ("pycrdt_1op", 1, lambda: pycrdt_1(*new_doc(1))),
        ("luigi_with_10op", 10, lambda: luigi_with_10(ln.Replica(1))),
        ("luigi_commit_10op", 10, lambda: luigi_explicit_10(ln.Replica(1))),
        ("pycrdt_10op", 10, lambda: pycrdt_10(*new_doc(1))),
    ]
    runners = {name: make() for name, _, make in cases}
    batch = {name: 2000 if ops == 1 else 500 for name, ops, _ in cases}
    for name in runners:  # warm-up
        runners[name](2 * batch[name])
    gc.collect()
    # Interleaved: one batch of every case per round, so drifting machine
    # load hits Luigi and pycrdt alike.
    per_op: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(samples):
        for name, run in runners.items():
            n = batch[name]
            t0 = time.perf_counter_ns()
            run(n)
            per_op[name].append((time.perf_counter_ns() - t0) / n)
    for name, ops, make in cases:
        result: dict[str, Any] = summary(per_op[name])
        # Single-call latencies on a fresh replica/doc, for an honest tail.
        one = make()
        calls = per_call(lambda: one(1), 20000 if ops == 1 else 5000, warmup=2000)
        result["per_call_p50_ns"] = round(percentile(calls, 50), 1)
        result["per_call_p99_ns"] = round(percentile(calls, 99), 1)
        result["batch_size"] = batch[name]
        out[name] = result
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


def bench_apply(quick: bool) -> dict[str, Any]:
    n = 5000 if quick else 20000
    reps = 3 if quick else 15
    luigi_updates = make_luigi_updates(n)
    luigi_wire = [u.to_bytes() for u in luigi_updates]
    peer_updates = make_pycrdt_updates(n)

    def luigi_objects() -> float:
        target = ln.Replica(2)
        gc.collect()
        t0 = time.perf_counter_ns()
        applied = target.apply_many(luigi_updates)
        elapsed = time.perf_counter_ns() - t0
        assert applied == n and target.value("k0") == n // 10
        return elapsed

    def luigi_bytes() -> float:
        target = ln.Replica(2)
        from_bytes = ln.Update.from_bytes
        gc.collect()
        t0 = time.perf_counter_ns()
        applied = target.apply_many([from_bytes(b) for b in luigi_wire])
        elapsed = time.perf_counter_ns() - t0
        assert applied == n and target.value("k0") == n // 10
        return elapsed

    def peer() -> float:
        target, m = new_doc(2)
        gc.collect()
        t0 = time.perf_counter_ns()
        for u in peer_updates:
            target.apply_update(u)
        elapsed = time.perf_counter_ns() - t0
        assert m["k9"] == n - 1
        return elapsed

    out: dict[str, Any] = {"updates": n, "repetitions": reps}
    for name, fn in (("luigi_apply_many", luigi_objects), ("luigi_decode_apply_many", luigi_bytes),
                     ("pycrdt_apply_update", peer)):
        fn()  # warm-up
        per_op = [fn() / n for _ in range(reps)]
        out[name] = summary(per_op)
    out["luigi_update_bytes_mean"] = round(statistics.mean(len(b) for b in luigi_wire), 1)
    out["pycrdt_update_bytes_mean"] = round(statistics.mean(len(b) for b in peer_updates), 1)
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
    out: dict[str, Any] = {}
    for k in (1000, 10000):
        reps = 3 if quick else (15 if k == 1000 else 7)
        row: dict[str, Any] = {"k": k, "repetitions": reps}
        runs: dict[str, tuple[list[float], list[int]]] = {"luigi": ([], []), "pycrdt": ([], [])}
        for rep in range(reps + 1):  # the first is a warm-up
            a, b = luigi_pair(k)
            elapsed, sent = luigi_sync(a, b)
            assert a.keys() == b.keys() and all(a.value(x) == b.value(x) == 2 * k // 100 for x in a.keys())
            da, db = pycrdt_pair(k)
            peer_elapsed, peer_sent = pycrdt_sync(da, db)
            assert da["m"].to_py() == db["m"].to_py()
            if rep:
                for name, t, n in (("luigi", elapsed, sent), ("pycrdt", peer_elapsed, peer_sent)):
                    runs[name][0].append(t)
                    runs[name][1].append(n)
        for name, (times, sizes) in runs.items():
            row[name] = {
                "median_ms": round(statistics.median(times) / 1e6, 3),
                "p99_ms": round(percentile(times, 99) / 1e6, 3),
                "bytes": int(statistics.median(sizes)),
                "bytes_per_update": round(statistics.median(sizes) / (2 * k), 2),
            }
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
            assert c.converged() and all(c[i].value("k") == n for i in range(n))
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


def evaluate_goals(res: dict[str, Any]) -> list[dict[str, Any]]:
    a = res["commit_python"]
    goals: list[dict[str, Any]] = []
    for form in ("luigi_commit_1op", "luigi_with_1op"):
        median = a[form]["median_ns"]
        goals.append({
            "goal": f"1-op Python commit median <= 1 µs ({'tx.commit()' if 'commit' in form else 'with-block'})",
            "measured": fmt_ns(median),
            "met": median <= 1000,
        })
    for ops in ("1op", "10op"):
        peer = a[f"pycrdt_{ops}"]["ops_per_s"]
        for form in ("commit", "with"):
            mine = a[f"luigi_{form}_{ops}"]["ops_per_s"]
            ratio = mine / peer
            goals.append({
                "goal": f">= 3x pycrdt transactions/s, {ops.replace('op', '-op')} "
                        f"({'tx.commit()' if form == 'commit' else 'with-block'})",
                "measured": f"{ratio:.2f}x ({fmt_rate(mine)} vs {fmt_rate(peer)})",
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
    spread = max(per_delivery) / min(per_delivery)
    goals.append({
        "goal": "bytes per update independent of N (bytes per update delivery, max/min over N <= 1.5)",
        "measured": ", ".join(f"N={n}: {b:g} B" for n, b in zip(ns, per_delivery)) + f" (max/min {spread:.2f})",
        "met": spread <= 1.5,
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
    L.append(f"Generated by `make bench` (benchmarks/run.sh) on {m['date_utc']} UTC. "
             "See benchmarks/README.md for what each number means.")
    L.append("")
    L.append(f"- Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['platform']}")
    L.append(f"- Load average at start / end: {m['loadavg_start'][0]:.2f} / {m['loadavg_end'][0]:.2f}")
    L.append(f"- Python {m['python']}, luigi_node {m['luigi_node']}, pycrdt {m['pycrdt']} (Yrs)")
    L.append(f"- Wall time of bench.py (all but the C part): {res['wall_seconds']:.1f} s")
    L.append("")
    L.append("## Goals")
    L.append("")
    L.append("| goal | measured | verdict |")
    L.append("| --- | --- | --- |")
    for g in res["goals"]:
        L.append(f"| {g['goal']} | {g['measured']} | {verdict(g['met'])} |")
    L.append("")
    L.append("## a. Local commit from Python")
    L.append("")
    L.append(f"Mean latency of batches of transactions (median and p99 over batches), "
             f"and single-call latencies (each includes one `perf_counter_ns` call, "
             f"~{a['timer_overhead_ns']:.0f} ns here). pycrdt: one `with doc.transaction()` "
             "setting 1 or 10 values of a Map.")
    L.append("")
    L.append("| workload | median | p99 (batches) | per call p50 | per call p99 | transactions/s | vs pycrdt |")
    L.append("| --- | --- | --- | --- | --- | --- | --- |")
    for ops in ("1op", "10op"):
        peer = a[f"pycrdt_{ops}"]["ops_per_s"]
        for name, label in ((f"luigi_commit_{ops}", "Luigi, `tx.commit()`"),
                            (f"luigi_with_{ops}", "Luigi, `with r.transaction()`"),
                            (f"pycrdt_{ops}", "pycrdt")):
            row = a[name]
            ratio = "1.00x" if name.startswith("pycrdt") else f"{row['ops_per_s'] / peer:.2f}x"
            L.append(f"| {ops.replace('op', '-op')}: {label} | {fmt_ns(row['median_ns'])} | {fmt_ns(row['p99_ns'])} | "
                     f"{fmt_ns(row['per_call_p50_ns'])} | {fmt_ns(row['per_call_p99_ns'])} | "
                     f"{fmt_rate(row['ops_per_s'])} | {ratio} |")
    L.append("")
    L.append("## b. The same commits through the C ABI")
    L.append("")
    if c:
        L.append(f"`benchmarks/c/bench_commit.c`: batches of {c['commit_1op']['batch_size']} operations "
                 "timed with `clock_gettime(CLOCK_MONOTONIC)`; median and p99 of the batch means. "
                 "A commit includes begin, the ops, commit and freeing the txn and update handles.")
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
    L.append("## c. Applying remote updates")
    L.append("")
    L.append(f"{ap['updates']} per-transaction updates (1 op each) from another replica, applied to a fresh "
             f"replica/doc; {ap['repetitions']} repetitions (median, p99 of per-update time).")
    L.append("")
    L.append("| workload | per update (median) | p99 | updates/s | vs pycrdt |")
    L.append("| --- | --- | --- | --- | --- |")
    peer = ap["pycrdt_apply_update"]["ops_per_s"]
    for name, label in (("luigi_apply_many", "Luigi `apply_many(updates)` (decoded Update objects)"),
                        ("luigi_decode_apply_many", "Luigi `Update.from_bytes` each + `apply_many`"),
                        ("pycrdt_apply_update", "pycrdt `apply_update(bytes)` each")):
        row = ap[name]
        L.append(f"| {label} | {fmt_ns(row['median_ns'])} | {fmt_ns(row['p99_ns'])} | {fmt_rate(row['ops_per_s'])} | "
                 f"{row['ops_per_s'] / peer:.2f}x |")
    L.append("")
    L.append(f"Mean encoded update: Luigi {ap['luigi_update_bytes_mean']} B, pycrdt {ap['pycrdt_update_bytes_mean']} B.")
    L.append("")
    L.append("## d. Delta sync of two replicas after K updates each")
    L.append("")
    L.append("Both directions, state vectors and deltas crossing as bytes. Luigi: `bytes(clock)` → "
             "`delta_bytes(clock)` (one checksummed batch) → `apply_bytes`. pycrdt: `get_state` → "
             "`get_update(state)` → `apply_update`. Writes go to 100 keys.")
    L.append("")
    L.append("| K | Luigi time (median / p99) | pycrdt time (median / p99) | time ratio (pycrdt/Luigi) | Luigi bytes | pycrdt bytes | Luigi B/update | pycrdt B/update |")
    L.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for key in ("k1000", "k10000"):
        row = d[key]
        lu, pc = row["luigi"], row["pycrdt"]
        L.append(f"| {row['k']} | {lu['median_ms']:.2f} / {lu['p99_ms']:.2f} ms | {pc['median_ms']:.2f} / {pc['p99_ms']:.2f} ms | "
                 f"{pc['median_ms'] / lu['median_ms']:.2f}x | {lu['bytes']:,} | {pc['bytes']:,} | "
                 f"{lu['bytes_per_update']} | {pc['bytes_per_update']} |")
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
    res: dict[str, Any] = {"machine": machine_info(), "quick": args.quick}
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
    res["goals"] = evaluate_goals(res)
    res["wall_seconds"] = round(time.perf_counter() - started, 1)

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
        f.write("\n")
    write_markdown(res, os.path.join(args.out, "RESULTS.md"))
    for g in res["goals"]:
        print(f"  goal: {g['goal']}: {g['measured']} -> {'met' if g['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()
