import LuigiCore
import LuigiSimulation
import Testing

/// Whole-cluster scenarios on the simulator. Every step of every run checks
/// election safety, state-machine safety and leader completeness (a
/// violation throws `RaftCluster.SafetyViolation`).
@Suite struct RaftScenarioTests {
    static func cluster(_ n: Int = 3, seed: UInt64, preVote: Bool = true, checkQuorum: Bool = true,
                        compactAfter: Int = 0) throws -> RaftCluster {
        var o = RaftCluster.Options(nodes: n, seed: seed)
        o.preVote = preVote
        o.checkQuorum = checkQuorum
        o.compactAfter = compactAfter
        return try RaftCluster(o)
    }

    @Test func replicatesFiveThousandEntriesToEveryNode() throws {
        let c = try Self.cluster(seed: 1)
        try c.electLeader()
        for i in 0..<5_000 { try c.propose(bytes("e\(i)")) }
        try c.settle()
        let expected = (0..<5_000).map { bytes("e\($0)") }
        for id in c.nodeIDs {
            let applied = c.appliedCommands(id)
            #expect(applied.count == expected.count, "node \(id)")
            #expect(applied == expected ? true : false, "node \(id): applied log differs")
        }
    }

    @Test func leaderCrashElectsANewLeaderAndTheOldOneCatchesUp() throws {
        for seed in raftSeeds(20) {
            let c = try Self.cluster(seed: seed)
            let first = try c.electLeader()
            #expect(try c.put("a", "1"), "seed \(seed)")
            c.crash(first)
            let second = try c.electLeader()
            #expect(second != first, "seed \(seed)")
            #expect(try c.put("b", "2"), "seed \(seed)")
            try c.restart(first)
            try c.settle()
            #expect(c.machine(first)?.data == ["a": bytes("1"), "b": bytes("2")], "seed \(seed)")
            #expect(c.status(first)?.role == .follower, "seed \(seed)")
        }
    }

    @Test func partitionedLeaderCannotCommitAndTheMajorityMovesOn() throws {
        for seed in raftSeeds(20) {
            let c = try Self.cluster(5, seed: seed)
            let old = try c.electLeader()
            #expect(try c.put("k", "before"), "seed \(seed)")
            let others = c.nodeIDs.filter { $0 != old }
            let buddy = others[0]
            // The leader and one follower on one side, three on the other.
            for a in [old, buddy] { for b in others.dropFirst() { c.cut(a, b) } }
            let index = try c.node(old)!.propose(bytes("lost"))
            try c.tick(50)
            #expect((c.status(old)?.commit ?? 0) < index, "seed \(seed): the minority committed")
            let majorityLeader = try #require(c.nodeIDs.first { c.status($0)?.role == .leader && $0 != old && $0 != buddy },
                                               "seed \(seed): the majority has no leader")
            _ = majorityLeader
            #expect(try c.put("k", "after"), "seed \(seed)")
            c.heal()
            try c.settle()
            for id in c.nodeIDs {
                #expect(c.machine(id)?.data["k"] == bytes("after"), "seed \(seed) node \(id)")
                #expect(!c.appliedCommands(id).contains(bytes("lost")), "seed \(seed) node \(id)")
            }
        }
    }

    @Test func cascadeFailureStopsCommitsUntilRecovery() throws {
        let c = try Self.cluster(seed: 3)
        let l = try c.electLeader()
        #expect(try c.put("x", "1"))
        let followers = c.nodeIDs.filter { $0 != l }
        c.crash(followers[0])
        c.crash(followers[1])
        #expect(try c.put("x", "2", timeout: 100) == false)
        #expect(c.machine(l)?.data["x"] == bytes("1"))
        try c.restart(followers[0])
        try c.restart(followers[1])
        try c.electLeader()
        try c.settle()
        #expect(try c.put("x", "3"))
        try c.settle()
        for id in c.nodeIDs { #expect(c.machine(id)?.data["x"] == bytes("3"), "node \(id)") }
    }

    /// A follower cut off for a while comes back. Without pre-vote it has
    /// bumped its term and forces the healthy leader to step down; with
    /// pre-vote it cannot win a pre-vote and the leader stays.
    @Test(arguments: [false, true])
    func disruptiveFollower(preVote: Bool) throws {
        let c = try Self.cluster(seed: 5, preVote: preVote, checkQuorum: false)
        let l = try c.electLeader()
        let termBefore = c.status(l)!.term
        let lonely = c.nodeIDs.first { $0 != l }!
        c.isolate(lonely)
        try c.tick(100)
        c.heal()
        try c.tick(30)
        if preVote {
            #expect(c.status(l)?.role == .leader && c.status(l)?.term == termBefore)
            #expect(c.status(lonely)?.term == termBefore)
        } else {
            #expect(c.status(lonely)!.term > termBefore)
            #expect(c.status(l)?.term != termBefore || c.status(l)?.role != .leader)
        }
    }

    @Test func checkQuorumMakesAnIsolatedLeaderStepDown() throws {
        let c = try Self.cluster(seed: 6, checkQuorum: true)
        let l = try c.electLeader()
        c.isolate(l)
        try c.tick(30)
        #expect(c.status(l)?.role == .follower)
        c.heal()
        try c.electLeader()
    }

    @Test func snapshotCatchUpAfterCompaction() throws {
        let c = try Self.cluster(seed: 7, compactAfter: 50)
        let l = try c.electLeader()
        let lagging = c.nodeIDs.first { $0 != l }!
        c.crash(lagging)
        for i in 0..<300 { #expect(try c.put("k\(i % 10)", "v\(i)")) }
        #expect(try c.storage(l)!.firstIndex() > 2, "the leader compacted its log")
        try c.restart(lagging)
        try c.settle()
        #expect(c.machine(lagging)?.data == c.machine(l)?.data)
        #expect(c.machine(lagging)?.data["k9"] == bytes("v299"))
    }

    @Test func addAndRemoveANode() throws {
        let c = try Self.cluster(seed: 8)
        let l = try c.electLeader()
        #expect(try c.put("a", "1"))
        let added = try c.addNode()
        try c.settle()
        #expect(c.status(l)?.conf.voters.contains(added) == true)
        #expect(c.machine(added)?.data["a"] == bytes("1"))
        let removed = c.nodeIDs.first { $0 != l && $0 != added }!
        try c.removeNode(removed)
        try c.settle()
        #expect(c.status(l)?.conf.voters.contains(removed) == false)
        c.crash(removed)
        #expect(try c.put("b", "2"))
        try c.settle()
        #expect(c.machine(added)?.data["b"] == bytes("2"))
    }

    @Test func leadershipTransfer() throws {
        let c = try Self.cluster(seed: 9)
        let l = try c.electLeader()
        #expect(try c.put("a", "1"))
        let target = c.nodeIDs.first { $0 != l }!
        try c.transferLeader(to: target)
        for _ in 0..<50 where c.leader != target { try c.tick() }
        #expect(c.leader == target)
        #expect(try c.put("b", "2"))
    }

    @Test func readIndexReadsAreLinearizable() throws {
        let c = try Self.cluster(seed: 10)
        try c.electLeader()
        #expect(try c.put("r", "1"))
        #expect(try c.linearizableGet("r") == [1] + bytes("1"))
        #expect(try c.linearizableGet("missing") == [0])
        #expect(c.history.check().isLinearizable)
    }
}
