import LuigiCore
import LuigiSimulation

/// One benchmark run: a closed loop of `count` transactions with `window`
/// in flight per coordinator, on virtual time. Latency is reported in
/// wide-area round trips of the profile; throughput per virtual second;
/// CPU cost as this process's wall time per committed transaction (every
/// node and the network run in this one thread). After the timed part the
/// run is checked: reads, stores on every replica, ops applied.
func runBench(_ o: [String: String]) throws -> String {
    func int(_ k: String, _ d: Int) throws -> Int {
        guard let v = o[k] else { return d }
        guard let n = Int(v) else { throw LuigiError.invalidArgument("--\(k) wants an integer, got \(v)") }
        return n
    }
    func double(_ k: String, _ d: Double) throws -> Double {
        guard let v = o[k] else { return d }
        guard let n = Double(v) else { throw LuigiError.invalidArgument("--\(k) wants a number, got \(v)") }
        return n
    }
    let proto = o["protocol"] ?? "watermark"
    let profile = try DelayProfile.named(o["profile"] ?? "same-region")
    let shards = try int("shards", 2), count = try int("count", 2_000)
    let workloadName = o["workload"] ?? "micro"
    let cross = try double("cross", 1.0)
    let seed = UInt64(try int("seed", 1))
    let workload: WatermarkWorkload
    var setup: [[UInt64: [Op]]] = []
    switch workloadName {
    case "micro": workload = MicroWorkload(keysPerShard: try int("keys", 100_000), zipf: try double("zipf", 0), crossShard: cross)
    case "bank":
        let bank = BankWorkload(accountsPerShard: try int("keys", 10_000), initialBalance: 1_000, crossShard: cross)
        workload = bank
        setup = bank.setup(shards: shards)
    case "tpcc":
        let tpcc = TPCCWorkload(warehousesPerShard: try int("warehouses", 4), crossShard: cross)
        workload = tpcc
        setup = tpcc.setup(shards: shards)
    default: throw LuigiError.invalidArgument("unknown workload \(workloadName)")
    }

    var opts = ShardedCluster.Options()
    opts.shards = shards
    opts.replicas = try int("replicas", 3)
    opts.workers = try int("workers", 4)
    opts.coordinators = try int("coordinators", 1)
    opts.window = try int("window", 200)
    opts.seed = seed
    opts.profile = profile
    opts.skewUs = UInt64(try int("skew", 0))
    opts.rule = o["rule"] == "own" ? .ownStream : .allStreams
    guard let p = ShardedProtocol(rawValue: proto) else { throw LuigiError.invalidArgument("unknown protocol \(proto)") }
    opts.proto = p

    let harness = try ShardedCluster(opts)
    guard try harness.awaitLeaders(limitUs: 1_000 * profile.roundTripUs) else { throw LuigiError.timeout("no leaders") }
    for parts in setup { try harness.submitSetup(parts) }
    guard try harness.drain(limitUs: 1_000 * profile.roundTripUs) else { throw LuigiError.timeout("setup did not finish") }
    let before = harness.completionCount
    let start = monotonicMicros()
    let virtualStart = harness.virtualNow
    try harness.load(workload, count: count)
    guard try harness.drain(limitUs: 100_000 * profile.roundTripUs) else { throw LuigiError.timeout("the run did not finish") }
    let wall = monotonicMicros() - start
    let virtualUs = harness.virtualNow - virtualStart
    let done = Array(harness.completionsList.dropFirst(before))
    try harness.settleAndCheck(roundTripUs: profile.roundTripUs)

    let rtt = Double(profile.roundTripUs)
    let committed = done.filter(\.committed)
    let lat = committed.map { Double($0.latencyUs) / rtt }
    let crossLat = committed.filter { $0.shards > 1 }.map { Double($0.latencyUs) / rtt }
    let singleLat = committed.filter { $0.shards == 1 }.map { Double($0.latencyUs) / rtt }
    var fields: [(String, String)] = [
        ("protocol", "\"\(proto)\""), ("workload", "\"\(workloadName)\""), ("profile", "\"\(profile.name)\""),
        ("shards", "\(shards)"), ("replicas", "\(opts.replicas)"), ("window", "\(opts.window)"),
        ("skew_us", "\(opts.skewUs)"), ("cross", "\(cross)"), ("transactions", "\(done.count)"),
        ("committed", "\(committed.count)"), ("aborted", "\(done.count - committed.count)"),
        ("ops_applied", "\(harness.opsApplied)"),
        ("virtual_seconds", fmt(Double(virtualUs) / 1e6)),
        ("throughput_per_virtual_s", fmt(Double(committed.count) / (Double(virtualUs) / 1e6))),
        ("cpu_us_per_txn", fmt(Double(wall) / Double(max(1, committed.count)))),
        ("p50_rtt", fmt(percentile(lat, 0.5))), ("p99_rtt", fmt(percentile(lat, 0.99))),
        ("cross_p50_rtt", fmt(percentile(crossLat, 0.5))), ("cross_p99_rtt", fmt(percentile(crossLat, 0.99))),
        ("single_p50_rtt", fmt(percentile(singleLat, 0.5))),
    ]
    for (name, values) in harness.breakdown(committed) {
        fields.append(("\(name)_p50_rtt", fmt(percentile(values.map { $0 / rtt }, 0.5))))
    }
    fields.append(contentsOf: harness.extraStats())
    return "{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}"
}

func fmt(_ x: Double) -> String {
    guard x.isFinite else { return "null" }
    let scale = x.magnitude >= 100 ? 10.0 : 1_000.0
    return "\((x * scale).rounded() / scale)"
}

struct BenchCompletion {
    var committed: Bool
    var shards: Int
    var latencyUs: UInt64
    var tsWaitUs: Double = 0
    var holdUs: Double = 0
    var watermarkUs: Double = 0
}

extension ShardedCluster {
    var virtualNow: UInt64 { now }
    var completionCount: Int { completions.count }
    var completionsList: [BenchCompletion] {
        completions.map { c in
            BenchCompletion(
                committed: c.outcome == .committed, shards: submitted[c.id]?.count ?? 1,
                latencyUs: c.completedAt - c.submittedAt,
                tsWaitUs: Double(c.proposedTs) - Double(c.submittedAt),
                holdUs: Double(c.executedAt) - Double(c.receivedAt),
                watermarkUs: Double(c.completedAt) - Double(c.repliedAt))
        }
    }

    /// Ops applied on the first replica of every shard.
    var opsApplied: UInt64 {
        (0..<UInt64(options.shards)).reduce(0) {
            let id = replicaIDs($1)[0]
            return $0 + (state(of: id)?.opsApplied ?? twoPhaseShard(of: id)?.opsApplied ?? 0)
        }
    }

    func submitSetup(_ parts: [UInt64: [Op]]) throws { try submit(parts) }
    func drain(limitUs: UInt64) throws -> Bool { try runUntilIdle(limitUs: limitUs) }

    /// Lets followers catch up, then verifies the work (`checkInvariants`).
    func settleAndCheck(roundTripUs: UInt64) throws {
        try run(forUs: 50 * roundTripUs)
        try checkInvariants()
    }

    func breakdown(_ done: [BenchCompletion]) -> [(String, [Double])] {
        guard options.proto == .watermark else { return [] }
        return [("ts_wait", done.map(\.tsWaitUs)), ("hold_agree", done.map(\.holdUs)), ("watermark_wait", done.map(\.watermarkUs))]
    }

    func extraStats() -> [(String, String)] {
        if options.proto == .twoPhaseCommit {
            let retries = twoPhaseStats().reduce(0) { $0 + $1.conflictRetries }
            return [("conflict_retries", "\(retries)")]
        }
        let s = coordinatorStats().reduce(into: Coordinator.Stats()) {
            $0.replies += $1.replies
            $0.fastPath += $1.fastPath
            $0.retries += $1.retries
        }
        return [("fast_path_rate", fmt(Double(s.fastPath) / Double(max(1, s.replies)))), ("retries", "\(s.retries)")]
    }
}
