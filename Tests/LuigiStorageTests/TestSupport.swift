#if canImport(Glibc)
import Glibc
#endif
import LuigiCore
import LuigiStorage
import Testing

/// Seeds for a sweep: LUIGI_SEED=<n> replays one exactly;
/// LUIGI_SWEEP_SCALE=<k> runs k times as many (a soak).
func seeds(_ count: Int) -> [UInt64] {
    if let p = getenv("LUIGI_SEED"), let seed = UInt64(String(cString: p)) { return [seed] }
    let scale = getenv("LUIGI_SWEEP_SCALE").flatMap { UInt64(String(cString: $0)) } ?? 1
    return (0..<UInt64(count) * max(scale, 1)).map { $0 &* 0x9E37_79B9 &+ 1 }
}

/// Runs `body` once per seed; the first failing seed is reported with the
/// command that replays it, and the sweep stops there.
func sweep(_ count: Int, _ name: String, _ body: (UInt64) throws -> Void) {
    for seed in seeds(count) {
        do {
            try body(seed)
        } catch {
            Issue.record("\(name) failed for seed \(seed) (replay: LUIGI_SEED=\(seed)): \(error)")
            return
        }
    }
}

struct CheckFailed: Error, CustomStringConvertible {
    var description: String
}

/// An invariant check inside a seeded sweep: throws, so the sweep reports the seed.
func ensure(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw CheckFailed(description: message()) }
}

struct TestRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed ^ 0x5DEE_CE66_D1CE_4E5B }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

// MARK: - Files

let posix = PosixSyscalls()

/// A fresh directory under /tmp for the duration of `body`, removed after.
func withTempDir<T>(_ body: (String) throws -> T) throws -> T {
    var template = Array("/tmp/luigi-storage-test-XXXXXX".utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw CheckFailed(description: "mkdtemp failed: errno \(errno)")
    }
    let path = String(cString: made)
    defer { removeTree(path) }
    return try body(path)
}

func removeTree(_ path: String) {
    if case .success(let names) = posix.listDirectory(path) {
        for name in names {
            let child = path + "/" + name
            if case .failure = posix.unlink(child) { removeTree(child) }
        }
    }
    rmdir(path)
}

func listing(_ dir: String) -> [String] {
    (try? posix.listDirectory(dir).get())?.sorted() ?? []
}

func readBytes(_ path: String) throws -> [UInt8] {
    let fd = try posix.open(path, .read).get()
    defer { _ = posix.close(fd) }
    let size = try posix.fileSize(fd).get()
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = try bytes.withUnsafeMutableBytes {
            posix.pread(fd, UnsafeMutableRawBufferPointer(rebasing: $0[done...]), offset: done)
        }.get()
        if n == 0 { break }
        done += n
    }
    return Array(bytes[..<done])
}

func writeBytes(_ path: String, _ bytes: [UInt8]) throws {
    let fd = try posix.open(path, .createOrTruncate).get()
    defer { _ = posix.close(fd) }
    var done = 0
    while done < bytes.count {
        done += try bytes.withUnsafeBytes {
            posix.pwrite(fd, UnsafeRawBufferPointer(rebasing: $0[done...]), offset: done)
        }.get()
    }
}

func segmentFiles(_ dir: String) -> [String] {
    listing(dir).filter { WriteAheadLog.parseSegmentName($0) != nil }.map { dir + "/" + $0 }
}

func snapshotFiles(_ dir: String) -> [String] {
    listing(dir).filter { SnapshotFiles.parse($0) != nil }.map { dir + "/" + $0 }
}

// MARK: - Raft values

func makeEntries(_ range: ClosedRange<UInt64>, term: UInt64, size: Int = 8) -> [RaftEntry] {
    range.map { i in
        RaftEntry(term: term, index: i, data: (0..<size).map { UInt8(truncatingIfNeeded: Int(i) &* 31 &+ $0) })
    }
}

/// Everything a `RaftStorage` answers, for comparing two of them.
struct StorageState: Equatable, CustomStringConvertible {
    var hardState: HardState
    var conf: ConfState
    var snapshot: Snapshot
    var firstIndex: UInt64
    var lastIndex: UInt64
    var entries: [RaftEntry]

    init(_ s: any RaftStorage) throws {
        let initial = try s.initialState()
        hardState = initial.hardState
        conf = initial.conf
        snapshot = try s.snapshot()
        firstIndex = try s.firstIndex()
        lastIndex = try s.lastIndex()
        entries = firstIndex <= lastIndex ? try s.entries(firstIndex, lastIndex + 1, maxBytes: .max) : []
    }

    /// A `MemoryRaftStorage` holding exactly this state.
    func memory() throws -> MemoryRaftStorage {
        let m = MemoryRaftStorage()
        try m.applySnapshot(snapshot)
        try m.append(entries)
        try m.setHardState(hardState)
        return m
    }

    var description: String {
        "hs(t\(hardState.term) v\(hardState.vote) c\(hardState.commit)) snap(\(snapshot.metadata.index)/t\(snapshot.metadata.term)) "
            + "log \(firstIndex)...\(lastIndex) terms \(entries.map(\.term))"
    }
}

/// Small segments so tests roll and release them.
func smallOptions(segmentSize: Int = 1024, retained: Int = 2) -> DurableRaftStorage.Options {
    DurableRaftStorage.Options(wal: WriteAheadLog.Options(segmentSize: segmentSize), retainedSnapshots: retained)
}
