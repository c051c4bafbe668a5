#if canImport(Glibc)
import Glibc
#endif
import LuigiStorage

/// A `Syscalls` shim over an in-memory file system, so a storage fuzz target
/// does no disk I/O per execution. Files are inodes (a rename or unlink does
/// not disturb an open descriptor); directories are a set of paths; `/`
/// always exists. Errors follow POSIX: ENOENT, EEXIST, EBADF, EISDIR.
public final class MemorySyscalls: Syscalls {
    final class Inode {
        var bytes: [UInt8]
        init(_ bytes: [UInt8]) { self.bytes = bytes }
    }

    private struct Handle {
        var inode: Inode?  // nil: a directory
        var writable: Bool
    }

    private var files: [String: Inode] = [:]
    private var directories: Set<String> = ["/"]
    private var handles: [Int32: Handle] = [:]
    private var nextFD: Int32 = 3

    public init(directories: [String] = [], files: [String: [UInt8]] = [:]) {
        for d in directories { self.directories.insert(d) }
        for (path, bytes) in files { self.files[path] = Inode(bytes) }
    }

    /// Contents of a file (nil if absent).
    public func contents(_ path: String) -> [UInt8]? { files[path]?.bytes }

    /// Every file, path -> bytes.
    public var allFiles: [String: [UInt8]] { files.mapValues(\.bytes) }

    private static func parent(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private func newHandle(_ h: Handle) -> Int32 {
        let fd = nextFD
        nextFD += 1
        handles[fd] = h
        return fd
    }

    public func open(_ path: String, _ mode: OpenMode) -> SyscallResult<Int32> {
        switch mode {
        case .directory:
            guard directories.contains(path) else { return .failure(SystemErrno(files[path] == nil ? ENOENT : ENOTDIR)) }
            return .success(newHandle(Handle(inode: nil, writable: false)))
        case .read, .readWrite:
            if directories.contains(path) { return .failure(SystemErrno(EISDIR)) }
            guard let inode = files[path] else { return .failure(SystemErrno(ENOENT)) }
            return .success(newHandle(Handle(inode: inode, writable: mode == .readWrite)))
        case .createNew, .createOrTruncate:
            guard directories.contains(Self.parent(path)) else { return .failure(SystemErrno(ENOENT)) }
            if directories.contains(path) { return .failure(SystemErrno(EISDIR)) }
            if let existing = files[path] {
                if mode == .createNew { return .failure(SystemErrno(EEXIST)) }
                existing.bytes = []
                return .success(newHandle(Handle(inode: existing, writable: true)))
            }
            let inode = Inode([])
            files[path] = inode
            return .success(newHandle(Handle(inode: inode, writable: true)))
        }
    }

    public func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int) -> SyscallResult<Int> {
        guard let h = handles[fd], h.writable, let inode = h.inode else { return .failure(SystemErrno(EBADF)) }
        guard offset >= 0 else { return .failure(SystemErrno(EINVAL)) }
        if inode.bytes.count < offset + buffer.count {
            inode.bytes.append(contentsOf: repeatElement(0, count: offset + buffer.count - inode.bytes.count))
        }
        for i in 0..<buffer.count { inode.bytes[offset + i] = buffer[i] }
        return .success(buffer.count)
    }

    public func pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) -> SyscallResult<Int> {
        guard let h = handles[fd] else { return .failure(SystemErrno(EBADF)) }
        guard let inode = h.inode else { return .failure(SystemErrno(EISDIR)) }
        guard offset >= 0 else { return .failure(SystemErrno(EINVAL)) }
        guard offset < inode.bytes.count else { return .success(0) }
        let n = min(buffer.count, inode.bytes.count - offset)
        for i in 0..<n { buffer[i] = inode.bytes[offset + i] }
        return .success(n)
    }

    public func fdatasync(_ fd: Int32) -> SyscallResult<Void> {
        handles[fd] == nil ? .failure(SystemErrno(EBADF)) : .success(())
    }

    public func fsync(_ fd: Int32) -> SyscallResult<Void> { fdatasync(fd) }

    public func ftruncate(_ fd: Int32, length: Int) -> SyscallResult<Void> {
        guard let h = handles[fd], h.writable, let inode = h.inode else { return .failure(SystemErrno(EBADF)) }
        guard length >= 0 else { return .failure(SystemErrno(EINVAL)) }
        if length < inode.bytes.count {
            inode.bytes.removeSubrange(length...)
        } else {
            inode.bytes.append(contentsOf: repeatElement(0, count: length - inode.bytes.count))
        }
        return .success(())
    }

    public func rename(_ from: String, _ to: String) -> SyscallResult<Void> {
        guard let inode = files[from] else { return .failure(SystemErrno(ENOENT)) }
        guard directories.contains(Self.parent(to)) else { return .failure(SystemErrno(ENOENT)) }
        if directories.contains(to) { return .failure(SystemErrno(EISDIR)) }
        files[from] = nil
        files[to] = inode
        return .success(())
    }

    public func unlink(_ path: String) -> SyscallResult<Void> {
        if directories.contains(path) { return .failure(SystemErrno(EISDIR)) }
        guard files.removeValue(forKey: path) != nil else { return .failure(SystemErrno(ENOENT)) }
        return .success(())
    }

    public func mkdir(_ path: String) -> SyscallResult<Void> {
        if directories.contains(path) || files[path] != nil { return .failure(SystemErrno(EEXIST)) }
        guard directories.contains(Self.parent(path)) else { return .failure(SystemErrno(ENOENT)) }
        directories.insert(path)
        return .success(())
    }

    public func listDirectory(_ path: String) -> SyscallResult<[String]> {
        guard directories.contains(path) else { return .failure(SystemErrno(ENOENT)) }
        let prefix = path == "/" ? "/" : path + "/"
        var names: [String] = []
        for p in files.keys where p.hasPrefix(prefix) {
            let rest = p.dropFirst(prefix.count)
            if !rest.isEmpty && !rest.contains("/") { names.append(String(rest)) }
        }
        for p in directories where p != path && p.hasPrefix(prefix) {
            let rest = p.dropFirst(prefix.count)
            if !rest.isEmpty && !rest.contains("/") { names.append(String(rest)) }
        }
        return .success(names.sorted())
    }

    public func close(_ fd: Int32) -> SyscallResult<Void> {
        handles.removeValue(forKey: fd) == nil ? .failure(SystemErrno(EBADF)) : .success(())
    }

    public func fileSize(_ fd: Int32) -> SyscallResult<Int> {
        guard let h = handles[fd] else { return .failure(SystemErrno(EBADF)) }
        return .success(h.inode?.bytes.count ?? 0)
    }
}
