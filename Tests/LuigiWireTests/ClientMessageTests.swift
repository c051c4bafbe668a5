import LuigiBase
import LuigiWire
import Testing

// Client requests ("LCQ" v1) and replies ("LCR" v1).

func randomKey(_ rng: inout SplitMix64) -> String {
    switch rng.int(0...4) {
    case 0: return "k"
    case 1: return "clé-\(rng.next() % 1000)"
    case 2: return String(repeating: "x", count: rng.int(1...ClientLimits.maxKeyBytes))
    case 3: return "🍄/" + String(rng.next(), radix: 36)
    default: return "key\(rng.next() % 50)"
    }
}

func randomOperation(_ rng: inout SplitMix64) -> ClientOperation {
    func value() -> [UInt8] { rng.chance(0.05) ? rng.bytes(rng.int(0...70_000)) : rng.bytes(upTo: 40) }
    switch rng.int(0...8) {
    case 0: return .put(key: randomKey(&rng), value: value())
    case 1: return .get(key: randomKey(&rng))
    case 2: return .delete(key: randomKey(&rng))
    case 3: return .cas(key: randomKey(&rng), expected: nil, new: value())
    case 4: return .cas(key: randomKey(&rng), expected: value(), new: value())
    case 5: return .status
    case 6: return .addMember(id: rng.next() | 1, address: "10.0.\(rng.next() % 256).\(rng.next() % 256):\(rng.next() % 65536)")
    case 7: return .removeMember(id: rng.next() | 1)
    default: return .register
    }
}

func randomRequest(_ rng: inout SplitMix64) -> ClientRequest {
    let timeout: UInt32 = rng.chance(0.2) ? (rng.chance(0.5) ? 1 : ClientLimits.maxTimeoutMillis)
        : UInt32(rng.int(1...Int(ClientLimits.maxTimeoutMillis)))
    return ClientRequest(id: RequestID(client: rng.next(), seq: rng.chance(0.1) ? 0 : rng.next()), timeoutMillis: timeout,
                         operation: randomOperation(&rng))
}

/// The request bytes with an arbitrary operation body (no checks on the way out).
func requestBytes(client: UInt64 = 1, seq: UInt64 = 1, timeout: UInt32 = 1000, _ body: (inout ByteWriter) -> Void) -> [UInt8] {
    var w = ByteWriter()
    w.raw([0x4C, 0x43, 0x51, 0x01])
    w.u64le(client)
    w.u64le(seq)
    w.u32le(timeout)
    body(&w)
    return w.bytes
}

func decodeFails(_ bytes: [UInt8]) -> Bool { (try? ClientRequest(decoding: bytes)) == nil }

@Suite struct ClientMessageTests {
    @Test func everyOperationRoundTrips() throws {
        let maxKey = String(repeating: "k", count: ClientLimits.maxKeyBytes)
        let maxKeyMultibyte = String(repeating: "é", count: ClientLimits.maxKeyBytes / 2)
        let ops: [ClientOperation] = [
            .put(key: "a", value: []),
            .put(key: "a", value: [0, 1, 2, 255]),
            .put(key: maxKey, value: [UInt8](repeating: 9, count: 1000)),
            .put(key: maxKeyMultibyte, value: [1]),
            .get(key: "a"),
            .get(key: "\u{0}"),  // NUL is fine inside a key
            .delete(key: "clé"),
            .cas(key: "a", expected: nil, new: [1]),
            .cas(key: "a", expected: [], new: []),
            .cas(key: "a", expected: [1, 2], new: [3]),
            .status,
            .register,
            .addMember(id: 1, address: "127.0.0.1:7001"),
            .addMember(id: .max, address: String(repeating: "h", count: 300)),
            .addMember(id: 4, address: "é"),
            .removeMember(id: 1),
            .removeMember(id: .max),
            .commit([.add(key: "a", delta: -5), .max(key: "m", value: .float(2.5)), .min(key: "n", value: .int(.min))]),
            .commit([.union(key: "s", elements: [.int(1), .string("x"), .bytes([0, 255])]), .union(key: "e", elements: [])]),
            .coordinate([.set(key: "r", value: .int(7)), .add(key: "a", delta: .max)]),
            .value(key: "a"),
        ]
        for op in ops {
            for (id, timeout) in [(RequestID(client: 0, seq: 0), UInt32(1)), (RequestID(client: .max, seq: .max), ClientLimits.maxTimeoutMillis),
                                  (RequestID(client: 0xDEAD_BEEF, seq: 7), 5000)] {
                let r = ClientRequest(id: id, timeoutMillis: timeout, operation: op)
                let bytes = r.encoded()
                let back = try ClientRequest(decoding: bytes)
                #expect(back == r)
                #expect(back.encoded() == bytes)
            }
        }
        #expect(ClientOperation.put(key: "a", value: []).isWrite)
        #expect(ClientOperation.delete(key: "a").isWrite)
        #expect(ClientOperation.cas(key: "a", expected: nil, new: []).isWrite)
        #expect(!ClientOperation.get(key: "a").isWrite)
        #expect(!ClientOperation.status.isWrite)
        #expect(!ClientOperation.register.isWrite)
        #expect(!ClientOperation.addMember(id: 2, address: "h:1").isWrite)
        #expect(!ClientOperation.removeMember(id: 2).isWrite)
        #expect(RequestID(client: 0xff, seq: 3).description == "ff:3")
    }

    @Test func randomRequestsRoundTrip() {
        sweep(500, "request round trip") { seed in
            var rng = SplitMix64(seed: seed)
            let r = randomRequest(&rng)
            let bytes = r.encoded()
            let back = try ClientRequest(decoding: bytes)
            try ensure(back == r, "decoded \(back), sent \(r)")
            try ensure(back.encoded() == bytes, "re-encoding differs")
        }
    }

    /// A damaged request is refused, or is another valid request whose
    /// encoding is exactly the damaged bytes (the format is canonical).
    @Test func truncationsAndBitFlipsNeverTrapAndStayCanonical() {
        sweep(60, "request damage") { seed in
            var rng = SplitMix64(seed: seed)
            var r = randomRequest(&rng)
            // Short values keep the flips per seed in the low thousands.
            switch r.operation {
            case .put(let k, let v): r.operation = .put(key: String(k.prefix(20)), value: Array(v.prefix(20)))
            case .get(let k): r.operation = .get(key: String(k.prefix(20)))
            case .delete(let k): r.operation = .delete(key: String(k.prefix(20)))
            case .cas(let k, let e, let n): r.operation = .cas(key: String(k.prefix(20)), expected: e.map { Array($0.prefix(20)) }, new: Array(n.prefix(20)))
            default: break
            }
            let bytes = r.encoded()
            for cut in 0..<bytes.count {
                let prefix = Array(bytes.prefix(cut))
                if let d = try? ClientRequest(decoding: prefix) {
                    try ensure(d.encoded() == prefix, "cut \(cut) decoded to \(d), which encodes differently")
                }
            }
            for bit in 0..<(bytes.count * 8) {
                var flipped = bytes
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                if let d = try? ClientRequest(decoding: flipped) {
                    try ensure(d.encoded() == flipped, "bit \(bit) decoded to \(d), which encodes differently")
                    try ensure(d != r, "bit \(bit) decoded to the original")
                }
            }
        }
    }

    @Test func randomBytesNeverTrap() {
        sweep(2000, "random request bytes") { seed in
            var rng = SplitMix64(seed: seed)
            var bytes = rng.bytes(upTo: 60)
            if rng.chance(0.7) { bytes = [0x4C, 0x43, 0x51, 0x01] + bytes }
            if let d = try? ClientRequest(decoding: bytes) {
                try ensure(d.encoded() == bytes, "\(bytes) decoded to \(d), which encodes differently")
            }
            if let d = try? ClientReply(decoding: bytes) {
                try ensure(d.encoded() == bytes, "\(bytes) decoded to \(d), which encodes differently")
            }
        }
    }

    @Test func limitsAreChecked() throws {
        let over = String(repeating: "k", count: ClientLimits.maxKeyBytes + 1)
        let overMultibyte = String(repeating: "é", count: ClientLimits.maxKeyBytes / 2) + "k"
        let big = [UInt8](repeating: 1, count: ClientLimits.maxValueBytes + 1)
        let maxValue = [UInt8](repeating: 1, count: ClientLimits.maxValueBytes)
        func refusedAsInvalid(_ op: ClientOperation, timeout: UInt32 = 1000) -> Bool {
            do {
                _ = try ClientRequest(decoding: ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: timeout, operation: op).encoded())
                return false
            } catch LuigiError.invalidArgument {
                return true
            } catch {
                return false
            }
        }
        for key in ["", over, overMultibyte] {
            #expect(refusedAsInvalid(.put(key: key, value: [])), "put key of \(key.utf8.count) bytes")
            #expect(refusedAsInvalid(.get(key: key)), "get key of \(key.utf8.count) bytes")
            #expect(refusedAsInvalid(.delete(key: key)), "delete key of \(key.utf8.count) bytes")
            #expect(refusedAsInvalid(.cas(key: key, expected: nil, new: [])), "cas key of \(key.utf8.count) bytes")
            #expect(throws: LuigiError.self) { try ClientRequest.checkKey(key) }
        }
        #expect(refusedAsInvalid(.put(key: "k", value: big)))
        #expect(refusedAsInvalid(.cas(key: "k", expected: big, new: [])))
        #expect(refusedAsInvalid(.cas(key: "k", expected: nil, new: big)))
        #expect(refusedAsInvalid(.cas(key: "k", expected: [], new: big)))
        #expect(throws: LuigiError.self) { try ClientRequest.checkValue(big) }
        for timeout: UInt32 in [0, ClientLimits.maxTimeoutMillis + 1, .max] {
            #expect(refusedAsInvalid(.status, timeout: timeout), "timeout \(timeout)")
            #expect(refusedAsInvalid(.get(key: "k"), timeout: timeout), "timeout \(timeout)")
        }
        // The limits themselves are accepted.
        let atLimits = ClientRequest(id: RequestID(client: 1, seq: 2), timeoutMillis: ClientLimits.maxTimeoutMillis,
                                     operation: .cas(key: String(repeating: "k", count: ClientLimits.maxKeyBytes), expected: maxValue, new: maxValue))
        #expect(try ClientRequest(decoding: atLimits.encoded()) == atLimits)
        #expect(try ClientRequest(decoding: ClientRequest(id: RequestID(client: 1, seq: 2), timeoutMillis: 1,
                                                          operation: .put(key: "k", value: maxValue)).encoded()).timeoutMillis == 1)
        try ClientRequest.checkKey(String(repeating: "é", count: ClientLimits.maxKeyBytes / 2))
        try ClientRequest.checkValue(maxValue)
        try ClientRequest.checkValue([])
        // Membership: node id 0 and an empty or over-long address are refused.
        #expect(refusedAsInvalid(.addMember(id: 0, address: "h:1")))
        #expect(refusedAsInvalid(.addMember(id: 1, address: "")))
        #expect(refusedAsInvalid(.addMember(id: 1, address: String(repeating: "h", count: 301))))
        #expect(refusedAsInvalid(.removeMember(id: 0)))
        #expect(ClientLimits.maxKeyBytes == 4096 && ClientLimits.maxValueBytes == 8 << 20 && ClientLimits.maxTimeoutMillis == 600_000)
    }

    @Test func malformedRequestsAreRefused() throws {
        for op: ClientOperation in [.put(key: "k", value: [1]), .get(key: "k"), .delete(key: "k"), .cas(key: "k", expected: [1], new: [2]),
                                    .cas(key: "k", expected: nil, new: [2]), .status, .register,
                                    .addMember(id: 2, address: "h:1"), .removeMember(id: 2)] {
            let bytes = ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: 10, operation: op).encoded()
            #expect(decodeFails(bytes + [0]), "\(op) with a trailing byte")
            #expect(decodeFails(bytes + [0, 0, 0, 0]), "\(op) with trailing bytes")
            var v2 = bytes
            v2[3] = 2
            #expect(decodeFails(v2), "\(op) as version 2")
            #expect(decodeFails(Array(bytes.dropFirst())), "\(op) without its first byte")
        }
        #expect(decodeFails([]))
        #expect(decodeFails([0x4C, 0x43, 0x51]))
        #expect(decodeFails([0x4C, 0x43, 0x52, 0x01] + [UInt8](repeating: 0, count: 30)))  // a reply's magic
        for tag: UInt8 in [0, 0x7F, 0xFF] {
            #expect(decodeFails(requestBytes { $0.u8(tag) }), "tag \(tag)")
        }
        #expect(decodeFails(requestBytes { _ in }), "no operation")
        #expect(decodeFails(requestBytes { $0.u8(2); $0.blob([0xC3, 0x28]) }), "invalid UTF-8 key")
        #expect(decodeFails(requestBytes { $0.u8(2); $0.raw([0x80, 0x00]) }), "non-canonical key length")
        #expect(decodeFails(requestBytes { $0.u8(4); $0.string("k"); $0.u8(2); $0.blob([1]); $0.blob([2]) }), "cas flag 2")
        #expect(decodeFails(requestBytes { $0.u8(4); $0.string("k"); $0.u8(0) }), "cas without new")
        #expect(decodeFails(requestBytes { $0.u8(1); $0.string("k") }), "put without value")
        #expect(decodeFails(requestBytes { $0.u8(1); $0.string("k"); $0.varint(1 << 40) }), "value length beyond the input")
        // The hand-written bytes agree with the encoder where valid.
        #expect(try ClientRequest(decoding: requestBytes { $0.u8(4); $0.string("k"); $0.u8(0); $0.blob([2]) })
            == ClientRequest(id: RequestID(client: 1, seq: 1), timeoutMillis: 1000, operation: .cas(key: "k", expected: nil, new: [2])))
    }

    @Test func everyReplyStatusRoundTrips() throws {
        // Wire values are stable: the first six never move, new ones follow without gaps.
        #expect(ReplyStatus.allCases.map(\.rawValue) == (0..<UInt8(ReplyStatus.allCases.count)).map { $0 })
        #expect(Array(ReplyStatus.allCases.prefix(6)) == [.ok, .notLeader, .timeout, .invalid, .unavailable, .expired])
        var rng = SplitMix64(seed: 11)
        for status in ReplyStatus.allCases {
            let replies = [
                ClientReply(id: RequestID(client: 1, seq: 2), status: status),
                ClientReply(id: RequestID(client: .max, seq: .max), status: status, leaderId: 3, leaderAddress: "10.0.0.3:7000",
                            message: "leader is 3 — élu", result: rng.bytes(100)),
                ClientReply(id: RequestID(client: 0, seq: 0), status: status, leaderId: .max, leaderAddress: "[::1]:1",
                            message: String(repeating: "m", count: 1000), result: rng.bytes(70_000)),
            ]
            for r in replies {
                let bytes = r.encoded()
                let back = try ClientReply(decoding: bytes)
                #expect(back == r)
                #expect(back.encoded() == bytes)
            }
        }
    }

    @Test func damagedRepliesAreRefusedOrCanonical() throws {
        let r = ClientReply(id: RequestID(client: 5, seq: 6), status: .notLeader, leaderId: 2, leaderAddress: "h:1", message: "go", result: [1, 2])
        let bytes = r.encoded()
        for cut in 0..<bytes.count {
            #expect((try? ClientReply(decoding: Array(bytes.prefix(cut)))) == nil, "cut \(cut)")
        }
        for bit in 0..<(bytes.count * 8) {
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            if let d = try? ClientReply(decoding: flipped) {
                #expect(d.encoded() == flipped, "bit \(bit)")
                #expect(d != r, "bit \(bit)")
            }
        }
        var badStatus = bytes
        for unknown in [UInt8(ReplyStatus.allCases.count), 0x7F, 0xFF] {
            badStatus[4 + 16] = unknown
            #expect((try? ClientReply(decoding: badStatus)) == nil, "status \(unknown)")
        }
        #expect((try? ClientReply(decoding: bytes + [0])) == nil)
        #expect((try? ClientReply(decoding: r.encoded().map { $0 }.enumerated().map { $0.offset == 3 ? 2 : $0.element })) == nil)
    }
}
