import LuigiBase

/// What a frame carries. The first four run the handshake; nothing else is
/// accepted on a connection until it has been authenticated.
public enum FrameKind: UInt8, Sendable, CaseIterable {
    /// Server -> connector: the cluster id and a fresh nonce.
    case challenge = 1
    /// Connector -> server: who it is, its nonce, and its proof.
    case hello = 2
    /// Server -> connector: the server's own proof; the connection is open.
    case welcome = 3
    /// Either side: why the connection is being closed (then it closes).
    case refuse = 4
    /// Peer -> peer: one encoded Raft message for the envelope's group.
    case raft = 5
    /// Client -> node: a request (`ClientRequest`).
    case request = 6
    /// Node -> client: the reply to a request (`ClientReply`).
    case reply = 7
    /// Peer -> peer: algebraic anti-entropy for the envelope's group.
    case delta = 8
    /// Peer -> peer: one watermark-protocol message (`WatermarkEnvelope`);
    /// the group is the sending or receiving shard's group.
    case watermark = 9
    /// Peer -> peer: one piece of a frame too large to travel whole (a Raft
    /// snapshot, say), `FrameChunk`; the pieces travel in order, other
    /// frames between them.
    case chunk = 10
}

/// One frame on a Luigi connection:
///
///     "LNF" | version u8 (1) | kind u8 | 3 zero bytes | group u64 LE |
///     payload length u32 LE | payload | CRC-32C u32 LE of everything before
///
/// The fixed 20-byte header lets a reader refuse an oversized frame before
/// buffering any of it; the checksum covers the header too, so a flipped
/// group id or kind is caught like a flipped payload byte.
public struct Frame: Equatable, Sendable {
    public var kind: FrameKind
    /// The Raft group (or replica group) the payload belongs to; 0 for
    /// connection-level frames.
    public var group: UInt64
    public var payload: [UInt8]

    public init(_ kind: FrameKind, group: UInt64 = 0, payload: [UInt8] = []) {
        self.kind = kind
        self.group = group
        self.payload = payload
    }

    public static let magic: [UInt8] = [0x4C, 0x4E, 0x46]  // "LNF"
    public static let version: UInt8 = 1
    public static let headerSize = 20
    public static let trailerSize = 4
    /// The largest payload a node accepts unless configured otherwise (16 MiB:
    /// a Raft append batch or a snapshot chunk fits; more is refused).
    public static let defaultMaxPayload = 16 << 20
    /// The hard ceiling on a configured limit (the length field is 32 bits).
    public static let maxPayloadCeiling = 1 << 30

    /// The frame's bytes, ready for the socket. Throws when the payload is
    /// larger than the length field can carry.
    public func encoded() throws -> [UInt8] {
        guard payload.count <= Self.maxPayloadCeiling else {
            throw LuigiError.invalidArgument("frame payload of \(payload.count) bytes exceeds \(Self.maxPayloadCeiling)")
        }
        var w = ByteWriter(capacity: Self.headerSize + payload.count + Self.trailerSize)
        w.magic(Self.magic)
        w.u8(Self.version)
        w.u8(kind.rawValue)
        w.raw([0, 0, 0])
        w.u64le(group)
        w.u32le(UInt32(payload.count))
        w.raw(payload)
        w.sealWithChecksum()
        return w.bytes
    }
}

/// Incremental, bounded frame reader: push bytes as they arrive, take whole
/// frames out. A header that announces more than `maxPayload` is refused as
/// soon as its 20 bytes are in, so a peer cannot make the reader buffer more
/// than one maximal frame. Any error is final for the connection: the
/// stream has lost its framing, so the caller closes it.
public struct FrameDecoder: Sendable {
    public private(set) var maxPayload: Int
    private var buffer: [UInt8] = []
    private var start = 0
    private var failed: LuigiError?

    public init(maxPayload: Int = Frame.defaultMaxPayload) throws {
        guard maxPayload >= 0, maxPayload <= Frame.maxPayloadCeiling else {
            throw LuigiError.invalidArgument("max frame payload \(maxPayload) outside 0...\(Frame.maxPayloadCeiling)")
        }
        self.maxPayload = maxPayload
    }

    /// Lets later frames be larger (e.g. once a connection is
    /// authenticated); never lowers the limit, never above the ceiling.
    public mutating func raiseLimit(to limit: Int) {
        maxPayload = max(maxPayload, min(limit, Frame.maxPayloadCeiling))
    }

    /// Bytes received but not yet returned as frames.
    public var buffered: Int { buffer.count - start }

    public mutating func push<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next whole frame, nil until one has arrived. Throws `.decode` on a
    /// bad magic, version, kind, reserved byte, length or checksum.
    public mutating func next() throws -> Frame? {
        if let failed { throw failed }
        do {
            return try parse()
        } catch let error as LuigiError {
            failed = error
            throw error
        }
    }

    private mutating func parse() throws -> Frame? {
        guard buffered >= Frame.headerSize else {
            try checkPrefix()
            return nil
        }
        let h = start
        guard buffer[h] == Frame.magic[0], buffer[h + 1] == Frame.magic[1], buffer[h + 2] == Frame.magic[2] else {
            throw LuigiError.decode("not a Luigi frame (bad magic)")
        }
        guard buffer[h + 3] == Frame.version else {
            throw LuigiError.decode("unsupported frame version \(buffer[h + 3]) (this node speaks \(Frame.version))")
        }
        guard let kind = FrameKind(rawValue: buffer[h + 4]) else {
            throw LuigiError.decode("unknown frame kind \(buffer[h + 4])")
        }
        guard buffer[h + 5] == 0, buffer[h + 6] == 0, buffer[h + 7] == 0 else {
            throw LuigiError.decode("frame reserved bytes are not zero")
        }
        let group = littleEndian(at: h + 8, count: 8)
        let length = Int(littleEndian(at: h + 16, count: 4))
        guard length <= maxPayload else {
            throw LuigiError.decode("frame payload of \(length) bytes exceeds the limit of \(maxPayload)")
        }
        let total = Frame.headerSize + length + Frame.trailerSize
        guard buffered >= total else { return nil }
        let bodyEnd = h + Frame.headerSize + length
        let stored = UInt32(truncatingIfNeeded: littleEndian(at: bodyEnd, count: 4))
        let computed = buffer.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[h..<bodyEnd])) }
        guard stored == computed else { throw LuigiError.decode("frame checksum mismatch") }
        let payload = Array(buffer[(h + Frame.headerSize)..<bodyEnd])
        start += total
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 16)
            start = 0
        }
        return Frame(kind, group: group, payload: payload)
    }

    /// Refuses garbage early: the bytes seen so far must begin a frame.
    private func checkPrefix() throws {
        let seen = min(buffered, Frame.magic.count)
        for i in 0..<seen where buffer[start + i] != Frame.magic[i] {
            throw LuigiError.decode("not a Luigi frame (bad magic)")
        }
    }

    private func littleEndian(at offset: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in (0..<count).reversed() { value = value << 8 | UInt64(buffer[offset + i]) }
        return value
    }
}
