import Logging
import LuigiBase
import LuigiClient
import LuigiLocalCluster
import LuigiNode
import LuigiWire

#if canImport(Glibc)
import Glibc
#endif

let testSecret = "test-secret-0123456789"

func testCredentials() throws -> ClusterCredentials {
    try ClusterCredentials(clusterId: "test-cluster", secret: testSecret)
}

/// N nodes of one cluster in this process, each with its own event loops
/// and data directory, on loopback.
final class LocalCluster {
    let directory: String
    /// Unique per cluster: the test suites run at once in one process, and
    /// a port one cluster released may be reused by another while the first
    /// cluster's links still dial it. Only the cluster id keeps them apart
    /// (as it does for real clusters that share a secret).
    let clusterId = "test-\(UInt64.random(in: 1...UInt64.max))"
    let ids: [UInt64]
    let members: [UInt64: Address]
    private(set) var nodes: [UInt64: LuigiNode] = [:]
    var tune: (inout NodeConfig) -> Void

    init(size: Int = 3, groups: Int = 1, tune: @escaping (inout NodeConfig) -> Void = { _ in }) throws {
        directory = try makeTemporaryDirectory("luigi-node-test")
        ids = (1...UInt64(size)).map { $0 }
        let ports = freeLoopbackPorts(size)
        var members: [UInt64: Address] = [:]
        for (i, id) in ids.enumerated() { members[id] = try Address(host: "127.0.0.1", port: ports[i]) }
        self.members = members
        self.tune = { config in
            config.groups = groups
            tune(&config)
        }
    }

    func config(_ id: UInt64) throws -> NodeConfig {
        var config = NodeConfig(
            nodeId: id, listen: members[id]!, http: try Address(host: "127.0.0.1", port: 0),
            dataDirectory: "\(directory)/node-\(id)", credentials: try credentials(), members: members)
        tune(&config)
        return config
    }

    func start(_ id: UInt64) async throws {
        var logger = Logger(label: "test-node-\(id)")
        logger.logLevel = .warning
        let node = try LuigiNode(config: try config(id), logger: logger)
        try await node.start()
        nodes[id] = node
    }

    func startAll() async throws {
        for id in ids { try await start(id) }
    }

    func stop(_ id: UInt64) async {
        await nodes.removeValue(forKey: id)?.shutdown()
    }

    func stopAll() async {
        for id in ids { await stop(id) }
    }

    var endpoints: [String] { ids.map { members[$0]!.description } }

    func credentials(secret: String = testSecret) throws -> ClusterCredentials {
        try ClusterCredentials(clusterId: clusterId, secret: secret)
    }

    func client(endpoints: [String]? = nil, timeoutMillis: Int = 5000) throws -> Client {
        var options = Client.Options()
        options.timeoutMillis = timeoutMillis
        return try Client(endpoints: endpoints ?? self.endpoints, credentials: try credentials(), options: options)
    }

    /// The leader of `group` as the nodes report it (nil while none has won).
    func leader(group: UInt64 = 1) throws -> UInt64? {
        for id in ids where nodes[id] != nil {
            let client = try self.client(endpoints: [members[id]!.description], timeoutMillis: 1000)
            guard let status = try? client.status() else { continue }
            if status.contains("\"group\":\(group),\"role\":\"leader\"") { return id }
        }
        return nil
    }

    /// A counter's value in a node's /metrics text (0 when absent).
    func counter(_ name: String, node: UInt64 = 1) -> Int {
        guard let text = nodes[node]?.metricsText() else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Int(Double(line.split(separator: " ").last ?? "0") ?? 0)
        }
        return 0
    }

    deinit { removeDirectory(directory) }
}

/// Polls `condition` every 20 ms for up to `seconds`; true once it holds.
func eventually(seconds: Double = 5, _ condition: () -> Bool) async -> Bool {
    let end = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while monotonicNanoseconds() < end {
        if condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return condition()
}
