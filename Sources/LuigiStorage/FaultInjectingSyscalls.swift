#if canImport(Glibc)
import Glibc
import LuigiBase
import LuigiRaft
#endif

/// A fault to inject into one system call.
public enum InjectedFault: Equatable, Sendable {
    /// The call fails with EINTR and does nothing.
    case eintr
    /// `pwrite`/`pread` transfers a random non-empty strict prefix of the
    /// buffer (other calls: no effect).
    case short
    /// The call fails with this errno (ENOSPC, EIO, ...) and does nothing.
    case error(Int32)
}

/// A `Syscalls` wrapper for tests: counts every call by kind, fails scripted
/// calls, and simulates a machine crash.
///
/// Crash model: per file it keeps the length made durable by the last
/// successful `fdatasync`/`fsync` of that file, and whether its directory
/// entry is durable (a file created, or renamed into place, counts only once
/// its directory was fsynced). `crash()` truncates every file to its durable
/// length — or, with torn writes, to that length plus a random prefix of the
/// unsynced tail — removes files whose creation was never made durable,
/// moves back files whose rename was never made durable, and invalidates
/// every open descriptor. Simplifications: `unlink` and `ftruncate` take
/// effect at once; a lost rename onto an existing name brings back that
/// file's durable bytes; torn writes keep a prefix (never reorder or garble
/// pages).
///
/// Descriptors handed out are virtual (never reused), so a stale descriptor
/// kept by a crashed instance fails with EBADF instead of reaching a new file.
public final class FaultInjectingSyscalls: Syscalls {
    private final class FileModel {
        var syncedLength: Int
        var entryDurable: Bool
        /// The durable name this file had before an unsynced rename.
        var renamedFrom: String?
        /// The durable file an unsynced rename replaced: (its length, bytes).
        var replaced: [UInt8]?
        init(syncedLength: Int, entryDurable: Bool) {
            self.syncedLength = syncedLength
            self.entryDurable = entryDurable
        }
    }

    private struct Handle {
        var realFD: Int32
        var path: String
        var model: FileModel?  // nil for directories
    }

    private struct Rule {
        var call: Syscall
        var fault: InjectedFault
        var skip: Int
        var hits: Int
        var pathContaining: String?
    }

    private struct RandomRule {
        var call: Syscall
        var fault: InjectedFault
        var probability: Double
        var pathContaining: String?
    }

    public let underlying: any Syscalls
    /// When true, fdatasync/fsync update the crash model but skip the real
    /// call: durability is simulated, and tests run at memory speed.
    public var simulateSync: Bool
    private var rng: SplitMix64
    private var handles: [Int32: Handle] = [:]
    private var nextFD: Int32 = 1000
    private var models: [String: FileModel] = [:]
    private var rules: [Rule] = []
    private var randomRules: [RandomRule] = []
    private var counts: [Syscall: Int] = [:]
    /// How many faults fired so far.
    public private(set) var injectedCount = 0
    /// Calls of each kind so far (failed and faulted ones included).
    public func count(_ call: Syscall) -> Int { counts[call, default: 0] }
    public func resetCounts() { counts = [:] }

    public init(underlying: any Syscalls = PosixSyscalls(), seed: UInt64 = 0, simulateSync: Bool = true) {
        self.underlying = underlying
        self.rng = SplitMix64(seed: seed)
        self.simulateSync = simulateSync
    }

    /// Fails the `nth` next call of `call` (1 = the very next one) whose path
    /// contains `pathContaining` (nil: any), and the `times - 1` matching calls
    /// after it.
    public func inject(_ fault: InjectedFault, on call: Syscall, nth: Int = 1, times: Int = 1, pathContaining: String? = nil) {
        precondition(nth >= 1 && times >= 1)
        rules.append(Rule(call: call, fault: fault, skip: nth - 1, hits: times, pathContaining: pathContaining))
    }

    /// Fails each matching call of `call` with probability `probability`
    /// (seeded), until `clearFaults()`. Scripted faults take precedence.
    public func injectRandomly(_ fault: InjectedFault, on call: Syscall, probability: Double, pathContaining: String? = nil) {
        randomRules.append(RandomRule(call: call, fault: fault, probability: probability, pathContaining: pathContaining))
    }

    /// Drops every fault rule, scripted or random.
    public func clearFaults() {
        rules.removeAll()
        randomRules.removeAll()
    }

    // MARK: - Fault matching

    private func fault(for call: Syscall, path: String) -> InjectedFault? {
        counts[call, default: 0] += 1
        var chosen: Int? = nil
        for i in rules.indices where rules[i].call == call && rules[i].hits > 0 {
            if let part = rules[i].pathContaining, !path.contains(part) { continue }
            if rules[i].skip > 0 {
                rules[i].skip -= 1
            } else if chosen == nil {
                chosen = i
            }
        }
        var fault: InjectedFault? = nil
        if let i = chosen {
            rules[i].hits -= 1
            fault = rules[i].fault
            rules.removeAll { $0.hits == 0 }
        } else {
            for chaos in randomRules where chaos.call == call {
                if let part = chaos.pathContaining, !path.contains(part) { continue }
                if Double.random(in: 0..<1, using: &rng) < chaos.probability {
                    fault = chaos.fault
                    break
                }
            }
        }
        if fault != nil { injectedCount += 1 }
        return fault
    }

    /// EINTR or an errno for a call with no partial effect.
    private func failure<T>(_ fault: InjectedFault?) -> SyscallResult<T>? {
        switch fault {
        case .eintr: return .failure(SystemErrno(EINTR))
        case .error(let code): return .failure(SystemErrno(code))
        case .short, nil: return nil
        }
    }

    private func handle(_ fd: Int32) -> Handle? { handles[fd] }

    // MARK: - Syscalls

    public func open(_ path: String, _ mode: OpenMode) -> SyscallResult<Int32> {
        if let f: SyscallResult<Int32> = failure(fault(for: .open, path: path)) { return f }
        var existed = true
        if mode.creates {
            switch underlying.open(path, .read) {
            case .success(let fd): _ = underlying.close(fd)
            case .failure: existed = false
            }
        }
        let real: Int32
        switch underlying.open(path, mode) {
        case .success(let fd): real = fd
        case .failure(let e): return .failure(e)
        }
        var model: FileModel? = nil
        if mode != .directory {
            if let known = models[path] {
                model = known
                if mode == .createOrTruncate { known.syncedLength = 0 }
            } else {
                let size = (try? underlying.fileSize(real).get()) ?? 0
                let m = existed
                    ? FileModel(syncedLength: mode == .createOrTruncate ? 0 : size, entryDurable: true)
                    : FileModel(syncedLength: 0, entryDurable: false)
                models[path] = m
                model = m
            }
        }
        let fd = nextFD
        nextFD += 1
        handles[fd] = Handle(realFD: real, path: path, model: model)
        return .success(fd)
    }

    public func pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, offset: Int) -> SyscallResult<Int> {
        let f = fault(for: .pwrite, path: handle(fd)?.path ?? "")
        if let r: SyscallResult<Int> = failure(f) { return r }
        guard let h = handle(fd) else { return .failure(SystemErrno(EBADF)) }
        if f == .short && buffer.count > 1 {
            let n = Int.random(in: 1..<buffer.count, using: &rng)
            return underlying.pwrite(h.realFD, UnsafeRawBufferPointer(rebasing: buffer[..<n]), offset: offset)
        }
        return underlying.pwrite(h.realFD, buffer, offset: offset)
    }

    public func pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, offset: Int) -> SyscallResult<Int> {
        let f = fault(for: .pread, path: handle(fd)?.path ?? "")
        if let r: SyscallResult<Int> = failure(f) { return r }
        guard let h = handle(fd) else { return .failure(SystemErrno(EBADF)) }
        if f == .short && buffer.count > 1 {
            let n = Int.random(in: 1..<buffer.count, using: &rng)
            return underlying.pread(h.realFD, UnsafeMutableRawBufferPointer(rebasing: buffer[..<n]), offset: offset)
        }
        return underlying.pread(h.realFD, buffer, offset: offset)
    }

    private func sync(_ call: Syscall, _ fd: Int32) -> SyscallResult<Void> {
        if let r: SyscallResult<Void> = failure(fault(for: call, path: handle(fd)?.path ?? "")) { return r }
        guard let h = handle(fd) else { return .failure(SystemErrno(EBADF)) }
        if !simulateSync {
            let r = call == .fsync ? underlying.fsync(h.realFD) : underlying.fdatasync(h.realFD)
            if case .failure = r { return r }
        }
        if let model = h.model {
            if case .success(let size) = underlying.fileSize(h.realFD) { model.syncedLength = size }
        } else {
            // A directory: every entry change inside it is now durable.
            let prefix = joinPath(h.path, "")
            for (path, model) in models where path.hasPrefix(prefix) && !path.dropFirst(prefix.count).contains("/") {
                model.entryDurable = true
                model.renamedFrom = nil
                model.replaced = nil
            }
        }
        return .success(())
    }

    public func fdatasync(_ fd: Int32) -> SyscallResult<Void> { sync(.fdatasync, fd) }
    public func fsync(_ fd: Int32) -> SyscallResult<Void> { sync(.fsync, fd) }

    public func ftruncate(_ fd: Int32, length: Int) -> SyscallResult<Void> {
        if let r: SyscallResult<Void> = failure(fault(for: .ftruncate, path: handle(fd)?.path ?? "")) { return r }
        guard let h = handle(fd) else { return .failure(SystemErrno(EBADF)) }
        let r = underlying.ftruncate(h.realFD, length: length)
        if case .success = r, let model = h.model { model.syncedLength = min(model.syncedLength, length) }
        return r
    }

    public func rename(_ from: String, _ to: String) -> SyscallResult<Void> {
        if let r: SyscallResult<Void> = failure(fault(for: .rename, path: from)) { return r }
        // A durable file about to be replaced comes back if the rename is
        // lost in a crash: keep its durable bytes.
        var replaced: [UInt8]? = nil
        if models[to]?.entryDurable ?? true, case .success(let fd) = underlying.open(to, .read) {
            let length = models[to]?.syncedLength ?? ((try? underlying.fileSize(fd).get()) ?? 0)
            var bytes = [UInt8](repeating: 0, count: length)
            let n = bytes.withUnsafeMutableBytes { (try? underlying.pread(fd, $0, offset: 0).get()) ?? 0 }
            _ = underlying.close(fd)
            replaced = Array(bytes[..<n])
        }
        let r = underlying.rename(from, to)
        guard case .success = r else { return r }
        let model = models.removeValue(forKey: from) ?? untracked(to)
        if model.entryDurable {
            model.entryDurable = false
            model.renamedFrom = from
        }
        if model.replaced == nil { model.replaced = replaced ?? models[to]?.replaced }
        models[to] = model
        for (fd, h) in handles where h.path == from { handles[fd]?.path = to }
        return r
    }

    /// A file that was on disk before this wrapper saw it: durable as it is.
    private func untracked(_ path: String) -> FileModel {
        var size = 0
        if case .success(let fd) = underlying.open(path, .read) {
            size = (try? underlying.fileSize(fd).get()) ?? 0
            _ = underlying.close(fd)
        }
        return FileModel(syncedLength: size, entryDurable: true)
    }

    public func unlink(_ path: String) -> SyscallResult<Void> {
        if let r: SyscallResult<Void> = failure(fault(for: .unlink, path: path)) { return r }
        let r = underlying.unlink(path)
        if case .success = r { models.removeValue(forKey: path) }
        return r
    }

    public func mkdir(_ path: String) -> SyscallResult<Void> {
        if let r: SyscallResult<Void> = failure(fault(for: .mkdir, path: path)) { return r }
        return underlying.mkdir(path)
    }

    public func listDirectory(_ path: String) -> SyscallResult<[String]> {
        if let r: SyscallResult<[String]> = failure(fault(for: .listDirectory, path: path)) { return r }
        return underlying.listDirectory(path)
    }

    public func close(_ fd: Int32) -> SyscallResult<Void> {
        let f = fault(for: .close, path: handle(fd)?.path ?? "")
        guard let h = handles.removeValue(forKey: fd) else { return .failure(SystemErrno(EBADF)) }
        let r = underlying.close(h.realFD)
        // Like Linux: the descriptor is released even when close reports an error.
        if let injected: SyscallResult<Void> = failure(f) { return injected }
        return r
    }

    public func fileSize(_ fd: Int32) -> SyscallResult<Int> {
        if let r: SyscallResult<Int> = failure(fault(for: .fileSize, path: handle(fd)?.path ?? "")) { return r }
        guard let h = handle(fd) else { return .failure(SystemErrno(EBADF)) }
        return underlying.fileSize(h.realFD)
    }

    // MARK: - Crash

    /// Pulls the plug: every write not made durable is lost (see the type's
    /// documentation). With `tornWrites`, each file keeps a random prefix of
    /// its unsynced tail. Open descriptors stop working; the model restarts
    /// from what is left on disk. Scripted faults stay armed.
    public func crash(tornWrites: Bool = false) {
        for h in handles.values { _ = underlying.close(h.realFD) }
        handles.removeAll()
        for (path, model) in models.sorted(by: { $0.key < $1.key }) {
            var target = path
            if !model.entryDurable {
                if let original = model.renamedFrom {
                    _ = underlying.rename(path, original)
                    target = original
                } else {
                    _ = underlying.unlink(path)
                }
                if let old = model.replaced, case .success(let fd) = underlying.open(path, .createOrTruncate) {
                    _ = old.withUnsafeBytes { underlying.pwrite(fd, $0, offset: 0) }
                    _ = underlying.close(fd)
                }
                if model.renamedFrom == nil { continue }
            }
            guard case .success(let fd) = underlying.open(target, .readWrite) else { continue }
            let size = (try? underlying.fileSize(fd).get()) ?? 0
            var keep = min(model.syncedLength, size)
            if tornWrites && size > keep {
                keep += Int.random(in: 0...(size - keep), using: &rng)
            }
            if keep < size { _ = underlying.ftruncate(fd, length: keep) }
            _ = underlying.close(fd)
        }
        models.removeAll()
    }
}
