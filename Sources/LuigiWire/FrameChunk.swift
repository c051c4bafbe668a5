import LuigiBase

/// One piece of a peer frame too large to travel whole (a Raft snapshot, a
/// long list of a watermark shard's transactions), carried in a `chunk`
/// frame of the whole frame's group:
///
///     transfer u64 LE | total u64 LE | offset u64 LE | kind u8 | bytes
///
/// A link sends a transfer's pieces in order, one transfer at a time, and
/// other frames between them, so a large message neither needs a frame as
/// large as itself nor holds up the heartbeats of every other group.
public struct FrameChunk: Equatable, Sendable {
    public static let headerSize = 25

    /// Numbers the sender's transfers on one connection.
    public var transfer: UInt64
    /// The whole frame's payload length.
    public var total: UInt64
    /// Where `bytes` start in that payload.
    public var offset: UInt64
    /// The whole frame's kind.
    public var kind: FrameKind
    public var bytes: [UInt8]

    public init(transfer: UInt64, total: UInt64, offset: UInt64, kind: FrameKind, bytes: [UInt8]) {
        self.transfer = transfer
        self.total = total
        self.offset = offset
        self.kind = kind
        self.bytes = bytes
    }

    /// The piece of `frame`'s payload from `offset`, at most `maxBytes` long.
    public init(of frame: Frame, transfer: UInt64, offset: Int, maxBytes: Int) {
        let end = offset + min(max(maxBytes, 1), frame.payload.count - offset)
        self.init(transfer: transfer, total: UInt64(frame.payload.count), offset: UInt64(offset), kind: frame.kind,
                  bytes: Array(frame.payload[offset..<end]))
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: Self.headerSize + bytes.count)
        w.u64le(transfer)
        w.u64le(total)
        w.u64le(offset)
        w.u8(kind.rawValue)
        w.raw(bytes)
        return w.bytes
    }

    public init(decoding payload: [UInt8]) throws {
        var r = ByteReader(payload)
        transfer = try r.u64le()
        total = try r.u64le()
        offset = try r.u64le()
        let raw = try r.u8()
        guard let kind = FrameKind(rawValue: raw), kind != .chunk else { throw LuigiError.decode("a chunk of kind \(raw)") }
        self.kind = kind
        bytes = Array(payload[Self.headerSize...])
    }
}

/// Puts a connection's chunks back together: strictly one transfer at a
/// time, each piece where the last one ended, of the same kind and group,
/// nothing past `maxTotal`. Anything else is an error, and the caller
/// closes the connection (a correct sender never does it; its transfers
/// end with the connection).
public struct ChunkAssembler: Sendable {
    public let maxTotal: Int
    private var transfer: UInt64 = 0
    private var group: UInt64 = 0
    private var kind = FrameKind.raft
    private var total = 0
    private var payload: [UInt8] = []
    private var open = false

    public init(maxTotal: Int) {
        self.maxTotal = maxTotal
    }

    /// Bytes held for the transfer in progress.
    public var buffered: Int { payload.count }

    /// Takes a `chunk` frame; returns the whole frame once its last piece is
    /// in. A refused chunk changes nothing.
    public mutating func push(_ frame: Frame) throws -> Frame? {
        let chunk = try FrameChunk(decoding: frame.payload)
        guard !chunk.bytes.isEmpty else { throw LuigiError.decode("an empty chunk") }
        if open {
            guard chunk.transfer == transfer, frame.group == group, chunk.kind == kind else {
                throw LuigiError.decode(
                    "chunk of transfer \(chunk.transfer) (\(chunk.kind), group \(frame.group)) while \(transfer) (\(kind), group \(group)) is unfinished")
            }
            guard chunk.total == UInt64(total), chunk.offset == UInt64(payload.count) else {
                throw LuigiError.decode("chunk at \(chunk.offset) of \(chunk.total); expected \(payload.count) of \(total)")
            }
        } else {
            guard chunk.offset == 0 else { throw LuigiError.decode("a transfer must start at offset 0, not \(chunk.offset)") }
            guard chunk.total <= UInt64(maxTotal) else {
                throw LuigiError.decode("a frame of \(chunk.total) bytes exceeds the limit of \(maxTotal)")
            }
        }
        guard chunk.total - chunk.offset >= UInt64(chunk.bytes.count) else {
            throw LuigiError.decode("chunk runs past the frame's \(chunk.total) bytes")
        }
        if !open {
            open = true
            transfer = chunk.transfer
            group = frame.group
            kind = chunk.kind
            total = Int(chunk.total)
            payload = []
        }
        payload.append(contentsOf: chunk.bytes)
        guard payload.count == total else { return nil }
        open = false
        defer { payload = [] }
        return Frame(kind, group: group, payload: payload)
    }
}
