import Foundation
import LuigiCore
import Testing

/// The Raft message encoding ("LRM" v2, with the group id) is frozen by
/// golden vectors in Tests/golden/raft_message_v2.hex, which the C tests
/// (Tests/c/extreme_step.c) and the Python tests check as well. A change of
/// the encoding must come with a new version and new vectors.
@Suite struct RaftGoldenTests {
    static let file = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("golden/raft_message_v2.hex")

    static var vectors: [(String, RaftMessage)] {
        var heartbeat = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 3)
        heartbeat.commit = 5
        var append = RaftMessage(kind: .append, to: 2, from: 1, term: 4)
        append.group = 7
        append.logTerm = 3
        append.index = 10
        append.commit = 9
        append.entries = [RaftEntry(term: 4, index: 11, kind: .normal, data: Array("abc".utf8))]
        var reject = RaftMessage(kind: .appendResponse, to: 1, from: 3, term: 4)
        reject.group = 1
        reject.index = 10
        reject.reject = true
        reject.rejectHint = 8
        reject.logTerm = 2
        var snapshot = RaftMessage(kind: .snapshot, to: 3, from: 1, term: 5)
        snapshot.group = 2
        snapshot.snapshot = Snapshot(
            metadata: SnapshotMetadata(index: 20, term: 4, conf: ConfState(voters: [1, 2, 3], learners: [4])),
            data: Array("s".utf8))
        var read = RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 300)
        read.group = 1 << 40
        read.context = Array("ctx".utf8)
        return [("heartbeat", heartbeat), ("append", append), ("reject", reject), ("snapshot", snapshot), ("read", read)]
    }

    static func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func encodingsMatchTheGoldenVectors() throws {
        if ProcessInfo.processInfo.environment["LUIGI_WRITE_GOLDEN"] == "1" {
            let text = Self.vectors.map { "\($0.0) \(Self.hex($0.1.encoded()))" }.joined(separator: "\n") + "\n"
            try text.write(to: Self.file, atomically: true, encoding: .utf8)
        }
        let lines = try String(contentsOf: Self.file, encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: " ").map(String.init)
        }
        let golden = Dictionary(uniqueKeysWithValues: lines.map { ($0[0], $0[1]) })
        #expect(golden.count == Self.vectors.count)
        for (name, message) in Self.vectors {
            let expected = try #require(golden[name], "no golden vector named \(name)")
            #expect(Self.hex(message.encoded()) == expected, "\(name) encodes differently")
            let bytes = stride(from: 0, to: expected.count, by: 2).map {
                UInt8(expected[expected.index(expected.startIndex, offsetBy: $0)...].prefix(2), radix: 16)!
            }
            #expect(try RaftMessage(decoding: bytes) == message, "\(name) decodes differently")
        }
    }
}
