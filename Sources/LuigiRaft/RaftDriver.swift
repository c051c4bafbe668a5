import LuigiBase

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
    /// Batches handed out so far, and the one not yet advanced (0: none).
    private var readiesIssued: UInt64 = 0
    private var outstanding: UInt64 = 0
    /// True while the attached machine runs: it must not re-enter the driver.
    private var feeding = false

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
    ///
    /// One batch at a time: taking another before `advance` of the last one,
    /// or from inside a state-machine callback, throws `.state` (the node
    /// would hand out the same entries twice).
    public func nextReady(sendingEarly sendEarly: (([RaftMessage]) -> Void)?) throws -> Ready? {
        if let stopped { throw LuigiError.state(stopped) }
        try checkNotFeeding("take a ready")
        guard outstanding == 0 else {
            throw LuigiError.state("ready #\(outstanding) has not been advanced: advance it before taking another")
        }
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
        if let machine {
            feeding = true
            defer { feeding = false }
            try feed(machine, rd)
        }
        readiesIssued += 1
        rd.sequence = readiesIssued
        rd.issuer = ObjectIdentifier(self)
        outstanding = readiesIssued
        return rd
    }

    private func checkNotFeeding(_ what: String) throws {
        guard !feeding else { throw LuigiError.state("cannot \(what) from inside a state-machine callback") }
    }

    /// Attaches a state machine (nil detaches). A node that restarted from a
    /// compacted log first restores the machine from its stored snapshot;
    /// the entries after it are applied again as the node re-commits them.
    public func attach(_ newMachine: RaftStateMachine?) throws {
        try checkNotFeeding("attach a state machine")
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
        try checkNotFeeding("snapshot the state machine")
        guard let machine else { throw LuigiError.state("no state machine is attached") }
        let index = min(appliedThrough, node.status.applied)
        try compact(to: index, snapshot: try machine.snapshot())
        return index
    }

    /// The caller sent and applied `rd`, the batch `nextReady` handed out
    /// last. Another driver's batch, or one already advanced, is refused
    /// with `.state` and changes nothing.
    public func advance(_ rd: Ready) throws {
        try checkNotFeeding("advance")
        guard rd.issuer == ObjectIdentifier(self) else {
            throw LuigiError.state("this ready was not taken from this node")
        }
        guard rd.sequence == outstanding else {
            throw LuigiError.state("ready #\(rd.sequence) was already advanced (the outstanding one is #\(outstanding))")
        }
        outstanding = 0
        node.advance(rd)
    }

    /// Drops the outstanding batch without advancing it: the next
    /// `nextReady` hands its entries and committed entries out again (they
    /// are still unstable and unapplied in the node); its messages are lost,
    /// as on a lossy network. Any other batch is ignored.
    public func discard(_ rd: Ready) {
        if rd.issuer == ObjectIdentifier(self) && rd.sequence == outstanding && !feeding { outstanding = 0 }
    }

    /// Replaces the log up to `index` (applied) with a state-machine snapshot.
    public func compact(to index: UInt64, snapshot: [UInt8]) throws {
        try checkNotFeeding("compact")
        guard index <= node.status.applied else {
            throw LuigiError.invalidArgument("cannot compact to \(index): only \(node.status.applied) applied")
        }
        try storage.compact(to: index, conf: node.conf, data: snapshot)
    }
}
