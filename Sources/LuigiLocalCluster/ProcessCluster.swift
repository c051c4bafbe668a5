import LuigiBase
import LuigiClient
import LuigiWire

#if canImport(Glibc)
import Glibc
#endif

/// A cluster of `luigi-node` processes on loopback, in a temporary
/// directory: each node has its own data directory and log file. Used by
/// `make run`, the multi-process tests and the benchmark. Nodes can be
/// killed (SIGKILL: nothing flushed), stopped (SIGTERM: graceful) and
/// started again on the same data.
public final class ProcessCluster {
    public let binary: String
    public let directory: String
    public let ids: [UInt64]
    public let ports: [UInt64: Int]
    public let httpPorts: [UInt64: Int]
    public let clusterId = "local"
    public let secret: String
    public let groups: Int
    public let extraArguments: [String]
    /// Leave the directory behind (for a post-mortem).
    public var keep = false
    private var pids: [UInt64: pid_t] = [:]
    /// With `proxied`, node `from` reaches peer `to` through `proxies[from]![to]!`.
    public let proxies: [UInt64: [UInt64: FaultProxy]]

    /// `proxied` puts a `FaultProxy` on every directed link between nodes,
    /// so tests can cut and delay them (`isolate`, `heal`, `setDelay`).
    /// Nodes `1...size` start as the cluster; `spare` more ids get ports and
    /// start with `--join` (to be added with `addMember`).
    public let initialSize: Int

    public init(
        binary: String, size: Int = 3, spare: Int = 0, groups: Int = 1, extraArguments: [String] = [], proxied: Bool = false
    ) throws {
        guard access(binary, X_OK) == 0 else { throw LuigiError.invalidArgument("no executable at \(binary)") }
        self.binary = binary
        self.groups = groups
        self.extraArguments = extraArguments
        directory = try makeTemporaryDirectory("luigi-cluster")
        initialSize = size
        ids = (1...UInt64(size + spare)).map { $0 }
        let free = freeLoopbackPorts(2 * (size + spare))
        var ports: [UInt64: Int] = [:]
        var http: [UInt64: Int] = [:]
        for (i, id) in ids.enumerated() {
            ports[id] = free[2 * i]
            http[id] = free[2 * i + 1]
        }
        self.ports = ports
        self.httpPorts = http
        var proxies: [UInt64: [UInt64: FaultProxy]] = [:]
        if proxied {
            for from in ids {
                for to in ids where to != from { proxies[from, default: [:]][to] = try FaultProxy(target: ports[to]!) }
            }
        }
        self.proxies = proxies
        var rng = SystemRandomNumberGenerator()
        secret = (0..<32).map { _ in String(UInt8.random(in: 0...15, using: &rng), radix: 16) }.joined()
        try writeFile("\(directory)/secret", Array(secret.utf8))
    }

    deinit {
        for id in ids { kill(id) }
        for links in proxies.values { for proxy in links.values { proxy.stop() } }
        if !keep { removeDirectory(directory) }
    }

    /// The initial members' endpoints (spares join later).
    public var endpoints: [String] { ids.prefix(initialSize).map { "127.0.0.1:\(ports[$0]!)" } }
    public func endpoint(_ id: UInt64) -> String { "127.0.0.1:\(ports[id]!)" }
    public func logPath(_ id: UInt64) -> String { "\(directory)/node-\(id).log" }
    public func isRunning(_ id: UInt64) -> Bool { pids[id] != nil }

    public func credentials() throws -> ClusterCredentials {
        try ClusterCredentials(clusterId: clusterId, secret: secret)
    }

    public func client(endpoints: [String]? = nil, timeoutMillis: Int = 5000) throws -> Client {
        var options = Client.Options()
        options.timeoutMillis = timeoutMillis
        return try Client(endpoints: endpoints ?? self.endpoints, credentials: try credentials(), options: options)
    }

    /// Starts node `id` (on its existing data, if any). Its output is
    /// appended to `logPath(id)`.
    public func start(_ id: UInt64) throws {
        guard pids[id] == nil else { return }
        var arguments = [
            binary, "serve", "--id", "\(id)", "--listen", endpoint(id), "--http", "127.0.0.1:\(httpPorts[id]!)",
            "--data-dir", "\(directory)/node-\(id)", "--cluster-id", clusterId, "--secret-file", "\(directory)/secret",
            "--groups", "\(groups)",
        ]
        // The initial members know each other; a spare also knows itself
        // and joins (the others learn its address from the log).
        let joining = id > UInt64(initialSize)
        for member in ids where member <= UInt64(initialSize) || member == id {
            let address = proxies[id]?[member].map { "127.0.0.1:\($0.port)" } ?? endpoint(member)
            arguments += ["--member", "\(member)=\(address)"]
        }
        if joining { arguments.append("--join") }
        arguments += extraArguments
        pids[id] = try spawn(arguments, output: logPath(id))
    }

    /// Starts the initial members.
    public func startAll() throws { for id in ids.prefix(initialSize) { try start(id) } }

    /// Cuts every link to and from `id` (it can still talk to clients).
    public func isolate(_ id: UInt64) {
        for (from, links) in proxies {
            for (to, proxy) in links where from == id || to == id { proxy.setCut(true) }
        }
    }

    /// Restores every link and removes every delay.
    public func heal() {
        for links in proxies.values {
            for proxy in links.values {
                proxy.setCut(false)
                proxy.setDelay(0)
            }
        }
    }

    /// Holds every chunk on every link for `ms` before forwarding it.
    public func setDelay(_ ms: Int) {
        for links in proxies.values { for proxy in links.values { proxy.setDelay(ms) } }
    }

    /// SIGKILL: the process ends at once, nothing flushed.
    public func kill(_ id: UInt64) { signalAndWait(id, SIGKILL) }

    /// SIGTERM: graceful shutdown; SIGKILL after `graceMillis`.
    public func stop(_ id: UInt64, graceMillis: Int = 5000) {
        guard let pid = pids[id] else { return }
        Glibc.kill(pid, SIGTERM)
        var waited = 0
        while waited < graceMillis {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                pids[id] = nil
                return
            }
            usleep(10_000)
            waited += 10
        }
        kill(id)
    }

    public func stopAll() { for id in ids { stop(id) } }

    private func signalAndWait(_ id: UInt64, _ signal: Int32) {
        guard let pid = pids.removeValue(forKey: id) else { return }
        Glibc.kill(pid, signal)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    /// The node that reports itself leader of `group`, asking each running node.
    public func leader(group: UInt64 = 1) -> UInt64? {
        for id in ids where pids[id] != nil {
            guard let client = try? self.client(endpoints: [endpoint(id)], timeoutMillis: 500),
                let status = try? client.status()
            else { continue }
            if status.contains("\"group\":\(group),\"role\":\"leader\"") { return id }
        }
        return nil
    }

    /// Waits until some node leads `group`; returns it (nil past the deadline).
    public func awaitLeader(group: UInt64 = 1, timeoutMillis: Int = 10_000) -> UInt64? {
        let deadline = monotonicNanoseconds() + UInt64(timeoutMillis) * 1_000_000
        while monotonicNanoseconds() < deadline {
            if let leader = leader(group: group) { return leader }
            usleep(20_000)
        }
        return nil
    }
}

/// The sum of every `"field":N` in a node's /status document (each shard
/// group's `records`, say).
public func statusSum(_ field: String, in status: String) -> UInt64 {
    let prefix = "\"\(field)\":"
    return status.split(separator: ",").filter { $0.hasPrefix(prefix) }
        .reduce(0) { $0 + (UInt64($1.dropFirst(prefix.count).prefix { $0.isNumber }) ?? 0) }
}

// MARK: - Small POSIX helpers (no Foundation)

public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

public func makeTemporaryDirectory(_ prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw LuigiError.state("mkdtemp failed")
    }
    return String(cString: path)
}

public func removeDirectory(_ path: String) {
    guard path.hasPrefix("/tmp/"), !path.contains("'") else { return }
    _ = system("rm -rf '\(path)'")
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    guard let file = fopen(path, "wb") else { throw LuigiError.state("cannot write \(path)") }
    defer { fclose(file) }
    guard fwrite(bytes, 1, bytes.count, file) == bytes.count else { throw LuigiError.state("short write to \(path)") }
}

/// Starts `arguments[0]` with its output appended to `output`.
func spawn(_ arguments: [String], output: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    argv.append(nil)
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
    guard rc == 0 else { throw LuigiError.state("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
    return pid
}

/// Runs a command (searched in PATH) with this process's output; returns its exit status.
public func runAndWait(_ arguments: [String]) throws -> Int32 {
    var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
    argv.append(nil)
    defer { for p in argv { free(p) } }
    var pid: pid_t = 0
    let rc = posix_spawnp(&pid, arguments[0], nil, nil, argv, environ)
    guard rc == 0 else { throw LuigiError.state("cannot start \(arguments[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS by hand (macros are not imported).
    return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// The directory of the running executable (its siblings, like luigi-node).
public func executableDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return "." }
    let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
}

/// Runs `body(i)` for i in 0..<n on n OS threads and waits for all.
public func onThreads(_ n: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Box: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }
    var threads: [pthread_t] = []
    for i in 0..<n {
        let box = Unmanaged.passRetained(Box { body(i) }).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.run()
            return nil
        }, box)
        if rc == 0 { threads.append(thread) } else { Unmanaged<Box>.fromOpaque(box).release() }
    }
    for thread in threads { pthread_join(thread, nil) }
}
