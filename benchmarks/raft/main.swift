// luigi-raft-bench: Raft library overhead and durable commit, in one process.
//
// Three RaftHosts (the driver loop every runtime shares) exchange encoded
// messages in memory (no network), with the leader keeping `concurrency`
// proposals in flight (closed loop). Every message is encoded and decoded,
// every node applies every command to a counting state machine, and the
// run fails unless all three applied the same commands in the same order.
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
import LuigiHost
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

/// The benchmark's state machine: counts and hashes the commands it
/// applies (FNV-1a over index and bytes), so every node's applied log can be
/// compared at the end; `onApply` lets the leader's client time its proposals.
final class CountingMachine: RaftStateMachine {
    var applied = 0
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    var onApply: ((RaftEntry) -> Void)?

    func apply(_ entry: RaftEntry) throws -> [UInt8] {
        guard entry.kind == .normal, !entry.data.isEmpty else { return [] }  // no-ops
        applied += 1
        for b in withUnsafeBytes(of: entry.index.littleEndian, Array.init) + entry.data {
            hash = (hash ^ UInt64(b)) &* 0x100_0000_01B3
        }
        onApply?(entry)
        return []
    }

    func snapshot() throws -> [UInt8] { [] }
    func restore(_ snapshot: [UInt8]) throws {}
}

/// A proposal's payload: its number in the first 8 bytes, so every entry
/// differs and the applied-log hashes check order as well as content.
func payload(_ n: Int, size: Int) -> [UInt8] {
    var p = withUnsafeBytes(of: UInt64(n).littleEndian, Array.init)
    if size > 8 { p += [UInt8](repeating: 0x5A, count: size - 8) }
    return p
}

/// Three hosts (RaftHost: the loop every driver runs), one group each.
struct Trio {
    let ids: [UInt64] = [1, 2, 3]
    var hosts: [UInt64: RaftHost] = [:]
    var machines: [UInt64: CountingMachine] = [:]

    init(storages: [RaftStorage], send: @escaping ([Envelope]) -> Void, sendsEarly: Bool = false) throws {
        for (i, id) in ids.enumerated() {
            var c = RaftConfig(id: id)
            c.maxInflightMessages = 4096
            c.seed = 7
            let host = RaftHost(send: send)
            host.sendsEarly = sendsEarly
            let machine = CountingMachine()
            try host.add(RaftDriver(config: c, storage: storages[i], voters: ids), machine: machine)
            hosts[id] = host
            machines[id] = machine
        }
    }

    func node(_ id: UInt64) -> RaftNode { hosts[id]!.driver(0)!.node }

    /// Every node applied the same `total` commands in the same order.
    func verify(total: Int) {
        let leader = machines[1]!
        for id in ids {
            let m = machines[id]!
            guard m.applied == total, m.hash == leader.hash else {
                fatalError("node \(id) applied \(m.applied) commands (hash \(m.hash)); node 1 applied \(leader.applied) (hash \(leader.hash)); expected \(total)")
            }
        }
    }
}

/// One thread, one queue of encoded messages: the library's CPU cost alone,
/// including encoding and decoding every message.
func runCluster(concurrency: Int, commits total: Int, payloadSize: Int, storages: [SyncCountingStorage]) throws -> Run {
    var queue: [Envelope] = []
    let trio = try Trio(storages: storages, send: { queue += $0 })
    var proposedAt: [UInt64: UInt64] = [:]
    var latencies: [UInt64] = []
    latencies.reserveCapacity(total)
    var committed = 0
    trio.machines[1]!.onApply = { entry in
        if let start = proposedAt.removeValue(forKey: entry.index) {
            latencies.append(nowNanos() - start)
            committed += 1
        }
    }

    func pump() throws {
        var busy = true
        while busy {
            busy = false
            for id in trio.ids where try trio.hosts[id]!.process() > 0 { busy = true }
            if !queue.isEmpty {
                busy = true
                let batch = queue
                queue = []
                for e in batch { try trio.hosts[e.to]!.receive(e.bytes) }
            }
        }
    }

    trio.node(1).campaign()
    try pump()
    guard trio.node(1).role == .leader else { fatalError("node 1 did not win the election") }
    let leader = trio.node(1)
    let start = nowNanos()
    var proposed = 0
    while committed < total {
        while proposed - committed < concurrency && proposed < total {
            let index = try leader.propose(payload(proposed, size: payloadSize))
            proposedAt[index] = nowNanos()
            proposed += 1
        }
        try pump()
    }
    let seconds = Double(nowNanos() - start) / 1e9
    // Followers learn the last commit index from the next heartbeat.
    for _ in 0..<3 {
        trio.hosts[1]!.tick()
        try pump()
    }
    trio.verify(total: total)
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
    let storages = (0..<3).map { _ in SyncCountingStorage(MemoryRaftStorage()) }
    _ = try runCluster(concurrency: concurrency, commits: min(commits, 2_000), payloadSize: 16, storages: (0..<3).map { _ in SyncCountingStorage(MemoryRaftStorage()) })  // warm-up
    memoryRuns.append(try runCluster(concurrency: concurrency, commits: commits, payloadSize: 16, storages: storages))
}

let root = tempDirectory()
// The floor: one thread alone, then three at once (one file each), to show
// whether this disk overlaps the three nodes' syncs or serializes them.
// Enough samples for a p99 (2,000 each), measured before and after the
// durable runs, since a disk's sync time drifts.
let floorSamples = quick ? 200 : 2_000
let floor = measureFdatasync(directory: root, count: floorSamples, threads: 1)
let floor3 = measureFdatasync(directory: root, count: floorSamples, threads: 3)
var durableRuns: [Run] = []
// Each load twice: the leader syncs, then sends (the plain Ready order), and
// the leader sends its appends while it syncs (Raft thesis §10.2.1).
for concurrency in [1, 256] where onlyConcurrency == nil || onlyConcurrency == concurrency {
    for sendEarly in [false, true] {
        let commits = quick ? (concurrency == 1 ? 300 : 3_000) : (concurrency == 1 ? 1_000 : 20_000)
        let dir = root + "/c\(concurrency)-\(sendEarly ? "early" : "after")"
        let storages = try (1...3).map { SyncCountingStorage(try DurableRaftStorage(directory: dir + "/node-\($0)")) }
        durableRuns.append(
            try runThreadedCluster(
                concurrency: concurrency, commits: commits, payload: 256, storages: storages, sendEarly: sendEarly))
    }
}
let floorAfter = measureFdatasync(directory: root, count: floorSamples, threads: 1)
let floor3After = measureFdatasync(directory: root, count: floorSamples, threads: 3)
removeTree(root)

print("{\"cores\": \(sysconf(Int32(_SC_NPROCESSORS_ONLN))), "
    + "\"memory\": [\(memoryRuns.map(\.json).joined(separator: ", "))], "
    + "\"durable_harness\": \"threads\", \"durable_threads\": 3, "
    + "\"fdatasync_p50_ns\": \(floor.p50), \"fdatasync_p99_ns\": \(floor.p99), "
    + "\"fdatasync_per_second\": \(floor.perSecond), "
    + "\"fdatasync_3threads_p50_ns\": \(floor3.p50), \"fdatasync_3threads_p99_ns\": \(floor3.p99), "
    + "\"fdatasync_3threads_per_second\": \(floor3.perSecond), "
    + "\"fdatasync_samples\": \(floorSamples), "
    + "\"fdatasync_after_p50_ns\": \(floorAfter.p50), \"fdatasync_after_p99_ns\": \(floorAfter.p99), "
    + "\"fdatasync_after_per_second\": \(floorAfter.perSecond), "
    + "\"fdatasync_3threads_after_p50_ns\": \(floor3After.p50), \"fdatasync_3threads_after_p99_ns\": \(floor3After.p99), "
    + "\"fdatasync_3threads_after_per_second\": \(floor3After.perSecond), "
    + "\"durable\": [\(durableRuns.map(\.json).joined(separator: ", "))]}")
