// luigi-node: run a node of a Luigi cluster, or talk to one.
import ArgumentParser
import Configuration
import Logging
import LuigiBase
import LuigiClient
import LuigiNode
import LuigiWire
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

@main
struct LuigiNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "luigi-node",
        abstract: "A Luigi storage node: Raft key-value groups over TCP, with a client.",
        subcommands: [Serve.self, Put.self, Get.self, Delete.self, Status.self, Member.self],
        defaultSubcommand: Serve.self
    )
}

/// The cluster's id and secret, shared by `serve` and the client commands.
/// The secret is read from a file or the environment, never from the
/// command line (which other users can see in `ps`).
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("cluster-id"), help: "The cluster's id (also `cluster.id` in the config file).")
    var clusterId: String?

    @Option(
        name: .customLong("secret-file"),
        help: "File holding the cluster secret (>= 16 bytes; or set LUIGI_CLUSTER_SECRET; or `cluster.secret_file`).")
    var secretFile: String?

    func credentials(fileConfig: ConfigReader?) throws -> ClusterCredentials {
        guard let id = clusterId ?? fileConfig?.string(forKey: "cluster.id") else {
            throw ValidationError("no cluster id: pass --cluster-id or set cluster.id in the config file")
        }
        if let path = secretFile ?? fileConfig?.string(forKey: "cluster.secret_file") {
            return try ClusterCredentials(clusterId: id, secret: try readSecret(path))
        }
        if let env = getenv("LUIGI_CLUSTER_SECRET") {
            return try ClusterCredentials(clusterId: id, secret: String(cString: env))
        }
        throw ValidationError("no cluster secret: pass --secret-file or set LUIGI_CLUSTER_SECRET")
    }
}

func readSecret(_ path: String) throws -> [UInt8] {
    guard let file = fopen(path, "rb") else { throw ValidationError("cannot read secret file \(path)") }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&chunk, 1, chunk.count, file)
        if n <= 0 { break }
        bytes += chunk[0..<n]
        guard bytes.count <= 1 << 16 else { throw ValidationError("secret file \(path) is over 64 KiB") }
    }
    while let last = bytes.last, last == 10 || last == 13 || last == 32 { bytes.removeLast() }
    return bytes
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node until SIGTERM or SIGINT (then shut down gracefully).",
        discussion: """
            Flags override the JSON config file (--config). Config keys: node.id, node.listen, node.http,
            node.data_dir, cluster.id, cluster.secret_file, cluster.members (["1=127.0.0.1:7001", ...]),
            raft.groups, raft.tick_ms, raft.election_ticks, raft.heartbeat_ticks, raft.compact_after,
            log.level.
            """)

    @Option(help: "JSON config file.") var config: String?
    @Option(help: "This node's id (>= 1).") var id: UInt64?
    @Option(help: "host:port for peers and clients.") var listen: String?
    @Option(help: "host:port for /metrics, /health and /status.") var http: String?
    @Option(name: .customLong("data-dir"), help: "This node's data directory.") var dataDir: String?
    @Option(name: .customLong("member"), help: "A member as id=host:port (repeat for each, this node included).")
    var members: [String] = []
    @Option(help: "Key-value Raft groups to run (ids 1...n).") var groups: Int?
    @Option(name: .customLong("replica-groups"), help: "Replica groups to run (algebraic, ids 1001...1000+n).")
    var replicaGroups: Int?
    @Option(help: "Watermark shards to run (sharded transactions; shard s is group 2001+s).") var shards: Int?
    @Option(name: .customLong("shard-workers"), help: "Streams per shard (default 4).") var shardWorkers: Int?
    @Option(name: .customLong("tick-ms"), help: "Milliseconds per Raft tick.") var tickMs: Int?
    @Option(name: .customLong("election-ticks"), help: "Ticks before a follower campaigns.") var electionTicks: Int?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?
    @Flag(help: "Join a running cluster: wait to be added with `luigi-node member add` (--member lists the current members and this node).")
    var join = false
    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        var file: ConfigReader?
        if let config {
            file = ConfigReader(provider: try await FileProvider<JSONSnapshot>(filePath: .init(config)))
        }
        let level = try logLevelNamed(logLevel ?? file?.string(forKey: "log.level") ?? "info")
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let nodeConfig = try buildConfig(file)
        var logger = Logger(label: "luigi-node")
        logger[metadataKey: "node"] = "\(nodeConfig.nodeId)"
        let node = try LuigiNode(config: nodeConfig, logger: logger)
        let services = ServiceGroup(
            configuration: .init(services: [node], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await services.run()
    }

    func buildConfig(_ file: ConfigReader?) throws -> NodeConfig {
        func required<T>(_ value: T?, _ what: String) throws -> T {
            guard let value else { throw ValidationError("missing \(what)") }
            return value
        }
        let nodeId = try required(id ?? file?.int(forKey: "node.id").flatMap { UInt64(exactly: $0) }, "node id (--id or node.id)")
        let listen = try Address(parsing: try required(listen ?? file?.string(forKey: "node.listen"), "--listen or node.listen"))
        let http = try (http ?? file?.string(forKey: "node.http")).map { try Address(parsing: $0) }
        let dataDir = try required(dataDir ?? file?.string(forKey: "node.data_dir"), "--data-dir or node.data_dir")
        let memberList = members.isEmpty ? (file?.stringArray(forKey: "cluster.members") ?? []) : members
        var table: [UInt64: Address] = [:]
        for entry in memberList {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let mid = UInt64(parts[0]) else {
                throw ValidationError("member '\(entry)' is not id=host:port")
            }
            guard table[mid] == nil else { throw ValidationError("member \(mid) given twice") }
            table[mid] = try Address(parsing: String(parts[1]))
        }
        if table.isEmpty { table[nodeId] = listen }
        var config = NodeConfig(
            nodeId: nodeId, listen: listen, http: http, dataDirectory: dataDir,
            credentials: try cluster.credentials(fileConfig: file), members: table)
        if let g = groups ?? file?.int(forKey: "raft.groups") { config.groups = g }
        if let r = replicaGroups ?? file?.int(forKey: "raft.replica_groups") { config.replicaGroups = r }
        if let s = shards ?? file?.int(forKey: "watermark.shards") { config.shards = s }
        if let w = shardWorkers ?? file?.int(forKey: "watermark.workers") { config.shardWorkers = w }
        if let t = file?.int(forKey: "watermark.tick_us") { config.shardTickMicros = t }
        if let a = file?.int(forKey: "raft.anti_entropy_ms") { config.antiEntropyMillis = a }
        if let t = tickMs ?? file?.int(forKey: "raft.tick_ms") { config.tickMillis = t }
        if let e = electionTicks ?? file?.int(forKey: "raft.election_ticks") { config.electionTicks = e }
        if let h = file?.int(forKey: "raft.heartbeat_ticks") { config.heartbeatTicks = h }
        if let c = file?.int(forKey: "raft.compact_after") { config.compactAfter = c }
        config.join = join || (file?.bool(forKey: "node.join") ?? false)
        return try config.validated()
    }
}

func logLevelNamed(_ name: String) throws -> Logger.Level {
    guard let level = Logger.Level(rawValue: name) else { throw ValidationError("unknown log level '\(name)'") }
    return level
}

/// Options every client command takes.
struct ClientOptions: ParsableArguments {
    @Option(name: .customLong("endpoints"), help: "Comma-separated host:port list of nodes.")
    var endpoints: String = "127.0.0.1:7001"
    @Option(help: "Raft group.") var group: UInt64 = 1
    @Option(name: .customLong("timeout-ms"), help: "Per-call deadline.") var timeoutMs: Int = 5000
    @OptionGroup var cluster: ClusterOptions

    func client() throws -> Client {
        var options = Client.Options()
        options.group = group
        options.timeoutMillis = timeoutMs
        return try Client(
            endpoints: endpoints.split(separator: ",").map(String.init), credentials: try cluster.credentials(fileConfig: nil),
            options: options)
    }
}

struct Put: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Put a key (linearizable, exactly once).")
    @Argument var key: String
    @Argument var value: String
    @OptionGroup var options: ClientOptions
    func run() throws { try options.client().put(key, Array(value.utf8)) }
}

struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Get a key (linearizable); exit 1 when absent.")
    @Argument var key: String
    @OptionGroup var options: ClientOptions
    func run() throws {
        guard let value = try options.client().get(key) else { throw ExitCode(1) }
        print(String(decoding: value, as: UTF8.self))
    }
}

struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a key; exit 1 when it was absent.")
    @Argument var key: String
    @OptionGroup var options: ClientOptions
    func run() throws { if try !options.client().delete(key) { throw ExitCode(1) } }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a node's status (JSON).")
    @OptionGroup var options: ClientOptions
    func run() throws { print(try options.client().status()) }
}

struct Member: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Change a running cluster's membership (every group, one change at a time).",
        subcommands: [Add.self, Remove.self])

    /// Every group of the cluster: key-value groups 1...groups, replica
    /// groups 1001...1000+replicaGroups, shard groups 2001...2000+shards.
    struct Groups: ParsableArguments {
        @Option(help: "Key-value groups the cluster runs.") var groups: UInt64 = 1
        @Option(name: .customLong("replica-groups"), help: "Replica groups the cluster runs.") var replicaGroups: UInt64 = 0
        @Option(help: "Watermark shards the cluster runs.") var shards: UInt64 = 0
        var all: [UInt64] {
            Array(1...max(groups, 1)) + (0..<replicaGroups).map { NodeConfig.replicaGroupBase + 1 + $0 }
                + (0..<shards).map { NodeConfig.shardGroupBase + 1 + $0 }
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a node (started with --join) as a voter of every group.")
        @Option(help: "The new node's id.") var id: UInt64
        @Option(help: "The new node's host:port.") var address: String
        @OptionGroup var groups: Groups
        @OptionGroup var options: ClientOptions
        func run() throws {
            let client = try options.client()
            // Key-value groups first: their address books tell every node where the new one listens.
            for group in groups.all { try client.addMember(id, address: address, group: group) }
            print("node \(id) at \(address) is a voter of groups \(groups.all)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a node from every group.")
        @Option(help: "The node's id.") var id: UInt64
        @OptionGroup var groups: Groups
        @OptionGroup var options: ClientOptions
        func run() throws {
            let client = try options.client()
            for group in groups.all { try client.removeMember(id, group: group) }
            print("node \(id) is no longer a member of groups \(groups.all)")
        }
    }
}
