/// A Raft node together with the storage it persists into: the part of the
/// driver loop that is the same for every transport. `nextReady()` persists
/// (and syncs) what a batch needs before handing it out, so the caller only
/// sends its messages, applies its entries and calls `advance`. With a
/// `machine` attached, `nextReady()` also restores the batch's snapshot and
/// applies its committed entries to it, each exactly once.
public final class RaftDriver {
    public let node: RaftNode
    public let storage: RaftStorage
    public private(set) var machine: RaftStateMachine?
    /// The last entry the attached machine has applied (it may run ahead of
    /// `advance` when a batch failed half-way and is offered again).
    private var appliedThrough: UInt64 = 0

    public init(config: RaftConfig, storage: RaftStorage, voters: [UInt64]) throws {
        self.storage = storage
        self.node = try RaftNode(config: config, storage: storage, voters: voters)
    }

    /// Set when persisting failed after messages were already sent early.
    private var stopped: String?

    /// The next batch, already durable; nil when there is nothing to do.
    public func nextReady() throws -> Ready? {
        try nextReady(sendingEarly: nil)
    }

    /// Like `nextReady()`, but a leader hands its appends and heartbeats to
    /// `sendEarly` before writing and syncing its own log, so followers
    /// persist in parallel with it (Raft thesis §10.2.1); the returned Ready
    /// holds only the messages that must wait for the sync.
    ///
    /// Why this is safe: RaftNode counts the leader's own entries toward the
    /// commit quorum as soon as they are appended, so a commit must never be
    /// computed from an acknowledgement of entries the leader has not made
    /// durable. The node is not thread-safe, so nothing is stepped until this
    /// call returns, and by then the sync is done. If persisting fails after
    /// an early send, this driver stops for good (every later call throws):
    /// stepping on would count entries that were sent but never persisted.
    /// Nothing goes early from a Ready that changes the term or vote (it must
    /// be durable before any message) or carries a snapshot, nor from a
    /// single voter, whose commit index counts its own unpersisted entries
    /// and would reach learners in the appends.
    public func nextReady(sendingEarly sendEarly: (([RaftMessage]) -> Void)?) throws -> Ready? {
        if let stopped { throw LuigiError.state(stopped) }
        guard node.hasReady else { return nil }
        var rd = node.ready()
        var sentEarly = false
        if let sendEarly, node.role == .leader, !rd.termOrVoteChanged, rd.snapshot == nil,
            node.conf.voters.count > 1
        {
            let early = rd.messages.filter { $0.kind == .append || $0.kind == .heartbeat }
            if !early.isEmpty {
                rd.messages.removeAll { $0.kind == .append || $0.kind == .heartbeat }
                sendEarly(early)
                sentEarly = true
            }
        }
        do {
            if let snapshot = rd.snapshot { try storage.applySnapshot(snapshot) }
            try storage.append(rd.entries)
            if let hs = rd.hardState { try storage.setHardState(hs) }
            if rd.mustSync { try storage.sync() }
        } catch {
            if sentEarly { stopped = "persisting failed after messages were sent early (\(error)); reopen the node" }
            throw error
        }
        if let machine { try feed(machine, rd) }
        return rd
    }

    /// Attaches a state machine (nil detaches). A node that restarted from a
    /// compacted log first restores the machine from its stored snapshot;
    /// the entries after it are applied again as the node re-commits them.
    public func attach(_ newMachine: RaftStateMachine?) throws {
        if let newMachine {
            let stored = try storage.snapshot()
            if !stored.isEmpty { try newMachine.restore(stored.data) }
        }
        machine = newMachine
        appliedThrough = node.status.applied
    }

    private func feed(_ machine: RaftStateMachine, _ rd: Ready) throws {
        if let snapshot = rd.snapshot, snapshot.metadata.index > appliedThrough {
            try machine.restore(snapshot.data)
            appliedThrough = snapshot.metadata.index
        }
        for entry in rd.committedEntries where entry.index > appliedThrough {
            _ = try machine.apply(entry)
            appliedThrough = entry.index
        }
    }

    /// Compacts the log up to the applied index with the attached machine's
    /// snapshot; returns that index.
    @discardableResult
    public func snapshotMachine() throws -> UInt64 {
        guard let machine else { throw LuigiError.state("no state machine is attached") }
        let index = min(appliedThrough, node.status.applied)
        try compact(to: index, snapshot: try machine.snapshot())
        return index
    }

    public func advance(_ rd: Ready) { node.advance(rd) }

    /// Replaces the log up to `index` (applied) with a state-machine snapshot.
    public func compact(to index: UInt64, snapshot: [UInt8]) throws {
        guard index <= node.status.applied else {
            throw LuigiError.invalidArgument("cannot compact to \(index): only \(node.status.applied) applied")
        }
        try storage.compact(to: index, conf: node.conf, data: snapshot)
    }
}
