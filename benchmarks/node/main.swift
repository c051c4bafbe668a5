// luigi-node-bench: N client threads doing sequential puts against a running
// luigi-node cluster through the Swift client (the path Swift users run,
// encoding and decoding included). Prints one JSON line: operations,
// seconds, latency percentiles, errors, and how many of the clients' last
// writes were read back.
//
// With --algebraic GROUP, each client is pinned to one node (in turn) and
// commits coordination-free transactions {add total 1, add c<i> 1} to that
// replica group instead; after the run it measures the time until every
// node's replica shows the acknowledged total (convergence by anti-entropy).
//
// With --sharded S, each client runs watermark transactions across all S
// shards (the nodes coordinate them in turn): on every shard it writes its
// own key c<i> = n and a fresh key k<i>-<n> = n (2 ops per shard, no
// conflicts between clients). After the run every client's c<i> must read
// back, on every shard, as its last acknowledged n.
import LuigiAlgebraic
import LuigiBase
import LuigiClient
import LuigiLocalCluster
import LuigiWatermark
import LuigiWire
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let args = CommandLine.arguments
func value(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return nil }
    return args[i + 1]
}
guard let endpoints = value("--endpoints")?.split(separator: ",").map(String.init),
    let secret = value("--secret"), let clusterId = value("--cluster-id")
else {
    print("usage: luigi-node-bench --endpoints H:P,... --cluster-id ID --secret S [--clients N] [--seconds S] [--value-size B] [--prefix P]")
    exit(2)
}
let clients = Int(value("--clients") ?? "1") ?? 1
let seconds = Double(value("--seconds") ?? "5") ?? 5
let valueSize = Int(value("--value-size") ?? "256") ?? 256
let prefix = value("--prefix") ?? "bench"
let algebraicGroup = value("--algebraic").flatMap { UInt64($0) }
let shardCount = value("--sharded").flatMap { UInt64($0) }

final class Results: Sendable {
    let latencies = Mutex<[UInt64]>([])
    let errors = Atomic<Int>(0)
    let lastKeys = Mutex<[String: [UInt8]]>([:])
    /// Sharded runs: each client's last acknowledged n.
    let lastWritten = Mutex<[Int: Int64]>([:])
}
let results = Results()
let credentials = try ClusterCredentials(clusterId: clusterId, secret: secret)
let ready = Atomic<Int>(0)
/// The clock starts when the last client has connected.
final class Clock: Sendable {
    let start = Atomic<UInt64>(0)
    func begin() -> UInt64 {
        _ = start.compareExchange(expected: 0, desired: monotonicNanoseconds(), ordering: .relaxed)
        return start.load(ordering: .relaxed)
    }
}
let clock = Clock()

onThreads(clients) { i in
    var options = Client.Options()
    options.timeoutMillis = 10_000
    let mine = algebraicGroup == nil ? endpoints : [endpoints[i % endpoints.count]]
    guard let client = try? Client(endpoints: mine, credentials: credentials, options: options) else { return }
    // Connect and open the session before the clock starts (not the load).
    if let group = algebraicGroup {
        _ = try? client.value("warmup", group: group)
    } else if shardCount != nil {
        _ = try? client.status()
    } else {
        _ = try? client.put("\(prefix)-warmup-\(i)", [0])
    }
    ready.add(1, ordering: .relaxed)
    while ready.load(ordering: .relaxed) < clients { usleep(1000) }
    var local: [UInt64] = []
    local.reserveCapacity(100_000)
    var n = 0
    var last: (String, [UInt8])?
    var lastN: Int64?
    let end = clock.begin() + UInt64(seconds * 1e9)
    while monotonicNanoseconds() < end {
        let key = "\(prefix)-\(i)-\(n)"
        var v = [UInt8](repeating: UInt8(truncatingIfNeeded: n), count: valueSize)
        v[0] = UInt8(truncatingIfNeeded: i)
        let t0 = monotonicNanoseconds()
        do {
            if let shards = shardCount {
                let ops: [Op] = [.write("\(prefix)-c\(i)", Int64(n)), .write("\(prefix)-k\(i)-\(n)", Int64(n))]
                let r = try client.transact(Dictionary(uniqueKeysWithValues: (0..<shards).map { ($0, ops) }))
                guard r.outcome == .committed else { throw LuigiError.state("a write-only transaction aborted") }
                lastN = Int64(n)
            } else if let group = algebraicGroup {
                try client.commit([.add(key: "\(prefix)-total", delta: 1), .add(key: "\(prefix)-c\(i)", delta: 1)], group: group)
            } else {
                try client.put(key, v)
                last = (key, v)
            }
            local.append(monotonicNanoseconds() - t0)
        } catch {
            results.errors.add(1, ordering: .relaxed)
        }
        n += 1
    }
    results.latencies.withLock { $0 += local }
    if let last { results.lastKeys.withLock { $0[last.0] = last.1 } }
    if let lastN { results.lastWritten.withLock { $0[i] = lastN } }
}
let finished = monotonicNanoseconds()
let elapsed = Double(finished - clock.start.load(ordering: .relaxed)) / 1e9
let sorted = results.latencies.withLock { $0 }.sorted()
func pct(_ p: Double) -> Double {
    sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1000
}

if let group = algebraicGroup {
    // Every node's replica must show every acknowledged commit.
    var options = Client.Options()
    options.timeoutMillis = 2000
    let probe = try Client(endpoints: endpoints, credentials: credentials, options: options)
    let expected = Value.counter(Int128(sorted.count))
    var converged: Double? = nil
    while converged == nil && monotonicNanoseconds() - finished < 30_000_000_000 {
        let all = endpoints.allSatisfy { (try? probe.value("\(prefix)-total", group: group, endpoint: $0)) == .some(expected) }
        if all { converged = Double(monotonicNanoseconds() - finished) / 1e6 } else { usleep(2000) }
    }
    print(
        "{\"ops\":\(sorted.count),\"seconds\":\(elapsed),\"throughput\":\(Double(sorted.count) / elapsed),"
            + "\"p50_us\":\(pct(0.5)),\"p99_us\":\(pct(0.99)),\"errors\":\(results.errors.load(ordering: .relaxed)),"
            + "\"convergence_ms\":\(converged.map { "\($0)" } ?? "null"),\"verified\":\(converged == nil ? 0 : endpoints.count),"
            + "\"clients_with_writes\":\(endpoints.count)}")
    exit(converged == nil ? 1 : 0)
}

if let shards = shardCount {
    // Every client's last acknowledged transaction is applied on every shard.
    var options = Client.Options()
    options.timeoutMillis = 10_000
    let checker = try Client(endpoints: endpoints, credentials: credentials, options: options)
    let last = results.lastWritten.withLock { $0 }
    var verified = 0
    for (i, n) in last {
        let read: [Op] = [.read("\(prefix)-c\(i)")]
        let r = try? checker.transact(Dictionary(uniqueKeysWithValues: (0..<shards).map { ($0, read) }))
        if let r, (0..<shards).allSatisfy({ r.reads[$0]?.first?.value.map { $0 >= n } ?? false }) { verified += 1 }
    }
    print(
        "{\"ops\":\(sorted.count),\"seconds\":\(elapsed),\"throughput\":\(Double(sorted.count) / elapsed),"
            + "\"p50_us\":\(pct(0.5)),\"p99_us\":\(pct(0.99)),\"errors\":\(results.errors.load(ordering: .relaxed)),"
            + "\"ops_applied\":\(sorted.count * Int(shards) * 2),"
            + "\"verified\":\(verified),\"clients_with_writes\":\(last.count)}")
    exit(verified == last.count ? 0 : 1)
}

// The work was done: every client's last acknowledged write reads back.
var options = Client.Options()
options.timeoutMillis = 10_000
let checker = try Client(endpoints: endpoints, credentials: credentials, options: options)
let lastKeys = results.lastKeys.withLock { $0 }
var verified = 0
for (key, v) in lastKeys where (try? checker.get(key)) == .some(v) { verified += 1 }

print(
    "{\"ops\":\(sorted.count),\"seconds\":\(elapsed),\"throughput\":\(Double(sorted.count) / elapsed),"
        + "\"p50_us\":\(pct(0.5)),\"p99_us\":\(pct(0.99)),\"errors\":\(results.errors.load(ordering: .relaxed)),"
        + "\"verified\":\(verified),\"clients_with_writes\":\(lastKeys.count)}")
