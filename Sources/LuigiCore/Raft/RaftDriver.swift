/// A Raft node together with the storage it persists into: the part of the
/// driver loop that is the same for every transport. `nextReady()` persists
/// (and syncs) what a batch needs before handing it out, so the caller only
/// sends its messages, applies its entries and calls `advance`.
public final class RaftDriver {
    public let node: RaftNode
    public let storage: RaftStorage

    public init(config: RaftConfig, storage: RaftStorage, voters: [UInt64]) throws {
        self.storage = storage
        self.node = try RaftNode(config: config, storage: storage, voters: voters)
    }

    /// The next batch, already durable; nil when there is nothing to do.
    public func nextReady() throws -> Ready? {
        guard node.hasReady else { return nil }
        let rd = node.ready()
        if let snapshot = rd.snapshot { try storage.applySnapshot(snapshot) }
        try storage.append(rd.entries)
        if let hs = rd.hardState { try storage.setHardState(hs) }
        if rd.mustSync { try storage.sync() }
        return rd
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
