import CLuigi
import LuigiCore
import LuigiStorage

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Failures that belong to the ABI layer itself (bad pointers, handles, sizes).
enum ABIError: Error {
    case invalidArgument(String)
    case invalidHandle(String)
    case bufferTooSmall(String)
    case outOfRange(String)
}

/// The calling thread's last error message, owned by a pthread key so each
/// thread keeps its own and it is freed when the thread exits.
private let errorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

func setLastError(_ message: String) {
    free(pthread_getspecific(errorKey))
    pthread_setspecific(errorKey, strdup(message))
}

func lastError() -> UnsafePointer<CChar> {
    if let p = pthread_getspecific(errorKey) { return UnsafePointer(p.assumingMemoryBound(to: CChar.self)) }
    return staticCString("\0")
}

func staticCString(_ s: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(s.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// Runs one exported call: any thrown error becomes a status code plus the
/// thread's last error message. Nothing escapes as a trap.
@inline(__always)
func guarded(_ body: () throws -> Void) -> luigi_status {
    do {
        try body()
        return LUIGI_OK
    } catch {
        let (status, message) = statusAndMessage(error)
        setLastError(message)
        return status
    }
}

func statusAndMessage(_ error: any Error) -> (luigi_status, String) {
    switch error {
    case let e as LuigiError:
        switch e {
        case .invalidArgument(let m): return (LUIGI_ERR_INVALID_ARGUMENT, m)
        case .decode(let m): return (LUIGI_ERR_DECODE, m)
        case .notAlgebraic(let m): return (LUIGI_ERR_NOT_ALGEBRAIC, m)
        case .typeConflict(let m): return (LUIGI_ERR_TYPE_CONFLICT, m)
        case .overflow(let m): return (LUIGI_ERR_OVERFLOW, m)
        case .state(let m): return (LUIGI_ERR_STATE, m)
        case .notConverged(let m): return (LUIGI_ERR_NOT_CONVERGED, m)
        case .timeout(let m): return (LUIGI_ERR_TIMEOUT, m)
        case .conflict(let m, _): return (LUIGI_ERR_CONFLICT, m)
        case .unauthenticated(let m): return (LUIGI_ERR_AUTH, m)
        }
    case let e as ABIError:
        switch e {
        case .invalidArgument(let m): return (LUIGI_ERR_INVALID_ARGUMENT, m)
        case .invalidHandle(let m): return (LUIGI_ERR_INVALID_HANDLE, m)
        case .bufferTooSmall(let m): return (LUIGI_ERR_BUFFER_TOO_SMALL, m)
        case .outOfRange(let m): return (LUIGI_ERR_OUT_OF_RANGE, m)
        }
    case let e as StorageError:
        return (LUIGI_ERR_IO, e.description)
    case let e as RaftLogError:
        return (LUIGI_ERR_STATE, "raft log: \(e)")
    default:
        return (LUIGI_ERR_INTERNAL, "internal error: \(error)")
    }
}

/// The common shape of a getter: check the out pointer, compute, then write
/// (so nothing is written when the computation throws).
@inline(__always)
func output<T>(_ out: UnsafeMutablePointer<T>?, _ name: String, _ value: () throws -> T) -> luigi_status {
    guarded {
        let out = try required(out, name)
        out.pointee = try value()
    }
}

// MARK: - Argument helpers

func required<T>(_ p: UnsafeMutablePointer<T>?, _ name: String) throws -> UnsafeMutablePointer<T> {
    guard let p else { throw ABIError.invalidArgument("\(name) is NULL") }
    return p
}

/// A versioned struct the caller fills in must carry the version this library knows.
func checkVersion(_ version: UInt32, _ expected: some BinaryInteger, _ name: String) throws {
    guard version == UInt32(expected) else {
        throw ABIError.invalidArgument("version is \(version); set it to \(name) (\(expected))")
    }
}

/// A caller's `size_t` length arrives as `Int`: a value of 2^63 or more is
/// negative here. Anything above LUIGI_MAX_LENGTH is refused before reading.
func checkLength(_ len: Int, _ name: String) throws {
    guard len >= 0, len <= Int(LUIGI_MAX_LENGTH) else {
        throw ABIError.invalidArgument(
            "\(name) length \(UInt(bitPattern: len)) is above LUIGI_MAX_LENGTH (\(LUIGI_MAX_LENGTH))")
    }
}

func bytes(_ data: UnsafePointer<UInt8>?, _ len: Int, _ name: String) throws -> [UInt8] {
    try checkLength(len, name)
    guard len > 0 else { return [] }
    guard let data else { throw ABIError.invalidArgument("\(name) is NULL but its length is \(len)") }
    return Array(UnsafeBufferPointer(start: data, count: len))
}

func utf8(_ data: UnsafePointer<CChar>?, _ len: Int, _ name: String) throws -> String {
    try checkLength(len, name)
    guard len > 0 else { return "" }
    guard let data else { throw ABIError.invalidArgument("\(name) is NULL but its length is \(len)") }
    let raw = UnsafeRawBufferPointer(start: data, count: len).bindMemory(to: UInt8.self)
    // Keys are usually ASCII: a plain byte scan is much cheaper than the
    // general validator, and ASCII is always valid UTF-8.
    if raw.allSatisfy({ $0 < 0x80 }) { return String(decoding: raw, as: UTF8.self) }
    guard let s = String(validating: raw, as: UTF8.self) else {
        throw ABIError.invalidArgument("\(name) is not valid UTF-8")
    }
    return s
}

/// Hands bytes to the caller in a library-owned buffer (malloc'd).
func fill(_ out: UnsafeMutablePointer<luigi_buffer>, with data: [UInt8]) throws {
    guard let p = malloc(max(data.count, 1))?.assumingMemoryBound(to: UInt8.self) else {
        throw ABIError.invalidArgument("out of memory allocating \(data.count) bytes")
    }
    data.withUnsafeBufferPointer { src in
        if let base = src.baseAddress { p.update(from: base, count: data.count) }
    }
    out.pointee = luigi_buffer(data: p, len: data.count)
}
