import LuigiCore

/// The built-in workloads, by name (what the C ABI and Python load).
public enum BuiltinWorkload: String, Sendable, CaseIterable {
    case micro, bank, tpcc
}

/// A run's summary: counts, the fast-path rate, and latencies in wide-area
/// round trips of the cluster's profile.
public struct ShardedSummary: Equatable, Sendable {
    public var nowUs: UInt64 = 0
    public var roundTripUs: UInt64 = 0
    public var submitted: UInt64 = 0
    public var committed: UInt64 = 0
    public var aborted: UInt64 = 0
    public var inFlight: UInt64 = 0
    /// Submitted through coordinators that crashed before acknowledging
    /// (their shards finish them; no client hears).
    public var unacknowledged: UInt64 = 0
    public var replies: UInt64 = 0
    /// Replies whose agreed timestamp was the coordinator's own.
    public var fastPath: UInt64 = 0
    public var retries: UInt64 = 0
    /// Two-phase commit: attempts aborted by a lock conflict and retried.
    public var conflictRetries: UInt64 = 0
    public var opsApplied: UInt64 = 0
    public var messages: UInt64 = 0
    public var dropped: UInt64 = 0
    public var latencyP50: Double = 0
    public var latencyP99: Double = 0
    /// From the last reply to the acknowledgement: the watermark lag.
    public var watermarkWaitP50: Double = 0
}

extension ShardedCluster {
    /// Queues `count` transactions of a built-in workload (see `load`). The
    /// first load of bank or tpcc first opens the accounts or warehouses and
    /// runs until they are committed.
    public func load(_ kind: BuiltinWorkload, count: Int, crossShard: Double) throws {
        guard count >= 0, crossShard >= 0, crossShard <= 1 else {
            throw LuigiError.invalidArgument("count must be >= 0 and cross_shard in [0, 1]")
        }
        let workload: WatermarkWorkload
        var setup: [[UInt64: [Op]]] = []
        switch kind {
        case .micro:
            workload = MicroWorkload(keysPerShard: 1_000, crossShard: crossShard)
        case .bank:
            let bank = BankWorkload(accountsPerShard: 100, initialBalance: 1_000, crossShard: crossShard)
            workload = bank
            setup = bank.setup(shards: options.shards)
        case .tpcc:
            let tpcc = TPCCWorkload(warehousesPerShard: 2, crossShard: crossShard)
            workload = tpcc
            setup = tpcc.setup(shards: options.shards)
        }
        if !setup.isEmpty && !setUp.contains(kind) {
            guard try awaitLeaders(limitUs: 1_000 * options.profile.roundTripUs) else {
                throw LuigiError.timeout("no shard leaders to set the \(kind.rawValue) workload up")
            }
            for parts in setup { try submit(parts) }
            guard try runUntilIdle(limitUs: 1_000 * options.profile.roundTripUs) else {
                throw LuigiError.timeout("the \(kind.rawValue) setup did not commit")
            }
            setUp.insert(kind)
        }
        try load(workload, count: count)
    }

    /// The acknowledged outcome of `id` (nil while pending or unknown).
    public func result(of id: TxnId) -> Completion? { completionsByID[id] }

    /// The committed value of `key` on `shard`: its leader's, else its
    /// first live replica's (nil: absent).
    public func value(_ key: String, shard: UInt64) throws -> Int64? {
        guard shard < UInt64(options.shards) else { throw LuigiError.invalidArgument("no shard \(shard)") }
        let ids = (leader(of: shard).map { [$0] } ?? []) + replicaIDs(shard)
        for id in ids {
            if let st = state(of: id) { return st.store[key] }
            if let tp = twoPhaseShard(of: id) { return tp.store[key] }
        }
        throw LuigiError.state("every replica of shard \(shard) is down")
    }

    public func summary() -> ShardedSummary {
        var s = ShardedSummary()
        s.nowUs = now
        s.roundTripUs = options.profile.roundTripUs
        for c in crashedCoordinatorStats { s.unacknowledged += c.submitted - c.committed - c.aborted }
        for c in coordinatorStats() + crashedCoordinatorStats {
            s.submitted += c.submitted; s.committed += c.committed; s.aborted += c.aborted
            s.replies += c.replies; s.fastPath += c.fastPath; s.retries += c.retries
        }
        for c in twoPhaseStats() {
            s.submitted += c.submitted; s.committed += c.committed; s.aborted += c.aborted
            s.conflictRetries += c.conflictRetries
        }
        s.inFlight = UInt64(inFlight)
        for shard in 0..<UInt64(options.shards) {
            for id in replicaIDs(shard) {
                if let st = state(of: id) { s.opsApplied += st.opsApplied; break }
                if let tp = twoPhaseShard(of: id) { s.opsApplied += tp.opsApplied; break }
            }
        }
        s.messages = network.stats.sent
        s.dropped = network.stats.dropped
        let rtt = Double(options.profile.roundTripUs)
        let done = completions.filter { $0.outcome == .committed }
        s.latencyP50 = percentile(done.map { Double($0.completedAt - $0.submittedAt) / rtt }, 0.5)
        s.latencyP99 = percentile(done.map { Double($0.completedAt - $0.submittedAt) / rtt }, 0.99)
        s.watermarkWaitP50 = percentile(done.map { Double($0.completedAt - $0.repliedAt) / rtt }, 0.5)
        return s
    }
}

/// The p-th percentile (nearest rank) of `xs`; 0 when empty.
public func percentile(_ xs: [Double], _ p: Double) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s[min(s.count - 1, Int(Double(s.count - 1) * p + 0.5))]
}

extension ShardedCluster {
    /// Checks the run so far: the watermark protocol against every
    /// invariant of `WatermarkChecker`; the baseline by equal stores and
    /// counters on the live replicas of a shard, and one applied part per
    /// committed part. Throws the first `WatermarkViolation`.
    public func checkInvariants() throws {
        switch options.proto {
        case .watermark:
            var checker = WatermarkChecker()
            try checker.check(self)
        case .twoPhaseCommit:
            var parts: UInt64 = 0
            for c in completions where c.outcome == .committed { parts += UInt64(submitted[c.id]?.count ?? 0) }
            var applied: UInt64 = 0
            for s in 0..<UInt64(options.shards) {
                let shards = replicaIDs(s).compactMap { twoPhaseShard(of: $0) }
                guard let first = shards.first,
                    shards.allSatisfy({ $0.store == first.store && $0.opsApplied == first.opsApplied })
                else { throw WatermarkViolation(invariant: "baseline replication", detail: "shard \(s)'s replicas differ") }
                applied += first.partsApplied
            }
            guard applied == parts else {
                throw WatermarkViolation(invariant: "baseline ops applied", detail: "\(applied) parts applied for \(parts) committed")
            }
        }
    }
}
