#if canImport(Glibc)
import Glibc
#endif
import LuigiCore
import LuigiStorage
import Testing

/// Opens the WAL and returns it with every replayed record and its position.
func openWAL(
    _ dir: String, options: WriteAheadLog.Options = .init(), syscalls: any Syscalls = FaultInjectingSyscalls()
) throws(StorageError) -> (WriteAheadLog, [(WALRecord, WALPosition)]) {
    var replayed: [(WALRecord, WALPosition)] = []
    let wal = try WriteAheadLog.open(directory: dir, options: options, syscalls: syscalls) {
        (record, position) throws(StorageError) in replayed.append((record, position))
    }
    return (wal, replayed)
}

/// Replayed records without the two header records each segment starts with.
func bodyRecords(_ replayed: [(WALRecord, WALPosition)]) -> [WALRecord] {
    var firstOffsets: [String: Int] = [:]
    var out: [WALRecord] = []
    for (record, position) in replayed {
        let n = firstOffsets[position.path, default: 0]
        firstOffsets[position.path] = n + 1
        if n >= 2 { out.append(record) }
    }
    return out
}

func expectCorrupt(_ error: StorageError?, path: String? = nil, offset: Int? = nil, _ comment: Comment? = nil) {
    guard case .corrupt(let p, let o, _) = error else {
        Issue.record("expected .corrupt, got \(String(describing: error)) \(comment?.rawValue ?? "")")
        return
    }
    if let path { #expect(p == path, comment) }
    if let offset { #expect(o == offset, comment) }
}

/// The error opening the WAL in `dir` fails with (nil if it opens).
func walOpenError(_ dir: String, options: WriteAheadLog.Options = .init()) -> StorageError? {
    do {
        let (wal, _) = try openWAL(dir, options: options)
        wal.close()
        return nil
    } catch {
        return error
    }
}

@Suite struct WriteAheadLogTests {
    let sample: [WALRecord] = [
        .entries(makeEntries(1...3, term: 1)),
        .hardState(HardState(term: 1, vote: 2, commit: 3)),
        .entries([RaftEntry(term: 2, index: 4, kind: .confChange, data: ConfChange(.addVoter, node: 4).encoded())]),
        .snapshot(SnapshotMarker(index: 2, term: 1, replacesLog: false)),
        .snapshot(SnapshotMarker(index: 9, term: 3, replacesLog: true)),
        .entries(makeEntries(10...10, term: 3, size: 0)),
    ]

    @Test func everyRecordTypeRoundTripsAcrossReopen() throws {
        try withTempDir { dir in
            let (wal, fresh) = try openWAL(dir)
            #expect(bodyRecords(fresh).isEmpty)
            try wal.append(sample)
            try wal.sync()
            wal.close()
            let (reopened, replayed) = try openWAL(dir)
            #expect(bodyRecords(replayed) == sample)
            #expect(replayed.map(\.1.seq) == Array(0..<UInt64(sample.count + 2)))
            #expect(reopened.recovery.truncatedBytes == 0)
            #expect(reopened.nextSeq == UInt64(sample.count + 2))
            // The header restates the latest hard state and snapshot position.
            #expect(replayed[0].0 == .hardState(HardState()))
            #expect(replayed[1].0 == .snapshot(SnapshotMarker(index: 0, term: 0, replacesLog: false)))
        }
    }

    /// A batch larger than the record limit is split; replaying the pieces
    /// gives back the same entries.
    @Test func largeBatchesAreSplitIntoSeveralRecords() throws {
        try withTempDir { dir in
            let (wal, _) = try openWAL(dir, options: .init(maxRecordSize: 1000))
            let batch = makeEntries(1...50, term: 1, size: 100)
            try wal.append(.entries(batch))
            try wal.sync()
            wal.close()
            let body = bodyRecords(try openWAL(dir).1)
            #expect(body.count > 5)
            #expect(body.flatMap { if case .entries(let e) = $0 { return e } else { return [] } } == batch)
        }
    }

    /// Group commit: many appends, one sync, exactly one fdatasync; a sync
    /// with nothing new written costs none.
    @Test func manyAppendsAndOneSyncCostExactlyOneFdatasync() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls()
            let (wal, _) = try openWAL(dir, syscalls: sys)
            sys.resetCounts()
            for i in 1...100 { try wal.append(.entries(makeEntries(UInt64(i)...UInt64(i), term: 1))) }
            #expect(sys.count(.fdatasync) == 0)
            try wal.sync()
            #expect(sys.count(.fdatasync) == 1)
            #expect(sys.count(.pwrite) == 100)
            try wal.sync()
            #expect(sys.count(.fdatasync) == 1)
            #expect(sys.count(.fsync) == 0)
        }
    }

    /// Segments roll near the configured size, are named by their first
    /// record's number, start with the header, and replay in order.
    @Test func segmentsRollAtTheConfiguredSizeAndReplayInOrder() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls()
            let (wal, _) = try openWAL(dir, options: .init(segmentSize: 600), syscalls: sys)
            var written: [WALRecord] = []
            for i in 1...120 {
                let record = WALRecord.entries(makeEntries(UInt64(i)...UInt64(i), term: 1, size: 20))
                written.append(record)
                try wal.append(record)
                if i % 10 == 0 { try wal.sync() }
            }
            try wal.sync()
            let files = segmentFiles(dir)
            #expect(files.count >= 5)
            #expect(files == wal.segmentPaths)
            // Each roll synced the full segment and the directory.
            #expect(sys.count(.fsync) == files.count)
            for file in files.dropLast() { #expect(try readBytes(file).count <= 600) }
            wal.close()
            let (_, replayed) = try openWAL(dir)
            #expect(bodyRecords(replayed) == written)
            for (i, file) in files.enumerated() {
                let first = replayed.first { $0.1.path == file }!
                #expect(first.1.offset == 0)
                #expect(WriteAheadLog.parseSegmentName(String(file.split(separator: "/").last!)) == first.1.seq)
                if i > 0 { #expect(first.0 == .hardState(HardState())) }
            }
        }
    }

    /// release(upTo:) removes exactly the oldest segments whose entries are
    /// all at or below the index, never the active one; what remains replays.
    @Test func releaseRemovesOnlySegmentsCoveredByTheIndex() throws {
        try withTempDir { dir in
            let (wal, _) = try openWAL(dir, options: .init(segmentSize: 500))
            for i in 1...100 { try wal.append(.entries(makeEntries(UInt64(i)...UInt64(i), term: 1, size: 20))) }
            try wal.append(.hardState(HardState(term: 1, vote: 1, commit: 100)))
            try wal.sync()
            let before = wal.segmentPaths
            let (_, replayed) = try openWAL(dir)
            var maxIndex: [String: UInt64] = [:]
            for (record, position) in replayed {
                if case .entries(let e) = record { maxIndex[position.path] = max(maxIndex[position.path] ?? 0, e.last!.index) }
            }
            let removed = try wal.release(upTo: 50)
            #expect(!removed.isEmpty)
            #expect(removed == Array(before.prefix(removed.count)))
            for path in removed { #expect(maxIndex[path]! <= 50) }
            #expect(maxIndex[before[removed.count]]! > 50)
            #expect(segmentFiles(dir) == Array(before.dropFirst(removed.count)))
            #expect(try wal.release(upTo: 1_000_000).count == before.count - removed.count - 1)
            #expect(segmentFiles(dir) == [before.last!])
            wal.close()
            // The survivor's header carries the hard state forward.
            let (_, after) = try openWAL(dir)
            #expect(after.contains { $0.0 == .hardState(HardState(term: 1, vote: 1, commit: 100)) })
        }
    }

    /// The last record torn at every byte — cut short, or with any one byte
    /// garbled — is truncated on open; everything before it is intact and the
    /// log keeps working.
    @Test func tornLastRecordIsTruncatedAtEveryByteOffset() throws {
        try withTempDir { dir in
            let (wal, _) = try openWAL(dir)
            try wal.append(sample)
            try wal.sync()
            let path = wal.segmentPaths[0]
            let goodLength = try readBytes(path).count
            let last = WALRecord.entries(makeEntries(11...12, term: 3, size: 5))
            try wal.append(last)
            try wal.sync()
            wal.close()
            let full = try readBytes(path)
            #expect(full.count > goodLength)
            for cut in goodLength..<full.count {
                for damage in ["cut", "flip"] {
                    var bytes = Array(full[..<cut])
                    if damage == "flip" {
                        bytes = full
                        bytes[cut] ^= 0x5A
                    }
                    try writeBytes(path, bytes)
                    let (reopened, replayed) = try openWAL(dir)
                    #expect(bodyRecords(replayed) == sample, "\(damage) at \(cut)")
                    #expect(reopened.recovery.truncatedBytes == bytes.count - goodLength, "\(damage) at \(cut)")
                    #expect(try readBytes(path).count == goodLength, "\(damage) at \(cut)")
                    try reopened.append(last)
                    try reopened.sync()
                    reopened.close()
                    #expect(bodyRecords(try openWAL(dir).1) == sample + [last], "\(damage) at \(cut)")
                }
            }
        }
    }

    /// A damaged record with valid records after it is corruption, reported
    /// with its offset, never skipped — whichever byte of it is damaged.
    @Test func damageBeforeTheTailIsCorruptionAtItsOffset() throws {
        try withTempDir { dir in
            let (wal, _) = try openWAL(dir)
            try wal.append(sample)
            try wal.sync()
            wal.close()
            let (_, replayed) = try openWAL(dir)
            let path = replayed[0].1.path
            let full = try readBytes(path)
            // Damage each byte of the third body record (sample[2]).
            let start = replayed[4].1.offset
            let end = replayed[5].1.offset
            for i in start..<end {
                var bytes = full
                bytes[i] ^= 0xFF
                try writeBytes(path, bytes)
                expectCorrupt(walOpenError(dir), path: path, offset: start, "byte \(i)")
                #expect(try readBytes(path) == bytes, "open must not repair corruption")
            }
        }
    }

    /// In a segment that is not the last, even a damaged or cut final record
    /// is corruption: a rolled segment was synced whole.
    @Test func damageInAnEarlierSegmentIsCorruptionEvenAtItsEnd() throws {
        try withTempDir { dir in
            let (wal, _) = try openWAL(dir, options: .init(segmentSize: 300))
            for i in 1...40 { try wal.append(.entries(makeEntries(UInt64(i)...UInt64(i), term: 1, size: 20))) }
            try wal.sync()
            wal.close()
            let files = segmentFiles(dir)
            #expect(files.count >= 3)
            let first = try readBytes(files[0])
            try writeBytes(files[0], Array(first.dropLast(3)))
            expectCorrupt(walOpenError(dir), path: files[0])
            var flipped = first
            flipped[flipped.count - 1] ^= 1
            try writeBytes(files[0], flipped)
            expectCorrupt(walOpenError(dir), path: files[0])
            // A missing middle segment breaks the record numbering.
            try writeBytes(files[0], first)
            _ = posix.unlink(files[1])
            expectCorrupt(walOpenError(dir), path: files[2], offset: 0)
        }
    }

    /// Writes `sample` to a new WAL in `dir`, closes it; returns the segment.
    func writeSample(_ dir: String) throws -> String {
        let (wal, _) = try openWAL(dir)
        try wal.append(sample)
        try wal.sync()
        wal.close()
        return segmentFiles(dir)[0]
    }

    /// A record whose checksum is right but whose contents do not decode was
    /// written that way: corruption even at the tail, never truncated.
    @Test func checksumValidButUndecodableTailRecordIsCorruption() throws {
        try withTempDir { dir in
            let path = try writeSample(dir)
            var bytes = try readBytes(path)
            let offset = bytes.count
            // type 9 does not exist; frame it correctly.
            let body: [UInt8] = [9, 1, 2, 3]
            let crc = CRC32C.checksum(body)
            bytes += [4, 0, 0, 0] + (0..<4).map { UInt8(truncatingIfNeeded: crc >> UInt32(8 * $0)) } + body
            try writeBytes(path, bytes)
            expectCorrupt(walOpenError(dir), path: path, offset: offset)
        }
    }

    /// A segment whose first records are not its header was not written by
    /// this WAL: corruption. (Found by fuzzing: such a short last segment was
    /// taken for a torn header and rewritten, dropping the entries it had
    /// replayed, so the next reopen found a hole.)
    @Test func aSegmentThatDoesNotStartWithItsHeaderIsCorruption() throws {
        try withTempDir { dir in
            let path = try writeSample(dir)
            let bytes = try readBytes(path)
            // Drop the two header records: the segment starts with entries.
            var at = 0
            for _ in 0..<2 {
                let length = Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
                at += 8 + length
            }
            try writeBytes(path, Array(bytes[at...]))
            expectCorrupt(walOpenError(dir), path: path, offset: 0)
        }
    }

    /// A crash right after a roll leaves the new segment with a torn header;
    /// open rewrites the header and the log continues.
    @Test func segmentWithATornHeaderIsRewrittenOnOpen() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls()
            let options = WriteAheadLog.Options(segmentSize: 300)
            let (wal, _) = try openWAL(dir, options: options, syscalls: sys)
            let state = HardState(term: 1, vote: 1, commit: 1)
            var written: [WALRecord] = [.hardState(state)]
            try wal.append(.hardState(state))
            // Append and sync until an append rolls to a new segment: that
            // record and the new header are not synced when the crash comes.
            var i: UInt64 = 0
            while true {
                i += 1
                let r = WALRecord.entries(makeEntries(i...i, term: 1, size: 40))
                let segments = wal.segmentPaths.count
                try wal.append(r)
                if wal.segmentPaths.count > segments { break }
                written.append(r)
                try wal.sync()
            }
            let segments = wal.segmentPaths
            sys.crash()
            #expect(try readBytes(segments.last!).isEmpty)
            let (reopened, replayed) = try openWAL(dir, options: options, syscalls: sys)
            #expect(reopened.segmentPaths == segments)
            #expect(reopened.recovery.rewroteHeader)
            #expect(bodyRecords(replayed) == written)
            let again = WALRecord.entries(makeEntries(i...i, term: 1, size: 40))
            try reopened.append(again)
            try reopened.sync()
            reopened.close()
            let (_, after) = try openWAL(dir)
            #expect(bodyRecords(after) == written + [again])
            let newest = after.filter { $0.1.path == segments.last! }
            #expect(newest.first?.0 == .hardState(state))
        }
    }
}
