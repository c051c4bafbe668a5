import LuigiCore

/// The coverage-guided fuzz targets of Luigi, one entry per target.
///
/// Each target takes the raw fuzz input and feeds it to one parser or state
/// machine. Checksummed encodings are RE-SEALED first: the input is the body
/// after the 4 magic bytes, and the target prepends the right magic and
/// appends the right CRC-32C, so mutations reach the parser instead of dying
/// at the checksum. A thrown error is a pass; a trap (or a broken invariant,
/// reported with `fuzzCheck`) is a bug.
///
/// Run by `fuzz/` (libFuzzer, `make fuzz`) and replayed over `fuzz/corpus`
/// and `fuzz/crashes` by `Tests/LuigiFuzzReplayTests` in the normal build.
public enum FuzzTargets {
    public static var all: [(name: String, run: ([UInt8]) -> Void)] {
        [
            ("update", fuzzUpdate),
            ("update_list", fuzzUpdateList),
            ("clock", fuzzClock),
            ("raft_message", fuzzRaftMessage),
            ("snapshot", fuzzSnapshot),
            ("wal", fuzzWAL),
            ("raft_step_follower", { fuzzRaftStep(.follower, $0) }),
            ("raft_step_candidate", { fuzzRaftStep(.candidate, $0) }),
            ("raft_step_leader", { fuzzRaftStep(.leader, $0) }),
            ("watermark_message", fuzzWatermarkMessage),
            ("shard_record", fuzzShardRecord),
            ("shard_snapshot", fuzzShardSnapshot),
            ("shard_step", fuzzShardStep),
            ("coordinator_step", fuzzCoordinatorStep),
            ("table_command", fuzzTableCommand),
            ("table_snapshot", fuzzTableSnapshot),
            ("frame_stream", fuzzFrameStream),
            ("client_request", fuzzClientRequest),
            ("handshake_hello", fuzzHandshakeHello),
            ("session_snapshot", fuzzSessionSnapshot),
            ("sync_message", fuzzSyncMessage),
            ("wire_value", fuzzWireValue),
            ("frame_chunks", fuzzFrameChunks),
        ]
    }

    public static var names: [String] { all.map(\.name) }

    public static func named(_ name: String) -> (([UInt8]) -> Void)? {
        all.first { $0.name == name }?.run
    }
}

/// The 4-byte headers (3 letters + format version) of the sealed encodings,
/// taken from what the public encoders write (the codecs keep their
/// constants internal), so a format version bump reaches the targets.
public enum FuzzMagic {
    public static let clock = header(VectorClock([1: 1]).encoded())
    public static let update: [UInt8] = {
        do {
            return header(try Update(origin: 1, seq: 1, clock: VectorClock([1: 1]), ops: []).encoded())
        } catch {
            fatalError("fuzz: cannot build an update: \(error)")
        }
    }()
    public static let updateBatch = header(Update.encodeBatch([]))
    public static let raftMessage = header(RaftMessage(kind: .heartbeat, to: 1, from: 2, term: 1).encoded())
    /// From the snapshot file `DurableRaftStorage` writes when it creates a directory.
    public static var snapshotFile: [UInt8] { header(FuzzDisk.bootstrapSnapshot.bytes) }
    /// "LTL" v1 (a table-log command; unsealed) and "LTS" v1 (a table-log snapshot).
    public static let tableCommand = header(TableCommand.createTable(name: "t", schema: [], retain: 0).encoded())
    public static let tableSnapshot = header(TableLogMachine().snapshot())

    static func header(_ encoded: [UInt8]) -> [UInt8] { Array(encoded.prefix(4)) }
}

/// `magic | body | CRC-32C(magic | body)`: the frame of `ByteWriter.sealWithChecksum`
/// and `ByteReader.sealed`.
public func fuzzSeal<C: Collection>(_ magic: [UInt8], _ body: C) -> [UInt8] where C.Element == UInt8 {
    var w = ByteWriter(capacity: magic.count + body.count + 4)
    w.magic(magic)
    w.raw(body)
    w.sealWithChecksum()
    return w.bytes
}

/// The fuzz input form of a sealed encoding: the body between magic and CRC.
public func fuzzUnseal(_ sealed: [UInt8]) -> [UInt8] {
    precondition(sealed.count >= 8, "not a sealed encoding")
    return Array(sealed[4..<(sealed.count - 4)])
}

/// A broken invariant: traps with a message (kept in -O builds, unlike
/// `precondition`'s), so libFuzzer records the input as a crash.
@inline(never)
func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant: \(message())") }
}

/// Splitting one fuzz input into several records: a 4-byte separator
/// (0xF5 never occurs in UTF-8, so strings do not produce it by accident).
/// `fuzz/chunks.dict` hands it to libFuzzer as a token.
public enum FuzzChunks {
    public static let separator: [UInt8] = [0xF5, 0x3C, 0xA9, 0x17]

    public static func split(_ data: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        var chunks: [ArraySlice<UInt8>] = []
        var start = data.startIndex
        var i = data.startIndex
        while i + separator.count <= data.endIndex {
            if data[i] == separator[0] && data[i + 1] == separator[1] && data[i + 2] == separator[2]
                && data[i + 3] == separator[3]
            {
                chunks.append(data[start..<i])
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        chunks.append(data[start..<data.endIndex])
        return chunks
    }

    public static func join(_ chunks: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, c) in chunks.enumerated() {
            if i > 0 { out += separator }
            out += c
        }
        return out
    }
}

func u32le(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    var v: UInt32 = 0
    for i in 0..<4 { v |= UInt32(bytes[at + i]) << UInt32(8 * i) }
    return v
}

func putU32le(_ bytes: inout [UInt8], _ value: UInt32, at: Int) {
    for i in 0..<4 { bytes[at + i] = UInt8(truncatingIfNeeded: value >> UInt32(8 * i)) }
}
