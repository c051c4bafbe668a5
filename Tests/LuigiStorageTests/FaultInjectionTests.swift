#if canImport(Glibc)
import Glibc
#endif
import LuigiCore
import LuigiStorage
import Testing

/// Drives a durable storage and an in-memory model with the same random
/// operations, remembering the model's state after each one and the last
/// point up to which everything is acknowledged durable.
struct CrashHarness {
    let dir: String
    let sys: FaultInjectingSyscalls
    let options: DurableRaftStorage.Options
    var storage: DurableRaftStorage
    var model: MemoryRaftStorage
    /// Model states since the last durable point: `history[0]` is durable;
    /// after a crash the storage must come back as one of these.
    var history: [StorageState]

    init(dir: String, sys: FaultInjectingSyscalls, options: DurableRaftStorage.Options) throws {
        self.dir = dir
        self.sys = sys
        self.options = options
        storage = try DurableRaftStorage(directory: dir, conf: threeVoters, options: options, syscalls: sys)
        model = MemoryRaftStorage(conf: threeVoters)
        history = [try StorageState(model)]
    }

    /// Applies `op` to both; returns the storage's error, if any. The model
    /// state after the op is a candidate even when the storage failed, since
    /// a failed write may still have reached the disk.
    mutating func step(_ op: RandomOp) throws -> StorageError? {
        trace("op \(op)")
        let before = try StorageState(model)
        try op.apply(to: model)
        history.append(try StorageState(model))
        do {
            try op.apply(to: storage)
        } catch let error as StorageError {
            trace("  -> \(error)")
            return error
        }
        if op.isDurabilityPoint(from: before) { history = [history.last!] }
        return nil
    }

    /// Reopens (after an optional crash) and checks that the storage came back
    /// as a state no older than the last acknowledged durable point.
    mutating func restart(crash: Bool, torn: Bool, context: String) throws {
        trace("restart crash=\(crash) torn=\(torn) files \(listing(dir))")
        storage.close()
        if crash { sys.crash(tornWrites: torn) }
        sys.clearFaults()
        storage = try DurableRaftStorage(directory: dir, options: options, syscalls: sys)
        let recovered = try StorageState(storage)
        try ensure(
            history.contains(recovered),
            "\(context): recovered \(recovered)\nexpected one of:\n" + history.map { "  \($0)" }.joined(separator: "\n"))
        model = try recovered.memory()
        history = [recovered]
    }
}

@Suite struct FaultInjectionTests {
    /// Random writes, syncs, compactions and installs with crashes (often
    /// tearing the unsynced tail) at random points: every restart finds a
    /// state at least as new as the last acknowledged sync — never older,
    /// never a mix.
    @Test func crashLosesOnlyUnsyncedWrites() throws {
        sweep(150, "crashLosesOnlyUnsyncedWrites") { seed in
            var rng = TestRNG(seed: seed)
            try withTempDir { dir in
                let sys = FaultInjectingSyscalls(seed: seed)
                let options = smallOptions(segmentSize: Int.random(in: 150...2000, using: &rng), retained: Int.random(in: 1...3, using: &rng))
                var h = try CrashHarness(dir: dir, sys: sys, options: options)
                for step in 0..<70 {
                    if rng.chance(0.1) {
                        try h.restart(crash: true, torn: rng.chance(0.7), context: "crash at step \(step)")
                        continue
                    }
                    let op = RandomOp.make(&rng, state: try StorageState(h.model), allowInvalid: false)
                    if let error = try h.step(op) { throw CheckFailed(description: "step \(step) \(op): \(error)") }
                }
                try h.restart(crash: true, torn: rng.chance(0.5), context: "final crash")
            }
        }
    }

    /// ENOSPC and EIO on write and on fdatasync, at each of the first calls
    /// of a workload: the error surfaces typed (call and errno), the storage
    /// refuses further writes, and after a restart — with or without a crash
    /// — nothing acknowledged is lost.
    @Test(arguments: [Syscall.pwrite, .fdatasync], [ENOSPC, EIO])
    func injectedWriteAndSyncErrorsSurfaceAndLoseNothingAcknowledged(call: Syscall, code: Int32) throws {
        for nth in 1...12 {
            for crash in [false, true] {
                try withTempDir { dir in
                    let sys = FaultInjectingSyscalls(seed: UInt64(nth))
                    var h = try CrashHarness(dir: dir, sys: sys, options: smallOptions(segmentSize: 400))
                    var rng = TestRNG(seed: UInt64(nth) * 7)
                    sys.inject(.error(code), on: call, nth: nth)
                    var failure: StorageError? = nil
                    var step = 0
                    while failure == nil && step < 200 {
                        step += 1
                        let state = try StorageState(h.model)
                        let op: RandomOp = step % 4 == 0 ? .sync : RandomOp.make(&rng, state: state, allowInvalid: false)
                        failure = try h.step(op)
                    }
                    let context = "\(call) \(errnoText(code)) at call \(nth), crash \(crash)"
                    guard case .io(_, let op, let errno) = failure else {
                        Issue.record("\(context): expected an I/O error, got \(String(describing: failure))")
                        return
                    }
                    #expect(op == call, "\(context)")
                    #expect(errno == code, "\(context)")
                    #expect(h.storage.firstFailure == failure)
                    #expect(throws: StorageError.failed(failure!)) { try h.storage.append(makeEntries(1...1, term: 1)) }
                    #expect(throws: StorageError.failed(failure!)) { try h.storage.sync() }
                    _ = try h.storage.lastIndex()  // reads still answer
                    try h.restart(crash: crash, torn: true, context: context)
                    // And the reopened storage works.
                    let next = try h.model.lastIndex() + 1
                    _ = try h.step(.append(makeEntries(next...next, term: 9)))
                    _ = try h.step(.sync)
                    try h.restart(crash: true, torn: false, context: context + ", then a clean write")
                }
            }
        }
    }

    /// Random faults of every kind on every call, crashes and restarts:
    /// errors are always typed I/O errors (never EINTR), and no restart ever
    /// loses an acknowledged write.
    @Test func randomFaultsNeverLoseAcknowledgedWrites() throws {
        sweep(100, "randomFaultsNeverLoseAcknowledgedWrites") { seed in
            var rng = TestRNG(seed: seed)
            try withTempDir { dir in
                let sys = FaultInjectingSyscalls(seed: seed)
                var h = try CrashHarness(dir: dir, sys: sys, options: smallOptions(segmentSize: Int.random(in: 200...1500, using: &rng)))
                func arm() {
                    let p = 0.02
                    sys.injectRandomly(.eintr, on: .pwrite, probability: 0.1)
                    sys.injectRandomly(.short, on: .pwrite, probability: 0.2)
                    sys.injectRandomly(.error(ENOSPC), on: .pwrite, probability: p)
                    sys.injectRandomly(.error(EIO), on: .pwrite, probability: p)
                    sys.injectRandomly(.eintr, on: .fdatasync, probability: 0.1)
                    sys.injectRandomly(.error(EIO), on: .fdatasync, probability: p)
                    for call in [Syscall.fsync, .open, .rename, .unlink, .ftruncate, .close] {
                        sys.injectRandomly(.error(EIO), on: call, probability: p)
                    }
                }
                arm()
                var restarts = 0
                for step in 0..<80 {
                    let op = RandomOp.make(&rng, state: try StorageState(h.model), allowInvalid: false)
                    if let error = try h.step(op) {
                        guard case .io(_, _, let code) = error, code != EINTR else {
                            throw CheckFailed(description: "step \(step) \(op): unexpected error \(error)")
                        }
                        restarts += 1
                        try h.restart(crash: rng.chance(0.6), torn: rng.chance(0.7), context: "step \(step) \(op) failed with \(error)")
                        arm()
                    }
                }
                try h.restart(crash: true, torn: true, context: "final crash")
            }
        }
    }

    /// EINTR on every kind of call and short reads and writes everywhere are
    /// retried inside the storage: no error, and the data on disk is exact.
    @Test func eintrAndShortTransfersAreRetriedTransparently() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls(seed: 42)
            for call in Syscall.allCases where call != .close {
                sys.injectRandomly(.eintr, on: call, probability: 0.4)
            }
            sys.injectRandomly(.short, on: .pwrite, probability: 0.6)
            sys.injectRandomly(.short, on: .pread, probability: 0.6)
            // Scripted ones too: the very next open, write and sync fail with EINTR.
            sys.inject(.eintr, on: .open)
            sys.inject(.eintr, on: .pwrite)
            sys.inject(.eintr, on: .fdatasync)
            var rng = TestRNG(seed: 42)
            let options = smallOptions(segmentSize: 700)
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, options: options, syscalls: sys)
            let model = MemoryRaftStorage(conf: threeVoters)
            for _ in 0..<150 {
                let op = RandomOp.make(&rng, state: try StorageState(model), allowInvalid: false)
                try op.apply(to: model)
                try op.apply(to: s)
            }
            try s.sync()
            s.close()
            let faultsWhileWriting = sys.injectedCount
            let r = try DurableRaftStorage(directory: dir, options: options, syscalls: sys)
            #expect(try StorageState(r) == StorageState(model))
            #expect(faultsWhileWriting > 200)
            #expect(sys.injectedCount > faultsWhileWriting, "reopening read through faults too")
            sys.clearFaults()
            #expect(try StorageState(reopen(dir, options: options)) == StorageState(model))
        }
    }

    /// Measures this disk's fdatasync latency (1,000 x write 256 B +
    /// fdatasync) and a durable 1-entry append + sync. Only with
    /// LUIGI_MEASURE_FDATASYNC=1; prints, never asserts.
    @Test(.enabled(if: getenv("LUIGI_MEASURE_FDATASYNC") != nil))
    func measureFdatasyncLatency() throws {
        func now() -> UInt64 {
            var t = timespec()
            clock_gettime(CLOCK_MONOTONIC, &t)
            return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
        }
        func summary(_ ns: [UInt64]) -> String {
            let s = ns.sorted()
            let us = { (v: UInt64) in String(Double(v) / 1000) }
            return "median \(us(s[s.count / 2])) us, p99 \(us(s[s.count * 99 / 100])) us, max \(us(s.last!)) us, "
                + "mean \(us(s.reduce(0, +) / UInt64(s.count))) us"
        }
        try withTempDir { dir in
            let fd = try posix.open(dir + "/probe", .createNew).get()
            let block = [UInt8](repeating: 0xAB, count: 256)
            var samples: [UInt64] = []
            for i in 0..<1000 {
                let t0 = now()
                let n = try block.withUnsafeBytes { posix.pwrite(fd, $0, offset: i * 256) }.get()
                precondition(n == 256)
                try posix.fdatasync(fd).get()
                samples.append(now() - t0)
            }
            _ = posix.close(fd)
            print("fdatasync (write 256 B + fdatasync, n=1000): \(summary(samples))")

            let s = try DurableRaftStorage(directory: dir + "/raft", conf: threeVoters)
            var commits: [UInt64] = []
            for i in 1...1000 {
                let t0 = now()
                try s.append([RaftEntry(term: 1, index: UInt64(i), data: block)])
                try s.sync()
                commits.append(now() - t0)
            }
            print("DurableRaftStorage append(1 x 256 B) + sync (n=1000): \(summary(commits))")
        }
    }
}

func trace(_ message: @autoclosure () -> String) {
    if getenv("LUIGI_TRACE") != nil { print(message()) }
}

func errnoText(_ code: Int32) -> String { code == ENOSPC ? "ENOSPC" : code == EIO ? "EIO" : "errno \(code)" }
