// luigi-tablelog-bench: the table log's commit path, measured.
//
//   luigi-tablelog-bench durable --writers N --tables T --commits C --dir D
//     A 3-node cluster in this process (RaftCluster, the host loop every
//     driver shares), each node with its own write-ahead log in D (fdatasync
//     before a batch is acknowledged), running the TableLog client. N writers
//     commit concurrently (each round every writer has one commit in flight,
//     proposed together); writer w commits to table w % T, so with T = 1 all
//     race on one table and the losers rebase on the latest version their
//     conflict names. Runs until C commits succeeded; then checks every node
//     holds the same tables and every table has the versions and files
//     acknowledged.
//   luigi-tablelog-bench validate --history H --commits C
//     The state machine alone (no log, no disk): a table with H versions of
//     history, then C more commits (decode, every check, apply), each adding
//     one file and removing one: the time per commit, which must not grow
//     with H.
//
// Prints one JSON object; benchmarks/tablelog_bench.py runs it beside SQLite.
import LuigiCore
import LuigiSimulation
import LuigiStorage

#if canImport(Glibc)
import Glibc
#endif

func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func printError(_ text: String) {
    var line = text + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p / 100.0 + 0.5))]
}

func option(_ name: String, _ fallback: String? = nil) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    guard let fallback else {
        printError("missing \(name)")
        exit(2)
    }
    return fallback
}

func intOption(_ name: String, _ fallback: Int) -> Int { Int(option(name, String(fallback))) ?? fallback }

struct BenchFailure: Error, CustomStringConvertible { let description: String }

/// One data file as a lakehouse would list it: a path, counts, a
/// partition and 16-byte min/max statistics.
func dataFile(_ path: String, _ n: Int) -> DataFile {
    DataFile(path: path, rows: UInt64(1000 + n % 997), size: UInt64(1 << 20), partition: "day=\(n % 30)",
        minStats: [UInt8](repeating: UInt8(n & 0xFF), count: 16), maxStats: [UInt8](repeating: 0xFF, count: 16))
}

/// The nodes' storages, opened through the cluster, with their syncs counted.
final class SyncStorages: @unchecked Sendable {  // used from the one benchmark thread
    private var opened: [SyncCountingStorage] = []
    var syncs: Int { opened.reduce(0) { $0 + $1.syncs } }
    func open(_ directory: String) throws -> RaftStorage {
        let s = SyncCountingStorage(try DurableRaftStorage(directory: directory))
        opened.append(s)
        return s
    }
}

func durable() throws -> String {
    let writers = intOption("--writers", 1), tables = intOption("--tables", 1), target = intOption("--commits", 300)
    let dir = option("--dir")
    let storages = SyncStorages()
    var o = RaftCluster.Options(nodes: 3, seed: 1)
    o.compactAfter = 10_000
    o.openStorage = { id in try storages.open("\(dir)/node-\(id)") }
    let cluster = try RaftCluster(TableLog.clusterOptions(o))
    try cluster.electLeader()
    let log = try TableLog(cluster)
    for t in 0..<tables { try log.createTable("t\(t)", schema: Array("id BIGINT, ts TIMESTAMP, payload BINARY".utf8)) }
    struct Writer { var base: UInt64 = 0; var n = 0 }
    var state = [Writer](repeating: Writer(), count: writers)
    var committed = 0, conflicts = 0, rounds = 0
    var latencies: [UInt64] = []
    var acknowledged: [String: [String]] = [:]  // table -> txn ids, in version order
    let syncsBefore = storages.syncs
    let start = nowNanos()
    while committed < target {
        rounds += 1
        let requests = (0..<writers).map { w -> CommitRequest in
            state[w].n += 1
            let id = "w\(w)-\(state[w].n)"
            return CommitRequest(table: "t\(w % tables)", baseVersion: state[w].base, txnId: id, adds: [dataFile("w\(w)/\(state[w].n).parquet", state[w].n)])
        }
        let t0 = nowNanos()
        let outcomes = try log.commitAll(requests, timeout: 10_000)
        let elapsed = nowNanos() - t0
        for (w, outcome) in outcomes.enumerated() {
            switch outcome {
            case .committed(let v, false)?:
                committed += 1
                latencies.append(elapsed)
                state[w].base = v
                acknowledged[requests[w].table, default: []].append(requests[w].txnId)
            case .conflict(let latest, _)?:
                conflicts += 1
                state[w].base = latest
            default:
                throw BenchFailure(description: "writer \(w): \(String(describing: outcome))")
            }
        }
    }
    let seconds = Double(nowNanos() - start) / 1e9
    let syncs = storages.syncs - syncsBefore
    // The work was done: every node holds the same tables, and each table
    // lists exactly the acknowledged commits, in order, with their files.
    try cluster.settle()
    let reference = (cluster.stateMachine(cluster.nodeIDs[0]) as? TableLogMachine)?.tables
    for id in cluster.nodeIDs where (cluster.stateMachine(id) as? TableLogMachine)?.tables != reference {
        throw BenchFailure(description: "node \(id)'s tables differ")
    }
    for (table, txns) in acknowledged {
        guard try log.versions(table).dropFirst().map(\.txnId) == txns, try log.files(table).count == txns.count else {
            throw BenchFailure(description: "\(table) does not hold exactly the acknowledged commits")
        }
    }
    latencies.sort()
    return """
        {"mode": "durable", "writers": \(writers), "tables": \(tables), "commits": \(committed), "conflicts": \(conflicts), \
        "rounds": \(rounds), "seconds": \(seconds), "commits_per_second": \(Double(committed) / seconds), \
        "p50_ns": \(percentile(latencies, 50)), "p99_ns": \(percentile(latencies, 99)), "fdatasyncs": \(syncs)}
        """
}

func validate() throws -> String {
    let history = intOption("--history", 1_000), count = intOption("--commits", 2_000)
    let m = TableLogMachine()
    var index: UInt64 = 1
    func apply(_ c: TableCommand) throws {
        let result = m.apply(RaftEntry(term: 1, index: index, kind: .normal, data: c.encoded()))
        index += 1
        if case .committed = try TableOutcome(decoding: result) { return }
        throw BenchFailure(description: "refused: \(try TableOutcome(decoding: result))")
    }
    try apply(.createTable(name: "t", schema: [], retain: 0))
    // History: 100 live files, then each version replaces one of them.
    func commit(_ v: Int) -> TableCommand {
        .commit(CommitRequest(table: "t", baseVersion: UInt64(v), txnId: "tx\(v)", adds: [dataFile("f\(v)", v)],
            removes: v >= 100 ? ["f\(v - 100)"] : []))
    }
    for v in 0..<history { try apply(commit(v)) }
    let entries = (history..<history + count).map { RaftEntry(term: 1, index: index + UInt64($0 - history), kind: .normal, data: commit($0).encoded()) }
    var samples: [UInt64] = []
    samples.reserveCapacity(count)
    let start = nowNanos()
    for e in entries {
        let t0 = nowNanos()
        let result = m.apply(e)
        samples.append(nowNanos() - t0)
        guard result.count > 4, result[4] == 1 else { throw BenchFailure(description: "commit \(e.index) refused") }
    }
    let total = nowNanos() - start
    let t = try m.table("t")
    guard t.latest == UInt64(history + count), t.liveFileCount == 100 else { throw BenchFailure(description: "wrong final state") }
    samples.sort()
    return """
        {"mode": "validate", "history": \(history), "commits": \(count), "mean_ns": \(total / UInt64(count)), \
        "p50_ns": \(percentile(samples, 50)), "p99_ns": \(percentile(samples, 99))}
        """
}

do {
    switch CommandLine.arguments.dropFirst().first {
    case "durable": print(try durable())
    case "validate": print(try validate())
    default:
        printError("usage: luigi-tablelog-bench durable --writers N --tables T --commits C --dir D | validate --history H --commits C")
        exit(2)
    }
} catch {
    printError("luigi-tablelog-bench: \(error)")
    exit(1)
}
