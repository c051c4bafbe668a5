import LuigiCore
import LuigiHost
import LuigiWire

// The node's wire (module LuigiWire: frames, the handshake, client messages)
// and the session table (LuigiHost.SessionMachine) that makes client writes
// exactly-once. All of it reads bytes from sockets or from snapshots.

extension FuzzMagic {
    /// "LCQ" v1 (a client request; unsealed) and "LCR" v1 (a client reply; unsealed).
    public static let clientRequest = header(ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: 1, operation: .status).encoded())
    public static let clientReply = header(ClientReply(id: RequestID(client: 1, seq: 1), status: .ok).encoded())
    /// "LSS" v1 (a session-machine snapshot).
    public static let sessionSnapshot: [UInt8] = {
        do {
            return header(try SessionMachine(KVStateMachine()).snapshot())
        } catch {
            fatalError("fuzz: cannot snapshot a session machine: \(error)")
        }
    }()
}

// MARK: - frame_stream: FrameDecoder over a chunked byte stream

/// What a frame stream holds at a position, by the format's definition
/// (Frame.swift), written out independently of `FrameDecoder`.
enum ReferenceFrame: Equatable {
    case frame(size: Int)
    case incomplete
    case invalid
}

func referenceFrame(_ s: ArraySlice<UInt8>, maxPayload: Int) -> ReferenceFrame {
    let b = Array(s)
    for i in 0..<min(b.count, Frame.magic.count) where b[i] != Frame.magic[i] { return .invalid }
    guard b.count >= Frame.headerSize else { return .incomplete }
    guard b[3] == Frame.version, FrameKind(rawValue: b[4]) != nil, b[5] == 0, b[6] == 0, b[7] == 0 else { return .invalid }
    let length = Int(u32le(b, 16))
    guard length <= maxPayload else { return .invalid }
    let size = Frame.headerSize + length + Frame.trailerSize
    guard b.count >= size else { return .incomplete }
    return u32le(b, size - 4) == CRC32C.checksum(b[0..<(size - 4)]) ? .frame(size: size) : .invalid
}

/// The decoder limit of the small mode of `frame_stream`.
let fuzzSmallFrameLimit = 64

/// Input: `control | k chunk sizes | stream`. `control` bits 0-2 give k
/// (0...7), bit 3 a decoder limit of 64 bytes instead of the default 16 MiB;
/// the k bytes after it are the sizes of the successive pushes (cycled; k = 0,
/// or all zero, pushes the whole stream at once); the rest is the byte
/// stream. After each push the frames are taken out until `next()` returns
/// nil or throws. Every answer must be the one the format's definition
/// (`referenceFrame`) gives at that position: a frame re-encodes to exactly
/// the bytes it came from (so the kind, group and payload are the ones sent),
/// nil only for a valid but incomplete prefix (garbage is refused before 20
/// bytes are in, an oversized length as soon as the header is), a refusal
/// only for bytes that can begin no frame. `buffered` is always what was
/// pushed minus what was returned, and a refusal is final.
public func fuzzFrameStream(_ data: [UInt8]) {
    guard let control = data.first else { return }
    let k = Int(control & 0x07)
    let limit = control & 0x08 != 0 ? fuzzSmallFrameLimit : Frame.defaultMaxPayload
    let sizes = data.dropFirst().prefix(k).map(Int.init)
    let stream = Array(data.dropFirst(1 + k))
    guard var decoder = try? FrameDecoder(maxPayload: limit) else {
        fuzzCheck(false, "frame_stream: no decoder for limit \(limit)")
        return
    }
    var pushed = 0
    var consumed = 0
    var chunk = 0
    let single = sizes.allSatisfy { $0 == 0 }
    while pushed < stream.count {
        let n = single ? stream.count : min(sizes[chunk % sizes.count], stream.count - pushed)
        chunk += 1
        decoder.push(stream[pushed..<(pushed + n)])
        pushed += n
        while true {
            fuzzCheck(decoder.buffered == pushed - consumed, "frame_stream: buffered \(decoder.buffered), pushed \(pushed), consumed \(consumed)")
            let expected = referenceFrame(stream[consumed..<pushed], maxPayload: limit)
            let frame: Frame?
            do {
                frame = try decoder.next()
            } catch {
                fuzzCheck(expected == .invalid, "frame_stream: refused at \(consumed) (\(error)); the format says \(expected)")
                decoder.push((try? Frame(.raft, payload: [1]).encoded()) ?? [])
                do {
                    _ = try decoder.next()
                    fuzzCheck(false, "frame_stream: the decoder recovered after an error")
                } catch {}
                return
            }
            guard let frame else {
                fuzzCheck(expected == .incomplete, "frame_stream: nil at \(consumed) with \(pushed - consumed) bytes; the format says \(expected)")
                break
            }
            guard case .frame(let size) = expected else {
                fuzzCheck(false, "frame_stream: a frame at \(consumed); the format says \(expected)")
                return
            }
            fuzzCheck(frame.payload.count <= limit, "frame_stream: a payload of \(frame.payload.count) bytes over the limit \(limit)")
            let encoded = try? frame.encoded()
            fuzzCheck(encoded.map { $0[...] } == stream[consumed..<(consumed + size)],
                      "frame_stream: the frame at \(consumed) does not re-encode to its \(size) bytes")
            consumed += size
        }
    }
}

// MARK: - client_request: ClientRequest(decoding:) and ClientReply(decoding:)

/// Input: the body of an "LCQ" v1 client request (the magic is prefixed here;
/// requests carry no checksum). A decoded request is within the limits
/// (key 1...4096 bytes, values up to 8 MiB, timeout 1...600,000 ms, member
/// ids >= 1 with addresses of 1...300 bytes), encodes
/// to exactly the input (the decoder accepts canonical bytes only) and decodes
/// back to itself. The same body is then read as an "LCR" v1 reply, with the
/// same round-trip checks.
public func fuzzClientRequest(_ data: [UInt8]) {
    let bytes = FuzzMagic.clientRequest + data
    if let r = try? ClientRequest(decoding: bytes) {
        let again = r.encoded()
        fuzzCheck(again == bytes, "client_request: a non-canonical request decoded: \(r)")
        fuzzCheck((try? ClientRequest(decoding: again)) == r, "client_request: re-encoding does not decode to the request")
        fuzzCheck((1...ClientLimits.maxTimeoutMillis).contains(r.timeoutMillis), "client_request: timeout \(r.timeoutMillis) decoded")
        var keys: [String] = []
        var values: [[UInt8]] = []
        switch r.operation {
        case .put(let k, let v): keys = [k]; values = [v]
        case .get(let k), .delete(let k): keys = [k]
        case .cas(let k, let e, let n): keys = [k]; values = [n] + (e.map { [$0] } ?? [])
        case .status, .register: break
        case .addMember(let id, let address):
            fuzzCheck(id != 0 && !address.isEmpty && address.utf8.count <= 300, "client_request: member \(id) at '\(address)' decoded")
        case .removeMember(let id):
            fuzzCheck(id != 0, "client_request: member id 0 decoded")
        case .commit(let ops), .coordinate(let ops):
            fuzzCheck((1...AlgebraicLimits.maxOps).contains(ops.count), "client_request: \(ops.count) ops decoded")
            keys = ops.map(\.key)
        case .value(let k): keys = [k]
        case .transact(let parts):
            fuzzCheck(!parts.isEmpty && zip(parts, parts.dropFirst()).allSatisfy { $0.shard < $1.shard },
                      "client_request: transaction parts not sorted and unique")
            fuzzCheck(parts.allSatisfy { !$0.ops.isEmpty && $0.ops.allSatisfy { $0.key.utf8.count <= WatermarkLimits.maxKeyBytes } },
                      "client_request: an empty part or an over-long key decoded")
        }
        for k in keys { fuzzCheck((try? ClientRequest.checkKey(k)) != nil, "client_request: a key of \(k.utf8.count) bytes decoded") }
        for v in values { fuzzCheck((try? ClientRequest.checkValue(v)) != nil, "client_request: a value of \(v.count) bytes decoded") }
    }
    // The same body as a transaction's result: range-checked, canonical.
    if let result = try? TransactResult(decoding: data) {
        fuzzCheck(result.encoded() == data, "client_request: a non-canonical transaction result decoded")
        fuzzCheck(result.ts <= WatermarkLimits.maxTimestamp, "client_request: a result timestamp over 2^62 decoded")
    }
    let replyBytes = FuzzMagic.clientReply + data
    if let reply = try? ClientReply(decoding: replyBytes) {
        let again = reply.encoded()
        fuzzCheck(again == replyBytes, "client_request: a non-canonical reply decoded: \(reply)")
        fuzzCheck((try? ClientReply(decoding: again)) == reply, "client_request: re-encoding does not decode to the reply")
    }
}

// MARK: - handshake_hello: HandshakeServer.receive

/// The one server every `handshake_hello` input is judged by.
enum HandshakeWorld {
    static let credentials: ClusterCredentials = {
        do {
            return try ClusterCredentials(clusterId: "luigi-fuzz", secret: Array("luigi-fuzz shared secret, 32 b.".utf8))
        } catch {
            fatalError("fuzz: credentials: \(error)")
        }
    }()
    static let serverNode: UInt64 = 7
    static let serverNonce: [UInt8] = (0..<UInt8(Handshake.nonceSize)).map { $0 &* 37 &+ 11 }

    static func server() -> HandshakeServer {
        HandshakeServer(credentials: credentials, nodeId: serverNode, nonce: serverNonce)
    }

    /// The hello an honest connector with `role` and `nonce` sends to `server()`.
    static func hello(role: ConnectionRole, nonce: [UInt8], credentials: ClusterCredentials = credentials) -> Frame? {
        var client = HandshakeClient(credentials: credentials, role: role, nonce: nonce)
        return try? client.answer(server().challenge)
    }
}

/// Input: the payload of a hello frame (kind hello, group 0), handed to a
/// server of cluster "luigi-fuzz" with a fixed nonce. Nothing may trap. A
/// refusal carries its reason in a well-formed refuse frame. Acceptance is
/// legitimate only for the exact hello an honest `HandshakeClient` with the
/// secret sends for the role and nonce the input names; the welcome then
/// satisfies that client's `finish` (which returns the server's node id).
/// Either way, a second hello is refused.
public func fuzzHandshakeHello(_ data: [UInt8]) {
    var server = HandshakeWorld.server()
    let outcome = server.receive(Frame(.hello, payload: data))
    switch outcome {
    case .refused(let reason, let refusal):
        fuzzCheck(refusal.kind == .refuse && refusal.group == 0 && Handshake.reason(ofRefusal: refusal) == reason,
                  "handshake_hello: the refusal frame does not carry the reason \(reason.debugDescription)")
    case .accepted(let role, let welcome):
        // The connector nonce the input names (cluster, role, nonce, proof).
        var r = ByteReader(data)
        let nonce: [UInt8]? = {
            guard (try? r.utf8()) != nil, let tag = try? r.u8() else { return nil }
            if tag == 1 { guard (try? r.u64le()) != nil else { return nil } }
            return try? r.blob()
        }()
        guard let nonce, let honest = HandshakeWorld.hello(role: role, nonce: nonce) else {
            fuzzCheck(false, "handshake_hello: accepted a hello whose nonce no client could send")
            return
        }
        fuzzCheck(honest.payload == data, "handshake_hello: accepted a hello that is not the honest one for \(role)")
        var client = HandshakeClient(credentials: HandshakeWorld.credentials, role: role, nonce: nonce)
        _ = try? client.answer(HandshakeWorld.server().challenge)
        fuzzCheck((try? client.finish(welcome)) == HandshakeWorld.serverNode, "handshake_hello: the welcome does not verify")
    }
    if case .refused(let reason, _) = server.receive(Frame(.hello, payload: data)) {
        fuzzCheck(reason == "handshake already finished", "handshake_hello: a second hello refused for \(reason.debugDescription)")
    } else {
        fuzzCheck(false, "handshake_hello: a second hello was accepted")
    }
}

// MARK: - session_snapshot: SessionMachine.restore

/// The session machine every `session_snapshot` input is restored over:
/// sessions 1 and 2 (registered at indexes 1 and 2), writes (2, 1), (1, 1),
/// (1, 2), an unframed put, applied at indexes 3...6.
enum SessionWorld {
    static func machine() -> (SessionMachine, KVStateMachine) {
        let kv = KVStateMachine()
        let m = SessionMachine(kv)
        let entries: [[UInt8]] = [
            SessionMachine.registration(),
            SessionMachine.registration(),
            SessionMachine.frame(KVStateMachine.Command.put(key: "a", value: [1]).encoded(), session: 2, seq: 1),
            SessionMachine.frame(KVStateMachine.Command.cas(key: "a", expected: [1], new: [2]).encoded(), session: 1, seq: 1),
            SessionMachine.frame(KVStateMachine.Command.delete(key: "b").encoded(), session: 1, seq: 2),
            KVStateMachine.Command.put(key: "c", value: [3]).encoded(),
        ]
        for (i, e) in entries.enumerated() { _ = try? m.apply(RaftEntry(term: 1, index: UInt64(i + 1), data: e)) }
        return (m, kv)
    }

    static let snapshot: [UInt8] = {
        do { return try machine().0.snapshot() } catch { fatalError("fuzz: session world: \(error)") }
    }()
}

/// One session of a session snapshot, as the format lays it out.
struct FuzzSession {
    var id: UInt64
    var floor: UInt64
    var lastUsed: UInt64
    var results: [UInt64: [UInt8]]
}

/// The sessions of a snapshot the machine itself wrote (nil if it does not parse).
func parseSessionSnapshot(_ bytes: [UInt8]) -> [FuzzSession]? {
    guard var r = try? ByteReader.sealed(bytes, magic: FuzzMagic.sessionSnapshot, what: "session snapshot"),
          (try? r.blob()) != nil, let n = try? r.count() else { return nil }
    var out: [FuzzSession] = []
    for _ in 0..<n {
        guard let id = try? r.varint(), let floor = try? r.varint(), let lastUsed = try? r.varint(), let count = try? r.count() else {
            return nil
        }
        var s = FuzzSession(id: id, floor: floor, lastUsed: lastUsed, results: [:])
        for _ in 0..<count {
            guard let seq = try? r.varint(), let result = try? r.blob() else { return nil }
            s.results[seq] = result
        }
        out.append(s)
    }
    return r.isAtEnd ? out : nil
}

func sessionOutcome(_ m: SessionMachine, _ index: UInt64, _ data: [UInt8]) -> SessionOutcome? {
    guard let result = try? m.apply(RaftEntry(term: 9, index: index, data: data)) else {
        fuzzCheck(false, "session_snapshot: apply threw at index \(index)")
        return nil
    }
    let o = try? SessionOutcome(decoding: result)
    fuzzCheck(o != nil, "session_snapshot: the result at index \(index) is not a session outcome")
    return o
}

/// Input: the body of an "LSS" v1 session snapshot (re-sealed here: magic and
/// CRC-32C added), restored over `SessionWorld`. A refused snapshot leaves
/// the machine's snapshot bytes as they were. An accepted one re-encodes
/// (`snapshot()`) to bytes that restore into a fresh machine and encode the
/// same. Then, on the restored machine: a new session is registered, a write
/// in it applies (reaching the key-value machine), a retry is a duplicate
/// with the same result, and after the value is deleted a second retry still
/// does not apply it again; and for up to three restored sessions (the first,
/// a middle one, the last), a kept seq answers its stored result, a seq below
/// the floor is expired, and a new seq applies once. A session can be evicted
/// by the registration only when the snapshot holds `maxSessions` sessions.
public func fuzzSessionSnapshot(_ data: [UInt8]) {
    let bytes = fuzzSeal(FuzzMagic.sessionSnapshot, data)
    let (m, kv) = SessionWorld.machine()
    do {
        try m.restore(bytes)
    } catch {
        fuzzCheck((try? m.snapshot()) == SessionWorld.snapshot, "session_snapshot: a refused snapshot changed the machine: \(error)")
        return
    }
    guard let own = try? m.snapshot() else {
        fuzzCheck(false, "session_snapshot: a restored machine cannot snapshot")
        return
    }
    checkSessionRestores(own, "after restore")
    guard let sessions = parseSessionSnapshot(own) else {
        fuzzCheck(false, "session_snapshot: the machine's own snapshot does not parse")
        return
    }
    fuzzCheck(sessions.count == m.sessionCount, "session_snapshot: \(sessions.count) sessions in the snapshot, \(m.sessionCount) in the machine")

    // A new session: write, retry, delete, retry. When the table is full, the
    // registration evicts the least recently used session (by log index, then
    // id), which is the new one itself if every restored one was used later.
    var index = RaftLimits.maxTermOrIndex - 16
    var victim: UInt64?
    if m.sessionCount == SessionMachine.maxSessions && !sessions.contains(where: { $0.id == index }) {
        let lru = sessions.min { ($0.lastUsed, $0.id) < ($1.lastUsed, $1.id) }
        victim = lru.map { ($0.lastUsed, $0.id) < (index, index) ? $0.id : index } ?? index
    }
    guard case .registered(let id)? = sessionOutcome(m, index, SessionMachine.registration()) else {
        fuzzCheck(false, "session_snapshot: a registration was not registered")
        return
    }
    fuzzCheck(id == index, "session_snapshot: registered \(id) at index \(index)")
    let put = SessionMachine.frame(KVStateMachine.Command.put(key: "fuzz-key", value: [0xF0]).encoded(), session: id, seq: 1)
    index += 1
    let first = sessionOutcome(m, index, put)
    if victim == id {
        if case .expired? = first {} else { fuzzCheck(false, "session_snapshot: a session evicted at once answered \(String(describing: first))") }
    } else {
        fuzzCheck(first == .applied([]), "session_snapshot: a new session's write answered \(String(describing: first))")
        fuzzCheck(kv.data["fuzz-key"] == [0xF0], "session_snapshot: the write did not reach the key-value machine")
        index += 1
        fuzzCheck(sessionOutcome(m, index, put) == .duplicate([]), "session_snapshot: a retry was not a duplicate")
        index += 1
        let deleted = try? m.apply(RaftEntry(term: 9, index: index, data: KVStateMachine.Command.delete(key: "fuzz-key").encoded()))
        fuzzCheck(deleted == [1], "session_snapshot: an unframed delete answered \(String(describing: deleted))")
        index += 1
        fuzzCheck(sessionOutcome(m, index, put) == .duplicate([]), "session_snapshot: a second retry was not a duplicate")
        fuzzCheck(kv.data["fuzz-key"] == nil, "session_snapshot: a retry was applied again")
    }

    // Restored sessions answer from their table.
    let picks = sessions.isEmpty ? [] : Array(Set([0, sessions.count / 2, sessions.count - 1])).sorted().map { sessions[$0] }
    for s in picks where s.id != id {
        if s.id == victim {
            index += 1
            let o = sessionOutcome(m, index, SessionMachine.frame([], session: s.id, seq: s.floor))
            if case .expired? = o {} else { fuzzCheck(false, "session_snapshot: evicted session \(s.id) answered \(String(describing: o))") }
            continue
        }
        if let (seq, result) = s.results.min(by: { $0.key < $1.key }) {
            index += 1
            let o = sessionOutcome(m, index, SessionMachine.frame([], session: s.id, seq: seq))
            fuzzCheck(o == .duplicate(result), "session_snapshot: session \(s.id) seq \(seq) answered \(String(describing: o))")
        }
        if s.floor > 0 && s.results[s.floor - 1] == nil {
            index += 1
            let o = sessionOutcome(m, index, SessionMachine.frame([], session: s.id, seq: s.floor - 1))
            if case .expired? = o {} else { fuzzCheck(false, "session_snapshot: session \(s.id) seq below the floor answered \(String(describing: o))") }
        }
        var fresh = s.floor
        while s.results[fresh] != nil && fresh < .max { fresh += 1 }
        if s.results[fresh] == nil {
            let write = SessionMachine.frame(KVStateMachine.Command.put(key: "fuzz-\(s.id)", value: [1]).encoded(), session: s.id, seq: fresh)
            index += 1
            fuzzCheck(sessionOutcome(m, index, write) == .applied([]), "session_snapshot: session \(s.id) new seq \(fresh) was not applied")
            index += 1
            let again = sessionOutcome(m, index, write)
            // A new seq below every kept one, in a full window, is forgotten at once.
            if s.results.count >= SessionMachine.window, let oldest = s.results.keys.min(), fresh < oldest {
                if case .expired? = again {} else { fuzzCheck(false, "session_snapshot: session \(s.id) kept \(fresh) past its window") }
            } else {
                fuzzCheck(again == .duplicate([]), "session_snapshot: session \(s.id) retry of \(fresh) answered \(String(describing: again))")
            }
        }
    }
    if let after = try? m.snapshot() {
        checkSessionRestores(after, "after the writes")
    } else {
        fuzzCheck(false, "session_snapshot: the machine cannot snapshot after the writes")
    }
}

/// `snapshot` restores into a fresh machine that snapshots to the same bytes.
func checkSessionRestores(_ snapshot: [UInt8], _ when: String) {
    let fresh = SessionMachine(KVStateMachine())
    do { try fresh.restore(snapshot) } catch {
        fuzzCheck(false, "session_snapshot: the machine's own snapshot (\(when)) does not restore: \(error)")
        return
    }
    fuzzCheck((try? fresh.snapshot()) == snapshot, "session_snapshot: the restored machine's snapshot differs (\(when))")
}

// MARK: - sync_message: SyncMessage(decoding:) as a peer's `delta` frame carries it

/// The input is a whole anti-entropy message (tag 1 + version vector, or
/// tag 2 + an "LUL" update batch). One that decodes must re-encode to bytes
/// that decode to the same message; a digest is answered from a replica
/// holding a few updates, and a reply's updates are applied to a fresh
/// replica, which must never claim more of an origin than the reply held.
public func fuzzSyncMessage(_ data: [UInt8]) {
    guard let message = try? SyncMessage(decoding: data) else { return }
    fuzzCheck((try? SyncMessage(decoding: message.encoded())) == message, "sync_message: re-encoding does not decode to the message")
    switch message {
    case .digest(let clock):
        let replica = SyncWorld.replica()
        for update in replica.delta(since: clock) {
            fuzzCheck(update.seq > clock[update.origin], "sync_message: delta sent \(update.dot), which the digest holds")
        }
    case .reply(let updates):
        let replica = Replica(nodeID: 99)
        for update in updates { replica.apply(update) }
        for (origin, seq) in replica.clock.entries.map({ ($0.node, $0.counter) }) {
            let most = updates.filter { $0.origin == origin }.map(\.seq).max() ?? 0
            fuzzCheck(seq <= most, "sync_message: origin \(origin) at \(seq), beyond what the reply held")
        }
    }
}

enum SyncWorld {
    /// Two origins with a few updates each, the second depending on the first.
    static func replica() -> Replica {
        let a = Replica(nodeID: 1), b = Replica(nodeID: 2)
        for i in 1...3 {
            if let u = try? a.commit({ try $0.add("n", Int64(i)) }) { b.apply(u) }
            _ = try? b.commit { try $0.union("s", .int(Int64(i))) }
        }
        return b
    }
}

// MARK: - wire_value: WireValue.decode, what a client reads from a node's reply

/// A value that decodes must encode (canonically: set elements sorted and
/// distinct) to bytes that decode to the same value.
public func fuzzWireValue(_ data: [UInt8]) {
    guard let value = try? WireValue.decode(data) else { return }
    fuzzCheck((try? WireValue.decode(WireValue.encode(value))) == .some(value), "wire_value: \(String(describing: value)) does not round-trip")
}

// MARK: - frame_chunks: ChunkAssembler over a peer's pieces

/// The frame limit of `frame_chunks`' assembler.
let fuzzChunkLimit = 600

/// Input: records `group u8 | length u8 | payload`, each a `chunk` frame's
/// payload pushed into one `ChunkAssembler` (limit 600 bytes). A reference
/// written from the rules (FrameChunk.swift) says what each push must do:
/// the header is whole and names a kind other than `chunk`; the first piece
/// of a transfer starts at 0 within the limit; a later one continues the
/// open transfer (same id, group, kind and total) where the last ended; no
/// piece is empty or runs past the total. An accepted push returns the
/// whole frame (its kind, group and bytes in order) exactly when its last
/// piece is in; a refused one changes nothing (`buffered` stays).
public func fuzzFrameChunks(_ data: [UInt8]) {
    var assembler = ChunkAssembler(maxTotal: fuzzChunkLimit)
    // The reference: the open transfer (id, group, kind, total) and its bytes.
    var open: (transfer: UInt64, group: UInt64, kind: UInt8, total: UInt64)?
    var held: [UInt8] = []
    var at = 0
    while at + 2 <= data.count {
        let group = UInt64(data[at]), length = Int(data[at + 1])
        let payload = Array(data[(at + 2)..<min(at + 2 + length, data.count)])
        at += 2 + length
        var accepted = false
        if payload.count >= 25, FrameKind(rawValue: payload[24]) != nil, payload[24] != FrameKind.chunk.rawValue {
            let transfer = u64le(payload, 0), total = u64le(payload, 8), offset = u64le(payload, 16), kind = payload[24]
            let bytes = Array(payload[25...])
            if let o = open {
                accepted = transfer == o.transfer && group == o.group && kind == o.kind && total == o.total
                    && offset == UInt64(held.count)
            } else {
                accepted = offset == 0 && total <= UInt64(fuzzChunkLimit)
            }
            accepted = accepted && !bytes.isEmpty && UInt64(bytes.count) <= total - offset
            if accepted {
                if open == nil { open = (transfer, group, kind, total) }
                held += bytes
            }
        }
        let before = assembler.buffered
        do {
            let whole = try assembler.push(Frame(.chunk, group: group, payload: payload))
            fuzzCheck(accepted, "frame_chunks: a piece the rules refuse was taken")
            if let o = open, UInt64(held.count) == o.total {
                fuzzCheck(whole?.payload == held && whole?.group == o.group && whole?.kind.rawValue == o.kind,
                          "frame_chunks: the frame came back different")
                open = nil
                held = []
            } else {
                fuzzCheck(whole == nil, "frame_chunks: a frame before its last piece")
            }
        } catch {
            fuzzCheck(!accepted, "frame_chunks: a valid piece refused: \(error)")
            fuzzCheck(assembler.buffered == before, "frame_chunks: a refused piece changed the assembler")
        }
        fuzzCheck(assembler.buffered == (open == nil ? 0 : held.count), "frame_chunks: holds \(assembler.buffered), the reference \(held.count)")
    }
}

func u64le(_ bytes: [UInt8], _ at: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in 0..<8 { v |= UInt64(bytes[at + i]) << UInt64(8 * i) }
    return v
}
