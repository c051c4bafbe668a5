#!/usr/bin/env python3
"""luigi-node beside etcd: 3 members each on loopback, fsync on, sequential
puts of 256-byte values from 1, 16 and 256 concurrent clients.

    python3 benchmarks/node_bench.py BIN_DIR OUT_DIR [--seconds S] [--reps R]

BIN_DIR holds luigi-node, luigi-node-bench and luigi-cluster-demo (release).
etcd comes from Debian's etcd-server (`make bench` installs it). Drivers:

- "luigi (python)" and "etcd (python)": the same Python driver shape on
  both sides — one thread per client, each with its own client object
  (luigi_node.Client; the etcd3 package over etcd's gRPC API), sequential
  puts of fresh keys, latency per put. Equal work, equal load generator.
- "etcd (python asyncio)": etcd's best case from Python: grpc.aio on one
  event loop, the clients as coroutines (less interpreter cost per put than
  threads).
- "luigi (swift)": luigi-node-bench, the Swift client, no interpreter.

Cells are interleaved (each repetition runs every side at every load, the
side order alternating) and reported as median (min-max) over the
repetitions. After each cell the clients' last writes are read back. Also:
sharded transactions (luigi-node-bench --sharded 2, the Swift client) at 1,
16, 64 and 256 clients, each client's last write read back on both shards,
beside the original's published 5.5 K/s on 2 shards x 3 replicas;
the disk's fdatasync rate and the leader's entries per sync (the durability
goal), and the failover time of a leader SIGKILL (luigi-cluster-demo).
Writes OUT_DIR/node.json and OUT_DIR/NODE.md.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SIZES = [1, 16, 256]
ALGEBRAIC_SIZES = [3, 48]
SHARDED_SIZES = [1, 16, 64, 256]
# The original Luigi's published multi-shard throughput on 2 shards x 3 replicas.
PUBLISHED_SHARDED = 5500
VALUE = 256


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        socks.append(s)
    for s in socks:
        s.close()
    return ports


def wait_until(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def stop_all(procs):
    """SIGTERM, then SIGKILL whatever has not exited within 10 s."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


class LuigiCluster:
    def __init__(self, bin_dir, root):
        self.bin = os.path.join(bin_dir, "luigi-node")
        self.root = os.path.join(root, "luigi")
        os.makedirs(self.root)
        ports = free_ports(6)
        self.ports = {i: ports[2 * (i - 1)] for i in (1, 2, 3)}
        self.http = {i: ports[2 * (i - 1) + 1] for i in (1, 2, 3)}
        self.secret = os.urandom(16).hex()
        self.secret_file = os.path.join(self.root, "secret")
        with open(self.secret_file, "w") as f:
            f.write(self.secret)
        self.procs = {}

    @property
    def endpoints(self):
        return [f"127.0.0.1:{self.ports[i]}" for i in (1, 2, 3)]

    def start(self):
        members = []
        for i in (1, 2, 3):
            members += ["--member", f"{i}=127.0.0.1:{self.ports[i]}"]
        for i in (1, 2, 3):
            log = open(os.path.join(self.root, f"node-{i}.log"), "ab")
            self.procs[i] = subprocess.Popen(
                [self.bin, "serve", "--id", str(i), "--listen", f"127.0.0.1:{self.ports[i]}",
                 "--http", f"127.0.0.1:{self.http[i]}", "--data-dir", os.path.join(self.root, f"n{i}"),
                 "--cluster-id", "bench", "--secret-file", self.secret_file, "--log-level", "warning",
                 "--replica-groups", "1", "--shards", "2"] + members,
                stdout=log, stderr=log)
        wait_until(lambda: self.leader() is not None, 15, "a luigi leader")

    def status(self, i):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http[i]}/status", timeout=2) as r:
            return json.loads(r.read())

    def leader(self):
        for i in (1, 2, 3):
            try:
                g = self.status(i)["groups"][0]
                if g["role"] == "leader":
                    return i
            except Exception:
                pass
        return None

    def latency_buckets(self, i):
        """The node's request-latency histogram: {upper bound in s: cumulative count}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http[i]}/metrics", timeout=2) as r:
            text = r.read().decode()
        buckets = {}
        for line in text.splitlines():
            m = re.match(r'luigi_client_request_seconds_bucket\{le="([^"]+)"\} (\S+)', line)
            if m:
                buckets[float(m.group(1))] = float(m.group(2))
        return buckets

    def leader_counts(self):
        i = self.leader()
        g = self.status(i)["groups"][0]
        return i, g["last_index"], g["syncs"], g["sync_seconds"]

    def stop(self):
        stop_all(self.procs.values())


class EtcdCluster:
    def __init__(self, root):
        self.root = os.path.join(root, "etcd")
        os.makedirs(self.root)
        ports = free_ports(6)
        self.client_ports = {i: ports[2 * (i - 1)] for i in (1, 2, 3)}
        self.peer_ports = {i: ports[2 * (i - 1) + 1] for i in (1, 2, 3)}
        self.procs = {}

    def start(self):
        initial = ",".join(f"m{i}=http://127.0.0.1:{self.peer_ports[i]}" for i in (1, 2, 3))
        for i in (1, 2, 3):
            log = open(os.path.join(self.root, f"m{i}.log"), "ab")
            c, p = self.client_ports[i], self.peer_ports[i]
            self.procs[i] = subprocess.Popen(
                ["etcd", "--name", f"m{i}", "--data-dir", os.path.join(self.root, f"m{i}"),
                 "--listen-client-urls", f"http://127.0.0.1:{c}", "--advertise-client-urls", f"http://127.0.0.1:{c}",
                 "--listen-peer-urls", f"http://127.0.0.1:{p}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{p}",
                 "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "bench",
                 "--logger", "zap", "--log-level", "error", "--quota-backend-bytes", str(8 << 30)],
                stdout=log, stderr=log)
        import etcd3
        wait_until(lambda: etcd3.client(port=self.client_ports[1]).status().leader is not None, 20, "an etcd leader")

    def stop(self):
        stop_all(self.procs.values())


def drive(make_client, put, get, clients, seconds, prefix):
    """One thread per client, sequential puts of fresh keys until the clock
    runs out; then each client's last write is read back."""
    value = bytes(range(256)) * (VALUE // 256)
    lat, errors, last = [], [0], {}
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)
    end = [0.0]

    def worker(i):
        c = make_client(i)
        mine, n, mylast = [], 0, None
        # Connect (and open luigi's session) before the clock starts: both
        # sides' clients connect lazily, and connecting is not the load.
        put(c, f"{prefix}-warmup-{i}", value)
        barrier.wait()
        while time.monotonic() < end[0]:
            key = f"{prefix}-{i}-{n}"
            t0 = time.perf_counter()
            try:
                put(c, key, value)
                mine.append(time.perf_counter() - t0)
                mylast = key
            except Exception:
                with lock:
                    errors[0] += 1
            n += 1
        with lock:
            lat.extend(mine)
            if mylast:
                last[mylast] = c

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    end[0] = time.monotonic() + seconds
    start = time.monotonic()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    verified = sum(1 for key, c in last.items() if get(c, key) == value)
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1e6 if lat else 0.0
    return {"ops": len(lat), "seconds": elapsed, "throughput": len(lat) / elapsed, "p50_us": pct(0.5),
            "p99_us": pct(0.99), "errors": errors[0], "verified": verified, "clients_with_writes": len(last)}


def drive_etcd_asyncio(ports, clients, seconds, prefix):
    """etcd's own best case from Python: one asyncio loop, grpc.aio, the
    clients as coroutines spread over one channel per member."""
    import asyncio
    import grpc
    from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc

    value = bytes(range(256)) * (VALUE // 256)

    async def run():
        channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in ports]
        stubs = [rpc_pb2_grpc.KVStub(c) for c in channels]
        lat, errors, last = [], [0], {}
        end = [time.monotonic() + 3600]

        for c in channels:
            await c.channel_ready()

        async def worker(i):
            stub, n, mine = stubs[i % len(stubs)], 0, None
            while time.monotonic() < end[0]:
                key = f"{prefix}-{i}-{n}".encode()
                t0 = time.perf_counter()
                try:
                    await stub.Put(rpc_pb2.PutRequest(key=key, value=value), timeout=10)
                    lat.append(time.perf_counter() - t0)
                    mine = key
                except Exception:
                    errors[0] += 1
                n += 1
            if mine:
                last[mine] = stub

        await asyncio.gather(*(stubs[i % len(stubs)].Put(rpc_pb2.PutRequest(key=f"{prefix}-warmup-{i}".encode(), value=value))
                               for i in range(clients)))
        start = time.monotonic()
        end[0] = start + seconds
        await asyncio.gather(*(worker(i) for i in range(clients)))
        elapsed = time.monotonic() - start
        verified = 0
        for key, stub in last.items():
            r = await stub.Range(rpc_pb2.RangeRequest(key=key), timeout=10)
            verified += int(len(r.kvs) == 1 and r.kvs[0].value == value)
        for c in channels:
            await c.close()
        return lat, errors[0], verified, len(last), elapsed

    lat, errors, verified, writers, elapsed = asyncio.run(run())
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] * 1e6 if lat else 0.0
    return {"ops": len(lat), "seconds": elapsed, "throughput": len(lat) / elapsed, "p50_us": pct(0.5),
            "p99_us": pct(0.99), "errors": errors, "verified": verified, "clients_with_writes": writers}


def server_percentiles(before, after):
    """p50 and p99 of the requests a node served between two histogram
    readings, as the upper bound of the bucket each falls in (µs)."""
    bounds = sorted(after)
    delta = [after[b] - before.get(b, 0.0) for b in bounds]
    total = delta[-1] if delta else 0.0

    def at(p):
        for b, cumulative in zip(bounds, delta):
            if total and cumulative >= p * total:
                return b * 1e6
        return float("inf")
    return at(0.5), at(0.99)


def fdatasync_rate(directory, seconds=2.0):
    path = os.path.join(directory, "sync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    block = b"x" * 4096
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        os.write(fd, block)
        os.fdatasync(fd)
        n += 1
    os.close(fd)
    os.unlink(path)
    return n / seconds


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt_rate(x):
    return f"{x / 1000:.1f} k/s" if x >= 1000 else f"{x:.0f} /s"


def fmt_us(x):
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} µs"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import etcd3
    import luigi_node as ln

    root = tempfile.mkdtemp(prefix="luigi-node-bench-")
    luigi, etcd = LuigiCluster(args.bin_dir, root), EtcdCluster(root)
    results = {}
    algebraic = {}
    sharded = {}
    batches = []
    try:
        luigi.start()
        etcd.start()
        sync_rate = fdatasync_rate(root)
        etcd_ports = [etcd.client_ports[i] for i in (1, 2, 3)]

        def luigi_py(clients, prefix):
            return drive(lambda i: ln.Client(luigi.endpoints, cluster_secret=luigi.secret, cluster_id="bench", timeout=10.0),
                         lambda c, k, v: c.put(k, v), lambda c, k: c.get(k), clients, args.seconds, prefix)

        def etcd_py(clients, prefix):
            return drive(lambda i: etcd3.client(port=etcd_ports[i % 3], timeout=10),
                         lambda c, k, v: c.put(k, v), lambda c, k: c.get(k)[0], clients, args.seconds, prefix)

        def luigi_swift(clients, prefix):
            out = subprocess.run(
                [os.path.join(args.bin_dir, "luigi-node-bench"), "--endpoints", ",".join(luigi.endpoints),
                 "--cluster-id", "bench", "--secret", luigi.secret, "--clients", str(clients),
                 "--seconds", str(args.seconds), "--prefix", prefix], capture_output=True, text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        def etcd_aio(clients, prefix):
            return drive_etcd_asyncio(etcd_ports, clients, args.seconds, prefix)

        def luigi_mode(mode, value):
            def run(clients, prefix):
                out = subprocess.run(
                    [os.path.join(args.bin_dir, "luigi-node-bench"), "--endpoints", ",".join(luigi.endpoints),
                     "--cluster-id", "bench", "--secret", luigi.secret, "--clients", str(clients),
                     "--seconds", str(args.seconds), "--prefix", prefix, mode, value],
                    capture_output=True, text=True)
                return json.loads(out.stdout.strip().splitlines()[-1])
            return run

        luigi_algebraic = luigi_mode("--algebraic", "1001")
        luigi_sharded = luigi_mode("--sharded", "2")

        sides = {"luigi (python)": luigi_py, "etcd (python)": etcd_py, "etcd (python asyncio)": etcd_aio,
                 "luigi (swift)": luigi_swift}
        for rep in range(args.reps):
            order = list(sides) if rep % 2 == 0 else list(reversed(sides))
            for clients in SIZES:
                for side in order:
                    before = luigi.leader_counts() if side.startswith("luigi") else None
                    hist_before = luigi.latency_buckets(before[0]) if before else None
                    r = sides[side](clients, f"r{rep}c{clients}s{list(sides).index(side)}")
                    if before:
                        leader, idx, syncs, sync_seconds = luigi.leader_counts()
                        if leader == before[0]:
                            r["server_p50_le_us"], r["server_p99_le_us"] = server_percentiles(
                                hist_before, luigi.latency_buckets(leader))
                        if leader == before[0] and syncs > before[2]:
                            r["entries_per_sync"] = (idx - before[1]) / (syncs - before[2])
                            # The mean time of the leader's own syncs in this cell (RAFT.md's bound uses the same).
                            r["leader_sync_mean_us"] = 1e6 * (sync_seconds - before[3]) / (syncs - before[2])
                            r["leader_syncs_per_s"] = (syncs - before[2]) / args.seconds
                            batches.append((side, clients, r))
                    results.setdefault(side, {}).setdefault(clients, []).append(r)
                    print(f"rep {rep + 1} {side:15} {clients:3} clients: {fmt_rate(r['throughput']):>9}  "
                          f"p50 {fmt_us(r['p50_us'])}  p99 {fmt_us(r['p99_us'])}  errors {r['errors']}  "
                          f"read back {r['verified']}/{r['clients_with_writes']}", flush=True)
            for clients in ALGEBRAIC_SIZES:
                r = luigi_algebraic(clients, f"a{rep}c{clients}")
                algebraic.setdefault(clients, []).append(r)
                print(f"rep {rep + 1} algebraic {clients:3} clients: {fmt_rate(r['throughput']):>9}  "
                      f"p50 {fmt_us(r['p50_us'])}  p99 {fmt_us(r['p99_us'])}  convergence {r['convergence_ms']} ms",
                      flush=True)
            for clients in SHARDED_SIZES:
                r = luigi_sharded(clients, f"s{rep}c{clients}")
                sharded.setdefault(clients, []).append(r)
                print(f"rep {rep + 1} sharded {clients:3} clients: {fmt_rate(r['throughput']):>9}  "
                      f"p50 {fmt_us(r['p50_us'])}  p99 {fmt_us(r['p99_us'])}  errors {r['errors']}  "
                      f"read back {r['verified']}/{r['clients_with_writes']}", flush=True)
    finally:
        luigi.stop()
        etcd.stop()
        shutil.rmtree(root, ignore_errors=True)

    demo = subprocess.run([os.path.join(args.bin_dir, "luigi-cluster-demo"), "--kills", "5", "--clients", "4",
                           "--before-kill-ms", "1000", "--after-kill-ms", "1500"], capture_output=True, text=True)
    m = re.search(r"(\d+) kills: median (\d+) ms, max (\d+) ms", demo.stdout)
    failover = {"kills": int(m.group(1)), "median_ms": int(m.group(2)), "max_ms": int(m.group(3))} if m else None

    table = {side: {c: {k: summarize([r[k] for r in runs]) for k in ("throughput", "p50_us", "p99_us")}
                    | {"errors": sum(r["errors"] for r in runs),
                       "verified": f"{sum(r['verified'] for r in runs)}/{sum(r['clients_with_writes'] for r in runs)}"}
                    for c, runs in per.items()} for side, per in results.items()}
    doc = {"fdatasync_per_s": sync_rate, "failover": failover, "cells": table, "runs": results, "algebraic": algebraic, "sharded": sharded,
           "durability": [{"side": side, "clients": c, "throughput": r["throughput"], "entries_per_sync": r["entries_per_sync"],
                            "leader_sync_mean_us": r["leader_sync_mean_us"], "leader_syncs_per_s": r["leader_syncs_per_s"]}
                           for side, c, r in batches], "seconds_per_cell": args.seconds, "reps": args.reps,
           "etcd_version": subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout.split("\n")[0]}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "node.json"), "w") as f:
        json.dump(doc, f, indent=1, default=str)

    lines = ["# luigi-node beside etcd", "",
             f"3 members each on loopback (one machine, 2 cores, one disk), fsync on; sequential puts of {VALUE}-byte "
             f"values; {args.seconds:g} s per cell, {args.reps} repetitions interleaved; median (min-max). "
             f"Peer: {doc['etcd_version']} (Debian etcd-server), driven through its gRPC API by the `etcd3` Python "
             "package; luigi through `luigi_node.Client` by the same Python driver, and through the Swift client "
             "(luigi-node-bench). Command: `make bench` (benchmarks/node_bench.py).", "",
             "The p50/p99 columns are what the clients saw; \"leader p99 ≤\" is the upper bound of the leader's "
             "own request-latency histogram bucket holding its 99th percentile (from its /metrics), which leaves out "
             "the load generator's scheduling (256 client threads on 2 cores).", "",
             "| side | clients | throughput | p50 | p99 | leader p99 ≤ | errors | last writes read back |",
             "|---|---|---|---|---|---|---|---|"]
    for side, per in table.items():
        for c in SIZES:
            cell = per[c]
            t, p50, p99 = cell["throughput"], cell["p50_us"], cell["p99_us"]
            server = [r["server_p99_le_us"] for r in results[side][c] if "server_p99_le_us" in r]
            server_text = fmt_us(statistics.median(server)) if server else "–"
            lines.append(f"| {side} | {c} | {fmt_rate(t['median'])} ({fmt_rate(t['min'])}–{fmt_rate(t['max'])}) | "
                         f"{fmt_us(p50['median'])} | {fmt_us(p99['median'])} ({fmt_us(p99['min'])}–{fmt_us(p99['max'])}) | "
                         f"{server_text} | {cell['errors']} | {cell['verified']} |")
    lines += ["", "Algebraic transactions on replica group 1001 (each client pinned to one node, commits "
              "{add total 1, add c<i> 1}, each synced to that node's update log before the reply; convergence = "
              "from the last acknowledged commit until every node's replica shows the acknowledged total):", "",
              "| clients | commits/s | p50 | p99 | time to convergence |", "|---|---|---|---|---|"]
    for c in ALGEBRAIC_SIZES:
        runs = algebraic.get(c, [])
        if not runs:
            continue
        t = summarize([r["throughput"] for r in runs])
        conv = [r["convergence_ms"] for r in runs if r["convergence_ms"] is not None]
        conv_text = (f"{statistics.median(conv):.0f} ms ({min(conv):.0f}–{max(conv):.0f})" if len(conv) == len(runs)
                     else f"did not converge in {len(runs) - len(conv)} of {len(runs)} runs")
        lines.append(f"| {c} | {fmt_rate(t['median'])} ({fmt_rate(t['min'])}–{fmt_rate(t['max'])}) | "
                     f"{fmt_us(statistics.median(r['p50_us'] for r in runs))} | "
                     f"{fmt_us(statistics.median(r['p99_us'] for r in runs))} | {conv_text} |")
    lines += ["", "Sharded transactions (the watermark protocol) on 2 shards, each a Raft group on the 3 nodes; "
              "every transaction writes 2 keys on each shard (c<i> = n and a fresh key), the nodes coordinate in "
              "turn; after each run every client's c<i> is read back on both shards as its last acknowledged n. "
              "The original's published figure on 2 shards x 3 replicas (6 servers): 5,500 transactions/s "
              "(a published number, not run here; this run has 3 processes on 2 cores).", "",
              "| clients | transactions/s | vs 5.5 K/s | ops applied/s | p50 | p99 | errors | read back |",
              "|---|---|---|---|---|---|---|---|"]
    for c in SHARDED_SIZES:
        runs = sharded.get(c, [])
        if not runs:
            continue
        t = summarize([r["throughput"] for r in runs])
        lines.append(f"| {c} | {fmt_rate(t['median'])} ({fmt_rate(t['min'])}–{fmt_rate(t['max'])}) | "
                     f"{100 * t['median'] / PUBLISHED_SHARDED:.0f}% | {fmt_rate(4 * t['median'])} | "
                     f"{fmt_us(statistics.median(r['p50_us'] for r in runs))} | "
                     f"{fmt_us(statistics.median(r['p99_us'] for r in runs))} | {sum(r['errors'] for r in runs)} | "
                     f"{sum(r['verified'] for r in runs)}/{sum(r['clients_with_writes'] for r in runs)} |")
    lines += ["", f"Disk: {sync_rate:.0f} fdatasync/s (4 KiB write + fdatasync, one file, nothing else running). "
              "The durability goal's bound, per run at 256 clients: syncs/s x entries per leader sync, with syncs/s "
              "taken two ways: the disk's rate above, and 1 / the mean time of the leader's own syncs in that run "
              "(the bound RAFT.md uses: a sync during the run also waits for the other members' syncs on this one "
              "disk). The leader's share of the run spent in fdatasync shows what else bounds it (CPU).", "",
              "| side | entries per leader sync | throughput | leader syncs/s | leader sync mean | "
              "time in sync | vs disk rate x batch | vs in-run rate x batch |", "|---|---|---|---|---|---|---|---|"]
    for side, c, r in batches:
        if c == 256:
            eps, thr, mean = r["entries_per_sync"], r["throughput"], r["leader_sync_mean_us"]
            lines.append(f"| {side} | {eps:.1f} | {fmt_rate(thr)} | {r['leader_syncs_per_s']:.0f} | {fmt_us(mean)} | "
                         f"{100 * r['leader_syncs_per_s'] * mean / 1e6:.0f}% | {100 * thr / (sync_rate * eps):.0f}% | "
                         f"{100 * thr * mean / 1e6 / eps:.0f}% |")
    if failover:
        lines.append(f"\nFailover (leader SIGKILL -> a write acknowledged by the new leader), {failover['kills']} kills: "
                     f"median {failover['median_ms']} ms, max {failover['max_ms']} ms.")
    with open(os.path.join(args.out_dir, "NODE.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
