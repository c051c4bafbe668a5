import LuigiCore
import LuigiHost
import LuigiWire

/// Seeds of the wire targets: frame streams of every kind pushed whole, byte
/// by byte and in uneven chunks (with a torn tail, garbage, an oversized
/// header); requests of every operation and replies of every status; honest
/// and dishonest hellos; session snapshots of real machines (one with a
/// full, slid window; one with many sessions; one restored and continued).
extension FuzzSeeds {
    // MARK: - frame_stream

    static func frameStreamSeeds() -> [[UInt8]] {
        func enc(_ f: Frame) -> [UInt8] {
            do { return try f.encoded() } catch { fatalError("seeds: \(error)") }
        }
        var frames: [Frame] = []
        for (i, kind) in FrameKind.allCases.enumerated() {
            frames.append(Frame(kind, group: i % 2 == 0 ? 0 : UInt64(i) << 40 | 3, payload: (0..<UInt8(i * 5)).map { $0 &* 31 }))
        }
        let all = frames.flatMap(enc)
        let small = [Frame(.raft, group: 1, payload: [1, 2, 3]), Frame(.reply)].flatMap(enc)
        let big = enc(Frame(.request, group: 2, payload: [UInt8](repeating: 0xAB, count: 100)))
        var badCRC = enc(Frame(.delta, group: 5, payload: [9, 9]))
        badCRC[badCRC.count - 1] ^= 0x40
        return [
            [0x00] + all,  // one push
            [0x01, 1] + small,  // byte by byte
            [0x03, 7, 1, 30] + all,  // uneven chunks
            [0x02, 19, 1] + all + Array(enc(Frame(.raft, payload: [1, 2, 3, 4])).dropLast(2)),  // torn tail
            [0x08] + small + big,  // 64-byte limit: the big frame's header is refused
            [0x09, 20] + small + big,
            [0x00] + small + Array("GET / HTTP/1.1\r\n".utf8),  // garbage after frames
            [0x01, 2] + small + badCRC + small,
            [0x00] + enc(Frame(.hello, payload: [])),
            [0x00],
        ]
    }

    // MARK: - client_request

    static func clientRequestSeeds() -> [[UInt8]] {
        let ops: [ClientOperation] = [
            .put(key: "k", value: [1, 2, 3]),
            .get(key: "clé"),
            .delete(key: "k"),
            .cas(key: "k", expected: nil, new: [1]),
            .cas(key: "k", expected: [1], new: []),
            .status,
            .register,
            .addMember(id: 4, address: "10.0.0.4:7001"),
            .removeMember(id: 2),
            .commit([.add(key: "n", delta: -3), .max(key: "m", value: .float(1.5)), .union(key: "s", elements: [.int(1), .string("x"), .bytes([7])])]),
            .coordinate([.set(key: "r", value: .int(7)), .min(key: "lo", value: .int(-2))]),
            .value(key: "n"),
        ]
        var seeds = ops.enumerated().map { i, op in
            Array(ClientRequest(id: RequestID(client: 0xC0FFEE, seq: UInt64(i)), timeoutMillis: UInt32(1 + i * 1000), operation: op)
                .encoded().dropFirst(FuzzMagic.clientRequest.count))
        }
        let replies: [ClientReply] = ReplyStatus.allCases.map { status in
            ClientReply(id: RequestID(client: 5, seq: UInt64(status.rawValue)), status: status, leaderId: status == .notLeader ? 2 : 0,
                        leaderAddress: status == .notLeader ? "10.0.0.2:7001" : "", message: status == .ok ? "" : "because",
                        result: status == .ok ? [1, 42] : [])
        }
        seeds += replies.map { Array($0.encoded().dropFirst(FuzzMagic.clientReply.count)) }
        // Out of range: a timeout of 0, an empty key, a trailing byte, an unknown operation.
        seeds.append(Array(ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: 0, operation: .status).encoded().dropFirst(4)))
        seeds.append(Array(ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: 9, operation: .get(key: "")).encoded().dropFirst(4)))
        seeds.append(Array(ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: 9, operation: .register).encoded().dropFirst(4)) + [0])
        seeds.append([UInt8](repeating: 1, count: 20) + [9])
        return seeds
    }

    // MARK: - handshake_hello

    static func handshakeHelloSeeds() -> [[UInt8]] {
        let nonceA = [UInt8](repeating: 0xA5, count: Handshake.nonceSize)
        let nonceB = (0..<UInt8(Handshake.nonceSize)).map { $0 }
        func hello(_ role: ConnectionRole, _ nonce: [UInt8], _ credentials: ClusterCredentials = HandshakeWorld.credentials) -> [UInt8] {
            guard let f = HandshakeWorld.hello(role: role, nonce: nonce, credentials: credentials) else {
                fatalError("seeds: no hello")
            }
            return f.payload
        }
        let otherSecret: ClusterCredentials
        let otherCluster: ClusterCredentials
        do {
            otherSecret = try ClusterCredentials(clusterId: HandshakeWorld.credentials.clusterId, secret: Array("not the luigi-fuzz secret at all".utf8))
            otherCluster = try ClusterCredentials(clusterId: "other-cluster", secret: Array("luigi-fuzz shared secret, 32 b.".utf8))
        } catch {
            fatalError("seeds: \(error)")
        }
        // The honest hello of the other cluster's connector, for a server of that cluster with the same nonce.
        let server = HandshakeServer(credentials: otherCluster, nodeId: HandshakeWorld.serverNode, nonce: HandshakeWorld.serverNonce)
        var foreign = HandshakeClient(credentials: otherCluster, role: .client, nonce: nonceA)
        let foreignHello = (try? foreign.answer(server.challenge))?.payload ?? []
        let good = hello(.peer(2), nonceB)
        return [
            hello(.client, nonceA),
            good,
            hello(.peer(.max), nonceA),
            hello(.client, nonceB, otherSecret),
            foreignHello,
            good + [0],
            Array(good.dropLast(5)),
            [],
        ]
    }

    // MARK: - session_snapshot

    static func sessionSnapshotSeeds() -> [[UInt8]] {
        func snap(_ m: SessionMachine) -> [UInt8] {
            do { return fuzzUnseal(try m.snapshot()) } catch { fatalError("seeds: \(error)") }
        }
        func apply(_ m: SessionMachine, _ index: UInt64, _ data: [UInt8]) {
            do { _ = try m.apply(RaftEntry(term: 2, index: index, data: data)) } catch { fatalError("seeds: \(error)") }
        }
        func put(_ k: String, _ v: [UInt8]) -> [UInt8] { KVStateMachine.Command.put(key: k, value: v).encoded() }

        // One session whose window slid: seqs 1...1030 (floor 7).
        let slid = SessionMachine(KVStateMachine())
        apply(slid, 10, SessionMachine.registration())
        for seq in UInt64(1)...UInt64(SessionMachine.window + 6) {
            apply(slid, 10 + seq, SessionMachine.frame(KVStateMachine.Command.delete(key: "k\(seq % 3)").encoded(), session: 10, seq: seq))
        }
        // Many sessions, a few writes each, far into the log.
        let many = SessionMachine(KVStateMachine())
        var index: UInt64 = 1 << 40
        var ids: [UInt64] = []
        for _ in 0..<40 {
            index += 1
            apply(many, index, SessionMachine.registration())
            ids.append(index)
        }
        for (i, id) in ids.enumerated() where i % 3 != 0 {
            for seq in UInt64(0)..<UInt64(i % 4) {
                index += 1
                apply(many, index, SessionMachine.frame(put("s\(i)", [UInt8(seq)]), session: id, seq: seq * 1000))
            }
        }
        // A replica that restored `many`, then moved on.
        let restored = SessionMachine(KVStateMachine())
        do { try restored.restore(try many.snapshot()) } catch { fatalError("seeds: \(error)") }
        index += 1
        apply(restored, index, SessionMachine.frame(put("after", [1]), session: ids[1], seq: 77))
        index += 1
        apply(restored, index, SessionMachine.registration())

        return [snap(SessionMachine(KVStateMachine())), fuzzUnseal(SessionWorld.snapshot), snap(slid), snap(many), snap(restored)]
    }
}

extension FuzzSeeds {
    // MARK: - sync_message, wire_value

    static func syncMessageSeeds() -> [[UInt8]] {
        let replica = SyncWorld.replica()
        return [
            SyncMessage.digest(VectorClock()).encoded(),
            SyncMessage.digest(replica.clock).encoded(),
            SyncMessage.reply(replica.delta(since: VectorClock())).encoded(),
            SyncMessage.reply([]).encoded(),
            [3, 0],
        ]
    }

    static func wireValueSeeds() -> [[UInt8]] {
        let values: [Value?] = [
            nil, .counter(-5), .counter(Int128(Int64.max) * 4), .max(.int(3)), .min(.float(-0.5)),
            .set([.int(1), .string("a"), .bytes([0, 1])]), .set([]), .register(.int(42)),
        ]
        return values.map(WireValue.encode) + [[6], [4, 2, 1, 2, 1, 2]]
    }
}

extension FuzzSeeds {
    // MARK: - frame_chunks

    /// Records `group | length | payload` of pieces: two whole transfers,
    /// then pieces out of order, of another group or kind, over the limit,
    /// empty.
    static func frameChunkSeeds() -> [[UInt8]] {
        func record(_ group: UInt8, _ chunk: FrameChunk) -> [UInt8] {
            let payload = chunk.encoded()
            return [group, UInt8(payload.count)] + payload
        }
        func transfer(_ id: UInt64, group: UInt8, kind: FrameKind = .raft, size: Int, piece: Int) -> [UInt8] {
            let frame = Frame(kind, group: UInt64(group), payload: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            var out: [UInt8] = []
            var offset = 0
            while offset < size {
                let chunk = FrameChunk(of: frame, transfer: id, offset: offset, maxBytes: piece)
                out += record(group, chunk)
                offset += chunk.bytes.count
            }
            return out
        }
        return [
            transfer(1, group: 1, size: 300, piece: 100) + transfer(2, group: 4, kind: .watermark, size: 31, piece: 200),
            transfer(3, group: 2, kind: .delta, size: 500, piece: 64),
            record(1, FrameChunk(transfer: 1, total: 50, offset: 10, kind: .raft, bytes: [1])) + transfer(1, group: 1, size: 40, piece: 9),
            Array(transfer(5, group: 1, size: 90, piece: 30).prefix(57))
                + record(2, FrameChunk(transfer: 5, total: 90, offset: 30, kind: .raft, bytes: [2]))
                + record(1, FrameChunk(transfer: 5, total: 90, offset: 30, kind: .watermark, bytes: [2]))
                + record(1, FrameChunk(transfer: 6, total: 90, offset: 30, kind: .raft, bytes: [2])),
            record(1, FrameChunk(transfer: 1, total: 601, offset: 0, kind: .raft, bytes: [1]))
                + record(1, FrameChunk(transfer: 1, total: 2, offset: 0, kind: .raft, bytes: [])),
        ]
    }
}
