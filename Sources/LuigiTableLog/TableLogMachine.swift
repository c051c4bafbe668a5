import LuigiBase
import LuigiRaft

/// Versioned table metadata as a Raft state machine: tables, each a log of
/// versions; a commit names the version it is based on and the files it adds
/// and removes; exactly one of several commits on the same base wins; a
/// retried transaction id returns its original version.
///
/// Every check reads only the state the log built, in one fixed order, so
/// every node decides each command identically:
/// 1. the table exists;
/// 2. a known transaction id with the same files returns its version (with
///    other files: a conflict);
/// 3. the base version is the latest (else a conflict naming the latest);
/// 4. every removed file is live, no added file is, unless also removed;
/// 5. the new version is latest + 1.
public final class TableLogMachine: RaftStateMachine {
    public private(set) var tables: [String: TableState] = [:]
    public private(set) var appliedIndex: UInt64 = 0

    public init() {}

    /// Results: the encoded `TableOutcome` of a command (an entry that does
    /// not decode as one: `.invalid`); [] for no-ops and membership changes.
    public func apply(_ entry: RaftEntry) -> [UInt8] {
        appliedIndex = entry.index
        guard entry.kind == .normal, !entry.data.isEmpty else { return [] }
        do {
            return run(try TableCommand(decoding: entry.data)).encoded()  // decoding validates
        } catch {
            return TableOutcome.invalid("\(error)").encoded()
        }
    }

    /// Runs one command (validated first: a malformed one is `.invalid`).
    public func execute(_ command: TableCommand) -> TableOutcome {
        do { return run(try command.validated()) } catch { return .invalid("\(error)") }
    }

    /// Runs a command already in canonical form (`TableCommand.validated`).
    private func run(_ canonical: TableCommand) -> TableOutcome {
        switch canonical {
        case .createTable(let name, let schema, let retain):
            if let t = tables[name] {
                guard t.schema == schema && t.retain == retain else {
                    return .conflict(latest: t.latest, message: "table \(name) already exists with another schema or retention")
                }
                return .committed(version: 0, duplicate: true)
            }
            tables[name] = TableState(name: name, schema: schema, retain: retain)
            return .committed(version: 0, duplicate: false)
        case .commit(let request):
            return tables[request.table]?.commit(request) ?? .invalid("no table named \(request.table)")
        }
    }

    /// The table named `name`; `.invalidArgument` when there is none.
    public func table(_ name: String) throws -> TableState {
        guard let t = tables[name] else { throw LuigiError.invalidArgument("no table named \(name)") }
        return t
    }

    // MARK: - Snapshots

    static let snapshotMagic: [UInt8] = [0x4C, 0x54, 0x53, 0x01]  // "LTS" v1

    /// Every table with its retained versions, sealed with a CRC-32C. The
    /// id map and the live files are rebuilt from them on restore.
    public func snapshot() -> [UInt8] {
        var w = ByteWriter()
        w.magic(Self.snapshotMagic)
        w.varint(appliedIndex)
        w.varint(UInt64(tables.count))
        for (_, t) in tables.sorted(by: { pathOrder($0.key, $1.key) }) { t.encode(into: &w) }
        w.sealWithChecksum()
        return w.bytes
    }

    /// Replaces the whole state; a snapshot that does not decode, or whose
    /// history is not whole, throws and changes nothing.
    public func restore(_ snapshot: [UInt8]) throws {
        guard !snapshot.isEmpty else {
            tables = [:]
            appliedIndex = 0
            return
        }
        var r = try ByteReader.sealed(snapshot, magic: Self.snapshotMagic, what: "table-log snapshot")
        let index = try r.varint()
        var restored: [String: TableState] = [:]
        for _ in 0..<(try r.count()) {
            let t = try TableState.decode(from: &r)
            guard restored.updateValue(t, forKey: t.name) == nil else { throw LuigiError.decode("table \(t.name) twice") }
        }
        try r.expectEnd("table-log snapshot")
        tables = restored
        appliedIndex = index
    }
}
