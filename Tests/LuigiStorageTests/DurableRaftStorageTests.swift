#if canImport(Glibc)
import Glibc
#endif
import LuigiCore
import LuigiStorage
import Testing

let threeVoters = ConfState(voters: [1, 2, 3])

func reopen(_ dir: String, options: DurableRaftStorage.Options = .init(), syscalls: any Syscalls = FaultInjectingSyscalls()) throws
    -> DurableRaftStorage
{
    try DurableRaftStorage(directory: dir, options: options, syscalls: syscalls)
}

func storageOpenError(_ dir: String, options: DurableRaftStorage.Options = .init()) -> StorageError? {
    do {
        let s = try DurableRaftStorage(directory: dir, options: options, syscalls: FaultInjectingSyscalls())
        s.close()
        return nil
    } catch {
        return error
    }
}

@Suite struct DurableRaftStorageTests {
    /// Entries, hard state, compaction and an installed snapshot all come
    /// back after reopening — on the real file system, real fdatasync.
    @Test func entriesHardStateAndSnapshotsRoundTripAcrossReopen() throws {
        try withTempDir { dir in
            var s = try DurableRaftStorage(directory: dir, conf: threeVoters)
            #expect(s.recovery.bootstrapped)
            var log = (1...100).map { i in RaftEntry(term: 1, index: UInt64(i), data: Array(repeating: UInt8(i), count: i % 37)) }
            log[49] = RaftEntry(term: 1, index: 50, kind: .confChange, data: ConfChange(.addLearner, node: 9).encoded())
            try s.append(log)
            try s.setHardState(HardState(term: 1, vote: 1, commit: 60))
            try s.compact(to: 40, conf: ConfState(voters: [1, 2, 3], learners: [9]), data: [4, 0])
            try s.append(makeEntries(90...120, term: 2))
            try s.setHardState(HardState(term: 2, vote: 3, commit: 95))
            try s.sync()
            let first = try StorageState(s)
            s.close()

            s = try DurableRaftStorage(directory: dir)
            #expect(!s.recovery.bootstrapped)
            #expect(s.recovery.snapshotIndex == 40)
            #expect(try StorageState(s) == first)
            #expect(try s.entries(41, 90, maxBytes: .max) == Array(log[40..<89]))

            let installed = Snapshot(metadata: SnapshotMetadata(index: 200, term: 5, conf: threeVoters), data: [1, 2, 3, 4])
            try s.applySnapshot(installed)
            try s.append(makeEntries(201...205, term: 5))
            try s.sync()
            let second = try StorageState(s)
            s.close()

            s = try DurableRaftStorage(directory: dir)
            #expect(try StorageState(s) == second)
            #expect(try s.snapshot() == installed)
            s.close()
        }
    }

    /// The storage's last WAL record cut at every byte: reopening truncates
    /// the torn bytes, everything synced before is intact, and the log works.
    @Test func restartAfterATornTailAtEveryByteOfTheLastRecord() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls()
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: sys)
            try s.append(makeEntries(1...10, term: 1))
            try s.setHardState(HardState(term: 1, vote: 1, commit: 5))
            try s.sync()
            let expected = try StorageState(s)
            let segment = s.walSegments.last!
            let good = try readBytes(segment).count
            try s.append(makeEntries(11...11, term: 1, size: 16))
            try s.sync()
            s.close()
            let full = try readBytes(segment)
            #expect(full.count > good)
            for cut in good..<full.count {
                try writeBytes(segment, Array(full[..<cut]))
                let r = try reopen(dir, syscalls: sys)
                #expect(try StorageState(r) == expected, "cut at \(cut)")
                #expect(r.recovery.wal.truncatedBytes == cut - good, "cut at \(cut)")
                try r.append(makeEntries(11...11, term: 1, size: 16))
                try r.sync()
                r.close()
                let again = try reopen(dir, syscalls: sys)
                #expect(try again.lastIndex() == 11, "cut at \(cut)")
                #expect(again.recovery.wal.truncatedBytes == 0)
                again.close()
            }
        }
    }

    /// Group commit at the storage level: appends and hard states from many
    /// proposals, one sync, one fdatasync.
    @Test func manyWritesAndOneSyncCostExactlyOneFdatasync() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls()
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: sys)
            sys.resetCounts()
            for i in 1...50 {
                try s.append(makeEntries(UInt64(i)...UInt64(i), term: 1, size: 256))
                try s.setHardState(HardState(term: 1, vote: 1, commit: UInt64(i - 1)))
            }
            try s.sync()
            #expect(sys.count(.fdatasync) == 1)
            #expect(sys.count(.fsync) == 0)
            #expect(sys.count(.pwrite) == 100)
            try s.sync()
            #expect(sys.count(.fdatasync) == 1)
        }
    }

    /// Compaction deletes snapshot files beyond the retained count and
    /// releases the WAL segments the oldest retained snapshot covers; the
    /// state survives reopening.
    @Test(arguments: [1, 2])
    func compactionReleasesCoveredSegmentsAndOldSnapshots(retained: Int) throws {
        try withTempDir { dir in
            let options = smallOptions(segmentSize: 512, retained: retained)
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, options: options, syscalls: FaultInjectingSyscalls())
            for start in stride(from: 1, through: 196, by: 5) {
                try s.append(makeEntries(UInt64(start)...UInt64(start + 4), term: 1, size: 20))
                try s.sync()
            }
            let segmentsBefore = s.walSegments
            #expect(segmentsBefore.count > 10)
            try s.compact(to: 100, conf: threeVoters, data: [1])
            try s.compact(to: 180, conf: threeVoters, data: [2])
            let kept = snapshotFiles(dir).map { SnapshotFiles.parse(String($0.split(separator: "/").last!))!.index }
            #expect(kept == (retained == 1 ? [180] : [100, 180]))
            let releasedUpTo: UInt64 = retained == 1 ? 180 : 100
            let remaining = s.walSegments
            #expect(remaining.count < segmentsBefore.count)
            let removed = segmentsBefore.filter { !remaining.contains($0) }
            #expect(removed == Array(segmentsBefore.prefix(removed.count)), "only the oldest segments go")
            try s.sync()
            let state = try StorageState(s)
            s.close()
            // Replaying the remaining segments from their start reaches back no
            // further than needed, and gives the same state.
            let (_, replayed) = try openWAL(dir, options: options.wal)
            let firstEntry = replayed.compactMap { if case .entries(let e) = $0.0 { return e.first?.index } else { return nil } }.min()!
            #expect(firstEntry <= releasedUpTo + 1)
            #expect(try StorageState(reopen(dir, options: options)) == state)
        }
    }

    /// Leftover temp files of interrupted snapshot writes are deleted on open
    /// and never loaded.
    @Test func snapshotTempFileLeftoversAreIgnoredAndDeleted() throws {
        try withTempDir { dir in
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: FaultInjectingSyscalls())
            try s.append(makeEntries(1...10, term: 1))
            try s.compact(to: 4, conf: threeVoters, data: [4])
            try s.sync()
            let state = try StorageState(s)
            s.close()
            let junk = dir + "/" + SnapshotFiles.fileName(index: 9, term: 1) + ".tmp"
            try writeBytes(junk, [1, 2, 3])
            let full = try readBytes(snapshotFiles(dir).last!)
            let halfWritten = dir + "/" + SnapshotFiles.fileName(index: 8, term: 1) + ".tmp"
            try writeBytes(halfWritten, Array(full.prefix(full.count / 2)))
            let r = try reopen(dir)
            #expect(r.recovery.removedTemporaryFiles.sorted() == [halfWritten, junk])
            #expect(!listing(dir).contains { $0.hasSuffix(".tmp") })
            #expect(try StorageState(r) == state)
        }
    }

    /// A snapshot write that fails at the rename leaves a temp file and no
    /// snapshot: the compaction did not happen, and reopening cleans up.
    @Test func interruptedSnapshotWriteLeavesNothingBehindAfterReopen() throws {
        try withTempDir { dir in
            let sys = FaultInjectingSyscalls()
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: sys)
            try s.append(makeEntries(1...10, term: 1))
            let before = try StorageState(s)
            sys.inject(.error(EIO), on: .rename)
            #expect(throws: StorageError.io(path: dir + "/" + SnapshotFiles.fileName(index: 6, term: 1) + ".tmp", operation: .rename, errno: EIO)) {
                try s.compact(to: 6, conf: threeVoters, data: [6])
            }
            #expect(listing(dir).contains { $0.hasSuffix(".tmp") })
            let r = try reopen(dir, syscalls: sys)
            #expect(r.recovery.removedTemporaryFiles.count == 1)
            #expect(try StorageState(r) == before)
        }
    }

    /// A corrupt newest snapshot is passed over (and quarantined) when the
    /// older one plus the WAL still cover everything.
    @Test func corruptNewestSnapshotFallsBackWhenTheWALCoversTheGap() throws {
        try withTempDir { dir in
            let options = smallOptions(segmentSize: 400, retained: 2)
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, options: options, syscalls: FaultInjectingSyscalls())
            try s.append(makeEntries(1...30, term: 1))
            try s.compact(to: 10, conf: threeVoters, data: [10])
            try s.append(makeEntries(31...40, term: 2))
            try s.compact(to: 25, conf: threeVoters, data: [25])
            try s.append(makeEntries(41...45, term: 2))
            try s.setHardState(HardState(term: 2, vote: 1, commit: 44))
            try s.sync()
            let state = try StorageState(s)
            s.close()
            let newest = dir + "/" + SnapshotFiles.fileName(index: 25, term: 1)
            var bytes = try readBytes(newest)
            bytes[bytes.count / 2] ^= 0x10
            try writeBytes(newest, bytes)

            let r = try reopen(dir, options: options)
            #expect(r.recovery.snapshotIndex == 10)
            #expect(r.recovery.corruptSnapshots == [newest + ".corrupt"])
            #expect(!listing(dir).contains(SnapshotFiles.fileName(index: 25, term: 1)))
            #expect(try r.snapshot().data == [10])
            #expect(try r.firstIndex() == 11)
            #expect(try r.lastIndex() == 45)
            #expect(try r.entries(26, 46, maxBytes: .max) == state.entries)
            #expect(try r.initialState().hardState == state.hardState)
            // It keeps working, and reopens cleanly.
            try r.compact(to: 30, conf: threeVoters, data: [30])
            try r.sync()
            r.close()
            #expect(try reopen(dir, options: options).recovery.corruptSnapshots.isEmpty)
        }
    }

    /// A corrupt newest snapshot whose gap the WAL no longer covers is an
    /// error naming it — after a log-replacing install, and after the WAL was
    /// released past the older snapshot.
    @Test func corruptNewestSnapshotIsAnErrorWhenTheWALNoLongerCoversTheGap() throws {
        try withTempDir { dir in
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: FaultInjectingSyscalls())
            try s.append(makeEntries(1...10, term: 1))
            try s.compact(to: 5, conf: threeVoters, data: [5])
            try s.applySnapshot(Snapshot(metadata: SnapshotMetadata(index: 50, term: 3, conf: threeVoters), data: [50]))
            try s.append(makeEntries(51...55, term: 3))
            try s.sync()
            s.close()
            let installed = dir + "/" + SnapshotFiles.fileName(index: 50, term: 3)
            var bytes = try readBytes(installed)
            bytes[6] ^= 1
            try writeBytes(installed, bytes)
            expectCorrupt(storageOpenError(dir), path: installed)
            #expect(try readBytes(installed) == bytes, "a failed open must not quarantine")
        }
        try withTempDir { dir in
            let options = smallOptions(segmentSize: 300, retained: 1)
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, options: options, syscalls: FaultInjectingSyscalls())
            for i in stride(from: 1, through: 56, by: 5) { try s.append(makeEntries(UInt64(i)...UInt64(i + 4), term: 1, size: 30)) }
            try s.compact(to: 20, conf: threeVoters, data: [20])
            let older = dir + "/" + SnapshotFiles.fileName(index: 20, term: 1)
            let olderBytes = try readBytes(older)
            try s.compact(to: 50, conf: threeVoters, data: [50])
            try s.sync()
            s.close()
            #expect(!listing(dir).contains(SnapshotFiles.fileName(index: 20, term: 1)))
            try writeBytes(older, olderBytes)
            let newest = dir + "/" + SnapshotFiles.fileName(index: 50, term: 1)
            var bytes = try readBytes(newest)
            bytes[bytes.count - 1] ^= 1
            try writeBytes(newest, bytes)
            expectCorrupt(storageOpenError(dir, options: options), path: newest)
        }
    }

    /// Files that every data directory has are never taken as absent by
    /// choice: WAL segments without any snapshot file, or a snapshot written
    /// after WAL records that are gone, are errors — not a fresh start.
    @Test func missingWALOrSnapshotFilesAreErrors() throws {
        try withTempDir { dir in
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: FaultInjectingSyscalls())
            try s.append(makeEntries(1...3, term: 1))
            try s.sync()
            s.close()
            for file in snapshotFiles(dir) { _ = posix.unlink(file) }
            expectCorrupt(storageOpenError(dir), path: dir)
        }
        try withTempDir { dir in
            let s = try DurableRaftStorage(directory: dir, conf: threeVoters, syscalls: FaultInjectingSyscalls())
            try s.append(makeEntries(1...3, term: 1))
            try s.setHardState(HardState(term: 1, vote: 1, commit: 3))
            try s.compact(to: 2, conf: threeVoters, data: [])
            try s.sync()
            s.close()
            let segments = segmentFiles(dir)
            let bytes = try segments.map { try readBytes($0) }
            for file in segments { _ = posix.unlink(file) }
            expectCorrupt(storageOpenError(dir), path: dir)
            // Cutting synced records off the end is caught as well.
            try writeBytes(segments[0], Array(bytes[0].prefix(30)))
            expectCorrupt(storageOpenError(dir), path: snapshotFiles(dir).last!)
        }
    }
}
