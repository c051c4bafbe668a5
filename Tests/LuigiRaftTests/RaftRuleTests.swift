import LuigiCore
import LuigiSimulation
import Testing

/// The Raft paper's rules, checked by stepping pure cores with hand-made messages.
@Suite struct RaftRuleTests {
    static func node(_ id: UInt64, voters: [UInt64] = [1, 2, 3], preVote: Bool = false,
                     storage: RaftStorage = MemoryRaftStorage()) throws -> RaftNode {
        var c = RaftConfig(id: id)
        c.preVote = preVote
        c.checkQuorum = false
        return try RaftNode(config: c, storage: storage, voters: voters)
    }

    /// Persist and "apply" everything, as a driver would; returns the messages.
    @discardableResult
    static func drain(_ n: RaftNode, _ storage: RaftStorage) throws -> [RaftMessage] {
        var out: [RaftMessage] = []
        while n.hasReady {
            let rd = n.ready()
            if let s = rd.snapshot { try storage.applySnapshot(s) }
            try storage.append(rd.entries)
            if let hs = rd.hardState { try storage.setHardState(hs) }
            out += rd.messages
            n.advance(rd)
        }
        return out
    }

    static func storage(entries terms: [UInt64], term: UInt64) throws -> MemoryRaftStorage {
        let s = MemoryRaftStorage()
        try s.append(terms.enumerated().map { RaftEntry(term: $1, index: UInt64($0) + 1) })
        try s.setHardState(HardState(term: term))
        return s
    }

    @Test func higherTermMakesAFollower() throws {
        let s = MemoryRaftStorage()
        let n = try Self.node(1, storage: s)
        n.campaign()
        #expect(n.role == .candidate && n.term == 1)
        var m = RaftMessage(kind: .append, to: 1, from: 2, term: 5)
        m.index = 0
        try n.step(m)
        #expect(n.role == .follower && n.term == 5 && n.leader == 2)
    }

    @Test func votesOncePerTerm() throws {
        let s = MemoryRaftStorage()
        let n = try Self.node(1, storage: s)
        for (candidate, expectGranted) in [(UInt64(2), true), (3, false), (2, true)] {
            try n.step(RaftMessage(kind: .vote, to: 1, from: candidate, term: 2))
            let replies = try Self.drain(n, s).filter { $0.kind == .voteResponse }
            #expect(replies.count == 1 && replies[0].reject == !expectGranted, "candidate \(candidate)")
        }
        #expect(n.vote == 2 && n.term == 2)
    }

    @Test func grantsOnlyToAnUpToDateLog() throws {
        let s = try Self.storage(entries: [1, 2, 2], term: 2)
        let n = try Self.node(1, storage: s)
        // (candidate last term, last index) -> granted?
        let cases: [(UInt64, UInt64, Bool)] = [(1, 10, false), (2, 2, false), (2, 3, true), (3, 1, true)]
        for (i, (lastTerm, lastIndex, granted)) in cases.enumerated() {
            var m = RaftMessage(kind: .vote, to: 1, from: UInt64(2 + i % 2), term: 3 + UInt64(i))
            m.logTerm = lastTerm
            m.index = lastIndex
            try n.step(m)
            let reply = try Self.drain(n, s).first { $0.kind == .voteResponse }
            #expect(reply?.reject == !granted, "lastTerm \(lastTerm) lastIndex \(lastIndex)")
        }
    }

    /// Figure 8: a leader never commits an entry of an earlier term by
    /// counting replicas; it commits it only through one of its own term.
    @Test func commitsOnlyThroughACurrentTermEntry() throws {
        let s = try Self.storage(entries: [1, 2], term: 2)
        let n = try Self.node(1, storage: s)
        n.campaign()
        var grant = RaftMessage(kind: .voteResponse, to: 1, from: 2, term: 3)
        grant.reject = false
        try n.step(grant)
        #expect(n.role == .leader && n.term == 3)
        try Self.drain(n, s)
        #expect(n.status.lastIndex == 3)  // the new term's no-op
        var ack = RaftMessage(kind: .appendResponse, to: 1, from: 2, term: 3)
        ack.index = 2  // the follower holds the old-term entry
        try n.step(ack)
        #expect(n.status.commit == 0, "an old-term entry was committed by counting")
        ack.index = 3
        try n.step(ack)
        #expect(n.status.commit == 3)
    }

    /// Figure 7: a new leader (term 8) brings followers with missing,
    /// extra and conflicting entries (cases a-f of the paper) to its log.
    @Test func figure7LogRepair() throws {
        let leader: [UInt64] = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
        let followers: [[UInt64]] = [
            [1, 1, 1, 4, 4, 5, 5, 6, 6],  // (a) missing one
            [1, 1, 1, 4],  // (b) missing many
            [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  // (c) one extra uncommitted
            [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  // (d) extra entries of a later term
            [1, 1, 1, 4, 4, 4, 4],  // (e) missing and conflicting
            [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  // (f) a long divergent suffix
        ]
        var storages: [UInt64: RaftStorage] = [1: try Self.storage(entries: leader, term: 7)]
        for (i, log) in followers.enumerated() { storages[UInt64(i) + 2] = try Self.storage(entries: log, term: 7) }
        var options = RaftCluster.Options(nodes: 7, seed: 3)
        options.preVote = false
        options.checkQuorum = false
        let cluster = try RaftCluster(options, storages: storages)
        try cluster.campaign(1)
        try cluster.stabilize()
        #expect(cluster.leader == 1 && cluster.status(1)?.term == 8)
        let expected = leader + [8]  // the new term's no-op
        for id in cluster.nodeIDs {
            let s = try #require(cluster.storage(id))
            let terms = try (1...(try s.lastIndex())).map { try s.term($0) }
            #expect(terms == expected, "node \(id)")
            #expect(cluster.status(id)?.commit == 11, "node \(id)")
        }
    }

    @Test func rejectsMalformedAppends() throws {
        let n = try Self.node(1)
        var m = RaftMessage(kind: .append, to: 1, from: 2, term: 1)
        m.entries = [RaftEntry(term: 1, index: 5)]  // not after index 0
        #expect(throws: LuigiError.self) { try n.step(m) }
        #expect(throws: LuigiError.self) { try n.step(RaftMessage(kind: .heartbeat, to: 9, from: 2, term: 1)) }
        #expect(throws: LuigiError.self) { try n.step(RaftMessage(kind: .heartbeat, to: 1, from: 1, term: 1)) }
        #expect(n.term == 0)
    }

    /// Fast backtracking: one rejection carries enough to skip a whole term's
    /// worth of divergent entries, instead of one round trip per entry.
    @Test func fastBacktrackingSkipsADivergentTerm() throws {
        // Leader: 10 entries of term 1 then 40 of term 3. Follower: 10 of term 1 then 60 of term 2.
        let leaderLog = try Self.storage(entries: Array(repeating: 1, count: 10) + Array(repeating: 3, count: 40), term: 3)
        let followerLog = try Self.storage(entries: Array(repeating: 1, count: 10) + Array(repeating: 2, count: 60), term: 3)
        var options = RaftCluster.Options(nodes: 2, seed: 1)
        options.checkQuorum = false
        options.preVote = false
        let cluster = try RaftCluster(options, storages: [1: leaderLog, 2: followerLog])
        try cluster.campaign(1)
        try cluster.stabilize()
        #expect(cluster.leader == 1)
        let l = try #require(cluster.status(1)), f = try #require(cluster.status(2))
        #expect(f.lastIndex == l.lastIndex && f.commit == l.commit)
        // Without backtracking by term this repair takes ~60 append round trips.
        #expect(cluster.messagesDelivered < 20, "\(cluster.messagesDelivered) messages")
        print("fast backtracking: \(cluster.messagesDelivered) messages, follower last \(f.lastIndex)")
    }
}
