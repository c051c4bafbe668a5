"""Watermark commit (the Luigi protocol) beside two-phase commit over the
same Raft shard groups, on the same simulated network and workloads.

Every run is one `luigi-watermark-sim bench` process: a closed loop on
virtual time that encodes and decodes every message, applies every op,
and is checked afterwards (reads, stores on every replica, ops applied;
the watermark runs against every invariant). The two protocols run
interleaved, seed by seed, and each figure is the median over the seeds
with its spread (min-max).

1. Latency in wide-area round trips (virtual time), p50 and p99, with the
   breakdown (timestamp wait, hold and agreement, watermark wait), for
   1x1, 1x3, 2x1, 2x3 and 8x3 (shards x replicas), micro and TPC-C, on
   the four delay profiles; 16 transactions in flight per coordinator.
2. Throughput in virtual time with the original's closed-loop window of
   200 x 4 threads per coordinator (one coordinator per shard), with the
   original's published 2x3 and 1x1 figures beside it; CPU cost per
   committed transaction on this machine (this process runs every node,
   so it is the whole cluster's CPU per transaction); 8-shard scaling
   efficiency.
3. Fast-path rate, abort rate and watermark lag under clock skew of 0,
   1 ms and 10 ms.

Usage: watermark_bench.py SIM_BINARY OUT_DIR [--quick]
Writes OUT_DIR/watermark.json and OUT_DIR/WATERMARK.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

from units import fmt_rate

ORIGINAL = {"2x3": 5_500, "1x1": 20_700}  # published transactions/s, same-region
SHAPES = [(1, 1), (1, 3), (2, 1), (2, 3), (8, 3)]
PROFILES = ["same-region", "same-continent", "cross-continent", "geo"]
PROTOCOLS = ["watermark", "2pc"]


def run(sim: str, **args: Any) -> dict[str, Any]:
    cmd = [sim, "bench"]
    for k, v in args.items():
        cmd += [f"--{k}", str(v)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(out)
    if result["transactions"] != args["count"]:
        raise SystemExit(f"{cmd}: {result['transactions']} of {args['count']} transactions finished")
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and (min, max) of every numeric field over the seeds."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            xs = [float(r[key]) for r in runs if r.get(key) is not None]
            out[key] = {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}
        else:
            out[key] = value
    return out


def interleaved(sim: str, seeds: list[int], **args: Any) -> dict[str, dict[str, Any]]:
    """Both protocols, alternating, seed by seed."""
    runs: dict[str, list[dict[str, Any]]] = {p: [] for p in PROTOCOLS}
    for seed in seeds:
        for proto in PROTOCOLS:
            runs[proto].append(run(sim, protocol=proto, seed=seed, **args))
    return {p: summarize(r) for p, r in runs.items()}


def cell(s: dict[str, Any], key: str, digits: int = 2) -> str:
    v = s.get(key)
    if not isinstance(v, dict):
        return "-"
    med, lo, hi = v["median"], v["min"], v["max"]
    if lo == hi:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def rate(s: dict[str, Any]) -> str:
    v = s["throughput_per_virtual_s"]
    return f"{fmt_rate(v['median'])} ({fmt_rate(v['min'])}-{fmt_rate(v['max'])})"


def main() -> None:
    sim, out_dir = sys.argv[1], sys.argv[2]
    quick = "--quick" in sys.argv[3:]
    seeds = [1, 2] if quick else [1, 2, 3]
    count = 400 if quick else 2_000
    shapes = [(1, 1), (2, 3)] if quick else SHAPES
    profiles = ["same-region", "geo"] if quick else PROFILES
    report: dict[str, Any] = {"cores": os.cpu_count(), "seeds": seeds, "latency": [], "throughput": [], "skew": []}

    for workload in ["micro", "tpcc"]:
        for profile in profiles:
            for shards, replicas in shapes:
                print(f"== latency {workload} {profile} {shards}x{replicas}", flush=True)
                cross = 1.0 if workload == "micro" and shards > 1 else 0.1
                r = interleaved(sim, seeds, shards=shards, replicas=replicas, profile=profile, workload=workload,
                                count=count, window=16, cross=cross)
                report["latency"].append({"workload": workload, "profile": profile, "shape": f"{shards}x{replicas}", **r})

    tp_count = 2_000 if quick else 8_000
    for workload in ["micro", "tpcc"]:
        for shards, replicas in shapes:
            print(f"== throughput {workload} {shards}x{replicas}", flush=True)
            r = interleaved(sim, seeds, shards=shards, replicas=replicas, coordinators=shards, workload=workload,
                            count=tp_count * shards, window=800, cross=0.5 if workload == "micro" else 0.1)
            report["throughput"].append({"workload": workload, "shape": f"{shards}x{replicas}", **r})

    for skew in [0, 1_000, 10_000]:
        print(f"== skew {skew} us", flush=True)
        runs = [run(sim, protocol="watermark", seed=s, shards=2, replicas=3, workload="bank", count=count, window=16,
                    cross=0.5, skew=skew) for s in seeds]
        report["skew"].append({**summarize(runs), "skew_us": skew})

    with open(os.path.join(out_dir, "watermark.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out_dir, "WATERMARK.md"), "w") as f:
        f.write(markdown(report, quick))
    print(markdown(report, quick))


def markdown(r: dict[str, Any], quick: bool) -> str:
    lines = [
        "# Watermark commit vs two-phase commit over Raft",
        "",
        "`make bench` (benchmarks/watermark_bench.py running `luigi-watermark-sim bench`), "
        f"{r['cores']} cores, seeds {r['seeds']}; median (min-max) over the seeds."
        + (" **Quick run: not for publishing.**" if quick else ""),
        "Latency is virtual time in wide-area round trips (2 x the profile's mean one-way delay; every hop,",
        "replica or shard, has the same delay). Both protocols run on the same Raft shard groups, network,",
        "workload and seeds; every run was checked after it finished (reads, stores on every replica, ops applied).",
        "",
        "## 1. Latency (16 in flight per coordinator; micro: every transaction on 2 shards when there are 2+)",
        "",
        "| workload | profile | shape | Luigi p50 | Luigi p99 | 2PC p50 | 2PC p99 | Luigi: ts wait / hold+agree / watermark wait (p50) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in r["latency"]:
        w, t = e["watermark"], e["2pc"]
        lines.append(
            f"| {e['workload']} | {e['profile']} | {e['shape']} | {cell(w, 'p50_rtt')} | {cell(w, 'p99_rtt')} | "
            f"{cell(t, 'p50_rtt')} | {cell(t, 'p99_rtt')} | {cell(w, 'ts_wait_p50_rtt')} / "
            f"{cell(w, 'hold_agree_p50_rtt')} / {cell(w, 'watermark_wait_p50_rtt')} |")
    lines += [
        "",
        "## 2. Throughput (closed loop, 200 x 4 in flight per coordinator, one coordinator per shard, same-region)",
        "",
        "| workload | shape | Luigi (virtual) | 2PC (virtual) | original (published) | Luigi CPU µs/txn | 2PC CPU µs/txn | 2PC conflict retries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in r["throughput"]:
        w, t = e["watermark"], e["2pc"]
        orig = ORIGINAL.get(e["shape"], None) if e["workload"] == "micro" else None
        lines.append(
            f"| {e['workload']} | {e['shape']} | {rate(w)} | {rate(t)} | {fmt_rate(orig) if orig else '-'} | "
            f"{cell(w, 'cpu_us_per_txn', 0)} | {cell(t, 'cpu_us_per_txn', 0)} | {cell(t, 'conflict_retries', 0)} |")
    by = {(e["workload"], e["shape"]): e for e in r["throughput"]}
    for workload in ["micro", "tpcc"]:
        one, eight = by.get((workload, "1x3")), by.get((workload, "8x3"))
        if one and eight:
            for proto in PROTOCOLS:
                eff = eight[proto]["throughput_per_virtual_s"]["median"] / (8 * one[proto]["throughput_per_virtual_s"]["median"])
                lines.append(f"\n8-shard scaling efficiency, {workload}, {proto}: {eff:.2f} (8x3 throughput / (8 x 1x3))")
    lines += [
        "",
        "## 3. Clock skew (bank, 2x3, same-region, 16 in flight; watermark protocol)",
        "",
        "| skew | fast path (agreed ts = coordinator's) | aborted by balance checks | watermark wait p50 (RTT) | p50 (RTT) |",
        "|---|---|---|---|---|",
    ]
    for e in r["skew"]:
        lines.append(f"| {e['skew_us']} µs | {cell(e, 'fast_path_rate')} | {cell(e, 'aborted', 0)} | "
                     f"{cell(e, 'watermark_wait_p50_rtt')} | {cell(e, 'p50_rtt')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
