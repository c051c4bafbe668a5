import Glibc
import LuigiBase

/// A number kept in one small file, raised durably: "LDC" v1 | value varint
/// | CRC-32C, written to a temp file, synced, renamed over the old one, and
/// the directory synced. A node takes a new coordinator incarnation from it
/// on each start, so ids never repeat across restarts.
public enum DurableCounter {
    static let magic: [UInt8] = [0x4C, 0x44, 0x43, 0x01]

    /// Reads the value at `path` (0 when the file does not exist; its
    /// directory is created if missing), stores
    /// value + 1 durably and returns it. A damaged file throws.
    public static func next(at path: String, syscalls: any Syscalls = PosixSyscalls()) throws -> UInt64 {
        let io = FileIO(syscalls)
        try io.makeDirectory(parentDirectory(path))
        var current: UInt64 = 0
        switch syscalls.open(path, .read) {
        case .failure(SystemErrno(ENOENT)):
            break
        case .failure(let e):
            throw StorageError.io(path: path, operation: .open, errno: e.code)
        case .success(let fd):
            io.closeQuietly(fd)
            var r = try ByteReader.sealed(try io.readFile(path), magic: magic, what: "counter file \(path)")
            current = try r.varint()
            try r.expectEnd("counter file")
        }
        guard current < UInt64.max >> 2 else { throw LuigiError.state("counter \(path) is exhausted") }
        var w = ByteWriter(capacity: 16)
        w.magic(magic)
        w.varint(current + 1)
        w.sealWithChecksum()
        try io.replaceDurably(path, with: w.bytes, temp: path + ".tmp", directory: parentDirectory(path))
        return current + 1
    }
}
