import Foundation
import LuigiCore
import Testing

/// The watermark encodings ("LWM" v1 messages, "LWR" v1 log records) are
/// frozen by golden vectors in Tests/golden/watermark_v1.hex, which the C
/// tests (examples/c/bad_input.c) and the Python tests check as well: each
/// shard-bound message is valid for shard 1 of 2, with 2 streams and
/// coordinator 9. A change of an encoding needs a new version and vectors.
@Suite struct WatermarkGoldenTests {
    static let file = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("golden/watermark_v1.hex")

    static var txn: Txn {
        Txn(id: TxnId(coordinator: 9, worker: 1, seq: 42), ts: 1_000_000, mayAbort: true, parts: [
            ShardOps(shard: 0, ops: [.check("a", atLeast: 5), .add("a", -5)]),
            ShardOps(shard: 1, ops: [.add("b", 5), .read("b"), .write("c", -1)]),
        ])
    }

    static var messages: [(String, WatermarkEnvelope)] {
        let t = txn
        return [
            ("message.submit", WatermarkEnvelope(to: 1, .submit(t))),
            ("message.propose", WatermarkEnvelope(to: 1, .propose(t, from: 0, term: 3, ts: 1_000_007, ask: true))),
            ("message.vote", WatermarkEnvelope(to: 1, .vote(id: t.id, shards: [0, 1], from: 0, term: 3, commit: true, ask: false))),
            ("message.retire", WatermarkEnvelope(to: 1, .retire(coordinator: 9, worker: 1, below: 40))),
            ("message.recover", WatermarkEnvelope(to: 1, .recover(from: 0, term: 4))),
            ("message.recovered", WatermarkEnvelope(to: 1, .recovered(from: 0, term: 4, txns: [
                RecoveredTxn(txn: t, proposals: [ShardStamp(shard: 0, ts: 1_000_007)]),
            ]))),
            ("message.reply", WatermarkEnvelope(to: 9, .reply(TxnReply(
                id: t.id, shard: 1, term: 2, ts: 1_000_007, outcome: .committed, decided: false,
                reads: [ReadResult(key: "b", value: 5), ReadResult(key: "z", value: nil)],
                receivedAt: 999_000, executedAt: 1_000_010, marks: [1_000_000, 1_000_020])))),
            ("message.marks", WatermarkEnvelope(to: 9, .marks(shard: 1, term: 2, marks: [7, 1 << 40]))),
        ]
    }

    static var records: [(String, ShardRecord)] {
        let e = Execution(txn: txn, ts: 1_000_007, proposals: [ShardStamp(shard: 0, ts: 1_000_007), ShardStamp(shard: 1, ts: 1_000_001)],
                          vote: true, pending: true, reads: [ReadResult(key: "b", value: 5)],
                          writes: [WriteResult(key: "b", value: 5), WriteResult(key: "c", value: -1)], receivedAt: 999_000)
        return [
            ("record.exec", .exec(e)),
            ("record.outcome", .outcome(txn.id, committed: true)),
            ("record.marks", .marks([5, 6])),
            ("record.retire", .retire(coordinator: 9, worker: 1, below: 40)),
        ]
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    static func unhex(_ s: String) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).map {
            UInt8(s[s.index(s.startIndex, offsetBy: $0)...].prefix(2), radix: 16) ?? 0
        }
    }

    @Test func encodingsMatchTheGoldenVectors() throws {
        let encoded = Self.messages.map { ($0.0, $0.1.encoded()) } + Self.records.map { ($0.0, $0.1.encoded()) }
        if ProcessInfo.processInfo.environment["LUIGI_WRITE_GOLDEN"] == "1" {
            try (encoded.map { "\($0.0) \(Self.hex($0.1))" }.joined(separator: "\n") + "\n")
                .write(to: Self.file, atomically: true, encoding: .utf8)
        }
        let lines = try String(contentsOf: Self.file, encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: " ").map(String.init)
        }
        let golden = Dictionary(uniqueKeysWithValues: lines.map { ($0[0], $0[1]) })
        #expect(golden.count == encoded.count)
        for (name, bytes) in encoded {
            let expected = try #require(golden[name], "no golden vector named \(name)")
            #expect(Self.hex(bytes) == expected, "\(name) encodes differently")
        }
        for (name, m) in Self.messages {
            #expect(try WatermarkEnvelope(decoding: Self.unhex(golden[name] ?? "")) == m, "\(name) decodes differently")
        }
        for (name, r) in Self.records {
            #expect(try ShardRecord(decoding: Self.unhex(golden[name] ?? "")) == r, "\(name) decodes differently")
        }
    }

    /// Every single-bit flip and every truncation of every vector is refused.
    @Test func corruptedVectorsAreRefused() throws {
        for (_, m) in Self.messages {
            let bytes = m.encoded()
            for i in 0..<bytes.count * 8 {
                var b = bytes
                b[i / 8] ^= 1 << UInt8(i % 8)
                #expect(throws: LuigiError.self) { try WatermarkEnvelope(decoding: b) }
            }
            for n in 0..<bytes.count { #expect(throws: LuigiError.self) { try WatermarkEnvelope(decoding: Array(bytes.prefix(n))) } }
        }
        for (_, r) in Self.records {
            let bytes = r.encoded()
            for n in 0..<bytes.count { #expect(throws: LuigiError.self) { try ShardRecord(decoding: Array(bytes.prefix(n))) } }
        }
    }
}
