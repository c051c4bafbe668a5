import LuigiRaft

#if canImport(Glibc)
import Glibc
#endif

/// Any `RaftStorage`, counting its syncs and the time they took (what the
/// benchmarks report as fdatasyncs), and the entry bytes appended since its
/// last snapshot (what the node's compaction policy weighs against the
/// snapshot's size). Confined like the storage it wraps.
public final class SyncCountingStorage: RaftStorage {
    public let inner: RaftStorage
    public private(set) var syncs = 0
    public private(set) var syncNanos: UInt64 = 0
    /// Entry bytes (`RaftEntry.size`) appended since the last compaction or
    /// installed snapshot, counting what the log held when this was made.
    public private(set) var bytesSinceSnapshot = 0
    /// The size of the snapshot data the log starts after.
    public private(set) var snapshotBytes: Int
    /// Compactions since this wrapper was made (installed snapshots aside).
    public private(set) var compactions = 0

    public init(_ inner: RaftStorage) {
        self.inner = inner
        snapshotBytes = (try? inner.snapshot().data.count) ?? 0
        // A restart must not forget the log it recovered, or a node
        // restarted often enough would never compact.
        if let first = try? inner.firstIndex(), let last = try? inner.lastIndex(), first <= last,
            let stored = try? inner.entries(first, last + 1, maxBytes: .max)
        {
            bytesSinceSnapshot = stored.reduce(0) { $0 &+ $1.size }
        }
    }

    public func initialState() throws -> (hardState: HardState, conf: ConfState) { try inner.initialState() }
    public func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] {
        try inner.entries(lo, hi, maxBytes: maxBytes)
    }
    public func term(_ index: UInt64) throws -> UInt64 { try inner.term(index) }
    public func firstIndex() throws -> UInt64 { try inner.firstIndex() }
    public func lastIndex() throws -> UInt64 { try inner.lastIndex() }
    public func snapshot() throws -> Snapshot { try inner.snapshot() }
    public func append(_ entries: [RaftEntry]) throws {
        try inner.append(entries)
        for entry in entries { bytesSinceSnapshot &+= entry.size }
    }
    public func setHardState(_ state: HardState) throws { try inner.setHardState(state) }
    public func applySnapshot(_ snapshot: Snapshot) throws {
        try inner.applySnapshot(snapshot)
        snapshotBytes = snapshot.data.count
        bytesSinceSnapshot = 0
    }
    public func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws {
        try inner.compact(to: index, conf: conf, data: data)
        compactions += 1
        snapshotBytes = data.count
        bytesSinceSnapshot = 0
    }

    public func sync() throws {
        syncs += 1
        let start = Self.monotonicNanos()
        try inner.sync()
        syncNanos += Self.monotonicNanos() - start
    }

    static func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
