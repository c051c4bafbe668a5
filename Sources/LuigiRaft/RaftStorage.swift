import LuigiBase

/// Why a log read could not be served.
public enum RaftLogError: Error, Equatable, Sendable {
    /// The index is at or below the last snapshot: send the snapshot instead.
    case compacted
    /// The index is past the last entry.
    case unavailable
}

/// The storage a Raft node reads its log from and its driver persists into,
/// following etcd/raft's split: the core only reads (and keeps not-yet-
/// persisted entries itself); the driver writes what `Ready` hands it —
/// hard state and entries first, then sends the messages that depend on them.
public protocol RaftStorage: AnyObject {
    /// Hard state and membership to start from.
    func initialState() throws -> (hardState: HardState, conf: ConfState)
    /// Entries in `lo..<hi`, at most `maxBytes` (but always at least one).
    func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry]
    /// Term of the entry at `index` (also of the snapshot's last index).
    func term(_ index: UInt64) throws -> UInt64
    /// First index still held as an entry (the snapshot's index + 1).
    func firstIndex() throws -> UInt64
    func lastIndex() throws -> UInt64
    func snapshot() throws -> Snapshot

    /// Appends entries, first dropping any existing suffix they overwrite.
    func append(_ entries: [RaftEntry]) throws
    func setHardState(_ state: HardState) throws
    /// Replaces the whole log with a received snapshot.
    func applySnapshot(_ snapshot: Snapshot) throws
    /// Records a snapshot of the state machine at `index` and drops the
    /// entries it covers (log compaction).
    func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws
    /// Makes everything written so far durable (a no-op in memory).
    func sync() throws
}

/// The in-memory log: entries after a snapshot, with the snapshot's
/// (index, term) kept as a sentinel at position 0.
public final class MemoryRaftStorage: RaftStorage {
    private var hardState = HardState()
    private var snap = Snapshot()
    /// `log[0]` is the sentinel (snapshot index and term); real entries follow.
    private var log: [RaftEntry] = [RaftEntry(term: 0, index: 0)]

    public init(conf: ConfState = ConfState()) {
        snap.metadata.conf = conf
    }

    private var offset: UInt64 { log[0].index }

    public func initialState() throws -> (hardState: HardState, conf: ConfState) { (hardState, snap.metadata.conf) }

    public func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] {
        guard lo > offset else { throw RaftLogError.compacted }
        guard hi <= lastIndexValue + 1, lo <= hi else { throw RaftLogError.unavailable }
        var result: [RaftEntry] = []
        var bytes = 0
        for i in Int(lo - offset)..<Int(hi - offset) {
            bytes += log[i].size
            if !result.isEmpty && bytes > maxBytes { break }
            result.append(log[i])
        }
        return result
    }

    public func term(_ index: UInt64) throws -> UInt64 {
        guard index >= offset else { throw RaftLogError.compacted }
        guard index <= lastIndexValue else { throw RaftLogError.unavailable }
        return log[Int(index - offset)].term
    }

    public func firstIndex() throws -> UInt64 { offset + 1 }
    public func lastIndex() throws -> UInt64 { lastIndexValue }
    private var lastIndexValue: UInt64 { offset + UInt64(log.count - 1) }

    public func snapshot() throws -> Snapshot { snap }

    public func append(_ entries: [RaftEntry]) throws {
        guard let first = entries.first else { return }
        // Entries already covered by the snapshot are skipped.
        let fresh = entries.drop { $0.index <= offset }
        guard let start = fresh.first?.index else { return }
        guard start <= lastIndexValue + 1 else {
            throw LuigiError.invalidArgument("append at \(start) leaves a gap after \(lastIndexValue) (first \(first.index))")
        }
        log.removeSubrange(Int(start - offset)...)
        log.append(contentsOf: fresh)
    }

    public func setHardState(_ state: HardState) throws { hardState = state }

    public func applySnapshot(_ snapshot: Snapshot) throws {
        snap = snapshot
        log = [RaftEntry(term: snapshot.metadata.term, index: snapshot.metadata.index)]
    }

    public func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws {
        guard index > offset else { return }
        guard index <= lastIndexValue else {
            throw LuigiError.invalidArgument("cannot compact to \(index) past the last index \(lastIndexValue)")
        }
        let term = log[Int(index - offset)].term
        snap = Snapshot(metadata: SnapshotMetadata(index: index, term: term, conf: conf), data: data)
        log.removeSubrange(0..<Int(index - offset))
        log[0] = RaftEntry(term: term, index: index)
    }

    public func sync() throws {}
}
