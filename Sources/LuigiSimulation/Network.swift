import LuigiCore

/// Fault settings of the simulated network.
public struct NetworkFaults: Equatable, Sendable {
    public var drop: Double
    public var duplicate: Double
    /// Chance that a message is held back a further random 1...(maxDelay+2) rounds.
    public var reorder: Double
    /// Extra delivery delay, uniform in 0...maxDelay rounds.
    public var maxDelay: Int

    public init(drop: Double = 0, duplicate: Double = 0, reorder: Double = 0, maxDelay: Int = 0) {
        self.drop = drop
        self.duplicate = duplicate
        self.reorder = reorder
        self.maxDelay = maxDelay
    }

    public static let none = NetworkFaults()

    public func validated() throws -> NetworkFaults {
        for (name, rate) in [("drop", drop), ("duplicate", duplicate), ("reorder", reorder)] {
            guard rate >= 0 && rate < 1 else {
                throw LuigiError.invalidArgument("\(name) rate must be in [0, 1), got \(rate)")
            }
        }
        guard maxDelay >= 0 && maxDelay <= 1_000 else {
            throw LuigiError.invalidArgument("max delay must be in 0...1000 rounds, got \(maxDelay)")
        }
        return self
    }
}

/// The anti-entropy messages, exactly as they cross the simulated wire.
enum SyncMessage {
    /// "Here is my version vector": the receiver answers with what it lacks.
    case digest(VectorClock)
    /// Exactly the updates the digest's sender lacked (possibly none: the
    /// reply also tells the requester its request is complete).
    case reply([Update])

    func encoded() -> [UInt8] {
        var w = ByteWriter()
        switch self {
        case .digest(let clock):
            w.u8(1)
            clock.write(to: &w)
        case .reply(let updates):
            w.u8(2)
            w.raw(Update.encodeBatch(updates))
        }
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws {
        var r = ByteReader(bytes)
        switch try r.u8() {
        case 1:
            self = .digest(try VectorClock.read(from: &r))
            try r.expectEnd("sync message")
        case 2: self = .reply(try Update.decodeBatch(Array(bytes.dropFirst())))
        default: throw LuigiError.decode("unknown sync message tag")
        }
    }
}
