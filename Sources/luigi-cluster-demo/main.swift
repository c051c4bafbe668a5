// make run: a real 3-node Luigi cluster on loopback. Clients write and read
// while the leader is killed with SIGKILL and restarted; at the end every
// acknowledged write is read back and the recorded history is checked for
// linearizability.
import LuigiBase
import LuigiClient
import LuigiLocalCluster
import LuigiSimulation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

func say(_ text: String) {
    print(text)
    fflush(nil)
}

let arguments = CommandLine.arguments
if arguments.count > 1 && arguments[1] == "exec" { runExec(arguments) }
if arguments.count > 1 && arguments[1] == "partition" { runPartition(arguments) }
if arguments.count > 1 && arguments[1] == "membership" { runMembership(arguments) }
if arguments.count > 1 && arguments[1] == "sharded" { runSharded(arguments) }
func option(_ name: String, _ fallback: Int) -> Int {
    guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count, let v = Int(arguments[i + 1]) else { return fallback }
    return v
}
let clientCount = option("--clients", 8)
let hotKeys = option("--keys", 16)
let beforeKillMillis = option("--before-kill-ms", 3000)
let afterKillMillis = option("--after-kill-ms", 3000)
let kills = max(1, option("--kills", 1))

/// What the workload threads share.
final class Shared: Sendable {
    let history = Mutex(KVHistory())
    let acknowledged = Mutex<[String: [UInt8]]>([:])
    let latencies = Mutex<[String: [UInt64]]>([:])
    let done = Atomic<Bool>(false)
    let completed = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
}

let binary = executableDirectory() + "/luigi-node"
let cluster: ProcessCluster
do {
    cluster = try ProcessCluster(binary: binary, size: 3)
} catch {
    say("cannot set up the cluster: \(error) (build luigi-node first: make run does)")
    exit(2)
}
say("luigi cluster demo: 3 luigi-node processes on loopback, data in \(cluster.directory)")
do { try cluster.startAll() } catch {
    say("cannot start nodes: \(error)")
    exit(2)
}
guard let firstLeader = cluster.awaitLeader() else {
    say("no leader elected within 10 s; logs in \(cluster.directory)")
    cluster.keep = true
    exit(1)
}
say("node \(firstLeader) leads; \(clientCount) clients on \(hotKeys) shared keys plus one unique key per write")

/// The run's state: workload threads touch only `shared` and read
/// `cluster`'s fixed fields; the orchestrator thread alone kills and
/// restarts nodes and records `failovers`/`killed`/`problems`, read after the join.
final class Demo: @unchecked Sendable {
    let shared = Shared()
        let started = monotonicNanoseconds()
        let cluster: ProcessCluster
        var failovers: [Double] = []
        var killed: [UInt64] = []
        var problems: [String] = []

        init(_ cluster: ProcessCluster) { self.cluster = cluster }

    func elapsed() -> Double { Double(monotonicNanoseconds() - started) / 1e9 }

    func workload(_ index: Int) {
        guard let client = try? cluster.client(timeoutMillis: 2000) else { return }
        var rng = SplitMix64(seed: UInt64(index) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
        var n = 0
        var seen: [String: [UInt8]] = [:]
        while !shared.done.load(ordering: .relaxed) {
            n += 1
            let key = "k\(rng.next() % UInt64(hotKeys))"
            let roll = rng.next() % 10
            let kind: KVOperation.Kind
            if roll < 4 {
                kind = .put(key: key, value: Array("c\(index)-\(n)".utf8))
            } else if roll < 5 {
                kind = .put(key: "u-\(index)-\(n)", value: Array("u\(index)-\(n)".utf8))
            } else if roll < 8 {
                kind = .get(key: key)
            } else {
                kind = .cas(key: key, expected: seen[key], new: Array("s\(index)-\(n)".utf8))
            }
            let t0 = monotonicNanoseconds()
            let id = shared.history.withLock { $0.invoke(client: UInt64(index), kind: kind, at: t0) }
            do {
                let result: KVOperation.Result
                let label: String
                switch kind {
                case .put(let k, let v):
                    try client.put(k, v)
                    result = .ok
                    label = "put"
                    if k.hasPrefix("u-") { shared.acknowledged.withLock { $0[k] = v } }
                case .get(let k):
                    let value = try client.get(k)
                    seen[k] = value
                    result = .value(value)
                    label = "get"
                case .cas(let k, let expected, let new):
                    let swapped = try client.cas(k, expected: expected, new: new)
                    if swapped { seen[k] = new }
                    result = .swapped(swapped)
                    label = "cas"
                case .delete:
                    continue
                }
                let t1 = monotonicNanoseconds()
                shared.history.withLock { $0.complete(id, result: result, at: t1) }
                shared.latencies.withLock { $0[label, default: []].append(t1 - t0) }
                shared.completed.add(1, ordering: .relaxed)
            } catch {
                // Unknown outcome: stays open in the history.
                shared.failed.add(1, ordering: .relaxed)
            }
        }
    }

    func progress() {
        let line = String(
            format3: elapsed(), shared.completed.load(ordering: .relaxed), shared.failed.load(ordering: .relaxed))
        print("\r\(line)", terminator: "")
        fflush(nil)
    }

    func sleepMillis(_ ms: Int) { usleep(UInt32(ms) * 1000) }

    func runFor(_ ms: Int) {
        let end = monotonicNanoseconds() + UInt64(ms) * 1_000_000
        while monotonicNanoseconds() < end {
            progress()
            sleepMillis(200)
        }
    }

    func orchestrate() {
        runFor(beforeKillMillis)
        for round in 1...kills {
            guard let leader = cluster.awaitLeader() else {
                say("\nno leader to kill")
                problems.append("no leader before kill \(round)")
                break
            }
            killed.append(leader)
            let others = cluster.endpoints.filter { $0 != cluster.endpoint(leader) }
            let probe = try? cluster.client(endpoints: others, timeoutMillis: 5000)
            cluster.kill(leader)
            let killedAt = monotonicNanoseconds()
            say("\nkill \(round)/\(kills): leader \(leader) killed with SIGKILL")
            let key = "failover-\(round)"
            if let probe, (try? probe.put(key, Array(key.utf8))) != nil {
                let ms = Double(monotonicNanoseconds() - killedAt) / 1e6
                failovers.append(ms)
                shared.acknowledged.withLock { $0[key] = Array(key.utf8) }
                say("failover: the new leader acknowledged a write \(Int(ms)) ms after the kill")
            } else {
                problems.append("no write acknowledged within 5 s of kill \(round)")
            }
            runFor(afterKillMillis / 2)
            do {
                try cluster.start(leader)
                say("\nrestarted node \(leader) on its data")
            } catch {
                problems.append("cannot restart node \(leader): \(error)")
            }
            runFor(afterKillMillis / 2)
        }
        shared.done.store(true, ordering: .relaxed)
    }
}

extension String {
    init(format3 t: Double, _ ok: Int, _ failed: Int) {
        let tenths = Int(t * 10)
        self = "[\(tenths / 10).\(tenths % 10) s] \(ok) operations acknowledged, \(failed) with unknown outcome   "
    }
}

let demo = Demo(cluster)
let shared = demo.shared
onThreads(clientCount + 1) { i in
    if i == clientCount { demo.orchestrate() } else { demo.workload(i) }
}
let runSeconds = demo.elapsed()
demo.progress()
say("")

// Every acknowledged unique write is present, read through the cluster.
var failures: [String] = []
let checker = try! cluster.client(timeoutMillis: 5000)
let acknowledged = shared.acknowledged.withLock { $0 }
var missing = 0
for (key, value) in acknowledged.sorted(by: { $0.key < $1.key }) {
    if (try? checker.get(key)) != .some(value) { missing += 1 }
}
say("acknowledged unique writes read back: \(acknowledged.count - missing) of \(acknowledged.count)")
if missing > 0 { failures.append("\(missing) acknowledged writes missing") }

// The restarted node catches up: it serves a read of the last write alone.
// Every restarted node catches up and answers.
failures += demo.problems
for id in Set(demo.killed).sorted() {
    let alone = try! cluster.client(endpoints: [cluster.endpoint(id)], timeoutMillis: 5000)
    if let status = try? alone.status(), status.contains("\"applied\":") {
        say("restarted node \(id) status: \(status)")
    } else {
        failures.append("restarted node \(id) does not answer")
    }
}

// Linearizability of everything the clients saw.
let history = shared.history.withLock { $0 }
let verdict = history.check(budget: 20_000_000)
let open = history.operations.filter { $0.response == nil }.count
switch verdict {
case .linearizable: say("history of \(history.operations.count) operations (\(open) with unknown outcome): linearizable")
case .notLinearizable(let explanation, _):
    say("history NOT linearizable: \(explanation)")
    failures.append("not linearizable")
case .unknown(let reason):
    say("linearizability check inconclusive: \(reason)")
    failures.append("linearizability unknown")
}

// Throughput and latency.
let total = shared.completed.load(ordering: .relaxed)
say("throughput: \(Int(Double(total) / runSeconds)) operations/s over \(Int(runSeconds)) s with \(clientCount) clients (kill and restart included)")
for (label, values) in shared.latencies.withLock({ $0 }).sorted(by: { $0.key < $1.key }) {
    let sorted = values.sorted()
    func pct(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
    let p50 = (pct(0.50) * 100).rounded() / 100
    let p99 = (pct(0.99) * 100).rounded() / 100
    say("  \(label): \(sorted.count) ops, p50 \(p50) ms, p99 \(p99) ms")
}
if !demo.failovers.isEmpty {
    let ms = demo.failovers.sorted()
    say("failover time (leader SIGKILL -> a write acknowledged), \(ms.count) kills: median \(Int(ms[ms.count / 2])) ms, max \(Int(ms.last!)) ms")
}

cluster.stopAll()
if failures.isEmpty {
    say("OK: every acknowledged write survived the leader kill, and the history is linearizable")
} else {
    cluster.keep = true
    say("FAILED: \(failures.joined(separator: "; ")) (logs in \(cluster.directory))")
    exit(1)
}
