import LuigiBase
import LuigiClient
import LuigiCore
import LuigiNode
import LuigiWire
import Testing

/// Replica groups over real sockets: commits on any node, delta
/// anti-entropy between nodes, coordinated transactions through the log,
/// durability of each node's own updates.
@Suite(.serialized) struct ReplicaGroupTests {
    static let group = NodeConfig.replicaGroupBase + 1

    func cluster() throws -> LocalCluster {
        try LocalCluster { config in
            config.replicaGroups = 1
            config.antiEntropyMillis = 20
        }
    }

    /// Every node's replica shows `expected` for `key` within a few seconds.
    func converges(_ cluster: LocalCluster, _ key: String, _ expected: Value?, nodes: [UInt64]? = nil) async throws -> Bool {
        let client = try cluster.client()
        return await eventually(seconds: 10) {
            (nodes ?? cluster.ids).allSatisfy { id in
                (try? client.value(key, group: Self.group, endpoint: cluster.members[id]!.description)) == .some(expected)
            }
        }
    }

    @Test func commitsOnEveryNodeConvergeEverywhere() async throws {
        let cluster = try cluster()
        try await cluster.startAll()
        var total: Int128 = 0
        for id in cluster.ids {
            let pinned = try cluster.client(endpoints: [cluster.members[id]!.description])
            for i in 1...10 {
                let dot = try pinned.commit([.add(key: "views", delta: Int64(i)), .union(key: "tags", elements: [.int(Int64(id))])], group: Self.group)
                #expect(dot.origin == id)
                total += Int128(i)
            }
            try pinned.commit([.max(key: "peak", value: .int(Int64(id) * 100))], group: Self.group)
        }
        #expect(try await converges(cluster, "views", .counter(total)))
        #expect(try await converges(cluster, "tags", .set([.int(1), .int(2), .int(3)])))
        #expect(try await converges(cluster, "peak", .max(.int(300))))
        // /status counts each node's replica: every update applied, none waiting or refused.
        for id in cluster.ids {
            let status = try cluster.client(endpoints: [cluster.members[id]!.description]).status()
            #expect(status.contains("\"replica\":{\"updates\":33,\"waiting\":0,\"not_kept\":0}"), "node \(id): \(status)")
        }
        await cluster.stopAll()
    }

    @Test func coordinatedSetAppliesEverywhereOnceAndTypedErrorsRefuse() async throws {
        let cluster = try cluster()
        try await cluster.startAll()
        let client = try cluster.client()
        try client.coordinate([.set(key: "mode", value: .int(7)), .add(key: "changes", delta: 1)], group: Self.group)
        #expect(try await converges(cluster, "mode", .register(.int(7))))
        #expect(try await converges(cluster, "changes", .counter(1)))
        // A set outside the log is refused; so is another type on a key.
        #expect(throws: LuigiError.notAlgebraic("a transaction with set needs the group's log: send it as coordinated")) {
            try client.commit([.set(key: "mode", value: .int(8))], group: Self.group)
        }
        // On one node (another that has not seen the counter yet may take
        // the max: concurrent types converge by the replicas' rule).
        let pinned = try cluster.client(endpoints: [cluster.members[1]!.description])
        try pinned.commit([.add(key: "count", delta: 1)], group: Self.group)
        #expect {
            try pinned.commit([.max(key: "count", value: .int(3))], group: Self.group)
        } throws: { error in
            guard case LuigiError.typeConflict = error else { return false }
            return true
        }
        // Key-value operations do not reach a replica group, nor the reverse.
        #expect(throws: LuigiError.self) { try client.put("k", [1], group: Self.group, timeoutMillis: 500) }
        #expect(throws: LuigiError.self) { try client.commit([.add(key: "x", delta: 1)], group: 1, timeoutMillis: 500) }
        #expect(try await converges(cluster, "mode", .register(.int(7))))
        await cluster.stopAll()
    }

    @Test func ownUpdatesSurviveARestartAndAStoppedNodeCatchesUp() async throws {
        let cluster = try cluster()
        try await cluster.startAll()
        let one = try cluster.client(endpoints: [cluster.members[1]!.description])
        for _ in 0..<5 { try one.commit([.add(key: "n", delta: 1)], group: Self.group) }
        #expect(try await converges(cluster, "n", .counter(5)))
        // Node 3 is down while 1 and 2 commit; it catches up by anti-entropy.
        await cluster.stop(3)
        let two = try cluster.client(endpoints: [cluster.members[2]!.description])
        for _ in 0..<5 { try two.commit([.add(key: "n", delta: 10)], group: Self.group) }
        // Node 1 restarts: its own five updates come back from its log, and
        // its next commit takes the next dot (no dot is ever reused).
        await cluster.stop(1)
        try await cluster.start(1)
        let dot = try one.commit([.add(key: "n", delta: 100)], group: Self.group)
        #expect(dot == Dot(origin: 1, seq: 6))
        try await cluster.start(3)
        #expect(try await converges(cluster, "n", .counter(155)))
        await cluster.stopAll()
    }
}
