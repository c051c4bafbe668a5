import LuigiAlgebraic
import LuigiBase
import LuigiWatermark

/// A request's identity: the client's random 64-bit id and its own sequence
/// number. A retry reuses both, and the node applies a command at most once
/// per id (the session table in `LuigiHost.SessionMachine`).
public struct RequestID: Hashable, Sendable, CustomStringConvertible {
    public var client: UInt64
    public var seq: UInt64

    public init(client: UInt64, seq: UInt64) {
        self.client = client
        self.seq = seq
    }

    public var description: String { "\(String(client, radix: 16)):\(seq)" }
}

/// What a client asks of a node.
public enum ClientOperation: Equatable, Sendable {
    /// Key-value operations on a Raft group, linearizable (they go through the log).
    case put(key: String, value: [UInt8])
    case get(key: String)
    case delete(key: String)
    /// Sets `new` when the current value equals `expected` (nil: absent).
    case cas(key: String, expected: [UInt8]?, new: [UInt8])
    /// The node's view of the cluster (JSON, the same document as /status).
    case status
    /// Opens an exactly-once session in the group; the result is its id
    /// (u64 LE), which later writes carry as `RequestID.client`.
    case register
    /// Membership of the frame's group: record the node's address in the
    /// group's log, then make it a voter (answered once the change applied).
    case addMember(id: UInt64, address: String)
    /// Removes the node from the group's voters (answered once applied).
    case removeMember(id: UInt64)
    /// A coordination-free transaction on a replica group: committed (and
    /// synced) on the node that receives it, spread by anti-entropy. The
    /// result is the update's dot (origin u64, seq u64). Not retried once
    /// delivered: a second attempt would be a second transaction.
    case commit([AlgebraicOp])
    /// A transaction through the replica group's log (may `set`), applied
    /// once per request id; the result is [1], or [0] + the reason every
    /// node rejected it.
    case coordinate([AlgebraicOp])
    /// A key's value in the receiving node's replica (`WireValue`): what
    /// that node has seen, not a linearizable read.
    case value(key: String)
    /// A sharded transaction through the watermark protocol, coordinated
    /// by the receiving node (any node; the frame's group is 0). The result
    /// is a `TransactResult`. Not retried once delivered, like `commit`.
    case transact([ShardOps])

    /// Whether a retry could apply it twice (reads and status cannot).
    public var isWrite: Bool {
        switch self {
        case .put, .delete, .cas, .commit, .coordinate, .transact: return true
        case .get, .status, .register, .addMember, .removeMember, .value: return false
        }
    }
}

/// The limits a node checks before anything else happens.
public enum ClientLimits {
    public static let maxKeyBytes = 4096
    public static let maxValueBytes = 8 << 20
    /// The longest a node waits for a request before answering `.timeout`.
    public static let maxTimeoutMillis: UInt32 = 600_000
}

/// A client's request: "LCQ" v1 | client u64 | seq u64 | timeout ms u32 |
/// operation (tag u8, fields). The frame's group says where it goes.
public struct ClientRequest: Equatable, Sendable {
    public var id: RequestID
    /// How long the node may work on it before answering `.timeout` (1...600,000).
    public var timeoutMillis: UInt32
    public var operation: ClientOperation

    public init(id: RequestID, timeoutMillis: UInt32, operation: ClientOperation) {
        self.id = id
        self.timeoutMillis = timeoutMillis
        self.operation = operation
    }

    static let magic: [UInt8] = [0x4C, 0x43, 0x51, 0x01]  // "LCQ" v1

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 32)
        w.magic(Self.magic)
        w.u64le(id.client)
        w.u64le(id.seq)
        w.u32le(timeoutMillis)
        switch operation {
        case .put(let key, let value):
            w.u8(1); w.string(key); w.blob(value)
        case .get(let key):
            w.u8(2); w.string(key)
        case .delete(let key):
            w.u8(3); w.string(key)
        case .cas(let key, let expected, let new):
            w.u8(4); w.string(key)
            w.flag(expected != nil)
            if let expected { w.blob(expected) }
            w.blob(new)
        case .status:
            w.u8(5)
        case .register:
            w.u8(6)
        case .addMember(let id, let address):
            w.u8(7); w.u64le(id); w.string(address)
        case .removeMember(let id):
            w.u8(8); w.u64le(id)
        case .commit(let ops):
            w.u8(9); AlgebraicOp.writeList(ops, to: &w)
        case .coordinate(let ops):
            w.u8(10); AlgebraicOp.writeList(ops, to: &w)
        case .value(let key):
            w.u8(11); w.string(key)
        case .transact(let parts):
            w.u8(12); w.shardOps(parts)
        }
        return w.bytes
    }

    /// Decodes and range-checks a request: keys 1...4096 bytes of UTF-8,
    /// values up to 8 MiB, a timeout in 1...600,000 ms, nothing trailing.
    public init(decoding bytes: [UInt8]) throws {
        guard bytes.starts(with: Self.magic) else { throw LuigiError.decode("not a client request") }
        var r = ByteReader(Array(bytes.dropFirst(Self.magic.count)))
        id = RequestID(client: try r.u64le(), seq: try r.u64le())
        timeoutMillis = try r.u32le()
        guard (1...ClientLimits.maxTimeoutMillis).contains(timeoutMillis) else {
            throw LuigiError.invalidArgument("timeout of \(timeoutMillis) ms outside 1...\(ClientLimits.maxTimeoutMillis)")
        }
        func key() throws -> String {
            let k = try r.utf8()
            try Self.checkKey(k)
            return k
        }
        func value() throws -> [UInt8] {
            let v = try r.blob()
            try Self.checkValue(v)
            return v
        }
        switch try r.u8() {
        case 1: operation = .put(key: try key(), value: try value())
        case 2: operation = .get(key: try key())
        case 3: operation = .delete(key: try key())
        case 4:
            let k = try key()
            let expected = try r.flag() ? try value() : nil
            operation = .cas(key: k, expected: expected, new: try value())
        case 5: operation = .status
        case 6: operation = .register
        case 7:
            let id = try r.u64le()
            let address = try r.utf8()
            guard id != 0, !address.isEmpty, address.utf8.count <= 300 else {
                throw LuigiError.invalidArgument("member id must be >= 1 and its address 1...300 bytes")
            }
            operation = .addMember(id: id, address: address)
        case 8:
            let id = try r.u64le()
            guard id != 0 else { throw LuigiError.invalidArgument("member id must be >= 1") }
            operation = .removeMember(id: id)
        case 9: operation = .commit(try AlgebraicOp.readList(&r))
        case 10: operation = .coordinate(try AlgebraicOp.readList(&r))
        case 11: operation = .value(key: try key())
        case 12: operation = .transact(try r.shardOps())
        case let tag: throw LuigiError.decode("unknown client operation \(tag)")
        }
        try r.expectEnd("client request")
    }

    public static func checkKey(_ key: String) throws {
        guard !key.isEmpty, key.utf8.count <= ClientLimits.maxKeyBytes else {
            throw LuigiError.invalidArgument("key must be 1...\(ClientLimits.maxKeyBytes) bytes")
        }
    }

    public static func checkValue(_ value: [UInt8]) throws {
        guard value.count <= ClientLimits.maxValueBytes else {
            throw LuigiError.invalidArgument("value of \(value.count) bytes exceeds \(ClientLimits.maxValueBytes)")
        }
    }
}

/// How a request ended. Each maps to one `LuigiError` case on the client.
public enum ReplyStatus: UInt8, Sendable, CaseIterable {
    case ok = 0
    /// This node does not lead the group; `leader` says who does, if known.
    case notLeader = 1
    /// The node gave up waiting; the write may still apply (retry with the same id).
    case timeout = 2
    /// The request was refused before anything changed.
    case invalid = 3
    /// The node cannot serve it now (shutting down, storage failed, no such group).
    case unavailable = 4
    /// A retry of an id the node no longer remembers: its outcome is unknown.
    case expired = 5
    /// A transaction refused before any effect; `result[0]` says why
    /// (`RejectionKind`), `message` how.
    case rejected = 6
}

/// Why a transaction was refused (the first byte of a `rejected` reply's
/// result); each maps to one `LuigiError` case.
public enum RejectionKind: UInt8, Sendable {
    case invalidArgument = 1
    case notAlgebraic = 2
    case typeConflict = 3
    case overflow = 4

    public init(_ error: any Error) {
        switch error as? LuigiError {
        case .notAlgebraic?: self = .notAlgebraic
        case .typeConflict?: self = .typeConflict
        case .overflow?: self = .overflow
        default: self = .invalidArgument
        }
    }

    public func error(_ message: String) -> LuigiError {
        switch self {
        case .invalidArgument: return .invalidArgument(message)
        case .notAlgebraic: return .notAlgebraic(message)
        case .typeConflict: return .typeConflict(message)
        case .overflow: return .overflow(message)
        }
    }
}

/// A node's answer: "LCR" v1 | client u64 | seq u64 | status u8 |
/// leader id u64 (0: unknown) | leader address | message | result.
/// `result` is the operation's own encoding (see `ClientOperation`).
public struct ClientReply: Equatable, Sendable {
    public var id: RequestID
    public var status: ReplyStatus
    public var leaderId: UInt64
    /// "host:port" of the leader when known, else "".
    public var leaderAddress: String
    public var message: String
    public var result: [UInt8]

    public init(
        id: RequestID, status: ReplyStatus, leaderId: UInt64 = 0, leaderAddress: String = "", message: String = "",
        result: [UInt8] = []
    ) {
        self.id = id
        self.status = status
        self.leaderId = leaderId
        self.leaderAddress = leaderAddress
        self.message = message
        self.result = result
    }

    static let magic: [UInt8] = [0x4C, 0x43, 0x52, 0x01]  // "LCR" v1

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 32 + result.count)
        w.magic(Self.magic)
        w.u64le(id.client)
        w.u64le(id.seq)
        w.u8(status.rawValue)
        w.u64le(leaderId)
        w.string(leaderAddress)
        w.string(message)
        w.blob(result)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        guard bytes.starts(with: Self.magic) else { throw LuigiError.decode("not a client reply") }
        var r = ByteReader(Array(bytes.dropFirst(Self.magic.count)))
        id = RequestID(client: try r.u64le(), seq: try r.u64le())
        let raw = try r.u8()
        guard let status = ReplyStatus(rawValue: raw) else { throw LuigiError.decode("unknown reply status \(raw)") }
        self.status = status
        leaderId = try r.u64le()
        leaderAddress = try r.utf8()
        message = try r.utf8()
        result = try r.blob()
        try r.expectEnd("client reply")
    }
}
