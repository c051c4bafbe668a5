import LuigiBase
import LuigiRaft

/// `RaftStorage` on disk: a write-ahead log plus snapshot files in one
/// directory, with the whole log also held in memory (a `MemoryRaftStorage`)
/// so reads never touch the disk.
///
/// Durability rules:
/// - `append` and `setHardState` only write WAL records; `sync()` makes
///   everything written so far durable with one fdatasync (group commit).
///   Acknowledge nothing — votes, appends, commits — before `sync()` returns.
/// - `compact` and `applySnapshot` first sync the WAL, then write the
///   snapshot file durably (temp file, fdatasync, rename, fsync directory),
///   then append a WAL marker; they return with the snapshot durable. Old
///   snapshot files beyond `retainedSnapshots` are deleted, and WAL segments
///   are released back to the oldest snapshot kept, so a corrupt newest
///   snapshot can be replaced by the one before it.
/// - Any failed write or sync poisons the instance: later writes and syncs
///   throw `StorageError.failed`; reads still answer from memory. Reopen to
///   continue from what is durable.
///
/// Opening: leftover snapshot temp files are deleted; the newest valid
/// snapshot is loaded (corrupt newer ones are renamed `*.corrupt` — but only
/// if the WAL covers everything from the older snapshot on; otherwise
/// opening fails with `.corrupt` naming the bad snapshot); then the WAL is
/// replayed on top (a torn tail is truncated, see `WriteAheadLog`). An empty
/// directory is bootstrapped with a snapshot at index 0 holding `conf`;
/// later opens take the membership from the snapshot and ignore `conf`.
///
/// Semantics match `MemoryRaftStorage`, except that `applySnapshot` refuses
/// a snapshot older than the current one (`LuigiError.invalidArgument`).
/// One thread at a time; one open instance per directory.
public final class DurableRaftStorage: RaftStorage {
    public struct Options: Sendable {
        public var wal: WriteAheadLog.Options
        /// Snapshot files kept (at least 1).
        public var retainedSnapshots: Int

        public init(wal: WriteAheadLog.Options = WriteAheadLog.Options(), retainedSnapshots: Int = 2) {
            self.wal = wal
            self.retainedSnapshots = max(retainedSnapshots, 1)
        }
    }

    /// What opening found.
    public struct Recovery: Equatable, Sendable {
        public var wal: WriteAheadLog.Recovery
        /// The snapshot the log was rebuilt on.
        public var snapshotPath: String
        public var snapshotIndex: UInt64
        /// Corrupt snapshot files passed over (renamed to `*.corrupt`).
        public var corruptSnapshots: [String]
        /// Interrupted snapshot writes deleted.
        public var removedTemporaryFiles: [String]
        /// The directory was empty and has been initialised.
        public var bootstrapped: Bool
    }

    public let directory: String
    public let options: Options
    public let recovery: Recovery
    private let memory: MemoryRaftStorage
    private let wal: WriteAheadLog
    private let snapshots: SnapshotFiles
    private var failure: StorageError?

    public init(
        directory path: String,
        conf: ConfState = ConfState(),
        options: Options = Options(),
        syscalls: any Syscalls = PosixSyscalls()
    ) throws(StorageError) {
        var directory = path
        while directory.count > 1 && directory.hasSuffix("/") { directory.removeLast() }
        let io = FileIO(syscalls)
        try io.makeDirectory(directory)
        let listing = try io.list(directory)
        let files = SnapshotFiles(directory: directory, io: io)
        let temporary = try files.removeTemporaryFiles(in: listing)

        // The newest valid snapshot.
        var corrupt: [StorageError] = []
        var corruptPaths: [String] = []
        var loaded: StoredSnapshot? = nil
        var bootstrapped = false
        let candidates = SnapshotFiles.names(in: listing)
        if candidates.isEmpty {
            if listing.contains(where: { WriteAheadLog.parseSegmentName($0) != nil }) {
                throw .corrupt(
                    path: directory, offset: 0,
                    reason: "WAL segments exist but no snapshot file does (not even the index-0 one written at creation)")
            }
            let empty = Snapshot(metadata: SnapshotMetadata(index: 0, term: 0, conf: conf))
            let written = try files.write(empty, replacesLog: false, walSeq: 0)
            loaded = StoredSnapshot(snapshot: empty, replacesLog: false, walSeq: 0, path: written)
            bootstrapped = true
        } else {
            for candidate in candidates {
                do {
                    loaded = try files.load(candidate.name)
                    break
                } catch {
                    guard case .corrupt(let bad, _, _) = error else { throw error }
                    corrupt.append(error)
                    corruptPaths.append(bad)
                }
            }
        }
        guard let loaded else {
            throw .corrupt(path: corruptPaths[0], offset: 0, reason: "no valid snapshot file: \(corrupt[0])")
        }

        // Rebuild the log in memory from the snapshot and the WAL.
        if loaded.walSeq > 0 && !listing.contains(where: { WriteAheadLog.parseSegmentName($0) != nil }) {
            throw .corrupt(
                path: directory, offset: 0,
                reason: "no WAL segments, but \(loaded.path) was written after WAL record \(loaded.walSeq)")
        }
        let memory = MemoryRaftStorage()
        var replayer = Replayer(memory: memory, loaded: loaded)
        let wal: WriteAheadLog
        do {
            try replayer.start()
            wal = try WriteAheadLog.open(directory: directory, options: options.wal, syscalls: syscalls) {
                (record, position) throws(StorageError) in try replayer.apply(record, at: position)
            }
            try replayer.finish(walEnd: wal.nextSeq)
        } catch {
            if let newest = corrupt.first, case .corrupt = error {
                throw .corrupt(
                    path: corruptPaths[0], offset: 0,
                    reason: "\(newest); the older snapshot \(loaded.path) cannot stand in for it: \(error)")
            }
            throw error
        }

        var quarantined: [String] = []
        for bad in corruptPaths { quarantined.append(try files.quarantine(bad)) }

        self.directory = directory
        self.options = options
        self.memory = memory
        self.wal = wal
        self.snapshots = files
        self.recovery = Recovery(
            wal: wal.recovery, snapshotPath: loaded.path, snapshotIndex: loaded.snapshot.metadata.index,
            corruptSnapshots: quarantined, removedTemporaryFiles: temporary, bootstrapped: bootstrapped)
    }

    // MARK: - Reads (from memory)

    public func initialState() throws -> (hardState: HardState, conf: ConfState) { try memory.initialState() }

    public func entries(_ lo: UInt64, _ hi: UInt64, maxBytes: Int) throws -> [RaftEntry] {
        try memory.entries(lo, hi, maxBytes: maxBytes)
    }

    public func term(_ index: UInt64) throws -> UInt64 { try memory.term(index) }
    public func firstIndex() throws -> UInt64 { try memory.firstIndex() }
    public func lastIndex() throws -> UInt64 { try memory.lastIndex() }
    public func snapshot() throws -> Snapshot { try memory.snapshot() }

    // MARK: - Writes

    public func append(_ entries: [RaftEntry]) throws {
        try checkWritable()
        guard let first = entries.first else { return }
        let offset = try memory.firstIndex() - 1
        let fresh = Array(entries.drop { $0.index <= offset })
        guard let start = fresh.first?.index else { return }
        let last = try memory.lastIndex()
        guard start <= last + 1 else {
            throw LuigiError.invalidArgument("append at \(start) leaves a gap after \(last) (first \(first.index))")
        }
        try write { () throws(StorageError) in try wal.append(.entries(fresh)) }
        try memory.append(fresh)
    }

    public func setHardState(_ state: HardState) throws {
        try checkWritable()
        guard state != (try memory.initialState().hardState) else { return }
        try write { () throws(StorageError) in try wal.append(.hardState(state)) }
        try memory.setHardState(state)
    }

    public func applySnapshot(_ snapshot: Snapshot) throws {
        try checkWritable()
        let current = try memory.snapshot().metadata.index
        guard snapshot.metadata.index >= current else {
            throw LuigiError.invalidArgument(
                "snapshot at \(snapshot.metadata.index) is older than the current one at \(current)")
        }
        let marker = SnapshotMarker(index: snapshot.metadata.index, term: snapshot.metadata.term, replacesLog: true)
        try write { () throws(StorageError) in
            try wal.sync()
            try snapshots.write(snapshot, replacesLog: true, walSeq: wal.nextSeq)
            try wal.append(.snapshot(marker))
        }
        try memory.applySnapshot(snapshot)
        try write { () throws(StorageError) in try releaseCovered() }
    }

    public func compact(to index: UInt64, conf: ConfState, data: [UInt8]) throws {
        try checkWritable()
        guard index > (try memory.firstIndex()) - 1 else { return }
        let last = try memory.lastIndex()
        guard index <= last else {
            throw LuigiError.invalidArgument("cannot compact to \(index) past the last index \(last)")
        }
        let term = try memory.term(index)
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: term, conf: conf), data: data)
        try write { () throws(StorageError) in
            // Entries the snapshot covers are durable before it claims them.
            try wal.sync()
            try snapshots.write(snapshot, replacesLog: false, walSeq: wal.nextSeq)
            try wal.append(.snapshot(SnapshotMarker(index: index, term: term, replacesLog: false)))
        }
        try memory.compact(to: index, conf: conf, data: data)
        try write { () throws(StorageError) in try releaseCovered() }
    }

    /// One fdatasync for everything written since the last sync.
    public func sync() throws {
        try write { () throws(StorageError) in try wal.sync() }
    }

    /// Closes the WAL; unsynced writes may or may not survive.
    public func close() { wal.close() }

    /// WAL segment files, oldest first.
    public var walSegments: [String] { wal.segmentPaths }
    /// The first write or sync error, if any (the instance is then poisoned).
    public var firstFailure: StorageError? { failure }

    private func releaseCovered() throws(StorageError) {
        if let oldest = try snapshots.prune(keep: options.retainedSnapshots) {
            try wal.release(upTo: oldest)
        }
    }

    private func checkWritable() throws(StorageError) {
        if let failure { throw .failed(failure) }
    }

    private func write(_ body: () throws(StorageError) -> Void) throws(StorageError) {
        try checkWritable()
        do {
            try body()
        } catch {
            if failure == nil {
                if case .failed(let first) = error { failure = first } else { failure = error }
            }
            throw error
        }
    }
}

/// Rebuilds the in-memory log from a snapshot and the WAL records after it.
///
/// The WAL may begin (after released segments) in the middle of history, and
/// the loaded snapshot may be newer than many of its records, so records are
/// read in the light of the snapshot:
/// - An entries batch wholly at or below the snapshot still ended the log
///   where it ended, so it leaves no entries after the snapshot.
/// - A batch that does not continue the log opens a provisional hole: its
///   predecessors were in released segments, which is fine only if a later
///   record replaces it (a log-replacing marker, or a batch starting at or
///   below the snapshot). A hole still open at the end is corruption.
/// - A log-replacing snapshot loaded from disk makes every record numbered
///   below its `walSeq` history it discarded (hard states excepted).
/// - A marker newer than the loaded snapshot means a newer snapshot file is
///   gone: a compaction is fine if the entries it covered are all here (with
///   the right term); a log replacement is not.
struct Replayer {
    let memory: MemoryRaftStorage
    let loaded: StoredSnapshot
    var pendingReplacement: Bool
    var hole: (position: WALPosition, first: UInt64)? = nil

    init(memory: MemoryRaftStorage, loaded: StoredSnapshot) {
        self.memory = memory
        self.loaded = loaded
        self.pendingReplacement = loaded.replacesLog
    }

    func start() throws(StorageError) {
        try call(loaded.path, 0) { try memory.applySnapshot(loaded.snapshot) }
    }

    mutating func apply(_ record: WALRecord, at position: WALPosition) throws(StorageError) {
        let (path, offset) = (position.path, position.offset)
        if pendingReplacement {
            if position.seq >= loaded.walSeq {
                pendingReplacement = false
            } else {
                if case .hardState(let state) = record { try call(path, offset) { try memory.setHardState(state) } }
                return
            }
        }
        let snapshot = try call(path, offset) { try memory.snapshot() }
        let base = snapshot.metadata.index
        switch record {
        case .hardState(let state):
            try call(path, offset) { try memory.setHardState(state) }
        case .entries(let entries):
            guard let first = entries.first?.index, let last = entries.last?.index else { return }
            if last <= base {
                try call(path, offset) { try memory.applySnapshot(snapshot) }
                hole = nil
            } else if first <= base + 1 {
                try call(path, offset) { try memory.append(entries) }
                hole = nil
            } else if first > (try call(path, offset) { try memory.lastIndex() }) + 1 {
                // (With a hole open the log is empty, so this holds.)
                try call(path, offset) { try memory.applySnapshot(snapshot) }
                if hole == nil { hole = (position, first) }
            } else {
                try call(path, offset) { try memory.append(entries) }
            }
        case .snapshot(let marker):
            if marker.replacesLog {
                guard marker.index <= base else {
                    throw .corrupt(
                        path: path, offset: offset,
                        reason: "the log was replaced by the snapshot at index \(marker.index), term \(marker.term), "
                            + "which is missing or corrupt (the newest valid snapshot is at \(base))")
                }
                try call(path, offset) { try memory.applySnapshot(snapshot) }
                hole = nil
            } else if marker.index > base {
                let term = hole == nil ? try? memory.term(marker.index) : nil
                guard term == marker.term else {
                    throw .corrupt(
                        path: path, offset: offset,
                        reason: "the snapshot at index \(marker.index), term \(marker.term) is missing or corrupt and the "
                            + "WAL does not hold the entries it covered (after the snapshot at \(base) the log ends at "
                            + "\((try? memory.lastIndex()) ?? base)\(hole == nil ? "" : ", with a hole"))")
                }
            }
        }
    }

    /// `walEnd`: the number of records the WAL holds.
    func finish(walEnd: UInt64) throws(StorageError) {
        // Every record before the snapshot's walSeq was synced before the
        // snapshot was written.
        if walEnd < loaded.walSeq {
            throw .corrupt(
                path: loaded.path, offset: 0,
                reason: "the WAL ends at record \(walEnd), but this snapshot was written after record \(loaded.walSeq) was durable")
        }
        if let hole {
            throw .corrupt(
                path: hole.position.path, offset: hole.position.offset,
                reason: "entries from \(hole.first) on do not continue the log after the snapshot at "
                    + "\(loaded.snapshot.metadata.index), and no later record replaces them: the WAL has lost entries")
        }
    }

    /// A `MemoryRaftStorage` call during replay; its refusal means the
    /// records on disk do not fit together.
    @discardableResult
    private func call<T>(_ path: String, _ offset: Int, _ body: () throws -> T) throws(StorageError) -> T {
        do {
            return try body()
        } catch {
            throw .corrupt(path: path, offset: offset, reason: "record does not fit the log rebuilt so far: \(error)")
        }
    }
}
