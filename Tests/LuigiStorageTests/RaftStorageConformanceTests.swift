import LuigiCore
import LuigiStorage
import Testing

/// The `RaftStorage` contract, run against the in-memory log and the durable
/// one (also reopened from disk after every write, which proves each
/// semantic survives a restart).
enum Backend: String, CaseIterable, CustomTestStringConvertible {
    case memory
    case durable
    case durableReopenedAfterEveryWrite

    var testDescription: String { rawValue }
}

final class Harness {
    let backend: Backend
    let directory: String
    let conf: ConfState
    let syscalls = FaultInjectingSyscalls()
    private(set) var storage: any RaftStorage

    init(_ backend: Backend, directory: String, conf: ConfState) throws {
        self.backend = backend
        self.directory = directory
        self.conf = conf
        switch backend {
        case .memory: storage = MemoryRaftStorage(conf: conf)
        case .durable, .durableReopenedAfterEveryWrite:
            storage = try DurableRaftStorage(directory: directory, conf: conf, syscalls: syscalls)
        }
    }

    /// Runs a write (which may throw), then for the reopening backend syncs,
    /// closes and reopens from disk.
    func write(_ body: (any RaftStorage) throws -> Void) throws {
        defer { try? reopenIfAsked() }
        try body(storage)
    }

    private func reopenIfAsked() throws {
        guard backend == .durableReopenedAfterEveryWrite, let durable = storage as? DurableRaftStorage else { return }
        try durable.sync()
        durable.close()
        storage = try DurableRaftStorage(directory: directory, conf: ConfState(), syscalls: syscalls)
    }
}

func withHarness(_ backend: Backend, conf: ConfState = ConfState(voters: [1, 2, 3]), _ body: (Harness) throws -> Void) throws {
    try withTempDir { dir in try body(try Harness(backend, directory: dir + "/data", conf: conf)) }
}

@Suite struct RaftStorageConformanceTests {
    @Test(arguments: Backend.allCases)
    func freshStorageIsEmptyAndKeepsItsMembership(_ backend: Backend) throws {
        try withHarness(backend, conf: ConfState(voters: [3, 1, 2], learners: [7])) { h in
            try h.write { _ in }
            let s = h.storage
            let initial = try s.initialState()
            #expect(initial.hardState == HardState())
            #expect(initial.conf == ConfState(voters: [1, 2, 3], learners: [7]))
            #expect(try s.firstIndex() == 1)
            #expect(try s.lastIndex() == 0)
            #expect(try s.term(0) == 0)
            #expect(try s.snapshot().isEmpty)
            #expect(try s.entries(1, 1, maxBytes: 100) == [])
            #expect(throws: RaftLogError.unavailable) { try s.term(1) }
        }
    }

    @Test(arguments: Backend.allCases)
    func appendedEntriesReadBackWithTermsAndBounds(_ backend: Backend) throws {
        try withHarness(backend) { h in
            let log = makeEntries(1...5, term: 1) + makeEntries(6...7, term: 2)
            try h.write { try $0.append(log) }
            let s = h.storage
            #expect(try s.firstIndex() == 1)
            #expect(try s.lastIndex() == 7)
            #expect(try s.term(5) == 1)
            #expect(try s.term(6) == 2)
            #expect(try s.entries(1, 8, maxBytes: .max) == log)
            #expect(try s.entries(2, 4, maxBytes: .max) == Array(log[1..<3]))
            #expect(throws: RaftLogError.compacted) { try s.entries(0, 2, maxBytes: .max) }
            #expect(throws: RaftLogError.unavailable) { try s.entries(1, 9, maxBytes: .max) }
            #expect(throws: RaftLogError.unavailable) { try s.term(8) }
        }
    }

    @Test(arguments: Backend.allCases)
    func entriesStopAtMaxBytesButReturnAtLeastOne(_ backend: Backend) throws {
        try withHarness(backend) { h in
            let log = makeEntries(1...10, term: 1, size: 100)  // 124 bytes each
            try h.write { try $0.append(log) }
            #expect(try h.storage.entries(1, 11, maxBytes: 0) == [log[0]])
            #expect(try h.storage.entries(1, 11, maxBytes: 124 * 3) == Array(log[0..<3]))
            #expect(try h.storage.entries(1, 11, maxBytes: 124 * 3 + 123) == Array(log[0..<3]))
        }
    }

    @Test(arguments: Backend.allCases)
    func appendOverwritesTheConflictingSuffix(_ backend: Backend) throws {
        try withHarness(backend) { h in
            try h.write { try $0.append(makeEntries(1...6, term: 1)) }
            let replacement = makeEntries(3...4, term: 2, size: 3)
            try h.write { try $0.append(replacement) }
            #expect(try h.storage.lastIndex() == 4)
            #expect(try h.storage.entries(1, 5, maxBytes: .max) == Array(makeEntries(1...2, term: 1)) + replacement)
            #expect(throws: RaftLogError.unavailable) { try h.storage.term(5) }
        }
    }

    @Test(arguments: Backend.allCases)
    func appendLeavingAGapIsRefusedAndChangesNothing(_ backend: Backend) throws {
        try withHarness(backend) { h in
            try h.write { try $0.append(makeEntries(1...3, term: 1)) }
            let before = try StorageState(h.storage)
            #expect(throws: LuigiError.self) {
                try h.write { try $0.append(makeEntries(5...6, term: 1)) }
            }
            #expect(try StorageState(h.storage) == before)
        }
    }

    @Test(arguments: Backend.allCases)
    func appendSkipsEntriesTheSnapshotCovers(_ backend: Backend) throws {
        try withHarness(backend) { h in
            try h.write { try $0.append(makeEntries(1...5, term: 1)) }
            try h.write { try $0.compact(to: 3, conf: ConfState(voters: [1]), data: [9]) }
            try h.write { try $0.append(makeEntries(2...7, term: 1)) }
            #expect(try h.storage.firstIndex() == 4)
            #expect(try h.storage.lastIndex() == 7)
            try h.write { try $0.append(makeEntries(1...2, term: 1)) }  // entirely covered: no-op
            #expect(try h.storage.lastIndex() == 7)
        }
    }

    @Test(arguments: Backend.allCases)
    func hardStateIsKept(_ backend: Backend) throws {
        try withHarness(backend) { h in
            try h.write { try $0.setHardState(HardState(term: 4, vote: 2, commit: 0)) }
            try h.write { try $0.append(makeEntries(1...3, term: 4)) }
            try h.write { try $0.setHardState(HardState(term: 5, vote: 0, commit: 3)) }
            #expect(try h.storage.initialState().hardState == HardState(term: 5, vote: 0, commit: 3))
        }
    }

    @Test(arguments: Backend.allCases)
    func compactDropsCoveredEntriesAndKeepsTheSnapshot(_ backend: Backend) throws {
        try withHarness(backend) { h in
            try h.write { try $0.append(makeEntries(1...4, term: 1) + makeEntries(5...8, term: 2)) }
            let conf = ConfState(voters: [1, 2, 3, 4])
            try h.write { try $0.compact(to: 5, conf: conf, data: [1, 2, 3]) }
            let s = h.storage
            #expect(try s.firstIndex() == 6)
            #expect(try s.lastIndex() == 8)
            #expect(try s.term(5) == 2)
            #expect(throws: RaftLogError.compacted) { try s.term(4) }
            #expect(throws: RaftLogError.compacted) { try s.entries(5, 7, maxBytes: .max) }
            #expect(try s.snapshot() == Snapshot(metadata: SnapshotMetadata(index: 5, term: 2, conf: conf), data: [1, 2, 3]))
            #expect(try s.initialState().conf == conf)
            // At or below the snapshot: nothing happens. Past the last entry: refused.
            try h.write { try $0.compact(to: 5, conf: ConfState(), data: []) }
            #expect(try h.storage.snapshot().data == [1, 2, 3])
            #expect(throws: LuigiError.self) { try h.write { try $0.compact(to: 9, conf: conf, data: []) } }
            #expect(try h.storage.lastIndex() == 8)
        }
    }

    @Test(arguments: Backend.allCases)
    func applySnapshotReplacesTheWholeLog(_ backend: Backend) throws {
        try withHarness(backend) { h in
            try h.write { try $0.append(makeEntries(1...20, term: 1)) }
            let snap = Snapshot(metadata: SnapshotMetadata(index: 10, term: 3, conf: ConfState(voters: [2, 5])), data: [7, 7])
            try h.write { try $0.applySnapshot(snap) }
            let s = h.storage
            #expect(try s.firstIndex() == 11)
            #expect(try s.lastIndex() == 10)
            #expect(try s.term(10) == 3)
            #expect(try s.snapshot() == snap)
            #expect(try s.initialState().conf == snap.metadata.conf)
            #expect(throws: LuigiError.self) { try h.write { try $0.append(makeEntries(12...12, term: 3)) } }
            try h.write { try $0.append(makeEntries(11...12, term: 3)) }
            #expect(try h.storage.entries(11, 13, maxBytes: .max) == makeEntries(11...12, term: 3))
        }
    }

    /// Random operation sequences give the durable log exactly the answers,
    /// errors and state of the in-memory reference, before and after reopening.
    @Test(arguments: [Backend.durable, .durableReopenedAfterEveryWrite])
    func randomOperationsMatchTheMemoryReference(_ backend: Backend) throws {
        sweep(backend == .durable ? 40 : 15, "randomOperationsMatchTheMemoryReference/\(backend)") { seed in
            var rng = TestRNG(seed: seed)
            try withHarness(backend) { h in
                let reference = MemoryRaftStorage(conf: h.conf)
                for step in 0..<60 {
                    let op = RandomOp.make(&rng, state: try StorageState(reference))
                    trace("op \(op)")
                    let expected = Result { try op.apply(to: reference) }
                    let got = Result { try h.write { try op.apply(to: $0) } }
                    switch (expected, got) {
                    case (.success, .success): break
                    case (.failure(let a as LuigiError), .failure(let b as LuigiError)):
                        try ensure(a == b, "step \(step) \(op): errors differ: \(a) vs \(b)")
                    default:
                        throw CheckFailed(description: "step \(step) \(op): reference \(expected), durable \(got)")
                    }
                    let want = try StorageState(reference)
                    let have = try StorageState(h.storage)
                    try ensure(want == have, "step \(step) \(op):\n want \(want)\n have \(have)")
                }
            }
        }
    }
}

/// One random `RaftStorage` write, valid or not.
enum RandomOp: CustomStringConvertible {
    case append([RaftEntry])
    case hardState(HardState)
    case compact(UInt64, ConfState, [UInt8])
    case applySnapshot(Snapshot)
    case sync

    static func make(_ rng: inout TestRNG, state: StorageState, allowInvalid: Bool = true) -> RandomOp {
        let offset = state.firstIndex - 1
        let last = state.lastIndex
        let topTerm = max(state.entries.last?.term ?? state.snapshot.metadata.term, state.hardState.term)
        switch Int.random(in: 0..<100, using: &rng) {
        case 0..<45:
            // Mostly continue the log; sometimes overwrite a suffix, reach
            // back under the snapshot, or (invalid) leave a gap.
            var start = last + 1
            if rng.chance(0.3) && last > 0 { start = UInt64.random(in: (offset > 2 ? offset - 2 : 1)...last, using: &rng) }
            if allowInvalid && rng.chance(0.05) { start = last + 2 }
            let term = rng.chance(0.3) ? topTerm + 1 : max(topTerm, 1)
            let count = UInt64.random(in: 1...5, using: &rng)
            return .append(makeEntries(start...(start + count - 1), term: term, size: Int.random(in: 0...40, using: &rng)))
        case 45..<65:
            return .hardState(
                HardState(
                    term: topTerm + UInt64.random(in: 0...1, using: &rng),
                    vote: UInt64.random(in: 0...3, using: &rng),
                    commit: UInt64.random(in: 0...last, using: &rng)))
        case 65..<78:
            let index = rng.chance(allowInvalid ? 0.1 : 0) ? last + 1 : UInt64.random(in: offset...max(offset, last), using: &rng)
            return .compact(
                index, ConfState(voters: [1, UInt64.random(in: 2...5, using: &rng)]), rng.bytes(Int.random(in: 0...64, using: &rng)))
        case 78..<84:
            let index = UInt64.random(in: state.snapshot.metadata.index...(last + 5), using: &rng)
            let term = max(topTerm, 1) + UInt64.random(in: 0...1, using: &rng)
            return .applySnapshot(
                Snapshot(
                    metadata: SnapshotMetadata(index: index, term: term, conf: ConfState(voters: [1, 2, 3])),
                    data: rng.bytes(Int.random(in: 0...64, using: &rng))))
        default:
            return .sync
        }
    }

    func apply(to s: any RaftStorage) throws {
        switch self {
        case .append(let entries): try s.append(entries)
        case .hardState(let state): try s.setHardState(state)
        case .compact(let index, let conf, let data): try s.compact(to: index, conf: conf, data: data)
        case .applySnapshot(let snapshot): try s.applySnapshot(snapshot)
        case .sync: try s.sync()
        }
    }

    /// Whether, once this operation returned successfully on a storage in
    /// `state`, everything written before it (and its own effect) is durable.
    func isDurabilityPoint(from state: StorageState) -> Bool {
        switch self {
        case .sync, .applySnapshot: return true
        case .compact(let index, _, _): return index >= state.firstIndex && index <= state.lastIndex
        default: return false
        }
    }

    var description: String {
        switch self {
        case .append(let e): return "append \(e.first!.index)...\(e.last!.index) t\(e.first!.term)"
        case .hardState(let h): return "hardState(t\(h.term) v\(h.vote) c\(h.commit))"
        case .compact(let i, _, let d): return "compact(to \(i), \(d.count) bytes)"
        case .applySnapshot(let s): return "applySnapshot(\(s.metadata.index)/t\(s.metadata.term))"
        case .sync: return "sync"
        }
    }
}
