#if canImport(Glibc)
import Glibc
#endif
import LuigiCore
import LuigiStorage
import Testing

@Suite struct DurableCounterTests {
    /// Each call returns the next number, also across "restarts" (a fresh
    /// call reads the file), in a directory it creates.
    @Test func countsUpAndSurvivesReopening() throws {
        try withTempDir { (dir: String) throws in
            let path = "\(dir)/sub/counter"
            #expect(try DurableCounter.next(at: path) == 1)
            #expect(try DurableCounter.next(at: path) == 2)
            #expect(try DurableCounter.next(at: path, syscalls: FaultInjectingSyscalls()) == 3)
        }
    }

    /// A failed write or rename leaves the old value: the next call does
    /// not skip or repeat a number it returned.
    @Test func aFailedReplaceKeepsTheOldValue() throws {
        try withTempDir { (dir: String) throws in
            let path = "\(dir)/counter"
            #expect(try DurableCounter.next(at: path) == 1)
            for call in [Syscall.fdatasync, .rename] {
                let faulty = FaultInjectingSyscalls()
                faulty.inject(.error(EIO), on: call)
                #expect(throws: StorageError.self) { try DurableCounter.next(at: path, syscalls: faulty) }
            }
            #expect(try DurableCounter.next(at: path) == 2)
        }
    }

    /// A damaged file is refused, never read as a smaller number.
    @Test func aDamagedFileIsRefused() throws {
        try withTempDir { (dir: String) throws in
            let path = "\(dir)/counter"
            _ = try DurableCounter.next(at: path)
            let fd = open(path, O_WRONLY)
            #expect(fd >= 0)
            var byte: UInt8 = 0xFF
            #expect(pwrite(fd, &byte, 1, 4) == 1)
            close(fd)
            #expect(throws: (any Error).self) { try DurableCounter.next(at: path) }
        }
    }
}
