import LuigiCore
import LuigiSimulation
import Testing

@Suite struct ShardedClusterTests {
    @Test func microCommitsEverythingWithoutFaults() throws {
        var o = ShardedCluster.Options()
        o.shards = 2
        o.replicas = 3
        o.window = 16
        let cluster = try ShardedCluster(o)
        let checker = try WatermarkSchedule.runChecked(cluster, MicroWorkload(keysPerShard: 50), count: 300)
        #expect(checker.committedCount == 300)
        #expect(cluster.completions.count == 300)
        #expect(cluster.completions.allSatisfy { $0.outcome == .committed })
        let stats = cluster.coordinatorStats()[0]
        #expect(stats.fastPath > 0)
        #expect(stats.disagreements == 0, "without failovers, replies never disagree")
    }

    @Test func bankKeepsTheMoney() throws {
        var o = ShardedCluster.Options()
        o.shards = 3
        o.window = 12
        let cluster = try ShardedCluster(o)
        let bank = BankWorkload(accountsPerShard: 5)
        let checker = try WatermarkSchedule.runChecked(cluster, bank, count: 300, setup: bank.setup(shards: 3))
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

@Suite struct WatermarkSweepTests {
    @Test func randomSchedulesKeepEveryInvariant() throws {
        let scale = Int(getenvString("LUIGI_SWEEP_SCALE") ?? "") ?? 1
        var committed = 0, slowPath = 0, adopted: UInt64 = 0
        for seed in seeds(40 * scale) {
            do {
                let (cluster, checker) = try WatermarkSchedule.random(seed: seed)
                committed += checker.committedCount
                slowPath += cluster.completions.filter { $0.ts > $0.proposedTs }.count
                adopted += cluster.coordinatorStats().reduce(0) { $0 + $1.adopted }
            } catch {
                Issue.record("seed \(seed) (LUIGI_SEED=\(seed) to replay): \(error)")
            }
        }
        if getenvString("LUIGI_SEED") == nil {
            #expect(committed > 0)
            #expect(slowPath > 0, "skew and conflicts should move some timestamps above the coordinator's")
            #expect(adopted > 0, "crashed coordinators should leave transactions for their successors")
        }
    }
}

@Suite struct TwoPhaseBaselineTests {
    @Test func commitsAMicroRun() throws {
        var o = ShardedCluster.Options()
        o.proto = .twoPhaseCommit
        o.shards = 2
        o.replicas = 3
        o.window = 8
        let cluster = try ShardedCluster(o)
        #expect(try cluster.awaitLeaders(limitUs: 1_000_000))
        try cluster.load(MicroWorkload(keysPerShard: 50, crossShard: 0.7), count: 100)
        let idle = try cluster.runUntilIdle(limitUs: 10_000_000)
        #expect(idle, "in flight \(cluster.inFlight), unsent \(cluster.pendingSubmissions), completions \(cluster.completions.count), stats \(cluster.twoPhaseStats())")
        #expect(cluster.completions.count == 100)
    }
}

@Suite struct WatermarkReadmeTests {
    /// The README's Swift example, as written there.
    @Test func readmeExampleRuns() throws {
        var options = ShardedCluster.Options()
        options.shards = 2
        options.replicas = 3
        let cluster = try ShardedCluster(options)
        let id = try cluster.submit([0: [.check("a", atLeast: 0), .add("a", -5)], 1: [.add("b", 5), .read("b")]])
        _ = try cluster.runUntilIdle(limitUs: 10_000_000)
        try cluster.run(forUs: 100_000)
        try cluster.checkInvariants()
        #expect(cluster.result(of: id)?.outcome == .committed)
        #expect(try cluster.value("b", shard: 1) == 5)
        #expect(try cluster.value("a", shard: 0) == -5)
    }
}

@Suite struct CoordinatorAdoptionTests {
    /// A coordinator takes over other ids only: never its own, at most 64
    /// ranges; a refused range changes nothing.
    @Test func adoptRefusesItsOwnIdAndPast64Ranges() throws {
        var config = CoordinatorConfig(id: 500, shardCount: 2, workers: 1)
        config.predecessors = [1...1]
        #expect(throws: LuigiError.self) { _ = try Coordinator(config: { var c = config; c.predecessors = [400...600]; return c }()) }
        let c = try Coordinator(config: config)
        #expect(c.isAdopting && c.answers(for: 1) && !c.answers(for: 2))
        #expect(throws: LuigiError.self) { try c.adopt(499...501) }
        for i in UInt64(2)...64 { try c.adopt(i * 2...i * 2) }
        #expect(throws: LuigiError.self) { try c.adopt(300...300) }
        #expect(c.predecessors.count == 64 && !c.answers(for: 300) && c.answers(for: 128))
    }

    /// An orphans page is refused, changing nothing, unless each of its
    /// transactions stays within this coordinator's shards and streams
    /// (one that did not would be driven, and index past them on a retry).
    @Test func anOrphanOutsideItsShardsOrStreamsIsRefused() throws {
        var config = CoordinatorConfig(id: 500, shardCount: 2, workers: 1)
        config.predecessors = [7...7]
        config.retryAfter = 10
        let c = try Coordinator(config: config)
        c.tick(now: 100)
        #expect(c.takeOutput().contains { if case .orphansAsk(500, let pass, 7, 7, nil) = $0.message { pass == 1 } else { false } })
        func page(_ txn: Txn) -> WatermarkEnvelope {
            WatermarkEnvelope(to: 500, .orphans(shard: 0, term: 1, pass: 1, after: nil, txns: [txn], retired: [], more: false))
        }
        let wideShards = Txn(id: TxnId(coordinator: 7, worker: 0, seq: 1), ts: 50, mayAbort: false,
                             parts: [ShardOps(shard: 0, ops: [.write("a", 1)]), ShardOps(shard: 5, ops: [.write("b", 1)])])
        let wideWorker = Txn(id: TxnId(coordinator: 7, worker: 3, seq: 1), ts: 50, mayAbort: false,
                             parts: [ShardOps(shard: 0, ops: [.write("a", 1)])])
        let elsewhere = Txn(id: TxnId(coordinator: 7, worker: 0, seq: 1), ts: 50, mayAbort: false,
                            parts: [ShardOps(shard: 1, ops: [.write("a", 1)])])
        for txn in [wideShards, wideWorker, elsewhere] {
            #expect(throws: LuigiError.self) { try c.step(page(txn), now: 110) }
        }
        for t in stride(from: UInt64(200), to: 2_000, by: 100) { c.tick(now: t) }  // no retry indexes past the shards
        #expect(c.inFlightCount == 0 && c.isAdopting)
        let fine = Txn(id: TxnId(coordinator: 7, worker: 0, seq: 1), ts: 50, mayAbort: false, parts: [ShardOps(shard: 0, ops: [.write("a", 1)])])
        try c.step(page(fine), now: 2_000)
        #expect(c.inFlightCount == 1)
    }
}
