import LuigiBase

/// One committed version as the history keeps it: enough to list it, to
/// compare a retry with it, and to fold it forward or undo it.
public struct VersionRecord: Equatable, Sendable {
    public let version: UInt64
    public let txnId: String
    /// In path order.
    public let adds: [DataFile]
    /// The removed files as they were, in path order.
    public let removed: [DataFile]
}

/// A readable version of a table, as `TableState.versions` lists it.
public struct TableVersion: Equatable, Sendable {
    public let version: UInt64
    /// The transaction that made it ("" for version 0).
    public let txnId: String
    public let added: Int
    public let removed: Int
}

/// One table of the log: its live files, the versions it keeps readable
/// (`oldest...latest`) and the transaction ids of those versions.
///
/// Costs: a commit is checked and applied in O(files in the commit), never
/// O(history): the live files are a map, and a transaction id maps to its
/// version. Reading an older version folds the history forward from the
/// oldest kept version or undoes it back from the latest, whichever is
/// shorter. Retention drops the oldest version into the base in O(its files).
///
/// A transaction id is remembered as long as its version is kept. A retry
/// older than that is refused by the base-version check instead (its base
/// is older than the latest), so it can never apply twice either way.
public struct TableState: Equatable, Sendable {
    public let name: String
    public let schema: [UInt8]
    /// How many versions stay readable (0: all).
    public let retain: UInt64
    public private(set) var latest: UInt64 = 0
    /// The oldest readable version.
    public private(set) var oldest: UInt64 = 0
    /// Files at `oldest`.
    private var base: [String: DataFile] = [:]
    /// Records of versions max(oldest, 1)...latest.
    private var records = RecordQueue()
    /// Files at `latest` (derived: the fold of `base` and `records`).
    private var live: [String: DataFile] = [:]
    /// Transaction id -> version, for every record kept (derived).
    private var txns: [String: UInt64] = [:]

    init(name: String, schema: [UInt8], retain: UInt64) {
        self.name = name
        self.schema = schema
        self.retain = retain
    }

    public var liveFileCount: Int { live.count }

    // MARK: - Commit

    /// Checks a canonical request (`CommitRequest.validated`) against the
    /// table, in the documented order, and applies it when it passes.
    /// A refused request changes nothing.
    mutating func commit(_ r: CommitRequest) -> TableOutcome {
        // A retry is compared on its files only, not its base: a client may
        // retry with a refreshed base.
        if let v = txns[r.txnId], let record = record(v) {
            guard record.adds == r.adds && record.removed.map(\.path) == r.removes else {
                return .conflict(latest: latest, message:
                    "transaction id \(r.txnId.debugDescription) already committed version \(v) of \(name) with other files")
            }
            return .committed(version: v, duplicate: true)
        }
        guard r.baseVersion == latest else {
            return .conflict(latest: latest, message:
                "stale base: the commit is based on version \(r.baseVersion) of \(name), whose latest version is \(latest)")
        }
        var removed: [DataFile] = []
        removed.reserveCapacity(r.removes.count)
        for p in r.removes {
            guard let f = live[p] else { return .invalid("file \(p) is not live in \(name) at version \(latest)") }
            removed.append(f)
        }
        // Both lists are sorted by path, so "also removed" is a merge walk.
        var i = 0
        for f in r.adds where live[f.path] != nil {
            while i < r.removes.count && pathOrder(r.removes[i], f.path) { i += 1 }
            guard i < r.removes.count && r.removes[i] == f.path else {
                return .invalid("file \(f.path) is already live in \(name) at version \(latest)")
            }
        }
        guard latest < UInt64.max else { return .invalid("table \(name) has reached the last version number") }
        latest += 1
        for f in removed { live[f.path] = nil }
        for f in r.adds { live[f.path] = f }
        records.append(VersionRecord(version: latest, txnId: r.txnId, adds: r.adds, removed: removed))
        txns[r.txnId] = latest
        trim()
        return .committed(version: latest, duplicate: false)
    }

    /// Drops versions below the retention bound: the oldest record's id is
    /// forgotten and the next version becomes the base.
    private mutating func trim() {
        guard retain > 0 else { return }
        while latest - oldest >= retain {
            if oldest >= 1, let gone = records.removeFirst() { txns[gone.txnId] = nil }
            oldest += 1
            if let next = record(oldest) { Self.fold(next, into: &base) }
        }
    }

    /// The record of version `v`, if kept: records hold max(oldest, 1)...latest
    /// in order, so its position is its offset.
    private func record(_ v: UInt64) -> VersionRecord? {
        let first = max(oldest, 1)
        guard v >= first, v <= latest, Int(v - first) < records.count else { return nil }
        return records[Int(v - first)]
    }

    private static func fold(_ r: VersionRecord, into files: inout [String: DataFile]) {
        for f in r.removed { files[f.path] = nil }
        for f in r.adds { files[f.path] = f }
    }

    private static func undo(_ r: VersionRecord, in files: inout [String: DataFile]) {
        for f in r.adds { files[f.path] = nil }
        for f in r.removed { files[f.path] = f }
    }

    // MARK: - Reads

    /// The files at `version` (nil: the latest), in path order.
    public func files(at version: UInt64? = nil) throws -> [DataFile] {
        let v = version ?? latest
        guard v >= oldest, v <= latest else {
            throw LuigiError.invalidArgument(
                "version \(v) of \(name) is not readable: it keeps versions \(oldest)...\(latest)")
        }
        var files: [String: DataFile]
        if latest - v <= v - oldest {
            files = live
            for i in stride(from: records.count - 1, through: 0, by: -1) where records[i].version > v {
                Self.undo(records[i], in: &files)
            }
        } else {
            files = base
            for i in 0..<records.count where records[i].version > oldest && records[i].version <= v {
                Self.fold(records[i], into: &files)
            }
        }
        return files.values.sorted { pathOrder($0.path, $1.path) }
    }

    /// Every readable version, oldest first.
    public var versions: [TableVersion] {
        var out: [TableVersion] = []
        if oldest == 0 { out.append(TableVersion(version: 0, txnId: "", added: 0, removed: 0)) }
        for i in 0..<records.count {
            let r = records[i]
            out.append(TableVersion(version: r.version, txnId: r.txnId, added: r.adds.count, removed: r.removed.count))
        }
        return out
    }

    /// The version a transaction id committed, while it is kept.
    public func version(ofTransaction id: String) -> UInt64? { txns[id] }

    // MARK: - Snapshot

    func encode(into w: inout ByteWriter) {
        w.string(name)
        w.blob(schema)
        w.varint(retain)
        w.varint(latest)
        w.varint(oldest)
        w.varint(UInt64(base.count))
        for f in base.values.sorted(by: { pathOrder($0.path, $1.path) }) { w.dataFile(f) }
        w.varint(UInt64(records.count))
        for i in 0..<records.count {
            let r = records[i]
            w.varint(r.version)
            w.string(r.txnId)
            w.varint(UInt64(r.adds.count))
            for f in r.adds { w.dataFile(f) }
            w.varint(UInt64(r.removed.count))
            for f in r.removed { w.dataFile(f) }
        }
    }

    /// Decodes one table and rebuilds what is derived (live files, the id
    /// map), checking that the history is whole: records for exactly
    /// max(oldest, 1)...latest, each one's removed files live before it and
    /// its added files not live after its removes.
    static func decode(from r: inout ByteReader) throws -> TableState {
        var t = TableState(name: try r.utf8(), schema: try r.blob(), retain: try r.varint())
        t.latest = try r.varint()
        t.oldest = try r.varint()
        guard t.oldest <= t.latest else { throw LuigiError.decode("table \(t.name): oldest version above the latest") }
        for _ in 0..<(try r.count()) {
            let f = try r.dataFile()
            guard t.base.updateValue(f, forKey: f.path) == nil else { throw LuigiError.decode("table \(t.name): file \(f.path) twice") }
        }
        t.live = t.base
        let n = try r.count()
        let expected = t.latest >= max(t.oldest, 1) ? t.latest - max(t.oldest, 1) + 1 : 0
        guard UInt64(n) == expected else {
            throw LuigiError.decode("table \(t.name): \(n) records for versions \(t.oldest)...\(t.latest)")
        }
        for k in 0..<n {
            let version = try r.varint(), txn = try r.utf8()
            let adds = try (0..<r.count()).map { _ in try r.dataFile() }
            let removed = try (0..<r.count()).map { _ in try r.dataFile() }
            guard version == max(t.oldest, 1) + UInt64(k), t.txns.updateValue(version, forKey: txn) == nil else {
                throw LuigiError.decode("table \(t.name): record \(version) is out of order or repeats its transaction id")
            }
            let record = VersionRecord(version: version, txnId: txn, adds: adds, removed: removed)
            if version > t.oldest {
                // The fold, checked as a commit is: each removed file live
                // (once), no added file live after the removes (nor added twice).
                for f in removed {
                    guard t.live.removeValue(forKey: f.path) == f else {
                        throw LuigiError.decode("table \(t.name): version \(version) removes a file that is not live")
                    }
                }
                for f in adds {
                    guard t.live.updateValue(f, forKey: f.path) == nil else {
                        throw LuigiError.decode("table \(t.name): version \(version) adds a file that is already live")
                    }
                }
            }
            t.records.append(record)
        }
        return t
    }
}

/// The kept records, oldest first: appends at the back, drops at the front,
/// in amortized O(1). Equal when they hold the same records.
struct RecordQueue: Equatable, Sendable {
    private var items: [VersionRecord] = []
    private var head = 0

    var count: Int { items.count - head }

    subscript(i: Int) -> VersionRecord { items[head + i] }

    mutating func append(_ r: VersionRecord) { items.append(r) }

    mutating func removeFirst() -> VersionRecord? {
        guard head < items.count else { return nil }
        defer {
            head += 1
            if head >= 1024 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
        }
        return items[head]
    }

    static func == (a: RecordQueue, b: RecordQueue) -> Bool {
        a.count == b.count && (0..<a.count).allSatisfy { a[$0] == b[$0] }
    }
}
