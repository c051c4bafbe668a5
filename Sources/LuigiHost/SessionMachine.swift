import LuigiBase
import LuigiRaft

/// Exactly-once client writes for any Raft state machine (Raft thesis §6.3).
/// A client first registers a session through the log (its id is the index
/// of the registration entry, so ids never repeat); every write then goes
/// through the log framed with (session, seq). The machine applies a
/// (session, seq) once and answers a retry with the stored result. Because
/// the table lives in the replicated state (and in snapshots), a retry sent
/// to a new leader after a failover is still recognised.
///
///     register:  "LSE" v1 | 1
///     write:     "LSE" v1 | 2 | session u64 LE | seq u64 LE | command
///
/// Results: `SessionOutcome` — applied or duplicate with the inner result,
/// registered with the session id, or expired (the session was evicted, or
/// the seq fell out of its window: the outcome of that write is unknown, and
/// it is not applied now). Entries without the frame pass through.
///
/// Bounds: a session keeps the results of its last `window` seqs; at most
/// `maxSessions` sessions are kept, the least recently used (by log index)
/// evicted first. Both are fixed per cluster: every replica must evict alike.
public final class SessionMachine: RaftStateMachine {
    public static let window = 1024
    public static let maxSessions = 65_536
    static let magic: [UInt8] = [0x4C, 0x53, 0x45, 0x01]  // "LSE" v1
    static let snapshotMagic: [UInt8] = [0x4C, 0x53, 0x53, 0x01]  // "LSS" v1

    struct Session: Equatable {
        /// seq -> the result it produced.
        var results: [UInt64: [UInt8]] = [:]
        /// Seqs below this were forgotten (answered `expired`).
        var floor: UInt64 = 0
        /// The log index of the last entry that touched it (eviction order).
        var lastUsed: UInt64

        /// The smallest seq kept. Every kept seq is at or above `floor`, and
        /// seqs mostly come in order, so a short walk up from the floor
        /// usually finds it without scanning the whole window.
        func oldest() -> UInt64? {
            var seq = floor
            for _ in 0..<64 {
                if results[seq] != nil { return seq }
                guard seq < UInt64.max else { break }
                seq += 1
            }
            return results.keys.min()
        }
    }

    public let inner: RaftStateMachine
    private(set) var sessions: [UInt64: Session] = [:]

    public init(_ inner: RaftStateMachine) { self.inner = inner }

    public static func registration() -> [UInt8] { magic + [1] }

    public static func frame(_ command: [UInt8], session: UInt64, seq: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 21 + command.count)
        w.magic(magic)
        w.u8(2)
        w.u64le(session)
        w.u64le(seq)
        w.raw(command)
        return w.bytes
    }

    public var sessionCount: Int { sessions.count }

    public func apply(_ entry: RaftEntry) throws -> [UInt8] {
        guard entry.kind == .normal, entry.data.count >= 5, entry.data.starts(with: Self.magic) else {
            return try inner.apply(entry)
        }
        switch entry.data[4] {
        case 1 where entry.data.count == 5:
            sessions[entry.index] = Session(lastUsed: entry.index)
            evictIfFull()
            return SessionOutcome.registered(entry.index).encoded()
        case 2 where entry.data.count >= 21:
            var r = ByteReader(Array(entry.data[5..<21]))
            let id = try r.u64le()
            let seq = try r.u64le()
            // Taken out, not copied: a copy would share `results`, and the
            // first write to it would copy the whole window.
            guard var session = sessions.removeValue(forKey: id) else {
                return SessionOutcome.expired("session \(id) is unknown or expired").encoded()
            }
            session.lastUsed = entry.index
            defer { sessions[id] = session }
            if let result = session.results[seq] { return SessionOutcome.duplicate(result).encoded() }
            guard seq >= session.floor else {
                return SessionOutcome.expired("request \(seq) of session \(id) is older than its window").encoded()
            }
            var unwrapped = entry
            unwrapped.data = Array(entry.data[21...])
            let result = try inner.apply(unwrapped)
            session.results[seq] = result
            if session.results.count > Self.window, let oldest = session.oldest() {
                session.results[oldest] = nil
                session.floor = oldest + 1
            }
            return SessionOutcome.applied(result).encoded()
        default:
            // A malformed frame from a buggy proposer: applied as nothing, alike everywhere.
            return SessionOutcome.expired("malformed session frame").encoded()
        }
    }

    private func evictIfFull() {
        guard sessions.count > Self.maxSessions else { return }
        // Least recently used first; ties (impossible: indexes are unique) by id.
        if let victim = sessions.min(by: { ($0.value.lastUsed, $0.key) < ($1.value.lastUsed, $1.key) }) {
            sessions[victim.key] = nil
        }
    }

    // MARK: - Snapshot: "LSS" v1 | inner | sessions by id | CRC-32C

    public func snapshot() throws -> [UInt8] {
        var w = ByteWriter()
        w.magic(Self.snapshotMagic)
        w.blob(try inner.snapshot())
        w.varint(UInt64(sessions.count))
        for (id, session) in sessions.sorted(by: { $0.key < $1.key }) {
            w.varint(id)
            w.varint(session.floor)
            w.varint(session.lastUsed)
            w.varint(UInt64(session.results.count))
            for (seq, result) in session.results.sorted(by: { $0.key < $1.key }) {
                w.varint(seq)
                w.blob(result)
            }
        }
        w.sealWithChecksum()
        return w.bytes
    }

    public func restore(_ snapshot: [UInt8]) throws {
        guard !snapshot.isEmpty else {
            try inner.restore([])
            sessions = [:]
            return
        }
        var r = try ByteReader.sealed(snapshot, magic: Self.snapshotMagic, what: "session snapshot")
        let innerSnapshot = try r.blob()
        var restored: [UInt64: Session] = [:]
        var previous: UInt64?
        for _ in 0..<(try r.count()) {
            let id = try r.varint()
            guard previous.map({ id > $0 }) ?? true else { throw LuigiError.decode("session ids out of order") }
            previous = id
            var session = Session(floor: try r.varint(), lastUsed: try r.varint())
            let count = try r.count()
            guard count <= Self.window else { throw LuigiError.decode("session \(id) holds \(count) results") }
            for _ in 0..<count {
                let seq = try r.varint()
                guard seq >= session.floor, session.results[seq] == nil else {
                    throw LuigiError.decode("session \(id): bad seq \(seq)")
                }
                session.results[seq] = try r.blob()
            }
            restored[id] = session
        }
        guard restored.count <= Self.maxSessions else { throw LuigiError.decode("\(restored.count) sessions") }
        try r.expectEnd("session snapshot")
        try inner.restore(innerSnapshot)
        sessions = restored
    }
}

/// What applying a session-framed entry produced.
public enum SessionOutcome: Equatable, Sendable {
    case registered(UInt64)
    case applied([UInt8])
    case duplicate([UInt8])
    case expired(String)

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .registered(let id): w.u8(1); w.u64le(id)
        case .applied(let result): w.u8(2); w.blob(result)
        case .duplicate(let result): w.u8(3); w.blob(result)
        case .expired(let why): w.u8(4); w.string(why)
        }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        switch try r.u8() {
        case 1: self = .registered(try r.u64le())
        case 2: self = .applied(try r.blob())
        case 3: self = .duplicate(try r.blob())
        case 4: self = .expired(try r.utf8())
        case let tag: throw LuigiError.decode("unknown session outcome \(tag)")
        }
        try r.expectEnd("session outcome")
    }
}
