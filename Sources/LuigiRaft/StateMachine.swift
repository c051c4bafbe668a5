import LuigiBase

/// A replicated state machine plugged into a Raft group: it sees every
/// committed entry once, in log order, and can save and restore its whole
/// state for snapshots. Entries of kind `.confChange` and empty no-ops are
/// delivered too; ignore what you do not understand.
public protocol RaftStateMachine: AnyObject {
    /// Applies one committed entry and returns the result for its proposer.
    /// Throwing stops the batch; the entry is offered again next time.
    func apply(_ entry: RaftEntry) throws -> [UInt8]
    func snapshot() throws -> [UInt8]
    func restore(_ snapshot: [UInt8]) throws
}

/// A key-value store as a Raft state machine: put, delete, compare-and-set
/// and (log-ordered) get. Commands and results have a small binary format.
public final class KVStateMachine: RaftStateMachine {
    public enum Command: Equatable, Sendable {
        case put(key: String, value: [UInt8])
        case delete(key: String)
        /// Sets `new` when the current value equals `expected` (nil = absent).
        case cas(key: String, expected: [UInt8]?, new: [UInt8])
        case get(key: String)

        public var key: String {
            switch self {
            case .put(let k, _), .delete(let k), .cas(let k, _, _), .get(let k): return k
            }
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter()
            w.magic(Self.magic)
            switch self {
            case .put(let k, let v):
                w.u8(1); w.blob(k.utf8); w.blob(v)
            case .delete(let k):
                w.u8(2); w.blob(k.utf8)
            case .cas(let k, let expected, let new):
                w.u8(3); w.blob(k.utf8)
                if let expected { w.u8(1); w.blob(expected) } else { w.u8(0) }
                w.blob(new)
            case .get(let k):
                w.u8(4); w.blob(k.utf8)
            }
            return w.bytes
        }

        static let magic: [UInt8] = [0x4C, 0x4B, 0x56, 0x01]  // "LKV" v1

        public init(decoding bytes: [UInt8]) throws {
            guard bytes.starts(with: Self.magic) else { throw LuigiError.decode("not a key-value command") }
            var r = ByteReader(Array(bytes.dropFirst(4)))
            let tag = try r.u8()
            let key = try r.utf8()
            switch tag {
            case 1: self = .put(key: key, value: try r.blob())
            case 2: self = .delete(key: key)
            case 3:
                let expected: [UInt8]?
                switch try r.u8() {
                case 0: expected = nil
                case 1: expected = try r.blob()
                default: throw LuigiError.decode("bad cas flag")
                }
                self = .cas(key: key, expected: expected, new: try r.blob())
            case 4: self = .get(key: key)
            default: throw LuigiError.decode("unknown key-value command \(tag)")
            }
            try r.expectEnd("key-value command")
        }
    }

    public private(set) var data: [String: [UInt8]] = [:]
    public private(set) var appliedIndex: UInt64 = 0

    public init() {}

    /// Results: put -> []; delete -> [1] if it existed else [0];
    /// cas -> [1] swapped / [0] not; get -> [1] + value / [0] absent;
    /// entries that are not commands -> [].
    public func apply(_ entry: RaftEntry) -> [UInt8] {
        appliedIndex = entry.index
        guard entry.kind == .normal, !entry.data.isEmpty, let command = try? Command(decoding: entry.data) else {
            return []
        }
        return execute(command)
    }

    public func execute(_ command: Command) -> [UInt8] {
        switch command {
        case .put(let k, let v):
            data[k] = v
            return []
        case .delete(let k):
            return data.removeValue(forKey: k) == nil ? [0] : [1]
        case .cas(let k, let expected, let new):
            guard data[k] == expected else { return [0] }
            data[k] = new
            return [1]
        case .get(let k):
            return read(k)
        }
    }

    public func read(_ key: String) -> [UInt8] {
        data[key].map { [1] + $0 } ?? [0]
    }

    public func snapshot() -> [UInt8] {
        var w = ByteWriter()
        w.varint(appliedIndex)
        w.varint(UInt64(data.count))
        // Keys alone are sorted: moving (key, value) pairs costs retains.
        for k in data.keys.sorted(by: utf8Precedes) {
            guard let v = data[k] else { continue }
            w.blob(k.utf8)
            w.blob(v)
        }
        w.sealWithChecksum()
        return w.bytes
    }

    public func restore(_ snapshot: [UInt8]) throws {
        guard !snapshot.isEmpty else {
            data = [:]
            appliedIndex = 0
            return
        }
        var r = try ByteReader.sealed(snapshot, magic: [], what: "key-value snapshot")
        let index = try r.varint()
        var restored: [String: [UInt8]] = [:]
        for _ in 0..<(try r.count()) {
            let k = try r.utf8()
            restored[k] = try r.blob()
        }
        try r.expectEnd("key-value snapshot")
        data = restored
        appliedIndex = index
    }
}
