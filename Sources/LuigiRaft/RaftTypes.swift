import LuigiBase

/// Value types of the Raft core: log entries, persistent state, membership,
/// snapshots and messages, with their canonical binary encodings.

/// Bounds on the numbers a node accepts from a peer, a caller or its storage.
public enum RaftLimits {
    /// The largest term or log index accepted (2^62). No real log gets near
    /// it, and the headroom above it means `term + 1`, `index + 1` and
    /// `index + entry count` can never overflow, whatever a peer sends.
    public static let maxTermOrIndex: UInt64 = 1 << 62

    static func check(_ value: UInt64, _ what: @autoclosure () -> String) throws {
        guard value <= maxTermOrIndex else {
            throw LuigiError.invalidArgument("\(what()) \(value) is above the limit 2^62")
        }
    }
}

public enum EntryKind: UInt8, Sendable {
    /// An application command (may be empty: a new leader's no-op).
    case normal = 0
    /// A single-server membership change; `data` is an encoded `ConfChange`.
    case confChange = 1
}

public struct RaftEntry: Equatable, Sendable {
    public var term: UInt64
    public var index: UInt64
    public var kind: EntryKind
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: EntryKind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Bytes this entry counts for in flow control.
    public var size: Int { data.count + 24 }
}

/// What must be durable before a node answers anything that depends on it.
public struct HardState: Equatable, Sendable {
    public var term: UInt64
    /// Node voted for in `term`; 0 means none (node ids are never 0).
    public var vote: UInt64
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: UInt64 = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The membership: voters decide; learners only receive the log.
public struct ConfState: Equatable, Sendable {
    public var voters: [UInt64]
    public var learners: [UInt64]

    public init(voters: [UInt64] = [], learners: [UInt64] = []) {
        self.voters = voters.sorted()
        self.learners = learners.sorted()
    }

    public func contains(_ id: UInt64) -> Bool { voters.contains(id) || learners.contains(id) }

    /// Refuses a membership no correct node produces: no voter, a
    /// duplicate (a duplicate voter would count twice in a quorum), node id
    /// 0, or a node that is both voter and learner.
    public func validate(_ what: String) throws {
        guard !voters.isEmpty else { throw LuigiError.invalidArgument("\(what): no voters") }
        let all = voters + learners
        guard !all.contains(0) else { throw LuigiError.invalidArgument("\(what): node id 0 is reserved") }
        guard Set(all).count == all.count else {
            throw LuigiError.invalidArgument("\(what): a node is listed twice (voters \(voters), learners \(learners))")
        }
    }
}

public enum ConfChangeKind: UInt8, Sendable {
    case addVoter = 0
    case removeNode = 1
    case addLearner = 2
}

public struct ConfChange: Equatable, Sendable {
    public var kind: ConfChangeKind
    public var node: UInt64

    public init(_ kind: ConfChangeKind, node: UInt64) {
        self.kind = kind
        self.node = node
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter()
        w.u8(kind.rawValue)
        w.varint(node)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        guard let kind = ConfChangeKind(rawValue: try r.u8()) else { throw LuigiError.decode("unknown conf change kind") }
        let node = try r.varint()
        try r.expectEnd("conf change")
        guard node != 0 else { throw LuigiError.decode("conf change names node 0") }
        self.init(kind, node: node)
    }
}

public struct SnapshotMetadata: Equatable, Sendable {
    public var index: UInt64
    public var term: UInt64
    public var conf: ConfState

    public init(index: UInt64 = 0, term: UInt64 = 0, conf: ConfState = ConfState()) {
        self.index = index
        self.term = term
        self.conf = conf
    }
}

/// A state-machine image covering every entry up to `metadata.index`.
public struct Snapshot: Equatable, Sendable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }

    public var isEmpty: Bool { metadata.index == 0 }
}

public enum MessageKind: UInt8, Sendable, CaseIterable {
    case append = 1
    case appendResponse = 2
    case vote = 3
    case voteResponse = 4
    case preVote = 5
    case preVoteResponse = 6
    case heartbeat = 7
    case heartbeatResponse = 8
    case snapshot = 9
    /// Leadership transfer: the target campaigns at once.
    case timeoutNow = 10
}

/// One Raft message. Field use follows etcd/raft:
/// - append: `index`/`logTerm` identify the entry before `entries`; `commit`.
/// - appendResponse: `index` = last matching index, or on `reject` the
///   rejected index with `rejectHint` (follower's last index) and `logTerm`
///   (term at the hint) for fast backtracking.
/// - vote/preVote: `index`/`logTerm` = candidate's last entry.
/// - heartbeat: `commit`; `context` carries a ReadIndex round id.
/// `group` names the Raft group (a process may run many): the envelope a
/// host routes by, stamped by the sending node and checked by the receiver.
public struct RaftMessage: Equatable, Sendable {
    public var kind: MessageKind
    public var group: UInt64 = 0
    public var to: UInt64
    public var from: UInt64
    public var term: UInt64
    public var logTerm: UInt64 = 0
    public var index: UInt64 = 0
    public var entries: [RaftEntry] = []
    public var commit: UInt64 = 0
    public var reject: Bool = false
    public var rejectHint: UInt64 = 0
    public var snapshot: Snapshot? = nil
    public var context: [UInt8] = []

    public init(kind: MessageKind, to: UInt64, from: UInt64, term: UInt64) {
        self.kind = kind
        self.to = to
        self.from = from
        self.term = term
    }

    // MARK: - Encoding: "LRM" v2 | kind | group | fields | CRC-32C
    // (v2 added the group id; v1 messages are refused as another version.)

    public static let magic: [UInt8] = [0x4C, 0x52, 0x4D, 0x02]

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 48 + entries.reduce(0) { $0 + $1.size })
        w.magic(Self.magic)
        w.u8(kind.rawValue)
        w.varint(group)
        w.varint(to)
        w.varint(from)
        w.varint(term)
        w.varint(logTerm)
        w.varint(index)
        w.varint(commit)
        w.u8(reject ? 1 : 0)
        w.varint(rejectHint)
        w.blob(context)
        w.varint(UInt64(entries.count))
        for e in entries { e.write(to: &w) }
        if let snapshot {
            w.u8(1)
            snapshot.write(to: &w)
        } else {
            w.u8(0)
        }
        w.sealWithChecksum()
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws {
        var r = try ByteReader.sealed(bytes, magic: Self.magic, what: "raft message")
        guard let kind = MessageKind(rawValue: try r.u8()) else { throw LuigiError.decode("unknown raft message kind") }
        let group = try r.varint()
        self.init(kind: kind, to: try r.varint(), from: try r.varint(), term: try r.varint())
        self.group = group
        logTerm = try r.varint()
        index = try r.varint()
        commit = try r.varint()
        switch try r.u8() {
        case 0: reject = false
        case 1: reject = true
        default: throw LuigiError.decode("bad reject flag")
        }
        rejectHint = try r.varint()
        context = try r.blob()
        let n = try r.count()
        entries.reserveCapacity(n)
        for _ in 0..<n { entries.append(try RaftEntry.read(from: &r)) }
        switch try r.u8() {
        case 0: snapshot = nil
        case 1: snapshot = try Snapshot.read(from: &r)
        default: throw LuigiError.decode("bad snapshot flag")
        }
        try r.expectEnd("raft message")
    }
}

// MARK: - Shared pieces of the encodings (also used by the WAL)

extension RaftEntry {
    public func write(to w: inout ByteWriter) {
        w.varint(term)
        w.varint(index)
        w.u8(kind.rawValue)
        w.blob(data)
    }

    public static func read(from r: inout ByteReader) throws -> RaftEntry {
        let term = try r.varint()
        let index = try r.varint()
        guard let kind = EntryKind(rawValue: try r.u8()) else { throw LuigiError.decode("unknown entry kind") }
        return RaftEntry(term: term, index: index, kind: kind, data: try r.blob())
    }
}

extension HardState {
    public func write(to w: inout ByteWriter) {
        w.varint(term)
        w.varint(vote)
        w.varint(commit)
    }

    public static func read(from r: inout ByteReader) throws -> HardState {
        HardState(term: try r.varint(), vote: try r.varint(), commit: try r.varint())
    }
}

extension ConfState {
    public func write(to w: inout ByteWriter) {
        w.varint(UInt64(voters.count))
        for v in voters { w.varint(v) }
        w.varint(UInt64(learners.count))
        for l in learners { w.varint(l) }
    }

    public static func read(from r: inout ByteReader) throws -> ConfState {
        var voters: [UInt64] = []
        for _ in 0..<(try r.count()) { voters.append(try r.varint()) }
        var learners: [UInt64] = []
        for _ in 0..<(try r.count()) { learners.append(try r.varint()) }
        return ConfState(voters: voters, learners: learners)
    }
}

extension Snapshot {
    public func write(to w: inout ByteWriter) {
        w.varint(metadata.index)
        w.varint(metadata.term)
        metadata.conf.write(to: &w)
        w.blob(data)
    }

    public static func read(from r: inout ByteReader) throws -> Snapshot {
        let index = try r.varint()
        let term = try r.varint()
        let conf = try ConfState.read(from: &r)
        return Snapshot(metadata: SnapshotMetadata(index: index, term: term, conf: conf), data: try r.blob())
    }
}
