import LuigiBase

/// One piece of a Raft message too large for one frame (a snapshot),
/// carried in a `raftChunk` frame of the message's group:
///
///     transfer u64 LE | total u64 LE | offset u64 LE | bytes
///
/// A link sends a transfer's pieces in order, one transfer at a time, and
/// other frames between them, so a snapshot neither needs a frame as large
/// as itself nor holds up the heartbeats of every other group on the link.
public struct RaftChunk: Equatable, Sendable {
    public static let headerSize = 24

    /// Numbers the sender's transfers on one connection.
    public var transfer: UInt64
    /// The whole message's length.
    public var total: UInt64
    /// Where `bytes` start in the message.
    public var offset: UInt64
    public var bytes: [UInt8]

    public init(transfer: UInt64, total: UInt64, offset: UInt64, bytes: [UInt8]) {
        self.transfer = transfer
        self.total = total
        self.offset = offset
        self.bytes = bytes
    }

    /// The piece of `message` from `offset`, at most `maxBytes` long.
    public init(of message: [UInt8], transfer: UInt64, offset: Int, maxBytes: Int) {
        let end = offset + min(max(maxBytes, 1), message.count - offset)
        self.init(transfer: transfer, total: UInt64(message.count), offset: UInt64(offset), bytes: Array(message[offset..<end]))
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + bytes.count)
        w.u64le(transfer)
        w.u64le(total)
        w.u64le(offset)
        w.raw(bytes)
        return w.bytes
    }

    public init(decoding payload: [UInt8]) throws {
        var r = ByteReader(payload)
        transfer = try r.u64le()
        total = try r.u64le()
        offset = try r.u64le()
        bytes = Array(payload[Self.headerSize...])
    }
}

/// Puts a connection's chunks back together: strictly one transfer at a
/// time, each piece where the last one ended, nothing past `maxTotal`.
/// Anything else is an error, and the caller closes the connection (a
/// correct sender never does it; its transfers end with the connection).
public struct ChunkAssembler: Sendable {
    public let maxTotal: Int
    private var transfer: UInt64 = 0
    private var group: UInt64 = 0
    private var total = 0
    private var message: [UInt8] = []
    private var open = false

    public init(maxTotal: Int) {
        self.maxTotal = maxTotal
    }

    /// Bytes held for the transfer in progress.
    public var buffered: Int { message.count }

    /// Takes a `raftChunk` frame; returns the whole message once its last
    /// piece is in. A refused chunk changes nothing.
    public mutating func push(_ frame: Frame) throws -> [UInt8]? {
        let chunk = try RaftChunk(decoding: frame.payload)
        guard !chunk.bytes.isEmpty else { throw LuigiError.decode("an empty chunk") }
        if open {
            guard chunk.transfer == transfer, frame.group == group else {
                throw LuigiError.decode("chunk of transfer \(chunk.transfer) (group \(frame.group)) while \(transfer) (group \(group)) is unfinished")
            }
            guard chunk.total == UInt64(total), chunk.offset == UInt64(message.count) else {
                throw LuigiError.decode("chunk at \(chunk.offset) of \(chunk.total); expected \(message.count) of \(total)")
            }
        } else {
            guard chunk.offset == 0 else { throw LuigiError.decode("a transfer must start at offset 0, not \(chunk.offset)") }
            guard chunk.total <= UInt64(maxTotal) else {
                throw LuigiError.decode("a message of \(chunk.total) bytes exceeds the limit of \(maxTotal)")
            }
        }
        guard chunk.total - chunk.offset >= UInt64(chunk.bytes.count) else {
            throw LuigiError.decode("chunk runs past the message's \(chunk.total) bytes")
        }
        if !open {
            open = true
            transfer = chunk.transfer
            group = frame.group
            total = Int(chunk.total)
            message = []
        }
        message.append(contentsOf: chunk.bytes)
        guard message.count == total else { return nil }
        open = false
        defer { message = [] }
        return message
    }
}
