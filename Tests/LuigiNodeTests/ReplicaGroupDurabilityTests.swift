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
