import LuigiBase

/// What applying a table-log command produced: the same on every node,
/// since every check reads only the log's own state. It is the result the
/// proposer receives: "LTO" v1 | tag | fields.
public enum TableOutcome: Equatable, Sendable {
    /// The version the command made (a table's creation: 0). `duplicate`:
    /// a retry of an earlier command, which returns that one's version and
    /// changes nothing.
    case committed(version: UInt64, duplicate: Bool)
    /// Lost to another write: a stale base, or a transaction id already used
    /// for other files. `latest` is the table's latest version.
    case conflict(latest: UInt64, message: String)
    /// Refused as malformed or impossible (unknown table, a removed file
    /// that is not live, an added one that already is); changed nothing.
    case invalid(String)

    static let magic: [UInt8] = [0x4C, 0x54, 0x4F, 0x01]

    /// The committed version, or the outcome as an error: `.conflict` or
    /// `.invalidArgument`.
    public func version() throws -> UInt64 {
        switch self {
        case .committed(let v, _): return v
        case .conflict(let latest, let m): throw LuigiError.conflict(m, current: latest)
        case .invalid(let m): throw LuigiError.invalidArgument(m)
        }
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.magic(Self.magic)
        switch self {
        case .committed(let v, let duplicate): w.u8(1); w.varint(v); w.flag(duplicate)
        case .conflict(let latest, let m): w.u8(2); w.varint(latest); w.string(m)
        case .invalid(let m): w.u8(3); w.string(m)
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        guard bytes.starts(with: Self.magic) else { throw LuigiError.decode("not a table-log outcome") }
        var r = ByteReader(Array(bytes.dropFirst(Self.magic.count)))
        switch try r.u8() {
        case 1: self = .committed(version: try r.varint(), duplicate: try r.flag())
        case 2: self = .conflict(latest: try r.varint(), message: try r.utf8())
        case 3: self = .invalid(try r.utf8())
        case let tag: throw LuigiError.decode("unknown table-log outcome \(tag)")
        }
        try r.expectEnd("table-log outcome")
    }
}
