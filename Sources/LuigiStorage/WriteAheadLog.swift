import LuigiBase
import LuigiRaft

/// Where the log stood when a snapshot was taken.
public struct SnapshotMarker: Equatable, Sendable {
    public var index: UInt64
    public var term: UInt64
    /// True for a snapshot that replaced the whole log (received from a
    /// leader); false for local compaction, which keeps the later entries.
    public var replacesLog: Bool

    public init(index: UInt64, term: UInt64, replacesLog: Bool) {
        self.index = index
        self.term = term
        self.replacesLog = replacesLog
    }
}

/// One WAL record.
public enum WALRecord: Equatable, Sendable {
    /// Entries appended (replay: drop any suffix they overwrite, then append).
    case entries([RaftEntry])
    case hardState(HardState)
    case snapshot(SnapshotMarker)
}

/// Where a replayed record lies: its segment file, byte offset and sequence
/// number (records are numbered from 0 across all segments).
public struct WALPosition: Equatable, Sendable {
    public var path: String
    public var offset: Int
    public var seq: UInt64
}

/// A segmented write-ahead log.
///
/// Files `wal-<16 hex seq>.log`, where seq is the number of the segment's
/// first record. A record is framed as
/// `length u32 LE | CRC-32C u32 LE | type u8 | payload`, with `length`
/// counting type + payload and the CRC covering the same bytes. Types:
/// 1 entries (`count` then `RaftEntry` encodings), 2 hard state, 3 snapshot
/// marker (`kind u8` 0 compact / 1 replaces the log, `index`, `term`).
/// Every segment starts with two header records restating the latest hard
/// state and snapshot marker, so a segment is self-contained once the ones
/// before it are released.
///
/// Durability: `append` only writes; `sync` is one `fdatasync` of the active
/// segment (group commit), and nothing should be acknowledged before it
/// returns. Rolling to a new segment first `fdatasync`s the full one, and
/// creating a segment `fsync`s the directory. Any failed write or sync
/// poisons the instance (`StorageError.failed`): the kernel may have dropped
/// the dirty pages, so only a reopen — replaying what is really on disk — is
/// trustworthy.
///
/// Recovery: every segment is replayed in order, and consecutive segments
/// must continue each other's record numbering. In the last segment, an
/// incomplete or checksum-failing record with no valid record after it is a
/// torn tail: it is truncated away (and the truncation synced). Anything else
/// that fails framing or checksum — in the middle of the last segment, or
/// anywhere in an earlier one — is `StorageError.corrupt(path, offset)`.
///
/// Known limit: "no valid record follows" is judged by scanning for any byte
/// position that frames a record with a matching CRC, so entry data that
/// itself contains a complete WAL frame, torn right after it, reads as
/// corruption (an error, never a silent skip).
///
/// One thread at a time.
public final class WriteAheadLog {
    public struct Options: Sendable {
        /// A segment is rolled once it would grow past this.
        public var segmentSize: Int
        /// Entries batches are split into records of about this payload size.
        public var maxRecordSize: Int

        public init(segmentSize: Int = 64 << 20, maxRecordSize: Int = 8 << 20) {
            self.segmentSize = segmentSize
            self.maxRecordSize = maxRecordSize
        }
    }

    /// What opening found and repaired.
    public struct Recovery: Equatable, Sendable {
        public var segments = 0
        public var records = 0
        /// Bytes of a torn tail cut from the last segment.
        public var truncatedBytes = 0
        public var truncatedSegment: String? = nil
        /// The last segment lost part of its header to a crash and was rewritten.
        public var rewroteHeader = false
    }

    static let frameHeaderSize = 8
    /// Largest `length` a frame may claim; larger reads as garbage.
    static let maxFrameLength = 1 << 30
    static let headerRecords = 2

    private struct Segment {
        var firstSeq: UInt64
        var path: String
        var records: Int
        var size: Int
        /// Highest entry index written here that may still be live.
        var maxEntryIndex: UInt64
    }

    public let directory: String
    public let options: Options
    public private(set) var recovery = Recovery()
    private let io: FileIO
    private var segments: [Segment] = []
    private var fd: Int32 = -1
    private var dirty = false
    private var failure: StorageError?
    private var closed = false
    private var lastHardState = HardState()
    /// Reused for encoding appends (keeps its capacity between calls).
    private var buffer = ByteWriter()
    private var lastMarker = SnapshotMarker(index: 0, term: 0, replacesLog: false)
    /// Sequence number of the next record.
    public private(set) var nextSeq: UInt64 = 0

    private init(directory: String, options: Options, io: FileIO) {
        self.directory = directory
        self.options = options
        self.io = io
    }

    deinit {
        if fd >= 0 { io.closeQuietly(fd) }
    }

    /// Opens (creating if needed) the log in `directory`, calling `replay`
    /// with every record in order, and repairs a torn tail.
    public static func open(
        directory: String,
        options: Options = Options(),
        syscalls: any Syscalls = PosixSyscalls(),
        replay: (WALRecord, WALPosition) throws(StorageError) -> Void = { _, _ in }
    ) throws(StorageError) -> WriteAheadLog {
        let wal = WriteAheadLog(directory: directory, options: options, io: FileIO(syscalls))
        try wal.recover(replay)
        return wal
    }

    public static func segmentName(_ seq: UInt64) -> String { "wal-\(hex16(seq)).log" }

    public static func parseSegmentName(_ name: String) -> UInt64? {
        guard name.hasPrefix("wal-"), name.hasSuffix(".log"), name.utf8.count == 24 else { return nil }
        return parseHex16(name.dropFirst(4).dropLast(4))
    }

    /// Segment files, oldest first.
    public var segmentPaths: [String] { segments.map(\.path) }
    /// Whether anything was written since the last successful sync.
    public var hasUnsyncedWrites: Bool { dirty }

    // MARK: - Writing

    /// Writes records (not yet durable: see `sync`). Entries batches larger
    /// than `maxRecordSize` become several records.
    public func append(_ records: [WALRecord]) throws(StorageError) {
        try checkWritable()
        // Every frame is built in place in one reused buffer (so nothing is
        // written if any record is too large), then written in as few pwrites
        // as the segment boundaries allow.
        buffer.removeAll()
        var frames: [(end: Int, summary: RecordSummary)] = []
        for record in records { try Self.encode(record, into: &buffer, frames: &frames, maxRecordSize: options.maxRecordSize) }
        do {
            var start = 0  // first byte of `buffer` not yet written
            var frameStart = 0
            for frame in frames {
                let active = segments[segments.count - 1]
                if active.size + (frame.end - start) > options.segmentSize && active.records > Self.headerRecords {
                    try flush(buffer.bytes[start..<frameStart])
                    start = frameStart
                    try roll()
                }
                note(frame.summary)
                frameStart = frame.end
            }
            try flush(buffer.bytes[start...])
        } catch {
            throw poison(error)
        }
    }

    public func append(_ record: WALRecord) throws(StorageError) { try append([record]) }

    /// Makes everything appended so far durable: one fdatasync (none if
    /// nothing was written since the last sync).
    public func sync() throws(StorageError) {
        try checkWritable()
        guard dirty else { return }
        do {
            try io.syncData(fd, segments[segments.count - 1].path)
            dirty = false
        } catch {
            throw poison(error)
        }
    }

    /// Removes the oldest segments whose entries all have index <= `index`
    /// (call once a durable snapshot covers `index`). The active segment is
    /// never removed, and is synced first if it would become the oldest. Each
    /// removal is made durable before the next, so the remaining segments
    /// always form a contiguous chain. Returns the removed paths.
    @discardableResult
    public func release(upTo index: UInt64) throws(StorageError) -> [String] {
        try checkWritable()
        var removed: [String] = []
        while segments.count > 1, segments[0].maxEntryIndex <= index, segments[1].records >= Self.headerRecords {
            // The next segment's header takes over the hard state and snapshot
            // position from the one removed: it must be on disk first.
            if segments.count == 2 && dirty { try sync() }
            do {
                try io.unlink(segments[0].path)
                try io.syncDirectory(directory)
            } catch {
                throw poison(error)
            }
            removed.append(segments.removeFirst().path)
        }
        return removed
    }

    /// Closes the active segment. Unsynced writes stay wherever the kernel has
    /// them; call `sync` first to keep them.
    public func close() {
        if fd >= 0 { io.closeQuietly(fd) }
        fd = -1
        closed = true
    }

    private func checkWritable() throws(StorageError) {
        if closed { throw .closed(path: directory) }
        if let failure { throw .failed(failure) }
    }

    private func poison(_ error: StorageError) -> StorageError {
        if case .failed = error { return error }
        if failure == nil { failure = error }
        return error
    }

    private func flush(_ pending: ArraySlice<UInt8>) throws(StorageError) {
        guard !pending.isEmpty else { return }
        let i = segments.count - 1
        try io.writeAll(fd, segments[i].path, pending, at: segments[i].size)
        segments[i].size += pending.count
        dirty = true
    }

    private func roll() throws(StorageError) {
        let old = segments[segments.count - 1].path
        if dirty {
            try io.syncData(fd, old)
            dirty = false
        }
        let closing = fd
        fd = -1
        try io.close(closing, old)
        try startSegment()
    }

    /// Creates segment `nextSeq`, writes its header, and makes its directory
    /// entry durable.
    private func startSegment() throws(StorageError) {
        let path = joinPath(directory, Self.segmentName(nextSeq))
        fd = try io.open(path, .createNew)
        segments.append(Segment(firstSeq: nextSeq, path: path, records: 0, size: 0, maxEntryIndex: 0))
        try writeHeader()
        try io.syncDirectory(directory)
    }

    private func writeHeader() throws(StorageError) {
        var header = ByteWriter()
        var frames: [(end: Int, summary: RecordSummary)] = []
        let marker = SnapshotMarker(index: lastMarker.index, term: lastMarker.term, replacesLog: false)
        for record in [WALRecord.hardState(lastHardState), .snapshot(marker)] {
            try Self.encode(record, into: &header, frames: &frames, maxRecordSize: options.maxRecordSize)
        }
        for frame in frames { note(frame.summary) }
        try flush(header.bytes[...])
    }

    /// What `note` needs to know of one record.
    private enum RecordSummary {
        case entries(maxIndex: UInt64)
        case hardState(HardState)
        case snapshot(SnapshotMarker)
    }

    private func note(_ record: WALRecord) {
        switch record {
        case .entries(let entries): note(.entries(maxIndex: entries.reduce(0) { max($0, $1.index) }))
        case .hardState(let state): note(RecordSummary.hardState(state))
        case .snapshot(let marker): note(RecordSummary.snapshot(marker))
        }
    }

    /// Book-keeping for one record added to the active segment.
    private func note(_ record: RecordSummary) {
        let i = segments.count - 1
        switch record {
        case .entries(let maxIndex):
            if maxIndex > segments[i].maxEntryIndex { segments[i].maxEntryIndex = maxIndex }
        case .hardState(let state):
            lastHardState = state
        case .snapshot(let marker):
            lastMarker = marker
            // Every entry before a log replacement is dead.
            if marker.replacesLog {
                for j in segments.indices { segments[j].maxEntryIndex = 0 }
            }
        }
        segments[i].records += 1
        nextSeq += 1
    }

    // MARK: - Encoding

    /// Appends the frames of `record` to `w` (an entries batch larger than
    /// `maxRecordSize` becomes several), noting where each ends.
    private static func encode(
        _ record: WALRecord, into w: inout ByteWriter, frames: inout [(end: Int, summary: RecordSummary)],
        maxRecordSize: Int
    ) throws(StorageError) {
        switch record {
        case .entries(let entries):
            // Sized up front, so the buffer grows at most once per append.
            w.reserveCapacity(w.count + entries.reduce(0) { $0 + $1.data.count + 32 } + 16)
            var start = 0
            while start < entries.count {
                var end = start
                var bytes = 0
                while end < entries.count && (end == start || bytes + entries[end].data.count + 32 <= maxRecordSize) {
                    bytes += entries[end].data.count + 32
                    end += 1
                }
                let frameStart = beginFrame(&w, type: 1)
                w.varint(UInt64(end - start))
                var maxIndex: UInt64 = 0
                for e in entries[start..<end] {
                    e.write(to: &w)
                    maxIndex = max(maxIndex, e.index)
                }
                try sealFrame(&w, from: frameStart)
                frames.append((w.count, .entries(maxIndex: maxIndex)))
                start = end
            }
        case .hardState(let state):
            let frameStart = beginFrame(&w, type: 2)
            state.write(to: &w)
            try sealFrame(&w, from: frameStart)
            frames.append((w.count, .hardState(state)))
        case .snapshot(let marker):
            let frameStart = beginFrame(&w, type: 3)
            w.u8(marker.replacesLog ? 1 : 0)
            w.varint(marker.index)
            w.varint(marker.term)
            try sealFrame(&w, from: frameStart)
            frames.append((w.count, .snapshot(marker)))
        }
    }

    /// A segment's first two records are its header: the hard state, then
    /// the snapshot marker. Anything else there is corruption (recovery
    /// would otherwise take a short segment for a torn header and rewrite
    /// it, dropping records it had already replayed).
    static func checkHeader(_ record: WALRecord, at k: Int, path: String, offset: Int) throws(StorageError) {
        switch (k, record) {
        case (0, .hardState), (1, .snapshot), (2..., _): return
        default:
            throw .corrupt(
                path: path, offset: offset,
                reason: "record \(k) of the segment is not its header's \(k == 0 ? "hard state" : "snapshot marker")")
        }
    }

    /// Writes a frame header to fill in later and the type byte; returns
    /// where the frame starts.
    private static func beginFrame(_ w: inout ByteWriter, type: UInt8) -> Int {
        let frameStart = w.count
        w.u32le(0)
        w.u32le(0)
        w.u8(type)
        return frameStart
    }

    /// Fills in the length and CRC-32C (over type + payload) of the frame at `frameStart`.
    private static func sealFrame(_ w: inout ByteWriter, from frameStart: Int) throws(StorageError) {
        let body = frameStart + frameHeaderSize
        let length = w.count - body
        guard length <= maxFrameLength else { throw .recordTooLarge(bytes: length, limit: maxFrameLength) }
        w.setU32le(UInt32(truncatingIfNeeded: length), at: frameStart)
        w.setU32le(w.checksum(from: body), at: frameStart + 4)
    }

    // MARK: - Recovery

    private enum FrameCheck {
        case valid(total: Int)
        case invalid(String)
    }

    private static func u32le(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        for i in 0..<4 { v |= UInt32(bytes[at + i]) << UInt32(8 * i) }
        return v
    }

    private static func checkFrame(_ bytes: [UInt8], at p: Int) -> FrameCheck {
        let remaining = bytes.count - p
        guard remaining >= frameHeaderSize + 1 else { return .invalid("incomplete record header (\(remaining) bytes)") }
        let length = Int(u32le(bytes, p))
        guard length >= 1, length <= maxFrameLength else { return .invalid("impossible record length \(length)") }
        guard length <= remaining - frameHeaderSize else {
            return .invalid("record of \(length) bytes runs past the end of the file")
        }
        let body = p + frameHeaderSize
        guard CRC32C.checksum(bytes[body..<body + length]) == u32le(bytes, p + 4) else {
            return .invalid("checksum mismatch")
        }
        return .valid(total: frameHeaderSize + length)
    }

    /// Whether any byte position after `p` frames a checksum-valid record.
    private static func validFrameExists(_ bytes: [UInt8], after p: Int) -> Bool {
        var q = p + 1
        while q + frameHeaderSize < bytes.count {
            if case .valid = checkFrame(bytes, at: q) { return true }
            q += 1
        }
        return false
    }

    /// Frame offsets and the length of the valid prefix.
    private static func parseFrames(_ bytes: [UInt8], path: String, isLast: Bool) throws(StorageError) -> (frames: [Range<Int>], validLength: Int) {
        var frames: [Range<Int>] = []
        var p = 0
        while p < bytes.count {
            switch checkFrame(bytes, at: p) {
            case .valid(let total):
                frames.append(p..<p + total)
                p += total
            case .invalid(let reason):
                if isLast {
                    if !validFrameExists(bytes, after: p) { return (frames, p) }
                    throw .corrupt(path: path, offset: p, reason: "\(reason), and valid records follow it")
                }
                throw .corrupt(path: path, offset: p, reason: "\(reason) in a segment that is not the last")
            }
        }
        return (frames, p)
    }

    private static func decode(_ bytes: [UInt8], _ frame: Range<Int>, path: String) throws(StorageError) -> WALRecord {
        let type = bytes[frame.lowerBound + frameHeaderSize]
        var r = ByteReader(Array(bytes[(frame.lowerBound + frameHeaderSize + 1)..<frame.upperBound]))
        do {
            switch type {
            case 1:
                let n = try r.count()
                var entries: [RaftEntry] = []
                entries.reserveCapacity(n)
                for _ in 0..<n { entries.append(try RaftEntry.read(from: &r)) }
                try r.expectEnd("entries record")
                return .entries(entries)
            case 2:
                let state = try HardState.read(from: &r)
                try r.expectEnd("hard state record")
                return .hardState(state)
            case 3:
                let kind = try r.u8()
                guard kind <= 1 else { throw LuigiError.decode("unknown snapshot marker kind \(kind)") }
                let marker = SnapshotMarker(index: try r.varint(), term: try r.varint(), replacesLog: kind == 1)
                try r.expectEnd("snapshot marker record")
                return .snapshot(marker)
            default:
                throw LuigiError.decode("unknown record type \(type)")
            }
        } catch {
            throw .corrupt(path: path, offset: frame.lowerBound, reason: "record passes its checksum but does not decode: \(error)")
        }
    }

    private func recover(_ replay: (WALRecord, WALPosition) throws(StorageError) -> Void) throws(StorageError) {
        try io.makeDirectory(directory)
        let found = try io.list(directory)
            .compactMap { name in Self.parseSegmentName(name).map { (seq: $0, name: name) } }
            .sorted { $0.seq < $1.seq }
        recovery.segments = found.count
        var tornLength: Int? = nil
        for (i, segment) in found.enumerated() {
            let path = joinPath(directory, segment.name)
            if i == 0 {
                nextSeq = segment.seq
            } else if segment.seq != nextSeq {
                throw .corrupt(
                    path: path, offset: 0,
                    reason: "segment starts at record \(segment.seq) but the one before ends at \(nextSeq): a segment is missing or overlaps")
            }
            let bytes = try io.readFile(path)
            let isLast = i == found.count - 1
            let (frames, validLength) = try Self.parseFrames(bytes, path: path, isLast: isLast)
            segments.append(Segment(firstSeq: segment.seq, path: path, records: 0, size: validLength, maxEntryIndex: 0))
            for (k, frame) in frames.enumerated() {
                let record = try Self.decode(bytes, frame, path: path)
                try Self.checkHeader(record, at: k, path: path, offset: frame.lowerBound)
                let position = WALPosition(path: path, offset: frame.lowerBound, seq: nextSeq)
                note(record)
                try replay(record, position)
            }
            recovery.records += frames.count
            if validLength < bytes.count {
                tornLength = validLength
                recovery.truncatedBytes = bytes.count - validLength
                recovery.truncatedSegment = path
            }
        }

        guard let last = segments.last else {
            try startSegment()
            try sync()
            return
        }
        // What a previous instance created or renamed here may not be durable
        // yet (its directory fsync may have failed); make it so before
        // building on it.
        try io.syncDirectory(directory)
        fd = try io.open(last.path, .readWrite)
        if let tornLength { try io.truncate(fd, last.path, to: tornLength) }
        // Whatever was replayed is now durable: a previous instance may have
        // written it without a successful sync.
        try io.syncData(fd, last.path)
        if last.records < Self.headerRecords {
            // A crash tore the header of a segment just created: write it again.
            let i = segments.count - 1
            try io.truncate(fd, last.path, to: 0)
            nextSeq = segments[i].firstSeq
            segments[i].records = 0
            segments[i].size = 0
            try writeHeader()
            try sync()
            recovery.rewroteHeader = true
        }
    }
}
