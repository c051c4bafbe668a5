import LuigiCore

// The table-log plugin (module LuigiTableLog, re-exported by LuigiCore): its
// command encoding applied to a loaded machine, and its snapshot encoding
// restored over one.

// MARK: - The loaded machine both targets start from

/// A small, deterministic table log, built by applying `commands` as log
/// entries 1...n (term 3):
/// - "events" (schema [1, 2, 3], keeps every version): v1 adds a and b
///   (partition p=1, with statistics), v2 removes a and adds c (p=2),
///   v3 replaces b; txn ids ev-1...ev-3.
/// - "metrics" (no schema, retains 2): v1...v4 (m-1...m-4) add m/1...m/4, v3
///   also removes m/1; versions 3...4 stay readable.
/// - "staging" (schema [7], retains 1): no commit yet.
enum TableWorld {
    static let term: UInt64 = 3

    static func file(_ path: String, rows: UInt64, partition: String = "", min: [UInt8]? = nil, max: [UInt8]? = nil) -> DataFile {
        DataFile(path: path, rows: rows, size: rows * 64 + 100, partition: partition, minStats: min, maxStats: max)
    }

    static func commit(_ table: String, _ base: UInt64, _ txn: String, adds: [DataFile] = [], removes: [String] = []) -> TableCommand {
        .commit(CommitRequest(table: table, baseVersion: base, txnId: txn, adds: adds, removes: removes))
    }

    static let commands: [TableCommand] = [
        .createTable(name: "events", schema: [1, 2, 3], retain: 0),
        .createTable(name: "metrics", schema: [], retain: 2),
        .createTable(name: "staging", schema: [7], retain: 1),
        commit("events", 0, "ev-1", adds: [
            file("events/p=1/a.parquet", rows: 100, partition: "p=1", min: [0, 1], max: [9, 9]),
            file("events/p=1/b.parquet", rows: 50, partition: "p=1", min: [0], max: [5]),
        ]),
        commit("metrics", 0, "m-1", adds: [file("m/1", rows: 1)]),
        commit("events", 1, "ev-2", adds: [file("events/p=2/c.parquet", rows: 7, partition: "p=2", min: [3])],
               removes: ["events/p=1/a.parquet"]),
        commit("metrics", 1, "m-2", adds: [file("m/2", rows: 2)]),
        commit("events", 2, "ev-3", adds: [file("events/p=1/b.parquet", rows: 200, partition: "p=1", max: [8])],
               removes: ["events/p=1/b.parquet"]),
        commit("metrics", 2, "m-3", adds: [file("m/3", rows: 3)], removes: ["m/1"]),
        commit("metrics", 3, "m-4", adds: [file("m/4", rows: 4)]),
    ]

    /// The index of the first entry after the set-up.
    static var nextIndex: UInt64 { UInt64(commands.count + 1) }

    /// A fresh machine holding the world.
    static func machine() -> TableLogMachine {
        let m = TableLogMachine()
        for (i, c) in commands.enumerated() {
            let result = m.apply(RaftEntry(term: term, index: UInt64(i + 1), data: c.encoded()))
            guard case .committed(_, duplicate: false)? = try? TableOutcome(decoding: result) else {
                fatalError("table world: \(c) was not committed: \((try? TableOutcome(decoding: result)).map { "\($0)" } ?? "?")")
            }
        }
        return m
    }

    static let snapshot: [UInt8] = machine().snapshot()
    static let tables: [String: TableState] = machine().tables

    /// The world after one more entry that changed nothing (a refused
    /// command, a duplicate, a no-op): only the applied index moved.
    static let snapshotAfterNoop: [UInt8] = {
        let m = machine()
        _ = m.apply(RaftEntry(term: term, index: nextIndex))
        return m.snapshot()
    }()
}

// MARK: - table_command: TableCommand(decoding:), applied to the world

/// Input: the body of an "LTL" v1 table-log command (the magic is prefixed
/// here; commands carry no checksum). A decoded command is canonical: it
/// re-encodes to bytes that decode to itself (and encode the same again),
/// and `validated()` returns it unchanged. The bytes are then applied as
/// log entry n+1 to `TableWorld.machine()`:
/// - the result decodes as a `TableOutcome` (and re-encodes the same);
/// - a refused one (`.invalid`, `.conflict`), or a duplicate, changes
///   nothing: the snapshot is the world's with only the applied index moved;
///   a conflict names its table's latest version; an entry that does not
///   decode is `.invalid`;
/// - a new table starts empty at version 0; a new commit is version
///   latest + 1, its files are the previous version's minus the removes plus
///   the adds, older readable versions read as before, other tables are
///   untouched, and retention keeps exactly the last `retain` versions;
/// - applying the entry again returns the same refusal, or the same version
///   as a duplicate, and changes nothing;
/// - the snapshot restores into a fresh machine with equal tables, the same
///   applied index and the same snapshot bytes;
/// - the touched table's reads hang together (`checkTableReads`).
public func fuzzTableCommand(_ data: [UInt8]) {
    let bytes = FuzzMagic.tableCommand + data
    let command = try? TableCommand(decoding: bytes)
    if let command {
        let again = command.encoded()
        let back = try? TableCommand(decoding: again)
        fuzzCheck(back == command, "table_command: re-encoding a decoded command does not decode to it: \(command)")
        fuzzCheck(back?.encoded() == again, "table_command: a decoded command's encoding is not stable: \(command)")
        fuzzCheck((try? command.validated()) == command, "table_command: a decoded command is not in canonical form: \(command)")
    }
    let name: String? = command.map {
        switch $0 {
        case .createTable(let name, _, _): return name
        case .commit(let r): return r.table
        }
    }
    let m = TableWorld.machine()
    let before = name.flatMap { TableWorld.tables[$0] }
    let beforeFiles = before.map(readableFiles) ?? [:]

    let entry = RaftEntry(term: TableWorld.term, index: TableWorld.nextIndex, data: bytes)
    let result = m.apply(entry)
    guard let outcome = try? TableOutcome(decoding: result) else {
        fuzzCheck(false, "table_command: the result does not decode as an outcome: \(result)")
        return
    }
    fuzzCheck(outcome.encoded() == result, "table_command: the outcome does not re-encode to the result: \(outcome)")
    fuzzCheck(m.appliedIndex == entry.index, "table_command: applied index \(m.appliedIndex) after entry \(entry.index)")

    switch outcome {
    case .invalid, .conflict:
        fuzzCheck(m.tables == TableWorld.tables, "table_command: a refused command changed the tables: \(outcome)")
        fuzzCheck(m.snapshot() == TableWorld.snapshotAfterNoop, "table_command: a refused command changed the snapshot: \(outcome)")
        if case .conflict(let latest, _) = outcome {
            fuzzCheck(before?.latest == latest,
                      "table_command: a conflict names version \(latest), the table is at \(String(describing: before?.latest))")
        }
    case .committed(let version, let duplicate):
        guard let command else {
            fuzzCheck(false, "table_command: an entry that does not decode was committed: \(outcome)")
            return
        }
        if duplicate {
            fuzzCheck(m.tables == TableWorld.tables, "table_command: a duplicate changed the tables: \(command)")
            fuzzCheck(m.snapshot() == TableWorld.snapshotAfterNoop, "table_command: a duplicate changed the snapshot: \(command)")
            switch command {
            case .createTable: fuzzCheck(version == 0, "table_command: a repeated creation returned version \(version)")
            case .commit(let r):
                fuzzCheck(before?.version(ofTransaction: r.txnId) == version,
                          "table_command: a duplicate of \(r.txnId.debugDescription) returned version \(version)")
            }
        } else {
            checkNewVersion(m, command, version: version, before: before, beforeFiles: beforeFiles)
        }
    }

    // A redelivered entry: the same refusal, or the same version as a duplicate.
    let snapshot = m.snapshot()
    let tables = m.tables
    let second = m.apply(entry)
    switch outcome {
    case .committed(let version, _):
        let retried = try? TableOutcome(decoding: second)
        fuzzCheck(retried == .committed(version: version, duplicate: true),
                  "table_command: a retried command did not return its version \(version) as a duplicate: \(String(describing: retried))")
    case .invalid, .conflict:
        fuzzCheck(second == result, "table_command: a refused command was refused differently the second time")
    }
    fuzzCheck(m.tables == tables && m.snapshot() == snapshot, "table_command: a retried command changed the machine")

    checkRestores(m, snapshot, "table_command")
    if let name, let t = m.tables[name] { checkTableReads(t, "table_command") }
}

/// A command that made a new version (or table): exactly what it says changed.
func checkNewVersion(_ m: TableLogMachine, _ command: TableCommand, version: UInt64, before: TableState?,
                     beforeFiles: [UInt64: [DataFile]]) {
    let name: String
    switch command {
    case .createTable(let n, let schema, let retain):
        name = n
        fuzzCheck(before == nil, "table_command: table \(n) was created again")
        fuzzCheck(version == 0, "table_command: a new table at version \(version)")
        guard let t = m.tables[n] else {
            fuzzCheck(false, "table_command: created table \(n) is missing")
            return
        }
        fuzzCheck(t.name == n && t.schema == schema && t.retain == retain && t.latest == 0 && t.oldest == 0
            && t.liveFileCount == 0, "table_command: table \(n) was created as \(t)")
        fuzzCheck(t.versions.map { [$0.version, UInt64($0.added), UInt64($0.removed)] } == [[0, 0, 0]] && t.versions[0].txnId == "",
                  "table_command: a new table lists versions \(t.versions)")
        fuzzCheck((try? t.files(at: 0)) == [], "table_command: a new table has files")
    case .commit(let r):
        name = r.table
        guard let before, let t = m.tables[r.table] else {
            fuzzCheck(false, "table_command: commit to a table that did not exist: \(r.table)")
            return
        }
        fuzzCheck(version == before.latest + 1 && t.latest == version,
                  "table_command: a commit on version \(before.latest) made version \(version), the table is at \(t.latest)")
        fuzzCheck(t.version(ofTransaction: r.txnId) == version, "table_command: \(r.txnId.debugDescription) does not map to \(version)")
        // The new version: the previous one, minus the removes, plus the adds.
        var files: [String: DataFile] = [:]
        for f in beforeFiles[before.latest] ?? [] { files[f.path] = f }
        for p in r.removes {
            fuzzCheck(files[p] != nil, "table_command: a commit removed \(p.debugDescription), which was not live")
            files[p] = nil
        }
        for f in r.adds {
            fuzzCheck(files[f.path] == nil, "table_command: a commit added \(f.path.debugDescription), which stayed live")
            files[f.path] = f
        }
        let expected = files.values.sorted { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }
        fuzzCheck((try? t.files(at: version)) == expected, "table_command: the files at the new version \(version) are not the commit's")
        // Retention: exactly the last `retain` versions (or all) stay readable.
        let oldest = t.retain == 0 ? before.oldest : max(before.oldest, version + 1 > t.retain ? version + 1 - t.retain : 0)
        fuzzCheck(t.oldest == oldest, "table_command: versions \(t.oldest)...\(t.latest) readable, retain \(t.retain)")
        // Older versions read as before.
        if t.oldest <= before.latest {
            for v in t.oldest...before.latest {
                fuzzCheck((try? t.files(at: v)) == beforeFiles[v], "table_command: a commit changed the files at version \(v)")
            }
        }
    }
    for (other, t) in TableWorld.tables where other != name {
        fuzzCheck(m.tables[other] == t, "table_command: a command on \(name) changed table \(other)")
    }
    fuzzCheck(m.tables.count == TableWorld.tables.count + (before == nil ? 1 : 0), "table_command: \(m.tables.count) tables")
}

/// The files of every readable version (for the small tables of the world).
func readableFiles(_ t: TableState) -> [UInt64: [DataFile]] {
    var out: [UInt64: [DataFile]] = [:]
    for v in t.versions { out[v.version] = try? t.files(at: v.version) }
    return out
}

// MARK: - table_snapshot: TableLogMachine.restore over the world

/// Input: the body of an "LTS" v1 table-log snapshot (re-sealed here: magic
/// and CRC-32C added). It is restored into a machine holding
/// `TableWorld`: a refused snapshot leaves the world's snapshot bytes and
/// tables as they were; an accepted one re-encodes (`snapshot()`) to bytes
/// that restore to equal tables and encode the same, every table's reads
/// hang together (`checkTableReads`), and one more valid commit on each
/// table (the next transaction id and a new file, removing its first live
/// file) makes version latest + 1 — after which the reads and the snapshot
/// round trip are checked again.
public func fuzzTableSnapshot(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.tableSnapshot, data)
    let m = TableLogMachine()
    do { try m.restore(TableWorld.snapshot) } catch { fuzzCheck(false, "table_snapshot: the world does not restore: \(error)") }
    do {
        try m.restore(bytes)
    } catch {
        fuzzCheck(m.snapshot() == TableWorld.snapshot, "table_snapshot: a refused snapshot changed the snapshot: \(error)")
        fuzzCheck(m.tables == TableWorld.tables && m.appliedIndex == TableWorld.nextIndex - 1,
                  "table_snapshot: a refused snapshot changed the machine: \(error)")
        return
    }
    checkRestores(m, m.snapshot(), "table_snapshot")
    let names = m.tables.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.prefix(64)
    for name in names {
        guard let t = m.tables[name] else { continue }
        fuzzCheck(t.name == name, "table_snapshot: table \(t.name.debugDescription) is stored as \(name.debugDescription)")
        checkTableReads(t, "table_snapshot")
    }
    for name in names { commitOneMore(m, name) }
    checkRestores(m, m.snapshot(), "table_snapshot")
}

/// One more valid commit on table `name`: based on its latest version, a
/// transaction id it does not know, a file it does not hold, removing its
/// first live file.
func commitOneMore(_ m: TableLogMachine, _ name: String) {
    guard let t = m.tables[name] else { return }
    let live = (try? t.files()) ?? []
    let paths = Set(live.map(\.path))
    var txn = "fuzz-next"
    var path = "fuzz/next.parquet"
    var k = 0
    while t.version(ofTransaction: txn) != nil {
        k += 1
        txn = "fuzz-next-\(k)"
    }
    k = 0
    while paths.contains(path) {
        k += 1
        path = "fuzz/next-\(k).parquet"
    }
    let request = CommitRequest(table: name, baseVersion: t.latest, txnId: txn,
                                adds: [DataFile(path: path, rows: 1, size: 10, partition: "p=1", minStats: [1])],
                                removes: live.first.map { [$0.path] } ?? [])
    let index = m.appliedIndex == .max ? m.appliedIndex : m.appliedIndex + 1
    let result = m.apply(RaftEntry(term: 1, index: index, data: TableCommand.commit(request).encoded()))
    let outcome = try? TableOutcome(decoding: result)
    guard (try? request.validated()) != nil else {
        // The table's name is not one a command can carry (a snapshot
        // restores names without the command limits): refused.
        if case .invalid? = outcome {} else {
            fuzzCheck(false, "table_snapshot: a commit to table \(name.debugDescription) gave \(String(describing: outcome))")
        }
        return
    }
    guard let after = m.tables[name] else {
        fuzzCheck(false, "table_snapshot: table \(name.debugDescription) vanished")
        return
    }
    if t.latest == .max {
        // No version after the last one: refused, and nothing changed.
        switch outcome {
        case .invalid?, .conflict?: fuzzCheck(after == t, "table_snapshot: a refused commit changed table \(name.debugDescription)")
        default: fuzzCheck(false, "table_snapshot: a commit on version 2^64-1 gave \(String(describing: outcome))")
        }
        return
    }
    fuzzCheck(outcome == .committed(version: t.latest + 1, duplicate: false),
              "table_snapshot: a valid commit on version \(t.latest) of \(name.debugDescription) gave \(String(describing: outcome))")
    fuzzCheck(after.latest == t.latest + 1 && after.version(ofTransaction: txn) == t.latest + 1,
              "table_snapshot: after a commit on \(t.latest), the table is at \(after.latest)")
    if after.retain > 0 {
        fuzzCheck(after.latest - after.oldest < after.retain,
                  "table_snapshot: versions \(after.oldest)...\(after.latest) readable, retain \(after.retain)")
    }
    let files = (try? after.files()) ?? []
    fuzzCheck(files.count == live.count - (live.isEmpty ? 0 : 1) + 1 && files.contains { $0.path == path },
              "table_snapshot: after the commit \(files.count) files, before \(live.count)")
    checkTableReads(after, "table_snapshot")
}

// MARK: - Shared checks

/// `snapshot` (taken from `m`) restores into a fresh machine with equal
/// tables and applied index, and encodes to the same bytes again.
func checkRestores(_ m: TableLogMachine, _ snapshot: [UInt8], _ target: String) {
    let fresh = TableLogMachine()
    do { try fresh.restore(snapshot) } catch {
        fuzzCheck(false, "\(target): the machine's own snapshot does not restore: \(error)")
    }
    fuzzCheck(fresh.tables == m.tables, "\(target): the restored tables differ")
    fuzzCheck(fresh.appliedIndex == m.appliedIndex, "\(target): the restored applied index differs")
    fuzzCheck(fresh.snapshot() == snapshot, "\(target): the restored machine's snapshot differs")
}

/// Every read of a table, checked against each other: `versions` lists
/// oldest...latest, one each, with the transaction ids that map back to
/// them; every listed version is readable (at most 64 at each end of a
/// long history), its files in strict path order, as many as the version
/// before plus its adds minus its removes; the latest reads like `files()`
/// and holds `liveFileCount` files; versions outside are refused.
func checkTableReads(_ t: TableState, _ target: String) {
    let what = "\(target): table \(t.name.debugDescription)"
    let versions = t.versions
    fuzzCheck(t.oldest <= t.latest, "\(what): oldest \(t.oldest) above latest \(t.latest)")
    guard let first = versions.first, let last = versions.last else {
        fuzzCheck(false, "\(what): no readable version")
        return
    }
    fuzzCheck(first.version == t.oldest && last.version == t.latest && UInt64(versions.count - 1) == t.latest - t.oldest,
              "\(what): versions \(first.version)...\(last.version) (\(versions.count)) listed, \(t.oldest)...\(t.latest) kept")
    var previous: (version: UInt64, count: Int)? = nil
    for (i, v) in versions.enumerated() {
        fuzzCheck(v.version == t.oldest + UInt64(i), "\(what): version \(v.version) listed at position \(i)")
        if v.version > 0 {
            fuzzCheck(t.version(ofTransaction: v.txnId) == v.version,
                      "\(what): transaction \(v.txnId.debugDescription) of version \(v.version) maps elsewhere")
        }
        guard i < 64 || versions.count - i <= 64 else {
            previous = nil
            continue
        }
        guard let files = try? t.files(at: v.version) else {
            fuzzCheck(false, "\(what): listed version \(v.version) is not readable")
            return
        }
        for j in files.indices.dropFirst() {
            fuzzCheck(files[j - 1].path.utf8.lexicographicallyPrecedes(files[j].path.utf8),
                      "\(what): files at version \(v.version) out of path order")
        }
        if let p = previous, p.version + 1 == v.version {
            fuzzCheck(files.count == p.count + v.added - v.removed,
                      "\(what): version \(v.version) holds \(files.count) files; version \(p.version) held \(p.count), "
                        + "then \(v.added) added, \(v.removed) removed")
        }
        previous = (v.version, files.count)
    }
    let latest = try? t.files()
    fuzzCheck(latest != nil && latest == (try? t.files(at: t.latest)), "\(what): files() differs from files(at: latest)")
    fuzzCheck(latest?.count == t.liveFileCount, "\(what): \(latest?.count ?? -1) files at the latest version, \(t.liveFileCount) live")
    if t.oldest > 0 { fuzzCheck((try? t.files(at: t.oldest - 1)) == nil, "\(what): version \(t.oldest - 1) is readable") }
    if t.latest < .max { fuzzCheck((try? t.files(at: t.latest + 1)) == nil, "\(what): version \(t.latest + 1) is readable") }
}
