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
    private var unsynced: [(update: Update, reply: (Update?) -> Void)] = []
    /// This node's own updates through this seq are durable: only those
    /// may leave the node (a digest reply must not carry one a crash could
    /// take back, or the restarted node would reuse its dot).
    private var durableOwnSeq: UInt64 = 0
    /// The highest own seq the update log holds: until the replica has
    /// applied through it again (an own update may wait for a log update
    /// the Raft group has not re-applied yet), a new commit could reuse a dot.
    private let loggedOwnSeq: UInt64

    /// The log's origin id in this group's replicas: above every node id.
    static func logOrigin(_ group: UInt64) -> UInt64 { UInt64.max - group }

    /// At most this many peer updates wait for their causal predecessors;
    /// past it, one that cannot apply yet is not kept (anti-entropy brings
    /// it again once its predecessors are here), so a peer cannot make the
    /// node hold updates without bound.
    let maxPending: Int
    /// Peer updates not kept because `maxPending` others were waiting.
    private(set) var droppedForPending = 0

    init(group: UInt64, nodeId: UInt64, directory: String, maxPending: Int = 65_536) throws {
        self.group = group
        self.maxPending = maxPending
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
        loggedOwnSeq = replayed.filter { $0.origin == nodeId }.map(\.seq).max() ?? 0
        durableOwnSeq = loggedOwnSeq
    }

    /// Whether the replica has applied every own update its log holds.
    var caughtUpWithLog: Bool { replica.clock[replica.nodeID] >= loggedOwnSeq }

    func close() { wal.close() }

    /// Commits `ops` on this node's replica and appends the update; `reply`
    /// runs after the next `sync` (with nil if that sync never comes: the
    /// outcome is then unknown). Throws (changing nothing) when an op
    /// needs coordination, conflicts with a key's type or overflows.
    func commit(_ ops: [AlgebraicOp], reply: @escaping (Update?) -> Void) throws -> Update {
        guard caughtUpWithLog else {
            throw NotReady("the replica is still re-applying its own updates after a restart; retry")
        }
        let tx = replica.transaction()
        for op in ops { try op.record(in: tx) }
        guard !tx.needsCoordination else {
            throw LuigiError.notAlgebraic("a transaction with set needs the group's log: send it as coordinated")
        }
        let update = try tx.commit()
        // The replica holds it now: an update log that cannot take it must
        // stop the node (the caller treats `StorageFailure` so).
        do { try append([update]) } catch { throw StorageFailure(error: error) }
        unsynced.append((update, reply))
        return update
    }

    /// Applies what a peer sent; returns how many updates were new.
    func receive(_ updates: [Update]) throws -> Int {
        var fresh: [Update] = []
        // Own updates are taken too: a node whose data was lost learns its
        // durable past back from its peers and does not reuse those dots.
        for update in updates where update.origin != machine.logOrigin {
            if replica.pendingCount >= maxPending && !replica.isDeliverable(update) {
                if update.seq > replica.clock[update.origin] { droppedForPending += 1 }
                continue
            }
            if replica.apply(update) { fresh.append(update) }
        }
        do { try append(fresh) } catch { throw StorageFailure(error: error) }
        return fresh.count
    }

    /// What the digest's sender lacks, without the log's updates (the Raft
    /// group delivers those), at most `maxBytes` of them (at least one).
    func delta(since clock: VectorClock, maxBytes: Int) -> [Update] {
        var out: [Update] = []
        var bytes = 0
        replica.forEachDelta(since: clock) { update in
            // Own updates not yet synced stay home (see `durableOwnSeq`).
            if update.origin == machine.logOrigin || (update.origin == replica.nodeID && update.seq > durableOwnSeq) {
                return true
            }
            let size = update.encoded().count + 8
            if !out.isEmpty && bytes + size > maxBytes { return false }
            out.append(update)
            bytes += size
            return true
        }
        return out
    }

    /// Makes every appended update durable, then answers the commits
    /// waiting for it; returns those commits (now safe to send to peers).
    func sync() throws -> [Update] {
        guard !unsynced.isEmpty || wal.hasUnsyncedWrites else { return [] }
        do { try wal.sync() } catch { throw StorageFailure(error: error) }
        let waiting = unsynced
        unsynced = []
        if let last = waiting.last { durableOwnSeq = max(durableOwnSeq, last.update.seq) }
        for (update, reply) in waiting { reply(update) }
        return waiting.map(\.update)
    }

    /// Commits whose sync will never come (the node failed): each gets
    /// `reply(nil)`, an unknown outcome.
    func abandonUnsynced() {
        let waiting = unsynced
        unsynced = []
        for (_, reply) in waiting { reply(nil) }
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

/// The update log failed: the node must stop serving (the replica may hold
/// an update its log does not).
struct StorageFailure: Error, CustomStringConvertible {
    let error: any Error
    var description: String { "update log: \(error)" }
}

/// Not now, but later: the client may retry.
struct NotReady: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
