import LuigiRaft

#if canImport(Glibc)
import Glibc
#endif

/// Any `RaftStorage`, counting its syncs and the time they took: what the
/// benchmarks report as fdatasyncs. Confined like the storage it wraps.
public final class SyncCountingStorage: RaftStorage {
    public let inner: RaftStorage
    public private(set) var syncs = 0
    public private(set) var syncNanos: UInt64 = 0

    public init(_ inner: RaftStorage) { self.inner = inner }

    public func initialState() throws -> (hardState: HardState, conf: ConfState) { try inner.initialState() }
    public func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] {
        try inner.entries(lo, hi, maxBytes: maxBytes)
    }
    public func term(_ index: UInt64) throws -> UInt64 { try inner.term(index) }
    public func firstIndex() throws -> UInt64 { try inner.firstIndex() }
    public func lastIndex() throws -> UInt64 { try inner.lastIndex() }
    public func snapshot() throws -> Snapshot { try inner.snapshot() }
    public func append(_ entries: [RaftEntry]) throws { try inner.append(entries) }
    public func setHardState(_ state: HardState) throws { try inner.setHardState(state) }
    public func applySnapshot(_ snapshot: Snapshot) throws { try inner.applySnapshot(snapshot) }
    public func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws {
        try inner.compact(to: index, conf: conf, data: data)
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
