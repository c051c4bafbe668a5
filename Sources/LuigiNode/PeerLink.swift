import Logging
import LuigiBase
import LuigiWire
import NIOCore
import NIOPosix
import Synchronization

/// This node's outgoing connection to one peer: Raft messages to that peer
/// travel on it (the peer's own messages come back on the connection it
/// opened to us). It authenticates as `.peer(nodeId)`, and reconnects with
/// exponential backoff and jitter (20 ms doubling to 1 s) whenever it is
/// refused or closed. While it is down, or while the socket's send buffer
/// is full, messages are dropped and counted: Raft retransmits, and a
/// bounded drop beats an unbounded queue.
///
/// A frame over `chunkBytes` (a Raft snapshot, say) is queued as a
/// transfer instead and sent in pieces, one piece written at a time, so the
/// frames of every other group keep flowing between them. A group has at
/// most one transfer of each kind queued (Raft sends a snapshot again while
/// the first is under way; the copy is dropped, as is a frame over what a
/// peer assembles, `maxPeerMessageBytes`); the queue ends with the
/// connection.
final class PeerLink: Sendable {
    let peer: UInt64
    let address: Address
    private let config: NodeConfig
    private let group: any EventLoopGroup
    private let logger: Logger
    private let metrics: NodeMetrics

    private struct Transfer {
        let id: UInt64
        let frame: Frame
        var offset = 0
    }

    private struct State {
        var channel: (any Channel)?
        var ready = false
        var backoffMillis: Int64 = 0
        var stopped = false
        var transfers: [Transfer] = []
        var nextTransfer: UInt64 = 1
        var pieceInFlight = false
    }
    private let state = Mutex(State())

    init(peer: UInt64, address: Address, config: NodeConfig, group: any EventLoopGroup, logger: Logger, metrics: NodeMetrics) {
        self.peer = peer
        self.address = address
        self.config = config
        self.group = group
        self.logger = logger
        self.metrics = metrics
    }

    func start() { connect() }

    func stop() {
        let channel = state.withLock { s -> (any Channel)? in
            s.stopped = true
            s.ready = false
            return s.channel
        }
        channel?.close(promise: nil)
    }

    var isConnected: Bool { state.withLock { $0.ready } }

    var handshakeTimeoutMillis: Int { config.handshakeTimeoutMillis }

    /// Whether `channel` is this link's connection and has finished its handshake.
    func isReady(_ channel: any Channel) -> Bool { state.withLock { $0.ready && $0.channel === channel } }

    /// Sends frames in one flush, or drops them (and counts) when the link
    /// is down or its send buffer is full; queues a frame over `chunkBytes`
    /// as a transfer.
    func send(_ frames: [Frame]) {
        let chunk = config.chunkBytes
        let (channel, queued, refused) = state.withLock { s -> ((any Channel)?, Bool, Int) in
            guard s.ready, let channel = s.channel else { return (nil, false, 0) }
            var queued = false, refused = 0
            for frame in frames where frame.payload.count > chunk {
                guard frame.payload.count <= config.maxPeerMessageBytes,
                    !s.transfers.contains(where: { $0.frame.group == frame.group && $0.frame.kind == frame.kind })
                else {
                    refused += 1
                    continue
                }
                s.transfers.append(Transfer(id: s.nextTransfer, frame: frame))
                s.nextTransfer += 1
                queued = true
            }
            return (channel, queued, refused)
        }
        if refused > 0 { logger.debug("large frames not sent", metadata: ["peer": "\(peer)", "count": "\(refused)"]) }
        let small = frames.filter { $0.payload.count <= chunk }
        guard let channel else {
            metrics.peerMessagesDropped.increment(by: frames.count)
            return
        }
        metrics.peerMessagesDropped.increment(by: refused)
        if queued { channel.eventLoop.execute { self.sendNextPiece(on: channel) } }
        guard !small.isEmpty else { return }
        guard channel.isWritable else {
            metrics.peerMessagesDropped.increment(by: small.count)
            return
        }
        var buffer = channel.allocator.buffer(capacity: small.reduce(0) { $0 + $1.payload.count + 24 })
        for frame in small {
            guard let bytes = try? frame.encoded() else { continue }
            buffer.writeBytes(bytes)
        }
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Writes the next piece of the first transfer, unless one is still
    /// being written; each written piece calls for the next. Runs on the
    /// channel's event loop, so the pieces go out in order.
    private func sendNextPiece(on channel: any Channel) {
        let piece = state.withLock { s -> [UInt8]? in
            guard s.ready, s.channel === channel, !s.pieceInFlight, var t = s.transfers.first else { return nil }
            let chunk = FrameChunk(of: t.frame, transfer: t.id, offset: t.offset, maxBytes: config.chunkBytes)
            // A piece is within a frame's payload (`chunkBytes`), so it encodes.
            guard let bytes = try? Frame(.chunk, group: t.frame.group, payload: chunk.encoded()).encoded() else { return nil }
            t.offset += chunk.bytes.count
            if t.offset == t.frame.payload.count { s.transfers.removeFirst() } else { s.transfers[0] = t }
            s.pieceInFlight = true
            return bytes
        }
        guard let bytes = piece else { return }
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in
            self.state.withLock { s in if s.channel === channel { s.pieceInFlight = false } }
            // Not from inside the write's completion: no recursion per piece.
            channel.eventLoop.execute { self.sendNextPiece(on: channel) }
        }
        metrics.peerChunksSent.increment()
        channel.writeAndFlush(channel.allocator.buffer(bytes: bytes), promise: written)
    }

    private func connect() {
        guard !state.withLock({ $0.stopped }) else { return }
        let link = self
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .connectTimeout(.milliseconds(500))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(PeerLinkHandler(link: link))
                }
            }
            .connect(host: address.host, port: address.port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    let keep = link.state.withLock { s -> Bool in
                        guard !s.stopped else { return false }
                        s.channel = channel
                        return true
                    }
                    channel.closeFuture.whenComplete { _ in link.closed(channel) }
                    // On loopback a connect to a port nobody listens on can
                    // pick that very port as its source and connect to
                    // itself; such a link would wait for a challenge forever.
                    let selfConnected = channel.localAddress != nil && channel.localAddress == channel.remoteAddress
                    if !keep || selfConnected {
                        channel.close(promise: nil)
                        return
                    }
                    // A peer that does not finish the handshake in time is dropped and dialled again.
                    channel.eventLoop.scheduleTask(in: .milliseconds(Int64(link.handshakeTimeoutMillis))) {
                        if !link.isReady(channel) { channel.close(promise: nil) }
                    }
                case .failure:
                    link.reconnectLater()
                }
            }
    }

    fileprivate func authenticated(_ channel: any Channel, server: UInt64) {
        let wrong = server != peer
        state.withLock { s in
            guard s.channel === channel, !wrong else { return }
            s.ready = true
            s.backoffMillis = 0
        }
        if wrong {
            logger.warning("peer answered with another node id", metadata: ["expected": "\(peer)", "got": "\(server)"])
            channel.close(promise: nil)
        } else {
            logger.info("peer link up", metadata: ["peer": "\(peer)", "address": "\(address)"])
        }
    }

    private func closed(_ channel: any Channel) {
        let wasReady = state.withLock { s -> Bool in
            guard s.channel === channel else { return false }
            let was = s.ready
            s.channel = nil
            s.ready = false
            // The peer drops its half-assembled transfer with the connection.
            s.transfers = []
            s.pieceInFlight = false
            return was
        }
        if wasReady { logger.info("peer link down", metadata: ["peer": "\(peer)"]) }
        reconnectLater()
    }

    private func reconnectLater() {
        let delay = state.withLock { s -> Int64? in
            guard !s.stopped else { return nil }
            s.backoffMillis = min(max(s.backoffMillis * 2, 20), 1000)
            return s.backoffMillis / 2 + Int64.random(in: 0...(s.backoffMillis / 2))
        }
        guard let delay else { return }
        let link = self
        group.next().scheduleTask(in: .milliseconds(delay)) { link.connect() }
    }
}

/// Runs the connecting side of the handshake on a peer link; afterwards the
/// link only writes (anything the peer sends but a refusal is ignored).
private final class PeerLinkHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let link: PeerLink
    private var decoder: FrameDecoder
    private var handshake: HandshakeClient
    private var answered = false
    private var done = false

    init(link: PeerLink) throws {
        self.link = link
        self.decoder = try FrameDecoder(maxPayload: 4096)
        self.handshake = HandshakeClient(credentials: link.configCredentials, role: .peer(link.localId))
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        buffer.withUnsafeReadableBytes { decoder.push($0) }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        do {
            while let frame = try decoder.next() {
                if frame.kind == .refuse {
                    throw LuigiError.state("refused: \(Handshake.reason(ofRefusal: frame))")
                }
                guard !done else { continue }
                if !answered {
                    let hello = try handshake.answer(frame)
                    answered = true
                    let bytes = try hello.encoded()
                    context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
                } else {
                    let server = try handshake.finish(frame)
                    done = true
                    link.authenticated(context.channel, server: server)
                }
            }
        } catch {
            link.failedHandshake(error)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension PeerLink {
    fileprivate var configCredentials: ClusterCredentials { config.credentials }
    fileprivate var localId: UInt64 { config.nodeId }

    fileprivate func failedHandshake(_ error: any Error) {
        metrics.authFailures.increment()
        logger.warning("peer link handshake failed", metadata: ["peer": "\(peer)", "error": "\(error)"])
    }
}

/// The links to every peer, following `NodeCore.peers`: a new member's
/// link opens when a group's configuration holds it and its address is
/// known; a changed address replaces the link; a member no group holds any
/// more loses its link.
final class PeerTable: Sendable {
    private let config: NodeConfig
    private let group: any EventLoopGroup
    private let logger: Logger
    private let metrics: NodeMetrics
    private struct State {
        var links: [UInt64: PeerLink] = [:]
        var stopped = false
    }
    private let state = Mutex(State())

    init(config: NodeConfig, group: any EventLoopGroup, logger: Logger, metrics: NodeMetrics) {
        self.config = config
        self.group = group
        self.logger = logger
        self.metrics = metrics
    }

    func send(_ frames: [Frame], to peer: UInt64) {
        guard let link = state.withLock({ $0.links[peer] }) else {
            metrics.peerMessagesDropped.increment(by: frames.count)
            return
        }
        link.send(frames)
    }

    func update(_ peers: [UInt64: Address]) {
        let (started, stopped) = state.withLock { s -> ([PeerLink], [PeerLink]) in
            guard !s.stopped else { return ([], []) }
            var started: [PeerLink] = [], stopped: [PeerLink] = []
            for (id, link) in s.links where peers[id] == nil {
                stopped.append(link)
                s.links[id] = nil
            }
            for (id, address) in peers where id != config.nodeId && s.links[id]?.address != address {
                if let old = s.links[id] { stopped.append(old) }
                let link = PeerLink(peer: id, address: address, config: config, group: group, logger: logger, metrics: metrics)
                s.links[id] = link
                started.append(link)
            }
            metrics.peerLinks.record(s.links.count)
            return (started, stopped)
        }
        for link in stopped { link.stop() }
        for link in started { link.start() }
    }

    func stopAll() {
        let links = state.withLock { s -> [PeerLink] in
            s.stopped = true
            defer { s.links = [:] }
            return Array(s.links.values)
        }
        for link in links { link.stop() }
    }
}
