import LuigiCore

/// Seeded runs of a `ShardedCluster` with their checks: what the tests'
/// sweeps, `make soak` and the simulator tool share.
public enum WatermarkSchedule {
    /// Runs `count` transactions of `workload` on `cluster`, drains it, lets
    /// followers catch up, and checks every invariant.
    @discardableResult
    public static func runChecked(
        _ cluster: ShardedCluster, _ workload: WatermarkWorkload, count: Int, setup: [[UInt64: [Op]]] = [],
        faults: ((ShardedCluster, inout SplitMix64) throws -> Void)? = nil, seed: UInt64 = 0
    ) throws -> WatermarkChecker {
        for parts in setup { try cluster.submit(parts) }
        guard try cluster.runUntilIdle(limitUs: 500 * cluster.options.profile.roundTripUs) else {
            throw WatermarkViolation(invariant: "liveness", detail: "the setup transactions did not finish")
        }
        try cluster.load(workload, count: count)
        var rng = SplitMix64(seed: seed ^ 0xFA17)
        if let faults { try faults(cluster, &rng) }
        cluster.heal()
        try cluster.setNetworkFaults(drop: 0, duplicate: 0, reorder: 0)
        for id in cluster.crashedReplicas() { try cluster.restart(id) }
        let idle = try cluster.runUntilIdle(limitUs: 2_000 * cluster.options.profile.roundTripUs)
        try cluster.run(forUs: 50 * cluster.options.profile.roundTripUs)
        var checker = WatermarkChecker()
        try checker.check(cluster)
        if !idle {
            throw WatermarkViolation(invariant: "liveness",
                                     detail: "\(cluster.inFlight) in flight and \(cluster.pendingSubmissions) unsent after healing")
        }
        try checkRetirement(cluster)
        return checker
    }

    /// A crashed coordinator was taken over by its successor: nothing it left
    /// stays on any replica, but what sits above a gap in its stream (a seq
    /// that never ran on any shard may still arrive, so the successor never
    /// retires past it).
    static func checkRetirement(_ cluster: ShardedCluster) throws {
        let current = Set(cluster.coordinatorIDs)
        var ran = Set<TxnId>()
        for s in 0..<cluster.options.shards {
            for entry in cluster.committed[s].values {
                if case .exec(let e)? = try? ShardRecord(decoding: entry.data) { ran.insert(e.id) }
            }
        }
        let states = (0..<UInt64(cluster.options.shards)).flatMap { s in cluster.replicaIDs(s).compactMap { cluster.state(of: $0) } }
        for state in states {
            for id in state.txns.keys.sorted() where !current.contains(id.coordinator) {
                let retired = states.map { $0.retiredBelow(id.coordinator, id.worker) }.max() ?? 0
                let gap = (max(retired, 1)..<id.seq).contains { !ran.contains(TxnId(coordinator: id.coordinator, worker: id.worker, seq: $0)) }
                if !gap {
                    throw WatermarkViolation(
                        invariant: "retirement", detail: "shard \(state.shard) still holds \(id) of a crashed coordinator (retired below \(retired))")
                }
            }
        }
    }

    /// One randomized schedule: a random cluster shape, clock skew, workload,
    /// and faults (loss, duplication, reordering, partitions, leader crashes and
    /// restarts) for a while, then healing; every invariant is checked.
    /// `compactEvery` > 0 compacts every replica's log (`Options.compactEvery`).
    public static func random(seed: UInt64, transactions: Int = 40, compactEvery: Int = 0) throws -> (ShardedCluster, WatermarkChecker) {
        var rng = SplitMix64(seed: seed)
        var o = ShardedCluster.Options()
        o.seed = seed
        o.shards = Int.random(in: 1...3, using: &rng)
        o.replicas = rng.chance(0.8) ? 3 : 1
        o.workers = Int.random(in: 1...3, using: &rng)
        o.coordinators = Int.random(in: 1...2, using: &rng)
        o.window = Int.random(in: 2...10, using: &rng)
        o.skewUs = [0, 500, 2_000, 10_000][Int.random(in: 0...3, using: &rng)]
        o.driftPpm = rng.chance(0.5) ? 100 : 0
        if rng.chance(0.2) { o.rule = .ownStream }
        o.compactEvery = compactEvery
        // Half the seeds run the shards as luigi-node does (any coordinator id).
        o.openCoordinators = seed % 2 == 1
        let cluster = try ShardedCluster(o)
        let bank = BankWorkload(accountsPerShard: 4, crossShard: 0.6)
        let useBank = rng.chance(0.5)
        let workload: WatermarkWorkload = useBank ? bank : MicroWorkload(keysPerShard: 8, zipf: rng.chance(0.5) ? 0.9 : 0, crossShard: 0.6, ops: 4)
        let rtt = o.profile.roundTripUs
        let faulty = rng.chance(0.75)
        let checker = try runChecked(cluster, workload, count: transactions, setup: useBank ? bank.setup(shards: o.shards) : [],
                                     faults: { c, r in
            guard faulty else { return }
            for _ in 0..<Int.random(in: 1...8, using: &r) {
                switch Int.random(in: 0..<7, using: &r) {
                case 6:
                    if r.chance(0.5) { try? c.crashCoordinator(Int.random(in: 0..<o.coordinators, using: &r)) }
                case 0: try c.setNetworkFaults(drop: 0.1, duplicate: 0.05, reorder: 0.1)
                case 1: try c.setNetworkFaults(drop: 0, duplicate: 0, reorder: 0)
                case 2, 3:
                    let s = UInt64.random(in: 0..<UInt64(o.shards), using: &r)
                    if o.replicas == 3, let l = c.leader(of: s),
                        c.crashedReplicas().allSatisfy({ !c.replicaIDs(s).contains($0) })
                    {
                        try c.crash(l)
                    }
                case 4:
                    for id in c.crashedReplicas() { try c.restart(id) }
                default:
                    let s = UInt64.random(in: 0..<UInt64(o.shards), using: &r)
                    switch Int.random(in: 0..<3, using: &r) {
                    case 0:
                        try c.partition([[c.replicaIDs(s)[Int.random(in: 0..<o.replicas, using: &r)]]])
                    case 1:
                        // The leader loses its followers but still reaches
                        // other shards: a deposed leader keeps talking.
                        if let l = c.leader(of: s) {
                            for f in c.replicaIDs(s) where f != l { try c.cut(l, f) }
                        }
                    default:
                        c.heal()
                    }
                }
                try c.run(forUs: UInt64.random(in: 1...20, using: &r) * rtt)
            }
        }, seed: seed)
        if useBank {
            var total: Int64 = 0
            for s in 0..<UInt64(o.shards) {
                let live = cluster.replicaIDs(s).first { cluster.state(of: $0) != nil }!
                total += cluster.state(of: live)!.store.values.reduce(0, +)
            }
            if total != bank.total(shards: o.shards) {
                throw WatermarkViolation(invariant: "bank total", detail: "\(total), expected \(bank.total(shards: o.shards))")
            }
        }
        return (cluster, checker)
    }
}
