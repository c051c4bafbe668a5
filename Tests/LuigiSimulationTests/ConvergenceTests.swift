import LuigiCore
import LuigiSimulation
import PropertyBased
import Testing

@Suite struct ConvergenceTests {
    /// Random histories on 2-5 replicas, delivered to a fresh observer and to
    /// each other in random permutations with duplicates, end identical and
    /// equal to the sequential reference.
    @Test func anyDeliveryOrderConvergesToTheReference() throws {
        for seed in seeds(300) {
            var gen = HistoryGenerator(seed: seed)
            let n = Int.random(in: 2...5, using: &gen.rng)
            let replicas = (0..<n).map { Replica(nodeID: UInt64($0)) }
            var reference = SequentialReference()
            var shipped: [Update] = []
            for _ in 0..<Int.random(in: 1...30, using: &gen.rng) {
                let origin = replicas[Int.random(in: 0..<n, using: &gen.rng)]
                // Sometimes learn a few updates first, so histories have causal depth.
                for u in shipped.shuffled(using: &gen.rng).prefix(Int.random(in: 0...3, using: &gen.rng)) {
                    origin.apply(u)
                }
                let ops = gen.transaction()
                reference.apply(ops)
                shipped.append(try origin.commit(ops))
            }
            for r in replicas {
                var delivery = shipped + shipped.prefix(Int.random(in: 0...shipped.count, using: &gen.rng))
                delivery.shuffle(using: &gen.rng)
                for u in delivery { r.apply(u) }
            }
            let first = replicas[0]
            for r in replicas {
                #expect(r.pendingCount == 0, "seed \(seed)")
                #expect(r.clock == first.clock, "seed \(seed)")
                #expect(reference.matches(r), "seed \(seed): replica \(r.nodeID) differs from the reference")
            }
        }
    }

    @Test func clusterConvergesUnderFaultsPartitionAndHeal() throws {
        for seed in seeds(60) {
            var gen = HistoryGenerator(seed: seed)
            let n = Int.random(in: 3...8, using: &gen.rng)
            let cluster = try SimulatedCluster(
                .init(nodes: n, seed: seed, fanout: 2,
                      faults: NetworkFaults(drop: 0.2, duplicate: 0.2, reorder: 0.3, maxDelay: 2)))
            var reference = SequentialReference()
            try cluster.partition([Array(0..<n / 2)])
            for round in 0..<40 {
                if round == 20 { cluster.heal() }
                let ops = gen.transaction()
                reference.apply(ops)
                try cluster[Int.random(in: 0..<n, using: &gen.rng)].commit(ops)
                cluster.run(rounds: 1)
            }
            cluster.heal()
            try cluster.setFaults(.none)
            let rounds = try cluster.runUntilConverged(maxRounds: 500)
            #expect(rounds <= 500, "seed \(seed)")
            for r in cluster.replicas {
                #expect(reference.matches(r), "seed \(seed): node \(r.nodeID) differs from the reference")
            }
            let stats = cluster.stats
            #expect(stats.dropped > 0 && stats.duplicated > 0, "seed \(seed): faults were not exercised")
        }
    }

    @Test func partitionedGroupsCannotConverge() throws {
        let cluster = try SimulatedCluster(.init(nodes: 4, seed: 7))
        try cluster.partition([[0, 1], [2, 3]])
        try cluster[0].commit { try $0.add("x", 1) }
        try cluster[3].commit { try $0.add("x", 2) }
        #expect(throws: LuigiError.self) { try cluster.runUntilConverged(maxRounds: 50) }
        #expect(cluster[1].value("x") == .counter(1))
        #expect(cluster[2].value("x") == .counter(2))
        cluster.heal()
        try cluster.runUntilConverged(maxRounds: 100)
        #expect(cluster.replicas.allSatisfy { $0.value("x") == .counter(3) })
    }

    @Test func concurrentTypeConflictsConvergeAndAreCounted() throws {
        for seed in seeds(30) {
            let cluster = try SimulatedCluster(.init(nodes: 5, seed: seed, faults: NetworkFaults(reorder: 0.5, maxDelay: 3)))
            try cluster[3].commit { try $0.add("k", 1) }
            try cluster[1].commit { try $0.union("k", .int(1)) }
            try cluster[4].commit { try $0.max("k", .int(1)) }
            try cluster.setFaults(.none)
            try cluster.runUntilConverged(maxRounds: 200)
            // Dot (1, 1) is the smallest first dot: the set wins on every replica.
            #expect(cluster.replicas.allSatisfy { $0.value("k") == .set([.int(1)]) }, "seed \(seed)")
            #expect(cluster.replicas.allSatisfy { $0.conflicts == 2 }, "seed \(seed)")
            #expect(cluster.stats.typeConflicts == 10, "seed \(seed)")
        }
    }

    /// Anti-entropy ships each update to each other node about once: bytes per
    /// update do not grow with the number of updates already known.
    @Test func deltaSyncShipsOnlyMissingUpdates() throws {
        let cluster = try SimulatedCluster(.init(nodes: 2, seed: 1))
        for i in 0..<100 { try cluster[i % 2].commit { try $0.add("c", 1) } }
        try cluster.runUntilConverged(maxRounds: 10)
        #expect(cluster.stats.updatesShipped == 100)
        for _ in 0..<10 { try cluster[0].commit { try $0.add("c", 1) } }
        try cluster.runUntilConverged(maxRounds: 10)
        #expect(cluster.stats.updatesShipped == 110)
    }

    @Test func badOptionsAreRejected() {
        #expect(throws: LuigiError.self) { try SimulatedCluster(.init(nodes: 0)) }
        #expect(throws: LuigiError.self) { try SimulatedCluster(.init(nodes: 3, fanout: 0)) }
        #expect(throws: LuigiError.self) { try SimulatedCluster(.init(nodes: 3, faults: NetworkFaults(drop: 1))) }
        #expect(throws: LuigiError.self) { try SimulatedCluster(.init(nodes: 3, faults: NetworkFaults(drop: .nan))) }
        #expect(throws: LuigiError.self) { try SimulatedCluster(.init(nodes: 3)).partition([[0], [0]]) }
    }

    @Test func sameSeedSameRun() throws {
        func run() throws -> SimulatedCluster.Stats {
            let c = try SimulatedCluster(.init(nodes: 6, seed: 42, faults: NetworkFaults(drop: 0.3, duplicate: 0.1, reorder: 0.2, maxDelay: 2)))
            for i in 0..<6 { try c[i].commit { try $0.add("x", Int64(i)) } }
            try c.runUntilConverged(maxRounds: 500)
            return c.stats
        }
        #expect(try run() == run())
    }
}
