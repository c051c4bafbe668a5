// luigi-raft-bench: Raft library overhead and durable commit, in one process.
//
// Three RaftDrivers exchange messages in memory (no network), with the
// leader keeping `concurrency` proposals in flight (closed loop).
// - In-memory runs (library overhead): all three nodes in one thread
//   through one queue, so the numbers are the library's CPU cost alone.
// - Durable runs: one thread per node (Threaded.swift), so the nodes'
//   fdatasyncs overlap as on three machines (all on this one disk).
// Prints one JSON object on stdout; benchmarks/raft_bench.py turns it into
// raft.json and RAFT.md.
//
//   luigi-raft-bench [--quick] [--durable-only] [--concurrency N]
//   (--concurrency: only that durable load, for profiling)
import LuigiCore
import LuigiStorage

#if canImport(Glibc)
import Glibc
#endif

let quick = CommandLine.arguments.contains("--quick")

func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p / 100.0 + 0.5))]
}

struct Run {
    var concurrency: Int
    var commits: Int
    var seconds: Double
    var p50: UInt64
    var p99: UInt64
    var fdatasyncs: Int
    var syncNanos: UInt64
    /// Durable runs: the leader sent its appends before its own sync.
    var sendEarly = false
    var json: String {
        "{\"concurrency\": \(concurrency), \"leader_sends_early\": \(sendEarly), \"commits\": \(commits), \"seconds\": \(seconds), "
            + "\"commits_per_second\": \(Double(commits) / seconds), \"p50_ns\": \(p50), \"p99_ns\": \(p99), "
            + "\"fdatasyncs\": \(fdatasyncs), \"sync_ns_total\": \(syncNanos)}"
    }
}

/// Counts syncs by wrapping the storage (durable runs).
final class CountingStorage: RaftStorage {
    let inner: RaftStorage
    var syncs = 0
    var syncNanos: UInt64 = 0
    init(_ inner: RaftStorage) { self.inner = inner }
    func initialState() throws -> (hardState: HardState, conf: ConfState) { try inner.initialState() }
    func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] { try inner.entries(lo, hi, maxBytes: maxBytes) }
    func term(_ index: UInt64) throws -> UInt64 { try inner.term(index) }
    func firstIndex() throws -> UInt64 { try inner.firstIndex() }
    func lastIndex() throws -> UInt64 { try inner.lastIndex() }
    func snapshot() throws -> Snapshot { try inner.snapshot() }
    func append(_ entries: [RaftEntry]) throws { try inner.append(entries) }
    func setHardState(_ state: HardState) throws { try inner.setHardState(state) }
    func applySnapshot(_ snapshot: Snapshot) throws { try inner.applySnapshot(snapshot) }
    func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws { try inner.compact(to: index, conf: conf, data: data) }
    func sync() throws {
        syncs += 1
        let t = nowNanos()
        try inner.sync()
        syncNanos += nowNanos() - t
    }
}

func runCluster(concurrency: Int, commits total: Int, payload: Int, storages: [CountingStorage]) throws -> Run {
    let ids: [UInt64] = [1, 2, 3]
    var drivers: [UInt64: RaftDriver] = [:]
    for (i, id) in ids.enumerated() {
        var c = RaftConfig(id: id)
        c.maxInflightMessages = 4096
        c.seed = 7
        drivers[id] = try RaftDriver(config: c, storage: storages[i], voters: ids)
    }
    var queue: [RaftMessage] = []
    var proposedAt: [UInt64: UInt64] = [:]
    var latencies: [UInt64] = []
    latencies.reserveCapacity(total)
    var committed = 0

    func pump() throws {
        var busy = true
        while busy {
            busy = false
            for id in ids {
                let d = drivers[id]!
                while let rd = try d.nextReady() {
                    busy = true
                    queue.append(contentsOf: rd.messages)
                    if id == 1 {
                        let t = nowNanos()
                        for e in rd.committedEntries {
                            if let start = proposedAt.removeValue(forKey: e.index) {
                                latencies.append(t - start)
                                committed += 1
                            }
                        }
                    }
                    try d.advance(rd)
                }
            }
            if !queue.isEmpty {
                busy = true
                let batch = queue
                queue = []
                for m in batch { try drivers[m.to]!.node.step(m) }
            }
        }
    }

    drivers[1]!.node.campaign()
    try pump()
    guard drivers[1]!.node.role == .leader else { fatalError("node 1 did not win the election") }
    let data = [UInt8](repeating: 0x5A, count: payload)
    let leader = drivers[1]!.node
    let start = nowNanos()
    var proposed = 0
    while committed < total {
        while proposed - committed < concurrency && proposed < total {
            let index = try leader.propose(data)
            proposedAt[index] = nowNanos()
            proposed += 1
        }
        try pump()
    }
    let seconds = Double(nowNanos() - start) / 1e9
    latencies.sort()
    return Run(concurrency: concurrency, commits: committed, seconds: seconds, p50: percentile(latencies, 50),
               p99: percentile(latencies, 99), fdatasyncs: storages.reduce(0) { $0 + $1.syncs },
               syncNanos: storages.reduce(0) { $0 + $1.syncNanos })
}

func tempDirectory() -> String {
    var template = Array("/tmp/luigi-raft-bench-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func removeTree(_ path: String) {
    // Small, known layout: node dirs with files. Best effort.
    _ = system("rm -rf '\(path)'")
}

let durableOnly = CommandLine.arguments.contains("--durable-only")
let onlyConcurrency = CommandLine.arguments.firstIndex(of: "--concurrency").flatMap {
    $0 + 1 < CommandLine.arguments.count ? Int(CommandLine.arguments[$0 + 1]) : nil
}
var memoryRuns: [Run] = []
for concurrency in durableOnly ? [] : [1, 64, 1024, 4096] {
    let commits = quick ? 2_000 : (concurrency == 1 ? 20_000 : 200_000)
    let storages = (0..<3).map { _ in CountingStorage(MemoryRaftStorage()) }
    _ = try runCluster(concurrency: concurrency, commits: min(commits, 2_000), payload: 0, storages: (0..<3).map { _ in CountingStorage(MemoryRaftStorage()) })  // warm-up
    memoryRuns.append(try runCluster(concurrency: concurrency, commits: commits, payload: 0, storages: storages))
}

let root = tempDirectory()
// The floor: one thread alone, then three at once (one file each), to show
// whether this disk overlaps the three nodes' syncs or serializes them.
let floor = measureFdatasync(directory: root, count: quick ? 50 : 300, threads: 1)
let floor3 = measureFdatasync(directory: root, count: quick ? 50 : 300, threads: 3)
var durableRuns: [Run] = []
// Each load twice: the leader syncs, then sends (the plain Ready order), and
// the leader sends its appends while it syncs (Raft thesis §10.2.1).
for concurrency in [1, 256] where onlyConcurrency == nil || onlyConcurrency == concurrency {
    for sendEarly in [false, true] {
        let commits = quick ? (concurrency == 1 ? 300 : 3_000) : (concurrency == 1 ? 1_000 : 20_000)
        let dir = root + "/c\(concurrency)-\(sendEarly ? "early" : "after")"
        let storages = try (1...3).map { CountingStorage(try DurableRaftStorage(directory: dir + "/node-\($0)")) }
        durableRuns.append(
            try runThreadedCluster(
                concurrency: concurrency, commits: commits, payload: 256, storages: storages, sendEarly: sendEarly))
    }
}
removeTree(root)

print("{\"cores\": \(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "
    + "\"memory\": [\(memoryRuns.map(\.json).joined(separator: ", "))], "
    + "\"durable_harness\": \"threads\", \"durable_threads\": 3, "
    + "\"fdatasync_p50_ns\": \(floor.p50), \"fdatasync_p99_ns\": \(floor.p99), "
    + "\"fdatasync_per_second\": \(floor.perSecond), "
    + "\"fdatasync_3threads_p50_ns\": \(floor3.p50), \"fdatasync_3threads_p99_ns\": \(floor3.p99), "
    + "\"fdatasync_3threads_per_second\": \(floor3.perSecond), "
    + "\"durable\": [\(durableRuns.map(\.json).joined(separator: ", "))]}")
