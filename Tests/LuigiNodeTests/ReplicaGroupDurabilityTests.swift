import LuigiCore
import LuigiLocalCluster
import LuigiWire
import Testing

@testable import LuigiNode

/// A replica group's own updates never leave the node before they are
/// durable, and a restarted node never reuses one of its dots.
@Suite struct ReplicaGroupDurabilityTests {
    @Test func anUnsyncedCommitStaysHomeUntilItsSync() throws {
        let directory = try makeTemporaryDirectory("luigi-replica-test")
        defer { removeDirectory(directory) }
        let group = try ReplicaGroup(group: 1001, nodeId: 1, directory: directory)
        var answered: [Update?] = []
        let update = try group.commit([.add(key: "n", delta: 1)]) { answered.append($0) }
        #expect(group.delta(since: VectorClock(), maxBytes: 1 << 20).isEmpty, "sent before its sync")
        #expect(answered.isEmpty)
        #expect(try group.sync() == [update])
        #expect(answered == [update])
        #expect(group.delta(since: VectorClock(), maxBytes: 1 << 20) == [update])
        // Abandoned commits are answered with an unknown outcome.
        _ = try group.commit([.add(key: "n", delta: 1)]) { answered.append($0) }
        group.abandonUnsynced()
        #expect(answered.count == 2 && answered[1] == nil)
        group.close()
    }

    @Test func aRestartedNodeCommitsOnlyOnceItsOwnUpdatesAreBack() throws {
        let directory = try makeTemporaryDirectory("luigi-replica-test")
        defer { removeDirectory(directory) }
        // A coordinated update from the group's log, then an own commit
        // that depends on it (its clock names the log's update).
        var group = try ReplicaGroup(group: 1001, nodeId: 1, directory: directory)
        let tx = group.replica.transaction()
        try tx.set("mode", .int(7))
        let entry = RaftEntry(term: 1, index: 1, data: try group.machine.command(for: tx))
        #expect(try group.machine.apply(entry) == [1])
        let first = try group.commit([.add(key: "n", delta: 1)]) { _ in }
        _ = try group.sync()
        group.close()

        // Reopened: the own update waits for the log's, which the Raft
        // group has not re-applied yet: no commit may take a dot now.
        group = try ReplicaGroup(group: 1001, nodeId: 1, directory: directory)
        #expect(!group.caughtUpWithLog)
        #expect(throws: NotReady.self) { try group.commit([.add(key: "n", delta: 1)]) { _ in } }
        #expect(try group.machine.apply(entry) == [1])
        #expect(group.caughtUpWithLog)
        let next = try group.commit([.add(key: "n", delta: 1)]) { _ in }
        #expect(next.dot == Dot(origin: 1, seq: first.seq + 1))
        group.close()
    }
}

/// A peer cannot make a replica group hold updates without bound: past
/// `maxPending` waiting ones, an update that cannot apply yet is not kept,
/// and it applies when anti-entropy brings it again after its predecessors.
@Suite struct ReplicaGroupPendingBoundTests {
    @Test func updatesPastThePendingBoundWaitForAntiEntropy() throws {
        let directory = try makeTemporaryDirectory("luigi-replica-test")
        defer { removeDirectory(directory) }
        let group = try ReplicaGroup(group: 1001, nodeId: 1, directory: directory, maxPending: 4)
        // A peer replica's 10 updates; all but the first arrive.
        let peer = Replica(nodeID: 9)
        var updates: [Update] = []
        for _ in 0..<10 {
            let tx = peer.transaction()
            try tx.add("n", 1)
            updates.append(try tx.commit())
        }
        #expect(try group.receive(Array(updates.dropFirst())) == 4)
        #expect(group.replica.pendingCount == 4)
        #expect(group.droppedForPending == 5)
        // The first arrives: it and the 4 waiting apply; the rest come again.
        #expect(try group.receive([updates[0]]) == 1)
        #expect(group.replica.pendingCount == 0)
        #expect(try group.receive(updates) == 5)
        #expect(group.replica.clock[9] == 10)
        #expect(group.replica.value("n") == .counter(10))
        group.close()
    }
}
