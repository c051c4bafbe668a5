#if canImport(Glibc)
import Glibc
#endif
import LuigiCore
import LuigiStorage

enum FuzzOptions {
    static let walReopenCheck = getenv("LUIGI_FUZZ_WAL_REOPEN").map { String(cString: $0) } != "0"
}

/// The in-memory directory the storage targets open.
enum FuzzDisk {
    static let directory = "/fuzz"

    /// The index-0 snapshot file `DurableRaftStorage` writes when it creates a
    /// directory for voters [1, 2, 3]: it must exist beside any WAL segment.
    static let bootstrapSnapshot: (name: String, bytes: [UInt8]) = {
        let fs = MemorySyscalls()
        do {
            let s = try DurableRaftStorage(directory: directory, conf: ConfState(voters: [1, 2, 3]), syscalls: fs)
            s.close()
        } catch {
            fatalError("fuzz: cannot create a storage directory in memory: \(error)")
        }
        let name = SnapshotFileName.of(index: 0, term: 0)
        guard let bytes = fs.contents(directory + "/" + name) else {
            fatalError("fuzz: DurableRaftStorage wrote no \(name); files: \(fs.allFiles.keys.sorted())")
        }
        return (name, bytes)
    }()
}

/// WAL frame: `length u32 LE | CRC-32C u32 LE | type u8 | payload`; `length`
/// and the CRC cover type + payload.
enum WALFrame {
    static let headerSize = 8

    /// Re-seals every complete frame of `segment` in place (except frame
    /// number `skip`, which keeps whatever CRC the input has) and returns the
    /// frame boundaries; bytes after the last complete frame are a torn tail
    /// and stay as they are.
    static func reseal(_ segment: inout [UInt8], skip: Int?) -> [Int] {
        var ends: [Int] = []
        var p = 0
        while segment.count - p >= headerSize + 1 {
            let length = Int(u32le(segment, p))
            guard length >= 1, length <= segment.count - p - headerSize else { break }
            let body = p + headerSize
            if ends.count != skip {
                putU32le(&segment, CRC32C.checksum(segment[body..<body + length]), at: p + 4)
            }
            p = body + length
            ends.append(p)
        }
        return ends
    }

    /// Frames each non-empty chunk (`type u8 | payload`) with its length and
    /// CRC (a wrong one for chunk `corrupt`); returns the bytes and the frame ends.
    static func frames(_ chunks: [ArraySlice<UInt8>], corrupt: Int?) -> (bytes: [UInt8], ends: [Int]) {
        var out: [UInt8] = []
        var ends: [Int] = []
        for chunk in chunks where !chunk.isEmpty {
            let start = out.count
            out += [UInt8](repeating: 0, count: headerSize)
            out += chunk
            putU32le(&out, UInt32(chunk.count), at: start)
            let crc = CRC32C.checksum(out[(start + headerSize)...])
            putU32le(&out, ends.count == corrupt ? ~crc : crc, at: start + 4)
            ends.append(out.count)
        }
        return (out, ends)
    }

    /// The records of a well-formed segment as `type | payload` chunks (for seeds).
    static func records(_ segment: [UInt8]) -> [[UInt8]] {
        var copy = segment
        var start = 0
        var out: [[UInt8]] = []
        for end in reseal(&copy, skip: nil) {
            out.append(Array(segment[(start + headerSize)..<end]))
            start = end
        }
        return out
    }
}

/// Input: `control u8 | WAL bytes`, which become the segment
/// `wal-0000000000000000.log` of an in-memory directory beside the index-0
/// snapshot file. Control bits:
/// - bit 0: the shim injects EINTR and short reads/writes at random;
/// - bit 1: the records are split over two segments (the second named after
///   its first record's number);
/// - bit 2: framed mode: the bytes are records `type u8 | payload` separated
///   by `FuzzChunks.separator`, and the target writes each frame's length
///   and CRC (so a payload can grow or shrink under mutation); otherwise the
///   bytes are raw frames whose lengths are taken as they are and whose CRCs
///   are re-sealed;
/// - bits 3-7 = k > 0: record k-1 keeps the CRC the input has (raw mode) or
///   gets a wrong one (framed mode): mid-log corruption and torn tails.
///
/// `DurableRaftStorage` opens it and everything is read back; any thrown
/// error is fine. When it opens, one entry and a hard state are appended and
/// synced, and a reopen must then succeed and hold that entry (unless
/// `LUIGI_FUZZ_WAL_REOPEN=0`: to look past a known failure of that check).
public func fuzzWAL(_ data: [UInt8]) {
    guard let control = data.first else { return }
    let skip = control >> 3 == 0 ? nil : Int(control >> 3) - 1
    var segment: [UInt8]
    let ends: [Int]
    if control & 4 != 0 {
        (segment, ends) = WALFrame.frames(FuzzChunks.split(data.dropFirst()), corrupt: skip)
    } else {
        segment = Array(data.dropFirst())
        ends = WALFrame.reseal(&segment, skip: skip)
    }

    let dir = FuzzDisk.directory
    var files: [String: [UInt8]] = [dir + "/" + FuzzDisk.bootstrapSnapshot.name: FuzzDisk.bootstrapSnapshot.bytes]
    if control & 2 != 0 && ends.count >= 2 {
        let split = ends.count / 2
        let cut = ends[split - 1]
        files[dir + "/" + WriteAheadLog.segmentName(0)] = Array(segment[..<cut])
        files[dir + "/" + WriteAheadLog.segmentName(UInt64(split))] = Array(segment[cut...])
    } else {
        files[dir + "/" + WriteAheadLog.segmentName(0)] = segment
    }
    let memory = MemorySyscalls(directories: [dir], files: files)
    let syscalls: any Syscalls
    if control & 1 != 0 {
        let faulty = FaultInjectingSyscalls(underlying: memory, seed: UInt64(control))
        for call in [Syscall.pread, .pwrite] {
            faulty.injectRandomly(.eintr, on: call, probability: 0.2)
            faulty.injectRandomly(.short, on: call, probability: 0.3)
        }
        syscalls = faulty
    } else {
        syscalls = memory
    }

    guard let storage = try? DurableRaftStorage(directory: dir, syscalls: syscalls) else { return }
    readBack(storage)

    // Write on after recovery; what was synced must survive a reopen.
    var expectedLast: UInt64? = nil
    if let last = try? storage.lastIndex(), last < UInt64.max - 1, let (hs, _) = try? storage.initialState() {
        let term = max(hs.term, (try? storage.term(last)) ?? 0, 1)
        let entry = RaftEntry(term: term, index: last + 1, data: [1, 2, 3])
        if (try? storage.append([entry])) != nil,
            (try? storage.setHardState(HardState(term: term, vote: hs.vote, commit: hs.commit))) != nil,
            (try? storage.sync()) != nil
        {
            expectedLast = last + 1
        }
    }
    storage.close()
    guard let expectedLast, FuzzOptions.walReopenCheck else { return }
    do {
        let reopened = try DurableRaftStorage(directory: dir, syscalls: memory)
        fuzzCheck((try? reopened.lastIndex()) == expectedLast, "wal: a synced entry was lost across a reopen")
        readBack(reopened)
        reopened.close()
    } catch {
        fuzzCheck(false, "wal: reopening a log that opened and synced cleanly failed: \(error)")
    }
}
