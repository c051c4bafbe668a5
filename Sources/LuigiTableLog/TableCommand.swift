import LuigiBase

/// A commit against a table: the version it was based on, a transaction id
/// that makes retries idempotent, and the files it adds and removes.
public struct CommitRequest: Equatable, Sendable {
    public var table: String
    public var baseVersion: UInt64
    public var txnId: String
    public var adds: [DataFile]
    /// Paths of live files this commit removes.
    public var removes: [String]

    public init(table: String, baseVersion: UInt64, txnId: String, adds: [DataFile] = [], removes: [String] = []) {
        self.table = table
        self.baseVersion = baseVersion
        self.txnId = txnId
        self.adds = adds
        self.removes = removes
    }

    /// Checks the request's shape (limits, empty or repeated paths) without
    /// looking at any table, and returns its canonical form: adds and removes
    /// sorted by path, so that the order a client listed them in never makes
    /// two requests differ. Throws `.invalidArgument`.
    public func validated() throws -> CommitRequest {
        try checkName(table, "table name", max: TableLimits.maxNameBytes)
        try checkName(txnId, "transaction id", max: TableLimits.maxTxnIdBytes)
        guard adds.count + removes.count <= TableLimits.maxFilesPerCommit else {
            throw LuigiError.invalidArgument(
                "a commit lists at most \(TableLimits.maxFilesPerCommit) files, this one \(adds.count + removes.count)")
        }
        var seen = Set<String>(minimumCapacity: adds.count)
        for f in adds {
            try f.validate()
            guard seen.insert(f.path).inserted else { throw LuigiError.invalidArgument("file \(f.path) is added twice in one commit") }
        }
        seen.removeAll(keepingCapacity: true)
        for p in removes {
            try checkPath(p)
            guard seen.insert(p).inserted else { throw LuigiError.invalidArgument("file \(p) is removed twice in one commit") }
        }
        var c = self
        c.adds.sort { pathOrder($0.path, $1.path) }
        c.removes.sort(by: pathOrder)
        return c
    }
}

/// A command of the table log, as the Raft log carries it:
/// "LTL" v1 | tag | fields.
public enum TableCommand: Equatable, Sendable {
    /// Creates a table at version 0 with no files. `retain` versions stay
    /// readable (0: every version). Creating it again with the same schema
    /// and retention succeeds (a retry); with others, it is a conflict.
    case createTable(name: String, schema: [UInt8], retain: UInt64)
    case commit(CommitRequest)

    static let magic: [UInt8] = [0x4C, 0x54, 0x4C, 0x01]

    /// Checks the shape (as `CommitRequest.validated`) and returns the
    /// canonical command. Throws `.invalidArgument`.
    public func validated() throws -> TableCommand {
        switch self {
        case .createTable(let name, let schema, _):
            try checkName(name, "table name", max: TableLimits.maxNameBytes)
            guard schema.count <= TableLimits.maxSchemaBytes else {
                throw LuigiError.invalidArgument("a schema is at most \(TableLimits.maxSchemaBytes) bytes, got \(schema.count)")
            }
            return self
        case .commit(let request):
            return .commit(try request.validated())
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.magic(Self.magic)
        switch self {
        case .createTable(let name, let schema, let retain):
            w.u8(1)
            w.string(name)
            w.blob(schema)
            w.varint(retain)
        case .commit(let r):
            w.u8(2)
            w.string(r.table)
            w.varint(r.baseVersion)
            w.string(r.txnId)
            w.varint(UInt64(r.adds.count))
            for f in r.adds { w.dataFile(f) }
            w.varint(UInt64(r.removes.count))
            for p in r.removes { w.string(p) }
        }
        return w.bytes
    }

    /// Decodes and validates (a command out of bounds is a decode error).
    public init(decoding bytes: [UInt8]) throws {
        guard bytes.starts(with: Self.magic) else { throw LuigiError.decode("not a table-log command") }
        var r = ByteReader(Array(bytes.dropFirst(Self.magic.count)))
        let command: TableCommand
        switch try r.u8() {
        case 1:
            command = .createTable(name: try r.utf8(), schema: try r.blob(), retain: try r.varint())
        case 2:
            let table = try r.utf8(), base = try r.varint(), txn = try r.utf8()
            let adds = try (0..<r.count()).map { _ in try r.dataFile() }
            let removes = try (0..<r.count()).map { _ in try r.utf8() }
            command = .commit(CommitRequest(table: table, baseVersion: base, txnId: txn, adds: adds, removes: removes))
        case let tag:
            throw LuigiError.decode("unknown table-log command \(tag)")
        }
        try r.expectEnd("table-log command")
        do { self = try command.validated() } catch { throw LuigiError.decode("\(error)") }
    }
}
