import LuigiBase
import LuigiRaft

/// A snapshot as stored on disk.
public struct StoredSnapshot: Equatable, Sendable {
    public var snapshot: Snapshot
    /// True if the snapshot replaced the whole log (installed from a leader).
    public var replacesLog: Bool
    /// The WAL's next record number when the snapshot was written: for a
    /// log-replacing snapshot, records numbered below it predate it.
    public var walSeq: UInt64
    public var path: String
}

/// Snapshot files `snap-<16 hex term>-<16 hex index>.snap` in one directory.
///
/// Contents: `"LSN" 0x01 | kind u8 (0 compact, 1 replaces log) | walSeq |
/// Snapshot encoding | CRC-32C` (varints as everywhere; the CRC covers all
/// bytes before it). Written as `<name>.tmp` → fdatasync → close → rename →
/// fsync directory, so a name either holds a complete durable snapshot or
/// does not exist; a crash leaves at most a `.tmp` file, which `removeTemporaryFiles`
/// deletes.
public struct SnapshotFiles {
    static let magic: [UInt8] = [0x4C, 0x53, 0x4E, 0x01]
    static let tempSuffix = ".tmp"
    static let corruptSuffix = ".corrupt"

    public let directory: String
    let io: FileIO

    init(directory: String, io: FileIO) {
        self.directory = directory
        self.io = io
    }

    public static func fileName(index: UInt64, term: UInt64) -> String {
        "snap-\(hex16(term))-\(hex16(index)).snap"
    }

    /// (index, term) of a snapshot file name.
    public static func parse(_ name: String) -> (index: UInt64, term: UInt64)? {
        guard name.hasPrefix("snap-"), name.hasSuffix(".snap"), name.utf8.count == 43 else { return nil }
        let body = name.dropFirst(5).dropLast(5)
        let parts = body.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let term = parseHex16(parts[0]), let index = parseHex16(parts[1]) else { return nil }
        return (index, term)
    }

    /// Snapshot file names in `listing`, newest (highest index, then term) first.
    static func names(in listing: [String]) -> [(name: String, index: UInt64, term: UInt64)] {
        listing.compactMap { name in parse(name).map { (name, $0.index, $0.term) } }
            .sorted { ($0.index, $0.term) > ($1.index, $1.term) }
    }

    static func encode(_ snapshot: Snapshot, replacesLog: Bool, walSeq: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: snapshot.data.count + 64)
        w.magic(magic)
        w.u8(replacesLog ? 1 : 0)
        w.varint(walSeq)
        snapshot.write(to: &w)
        w.sealWithChecksum()
        return w.bytes
    }

    /// Writes the snapshot durably; returns its path.
    @discardableResult
    func write(_ snapshot: Snapshot, replacesLog: Bool, walSeq: UInt64) throws(StorageError) -> String {
        let name = Self.fileName(index: snapshot.metadata.index, term: snapshot.metadata.term)
        let path = joinPath(directory, name)
        try io.replaceDurably(path, with: Self.encode(snapshot, replacesLog: replacesLog, walSeq: walSeq),
                              temp: path + Self.tempSuffix, directory: directory)
        return path
    }

    /// Reads and verifies one snapshot file; a bad one is `.corrupt`.
    func load(_ name: String) throws(StorageError) -> StoredSnapshot {
        let path = joinPath(directory, name)
        let bytes = try io.readFile(path)
        do {
            var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "snapshot file")
            let kind = try r.u8()
            guard kind <= 1 else { throw LuigiError.decode("unknown snapshot kind \(kind)") }
            let walSeq = try r.varint()
            let snapshot = try Snapshot.read(from: &r)
            try r.expectEnd("snapshot file")
            guard let named = Self.parse(name), named.index == snapshot.metadata.index, named.term == snapshot.metadata.term
            else {
                throw LuigiError.decode(
                    "holds the snapshot at index \(snapshot.metadata.index), term \(snapshot.metadata.term), not the one its name says")
            }
            return StoredSnapshot(snapshot: snapshot, replacesLog: kind == 1, walSeq: walSeq, path: path)
        } catch {
            throw .corrupt(path: path, offset: 0, reason: "\(error)")
        }
    }

    /// Deletes leftover `snap-*.tmp` files of interrupted writes; returns their paths.
    func removeTemporaryFiles(in listing: [String]) throws(StorageError) -> [String] {
        var removed: [String] = []
        for name in listing where name.hasPrefix("snap-") && name.hasSuffix(Self.tempSuffix) {
            let path = joinPath(directory, name)
            try io.unlink(path)
            removed.append(path)
        }
        return removed
    }

    /// Keeps the newest `keep` snapshot files and deletes the rest; returns
    /// the index of the oldest one kept.
    func prune(keep: Int) throws(StorageError) -> UInt64? {
        let all = Self.names(in: try io.list(directory))
        for old in all.dropFirst(max(keep, 1)) { try io.unlink(joinPath(directory, old.name)) }
        return all.prefix(max(keep, 1)).last?.index
    }

    /// Renames a corrupt snapshot out of the way (`.corrupt`), keeping it for
    /// inspection; returns the new path.
    func quarantine(_ path: String) throws(StorageError) -> String {
        let target = path + Self.corruptSuffix
        try io.rename(path, target)
        try io.syncDirectory(directory)
        return target
    }
}
