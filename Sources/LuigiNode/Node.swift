import Logging
import LuigiBase
import LuigiWire
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A Luigi node: its Raft groups on the host thread, a TCP port for peers
/// and clients, links to every peer, and the HTTP operations port. As a
/// swift-service-lifecycle `Service`, `run()` serves until graceful shutdown
/// (SIGTERM in `luigi-node serve`), then stops accepting, answers what is
/// pending, and closes its logs.
public final class LuigiNode: Service, Sendable {
    public let config: NodeConfig
    let logger: Logger
    let metrics = NodeMetrics()
    private let network: MultiThreadedEventLoopGroup
    private let hostGroup: MultiThreadedEventLoopGroup
    private let core: NodeCore
    private let links: PeerTable
    private let slots: ConnectionSlots

    private struct Bound {
        var server: (any Channel)?
        var http: (any Channel)?
    }
    private let bound = Mutex(Bound())

    /// Checks `config`; opens nothing yet (see `start`).
    public init(config: NodeConfig, logger: Logger, networkThreads: Int = 1) throws {
        self.config = try config.validated()
        self.logger = logger
        self.network = MultiThreadedEventLoopGroup(numberOfThreads: max(1, networkThreads))
        self.hostGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let metrics = self.metrics
        self.slots = ConnectionSlots(maxHandshakes: self.config.maxHandshakes, maxClients: self.config.maxConnections) {
            metrics.connectionsOpen.record($0)
        }
        self.core = NodeCore(config: self.config, loop: hostGroup.next(), logger: logger, metrics: metrics)
        let links = PeerTable(config: self.config, group: network, logger: logger, metrics: metrics)
        self.links = links
        core.sendToPeer = { peer, frames in links.send(frames, to: peer) }
        core.onPeers = { peers in links.update(peers) }
    }

    /// Opens the groups, binds the ports and starts the peer links. Returns
    /// the bound (peer/client, HTTP) addresses (port 0 in the config binds
    /// an ephemeral port).
    @discardableResult
    public func start() async throws -> (listen: Address, http: Address?) {
        let core = core
        try await core.loop.submit { try core.start() }.get()
        let server = try await ServerBootstrap(group: network)
            // Room for a burst of connects (256 clients at once): a dropped
            // SYN costs the client a one-second retransmit.
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture { try self.accept(channel) }
            }
            .bind(host: config.listen.host, port: config.listen.port).get()
        var httpChannel: (any Channel)?
        if let http = config.http {
            httpChannel = try await ServerBootstrap(group: network)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                        try channel.pipeline.syncOperations.addHandler(HTTPEndpoints(core: core))
                    }
                }
                .bind(host: http.host, port: http.port).get()
        }
        bound.withLock {
            $0.server = server
            $0.http = httpChannel
        }
        // What the groups' address books already hold wins over the config.
        // On the host loop, so a later change (`onPeers`, also on it) cannot be overtaken.
        try await core.loop.submit { [links] in links.update(core.peers) }.get()
        let listen = try Address(host: config.listen.host, port: server.localAddress?.port ?? config.listen.port)
        let http = try httpChannel.map { try Address(host: config.http!.host, port: $0.localAddress?.port ?? 0) }
        logger.info(
            "node started",
            metadata: [
                "node": "\(config.nodeId)", "listen": "\(listen)", "http": "\(http.map { "\($0)" } ?? "-")",
                "groups": "\(config.groups)", "data": "\(config.dataDirectory)",
            ])
        return (listen, http)
    }

    /// The Prometheus text that GET /metrics serves.
    public func metricsText() -> String { String(decoding: metrics.text(), as: UTF8.self) }

    /// Gives the connection a handshake slot (closing the oldest one still
    /// in a handshake when all are taken) and installs its handler.
    private func accept(_ channel: any Channel) throws {
        let (slots, metrics) = (slots, metrics)
        let (slot, evicted) = slots.admit(channel)
        if let evicted {
            metrics.connectionsEvicted.increment()
            evicted.close(promise: nil)
        }
        channel.closeFuture.whenComplete { _ in slots.closed(slot) }
        metrics.connectionsAccepted.increment()
        try channel.pipeline.syncOperations.addHandler(
            ServerConnection(core: core) { role in
                switch slots.authenticated(slot, as: role) {
                case .busy:
                    metrics.connectionsRefused.increment()
                    return false
                case .admitted(let replacing):
                    if let replacing {
                        metrics.connectionsEvicted.increment()
                        replacing.close(promise: nil)
                    }
                    return true
                }
            })
    }

    /// Stops the links, closes the ports, answers pending requests and
    /// closes every WAL. Safe to call twice.
    public func shutdown() async {
        links.stopAll()
        let (server, http) = bound.withLock { b in
            defer { b = Bound() }
            return (b.server, b.http)
        }
        try? await server?.close()
        try? await http?.close()
        let core = core
        try? await core.loop.submit { core.stop() }.get()
        try? await network.shutdownGracefully()
        try? await hostGroup.shutdownGracefully()
        logger.info("node stopped", metadata: ["node": "\(config.nodeId)"])
    }

    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await shutdown()
    }
}
