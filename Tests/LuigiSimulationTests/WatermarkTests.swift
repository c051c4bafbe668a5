import LuigiCore
import LuigiSimulation
import Testing

/// Runs `count` transactions of `workload` on `cluster`, drains it, lets
/// followers catch up, and checks every invariant.
@discardableResult
func runChecked(_ cluster: WatermarkCluster, _ workload: WatermarkWorkload, count: Int,
                setup: [[UInt64: [Op]]] = [], faults: ((WatermarkCluster, inout SplitMix64) throws -> Void)? = nil,
                seed: UInt64 = 0) throws -> WatermarkChecker {
    for parts in setup { try cluster.submit(parts) }
    #expect(try cluster.runUntilIdle(limitUs: 500 * cluster.options.profile.roundTripUs), "setup did not finish")
    cluster.load(workload, count: count)
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
    return checker
}

@Suite struct WatermarkClusterTests {
    @Test func microCommitsEverythingWithoutFaults() throws {
        var o = WatermarkCluster.Options()
        o.shards = 2
        o.replicas = 3
        o.window = 16
        let cluster = try WatermarkCluster(o)
        let checker = try runChecked(cluster, MicroWorkload(keysPerShard: 50), count: 300)
        #expect(checker.committedCount == 300)
        #expect(cluster.completions.count == 300)
        #expect(cluster.completions.allSatisfy { $0.outcome == .committed })
        let stats = cluster.coordinatorStats()[0]
        #expect(stats.fastPath > 0)
    }

    @Test func bankKeepsTheMoney() throws {
        var o = WatermarkCluster.Options()
        o.shards = 3
        o.window = 12
        let cluster = try WatermarkCluster(o)
        let bank = BankWorkload(accountsPerShard: 5)
        let checker = try runChecked(cluster, bank, count: 300, setup: bank.setup(shards: 3))
        var total: Int64 = 0
        for s in 0..<UInt64(3) {
            let st = cluster.state(of: cluster.replicaIDs(s)[0])!
            total += st.store.values.reduce(0, +)
        }
        #expect(total == bank.total(shards: 3))
        #expect(checker.abortedCount > 0, "balance checks should fail sometimes")
        #expect(checker.committedCount > 0)
    }
}
