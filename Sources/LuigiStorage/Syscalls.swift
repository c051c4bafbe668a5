#if canImport(Glibc)
import Glibc
#endif

/// The errno of one failed system call.
public struct SystemErrno: Error, Equatable, Sendable {
    public var code: Int32
    public init(_ code: Int32) { self.code = code }
}

public typealias SyscallResult<T> = Result<T, SystemErrno>

/// How a file is opened. Every mode adds O_CLOEXEC; created files get 0644.
public enum OpenMode: Sendable, Equatable {
    /// O_RDONLY
    case read
    /// O_RDWR on an existing file.
    case readWrite
    /// O_RDWR | O_CREAT | O_EXCL: a new file, failing with EEXIST.
    case createNew
    /// O_WRONLY | O_CREAT | O_TRUNC
    case createOrTruncate
    /// O_RDONLY | O_DIRECTORY, for fsync of a directory.
    case directory

    public var creates: Bool { self == .createNew || self == .createOrTruncate }
}

/// The one shim every file system call of LuigiStorage goes through.
///
/// Each method is exactly one attempt at one system call: it may fail with
/// EINTR and `pwrite`/`pread` may transfer fewer bytes than asked. Retrying is
/// the caller's job (the module's internal `FileIO` does it), so a fault
/// injector placed here exercises the retry loops. Implementations are used
/// from one thread at a time.
public protocol Syscalls: AnyObject {
    func open(_ path: String, _ mode: OpenMode) -> SyscallResult<Int32>
    /// Writes at most `buffer.count` bytes at `offset`; returns how many.
    func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int) -> SyscallResult<Int>
    /// Reads at most `buffer.count` bytes at `offset`; 0 means end of file.
    func pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) -> SyscallResult<Int>
    func fdatasync(_ fd: Int32) -> SyscallResult<Void>
    /// fsync; on a directory descriptor it makes entry creations, renames and
    /// removals in that directory durable.
    func fsync(_ fd: Int32) -> SyscallResult<Void>
    func ftruncate(_ fd: Int32, length: Int) -> SyscallResult<Void>
    func rename(_ from: String, _ to: String) -> SyscallResult<Void>
    func unlink(_ path: String) -> SyscallResult<Void>
    func mkdir(_ path: String) -> SyscallResult<Void>
    /// The names in a directory (opendir/readdir/closedir), without . and ..
    func listDirectory(_ path: String) -> SyscallResult<[String]>
    func close(_ fd: Int32) -> SyscallResult<Void>
    /// st_size from fstat.
    func fileSize(_ fd: Int32) -> SyscallResult<Int>
}

/// The real thing: one libc call per method.
public final class PosixSyscalls: Syscalls, Sendable {
    public init() {}

    private func result(_ rc: Int32) -> SyscallResult<Void> {
        rc == 0 ? .success(()) : .failure(SystemErrno(errno))
    }

    public func open(_ path: String, _ mode: OpenMode) -> SyscallResult<Int32> {
        let flags: Int32
        switch mode {
        case .read: flags = O_RDONLY
        case .readWrite: flags = O_RDWR
        case .createNew: flags = O_RDWR | O_CREAT | O_EXCL
        case .createOrTruncate: flags = O_WRONLY | O_CREAT | O_TRUNC
        case .directory: flags = O_RDONLY | O_DIRECTORY
        }
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o644)
        return fd >= 0 ? .success(fd) : .failure(SystemErrno(errno))
    }

    public func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int) -> SyscallResult<Int> {
        let n = Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset))
        return n >= 0 ? .success(n) : .failure(SystemErrno(errno))
    }

    public func pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) -> SyscallResult<Int> {
        let n = Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
        return n >= 0 ? .success(n) : .failure(SystemErrno(errno))
    }

    public func fdatasync(_ fd: Int32) -> SyscallResult<Void> { result(Glibc.fdatasync(fd)) }
    public func fsync(_ fd: Int32) -> SyscallResult<Void> { result(Glibc.fsync(fd)) }
    public func ftruncate(_ fd: Int32, length: Int) -> SyscallResult<Void> { result(Glibc.ftruncate(fd, off_t(length))) }
    public func rename(_ from: String, _ to: String) -> SyscallResult<Void> { result(Glibc.rename(from, to)) }
    public func unlink(_ path: String) -> SyscallResult<Void> { result(Glibc.unlink(path)) }
    public func mkdir(_ path: String) -> SyscallResult<Void> { result(Glibc.mkdir(path, 0o755)) }
    public func close(_ fd: Int32) -> SyscallResult<Void> { result(Glibc.close(fd)) }

    public func fileSize(_ fd: Int32) -> SyscallResult<Int> {
        var st = stat()
        guard Glibc.fstat(fd, &st) == 0 else { return .failure(SystemErrno(errno)) }
        return .success(Int(st.st_size))
    }

    public func listDirectory(_ path: String) -> SyscallResult<[String]> {
        guard let dir = opendir(path) else { return .failure(SystemErrno(errno)) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { return .failure(SystemErrno(errno)) }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }
}

/// The retry layer over a `Syscalls` shim: EINTR is retried, short reads and
/// writes continue where they stopped, and every other errno becomes a
/// `StorageError.io` naming the path and the call.
struct FileIO {
    let sys: any Syscalls

    init(_ sys: any Syscalls) { self.sys = sys }

    private func retrying<T>(_ path: String, _ op: Syscall, _ call: () -> SyscallResult<T>) throws(StorageError) -> T {
        while true {
            switch call() {
            case .success(let value): return value
            case .failure(let e) where e.code == EINTR: continue
            case .failure(let e): throw .io(path: path, operation: op, errno: e.code)
            }
        }
    }

    func open(_ path: String, _ mode: OpenMode) throws(StorageError) -> Int32 {
        try retrying(path, .open) { sys.open(path, mode) }
    }

    /// Writes all of `bytes` at `offset`, however many calls it takes.
    func writeAll(_ fd: Int32, _ path: String, _ bytes: [UInt8], at offset: Int) throws(StorageError) {
        try writeAll(fd, path, bytes[...], at: offset)
    }

    func writeAll(_ fd: Int32, _ path: String, _ bytes: ArraySlice<UInt8>, at offset: Int) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = try retrying(path, .pwrite) {
                bytes.withUnsafeBytes { all in
                    sys.pwrite(fd, UnsafeRawBufferPointer(rebasing: all[done...]), offset: offset + done)
                }
            }
            // A regular file never legitimately accepts zero bytes of a
            // non-empty write; do not spin on it.
            guard n > 0 else { throw .io(path: path, operation: .pwrite, errno: EIO) }
            done += n
        }
    }

    /// Reads from `offset` to the end of the file.
    func readToEnd(_ fd: Int32, _ path: String, from offset: Int = 0) throws(StorageError) -> [UInt8] {
        let size = try fileSize(fd, path)
        var bytes = [UInt8](repeating: 0, count: max(size - offset, 0))
        var done = 0
        while true {
            if done == bytes.count {
                // The file may have grown since fstat; read on until EOF.
                bytes.append(contentsOf: repeatElement(0, count: max(bytes.count / 2, 4096)))
            }
            let n = try retrying(path, .pread) {
                bytes.withUnsafeMutableBytes { all in
                    sys.pread(fd, UnsafeMutableRawBufferPointer(rebasing: all[done...]), offset: offset + done)
                }
            }
            if n == 0 { break }
            done += n
        }
        bytes.removeSubrange(done...)
        return bytes
    }

    func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = try open(path, .read)
        defer { closeQuietly(fd) }
        return try readToEnd(fd, path)
    }

    func syncData(_ fd: Int32, _ path: String) throws(StorageError) {
        try retrying(path, .fdatasync) { sys.fdatasync(fd) }
    }

    /// Writes `bytes` to `temp`, syncs it, renames it over `path` and syncs
    /// `directory`: a crash leaves the old file or the new one, never half.
    func replaceDurably(_ path: String, with bytes: [UInt8], temp: String, directory: String) throws(StorageError) {
        let fd = try open(temp, .createOrTruncate)
        do {
            try writeAll(fd, temp, bytes, at: 0)
            try syncData(fd, temp)
        } catch {
            closeQuietly(fd)
            throw error
        }
        try close(fd, temp)
        try rename(temp, path)
        try syncDirectory(directory)
    }

    func syncDirectory(_ path: String) throws(StorageError) {
        let fd = try open(path, .directory)
        defer { closeQuietly(fd) }
        try retrying(path, .fsync) { sys.fsync(fd) }
    }

    func truncate(_ fd: Int32, _ path: String, to length: Int) throws(StorageError) {
        try retrying(path, .ftruncate) { sys.ftruncate(fd, length: length) }
    }

    func fileSize(_ fd: Int32, _ path: String) throws(StorageError) -> Int {
        try retrying(path, .fileSize) { sys.fileSize(fd) }
    }

    func rename(_ from: String, _ to: String) throws(StorageError) {
        try retrying(from, .rename) { sys.rename(from, to) }
    }

    func unlink(_ path: String) throws(StorageError) {
        try retrying(path, .unlink) { sys.unlink(path) }
    }

    /// Creates the directory (an existing one is fine) and makes a new one's
    /// entry in its parent durable.
    /// Creates `path` and any missing parents (each made durable in its parent).
    func makeDirectory(_ path: String) throws(StorageError) {
        var madeParents = false
        while true {
            switch sys.mkdir(path) {
            case .failure(SystemErrno(EEXIST)): return
            case .failure(let e) where e.code == EINTR: continue
            case .failure(SystemErrno(ENOENT)) where !madeParents && parentDirectory(path) != path:
                try makeDirectory(parentDirectory(path))
                madeParents = true
            case .failure(let e): throw .io(path: path, operation: .mkdir, errno: e.code)
            case .success:
                try syncDirectory(parentDirectory(path))
                return
            }
        }
    }

    func list(_ path: String) throws(StorageError) -> [String] {
        try retrying(path, .listDirectory) { sys.listDirectory(path) }
    }

    /// close is never retried: on Linux the descriptor is gone even when it
    /// reports EINTR. Data we care about was made durable before closing.
    func close(_ fd: Int32, _ path: String) throws(StorageError) {
        switch sys.close(fd) {
        case .success, .failure(SystemErrno(EINTR)): return
        case .failure(let e): throw .io(path: path, operation: .close, errno: e.code)
        }
    }

    func closeQuietly(_ fd: Int32) { _ = sys.close(fd) }
}

/// `<dir>/<name>`
func joinPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// The directory holding `path` ("." for a bare name).
func parentDirectory(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p = p.dropLast() }
    guard let slash = p.lastIndex(of: "/") else { return "." }
    return slash == p.startIndex ? "/" : String(p[..<slash])
}

/// 16 lowercase hex digits.
func hex16(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}

/// Parses exactly 16 lowercase hex digits.
func parseHex16<S: StringProtocol>(_ text: S) -> UInt64? {
    guard text.utf8.count == 16,
        text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
    else { return nil }
    return UInt64(text, radix: 16)
}
