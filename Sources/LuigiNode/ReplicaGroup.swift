import LuigiCore
import LuigiStorage
import LuigiWire

/// One replica group on a node: an algebraic `Replica` that clients commit
/// to without coordination, kept durable and spread by delta anti-entropy,
/// plus its Raft group (the `ReplicaStateMachine` plugin) for coordinated
/// transactions (`set`). Confined to the host thread.
///
/// Durability: every update the replica applies (its own commits and what
/// anti-entropy brought) is appended to the group's update log, a WAL of its
/// own under `<data>/replica-<id>`; a commit is acknowledged only after that
/// log's fdatasync (one sync per host batch covers every commit in it). A
/// restart replays the log, so the node never reuses one of its own dots.
/// The log's own updates (the coordinated path) are not in it: the Raft
/// group restores them. Nothing is compacted yet (the replica keeps every
/// update to answer any digest).
final class ReplicaGroup {
    let group: UInt64
    let replica: Replica
    let machine: ReplicaStateMachine
    private let wal: WriteAheadLog
    private var nextIndex: UInt64 = 1
    /// Own commits appended but not yet synced, with their replies.
    private var unsynced: [(update: Update, reply: (Update) -> Void)] = []

    /// The log's origin id in this group's replicas: above every node id.
    static func logOrigin(_ group: UInt64) -> UInt64 { UInt64.max - group }

    init(group: UInt64, nodeId: UInt64, directory: String) throws {
        self.group = group
        let replica = Replica(nodeID: nodeId)
        self.replica = replica
        self.machine = try ReplicaStateMachine(replica: replica, logOrigin: Self.logOrigin(group))
        var replayed: [Update] = []
        var decodeFailure: String?
        do {
            wal = try WriteAheadLog.open(directory: directory) { record, position in
                guard case .entries(let entries) = record else { return }
                for entry in entries {
                    do {
                        replayed.append(try Update(decoding: entry.data))
                    } catch {
                        decodeFailure = "\(position.path) record \(position.seq): \(error)"
                    }
                }
            }
        } catch {
            throw LuigiError.state("cannot open the update log in \(directory): \(error)")
        }
        if let decodeFailure { throw LuigiError.decode("update log: \(decodeFailure)") }
        for update in replayed { replica.apply(update) }
        nextIndex = UInt64(replayed.count) + 1
    }

    func close() { wal.close() }

    /// Commits `ops` on this node's replica and appends the update; `reply`
    /// runs after the next `sync`. Throws (changing nothing) when an op
    /// needs coordination, conflicts with a key's type or overflows.
    func commit(_ ops: [AlgebraicOp], reply: @escaping (Update) -> Void) throws -> Update {
        let tx = replica.transaction()
        for op in ops { try op.record(in: tx) }
        guard !tx.needsCoordination else {
            throw LuigiError.notAlgebraic("a transaction with set needs the group's log: send it as coordinated")
        }
        let update = try tx.commit()
        try append([update])
        unsynced.append((update, reply))
        return update
    }

    /// Applies what a peer sent; returns how many updates were new.
    func receive(_ updates: [Update]) throws -> Int {
        var fresh: [Update] = []
        for update in updates where update.origin != machine.logOrigin {
            if replica.apply(update) { fresh.append(update) }
        }
        try append(fresh)
        return fresh.count
    }

    /// What the digest's sender lacks, without the log's updates (the Raft
    /// group delivers those), at most `limit` of them.
    func delta(since clock: VectorClock, limit: Int) -> [Update] {
        Array(replica.delta(since: clock).lazy.filter { $0.origin != self.machine.logOrigin }.prefix(limit))
    }

    /// Makes every appended update durable, then answers the commits
    /// waiting for it; returns those commits (now safe to send to peers).
    func sync() throws -> [Update] {
        guard !unsynced.isEmpty || wal.hasUnsyncedWrites else { return [] }
        try wal.sync()
        let waiting = unsynced
        unsynced = []
        for (update, reply) in waiting { reply(update) }
        return waiting.map(\.update)
    }

    private func append(_ updates: [Update]) throws {
        guard !updates.isEmpty else { return }
        var entries: [RaftEntry] = []
        for update in updates {
            entries.append(RaftEntry(term: 1, index: nextIndex, data: update.encoded()))
            nextIndex += 1
        }
        try wal.append(.entries(entries))
    }
}
