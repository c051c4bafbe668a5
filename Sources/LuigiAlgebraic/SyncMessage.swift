import LuigiBase

/// The anti-entropy messages, as they cross the simulated network and
/// luigi-node's peer connections: tag 1 + a version vector, or tag 2 + an
/// update batch ("LUL").
public enum SyncMessage: Equatable, Sendable {
    /// "Here is my version vector": the receiver answers with what it lacks.
    case digest(VectorClock)
    /// Exactly the updates the digest's sender lacked (possibly none: the
    /// reply also tells the requester its request is complete).
    case reply([Update])

    public func encoded() -> [UInt8] {
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

    public init(decoding bytes: [UInt8]) throws {
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
