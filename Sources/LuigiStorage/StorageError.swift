#if canImport(Glibc)
import Glibc
#endif

/// The file system calls LuigiStorage makes, each named once. Errors, fault
/// rules and syscall counters all speak in these names.
public enum Syscall: String, Sendable, CaseIterable, CustomStringConvertible {
    case open
    case pwrite
    case pread
    case fdatasync
    case fsync
    case ftruncate
    case rename
    case unlink
    case mkdir
    case listDirectory
    case close
    case fileSize

    public var description: String { rawValue }
}

/// Every failure of LuigiStorage. Failed system calls and bad bytes on disk
/// become one of these; nothing in the module traps on them.
public indirect enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed with `errno` (ENOSPC, EIO, ...). EINTR and short
    /// transfers never surface: they are retried.
    case io(path: String, operation: Syscall, errno: Int32)
    /// Bytes at `offset` of `path` fail their framing or checksum and are not
    /// a torn tail (or a file needed to recover is missing or unusable).
    case corrupt(path: String, offset: Int, reason: String)
    /// An earlier write or sync failed, so what reached the disk is unknown;
    /// this instance refuses further writes and syncs. Reopen to continue from
    /// what is durable.
    case failed(StorageError)
    /// Used after `close()`.
    case closed(path: String)
    /// A single WAL record cannot be this large.
    case recordTooLarge(bytes: Int, limit: Int)

    /// The errno of the failed call, looking through `.failed`.
    public var errno: Int32? {
        switch self {
        case .io(_, _, let code): return code
        case .failed(let first): return first.errno
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .io(let path, let op, let code):
            return "\(op) \(path): \(errnoName(code)) (\(String(cString: strerror(code))))"
        case .corrupt(let path, let offset, let reason):
            return "corrupt \(path) at offset \(offset): \(reason)"
        case .failed(let first):
            return "storage failed earlier and must be reopened: \(first)"
        case .closed(let path):
            return "\(path) is closed"
        case .recordTooLarge(let bytes, let limit):
            return "WAL record of \(bytes) bytes exceeds the limit of \(limit)"
        }
    }
}

func errnoName(_ code: Int32) -> String {
    switch code {
    case EINTR: return "EINTR"
    case EIO: return "EIO"
    case ENOSPC: return "ENOSPC"
    case ENOENT: return "ENOENT"
    case EEXIST: return "EEXIST"
    case EBADF: return "EBADF"
    case EACCES: return "EACCES"
    case EDQUOT: return "EDQUOT"
    case EROFS: return "EROFS"
    default: return "errno \(code)"
    }
}
