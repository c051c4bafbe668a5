import LuigiCore
import Testing

/// Peer input is hostile until checked: a refused message changes nothing,
/// numbers near 2^64 are refused, and a driver hands out each batch once.
@Suite struct RaftInputTests {
    typealias Rules = RaftRuleTests

    /// Everything a refused message must leave alone.
    struct Fingerprint: Equatable {
        var status: RaftStatus
        var entries: [RaftEntry]
        var hasReady: Bool

        init(_ n: RaftNode, _ s: MemoryRaftStorage) throws {
            status = n.status
            entries = try s.entries(try s.firstIndex(), try s.lastIndex() + 1, maxBytes: .max)
            hasReady = n.hasReady
        }
    }

    /// A follower of leader 2 in term 2 holding entries 1...3, commit 2.
    static func follower() throws -> (RaftNode, MemoryRaftStorage) {
        let s = try Rules.storage(entries: [1, 1, 2], term: 2)
        let n = try Rules.node(1, storage: s)
        var hb = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 2)
        hb.commit = 2
        try n.step(hb)
        try Rules.drain(n, s)
        return (n, s)
    }

    @Test func refusedMessagesChangeNothing() throws {
        // A newer leader's append whose entry claims a term from the future:
        // refused before the node adopts term 5.
        var conflicting = RaftMessage(kind: .append, to: 1, from: 3, term: 5)
        conflicting.index = 3
        conflicting.logTerm = 2
        conflicting.entries = [RaftEntry(term: 6, index: 4)]
        var snapshotDupVoters = RaftMessage(kind: .snapshot, to: 1, from: 3, term: 5)
        snapshotDupVoters.snapshot = Snapshot(metadata: SnapshotMetadata(index: 9, term: 4, conf: ConfState(voters: [3, 3])))
        var snapshotZero = snapshotDupVoters
        snapshotZero.snapshot!.metadata.conf = ConfState(voters: [0, 1])
        var snapshotNoVoter = snapshotDupVoters
        snapshotNoVoter.snapshot!.metadata.conf = ConfState(voters: [], learners: [1])
        var snapshotBoth = snapshotDupVoters
        snapshotBoth.snapshot!.metadata.conf = ConfState(voters: [1, 2], learners: [2])
        var snapshotFuture = snapshotDupVoters
        snapshotFuture.snapshot!.metadata = SnapshotMetadata(index: 9, term: 6, conf: ConfState(voters: [1, 2, 3]))
        var hugeTerm = RaftMessage(kind: .vote, to: 1, from: 3, term: .max)
        hugeTerm.index = 10
        hugeTerm.logTerm = 3
        var hugeIndex = RaftMessage(kind: .append, to: 1, from: 2, term: 2)
        hugeIndex.index = .max
        hugeIndex.logTerm = 2
        hugeIndex.entries = [RaftEntry(term: 2, index: 0)]  // wraps past 2^64
        var gap = RaftMessage(kind: .append, to: 1, from: 2, term: 3)
        gap.index = 3
        gap.logTerm = 2
        gap.entries = [RaftEntry(term: 3, index: 4), RaftEntry(term: 3, index: 6)]
        var entriesOnHeartbeat = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 3)
        entriesOnHeartbeat.entries = [RaftEntry(term: 3, index: 4)]
        let snapshotMissing = RaftMessage(kind: .snapshot, to: 1, from: 2, term: 3)
        var hugeCommit = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 3)
        hugeCommit.commit = 1 << 63

        let refused = [
            conflicting, snapshotDupVoters, snapshotZero, snapshotNoVoter, snapshotBoth, snapshotFuture, hugeTerm,
            hugeIndex, gap, entriesOnHeartbeat, snapshotMissing, hugeCommit,
        ]
        for (i, m) in refused.enumerated() {
            let (n, s) = try Self.follower()
            let before = try Fingerprint(n, s)
            #expect(throws: LuigiError.self, "message \(i)") { try n.step(m) }
            #expect(try Fingerprint(n, s) == before, "message \(i) (\(m.kind)) changed the node")
        }
    }

    @Test func aLeaderRefusesAnAcknowledgementBeyondItsLog() throws {
        let s = MemoryRaftStorage()
        let n = try Rules.node(1, storage: s)
        n.campaign()
        try Rules.drain(n, s)
        var vote = RaftMessage(kind: .voteResponse, to: 1, from: 2, term: 1)
        vote.reject = false
        try n.step(vote)
        try Rules.drain(n, s)
        #expect(n.role == .leader)
        var ack = RaftMessage(kind: .appendResponse, to: 1, from: 2, term: 1)
        ack.index = 1 << 40
        #expect(throws: LuigiError.self) { try n.step(ack) }
        #expect(n.replicationState(of: 2)?.match == 0)
        #expect(n.status.commit == 0, "a forged acknowledgement must not commit anything")
    }

    /// A follower that holds the snapshot's entry acknowledges only up to
    /// it: later entries of its log may be another term's.
    @Test func aMatchingSnapshotIsAcknowledgedAtItsIndexOnly() throws {
        let s = try Rules.storage(entries: [1, 1, 1, 1, 1], term: 1)
        let n = try Rules.node(1, storage: s)
        var m = RaftMessage(kind: .snapshot, to: 1, from: 2, term: 3)
        m.snapshot = Snapshot(metadata: SnapshotMetadata(index: 2, term: 1, conf: ConfState(voters: [1, 2, 3])))
        try n.step(m)
        let replies = try Rules.drain(n, s).filter { $0.kind == .appendResponse }
        #expect(replies.map(\.index) == [2])
    }

    @Test func theLargestTermAndIndexAreRefusedWithAClearError() throws {
        let (n, _) = try Self.follower()
        let limit = RaftLimits.maxTermOrIndex
        var m = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: limit + 1)
        #expect(throws: LuigiError.invalidArgument("message term \(limit + 1) is above the limit 2^62")) {
            try n.step(m)
        }
        m.term = limit  // the limit itself is accepted
        try n.step(m)
        #expect(n.term == limit)
    }

    @Test func aDriverHandsOutEachBatchOnceAndTakesBackOnlyItsOwn() throws {
        let a = try RaftDriver(config: RaftConfig(id: 1), storage: MemoryRaftStorage(), voters: [1])
        let b = try RaftDriver(config: RaftConfig(id: 1), storage: MemoryRaftStorage(), voters: [1])
        a.node.campaign()
        b.node.campaign()
        let ra = try #require(try a.nextReady())
        let rb = try #require(try b.nextReady())
        #expect(throws: LuigiError.self) { try a.nextReady() }  // ra is outstanding
        #expect(throws: LuigiError.self) { try a.advance(rb) }  // b's batch
        try a.advance(ra)
        #expect(throws: LuigiError.self) { try a.advance(ra) }  // twice
        try b.advance(rb)
        // A dropped batch gives its slot back; its entries come again.
        try a.node.propose(bytes("x"))
        let dropped = try #require(try a.nextReady())
        a.discard(dropped)
        let again = try #require(try a.nextReady())
        #expect(again.committedEntries.map(\.data) == dropped.committedEntries.map(\.data))
        #expect(again.sequence == dropped.sequence + 1)
        try a.advance(again)
        #expect(throws: LuigiError.self) { try a.advance(dropped) }
    }

    /// A state machine that re-enters its driver from `apply`.
    final class Reentrant: RaftStateMachine {
        weak var driver: RaftDriver?
        var errors: [String] = []
        func apply(_ entry: RaftEntry) throws -> [UInt8] {
            do { _ = try driver?.nextReady() } catch { errors.append("\(error)") }
            do { try driver?.compact(to: 0, snapshot: []) } catch { errors.append("\(error)") }
            return []
        }
        func snapshot() throws -> [UInt8] { [] }
        func restore(_ snapshot: [UInt8]) throws {}
    }

    @Test func aPluginCannotReenterItsDriver() throws {
        let d = try RaftDriver(config: RaftConfig(id: 1), storage: MemoryRaftStorage(), voters: [1])
        let m = Reentrant()
        m.driver = d
        try d.attach(m)
        d.node.campaign()
        var applied = 0
        while let rd = try d.nextReady() {
            applied += rd.committedEntries.count
            try d.advance(rd)
        }
        #expect(applied == 1)
        #expect(m.errors.count == 2 && m.errors.allSatisfy { $0.contains("state-machine callback") })
    }
}
