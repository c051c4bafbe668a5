import Logging
import LuigiWire
import NIOCore
import Synchronization

/// One accepted connection, peer or client. It sends the challenge at once
/// and accepts nothing but a valid hello until the connector has proved it
/// holds the cluster secret. After that, a peer's connection carries Raft
/// messages to this node and a client's carries requests and replies.
///
/// Every fault closes only this connection: garbage or a bad checksum, a
/// frame over the size limit (refused from its header, before it is
/// buffered), a wrong secret, a handshake not finished in time, a frame
/// left half-sent too long (a slow sender), or a frame kind the role may
/// not send. A client with too many requests, or request bytes, in flight
/// gets `unavailable` replies; one that does not read its replies stops
/// being read from, and so does a peer whose frames wait for the host
/// thread beyond `maxPeerQueuedBytes`, until they drain.
final class ServerConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case handshaking(HandshakeServer)
        case peer(UInt64)
        case client
        case closing
    }

    static let handshakeFrameLimit = 4096

    let core: NodeCore
    let config: NodeConfig
    let metrics: NodeMetrics
    let logger: Logger
    private var decoder: FrameDecoder
    /// A peer's snapshot, piece by piece.
    private var assembler = ChunkAssembler(maxTotal: 0)
    private var phase: Phase
    private var inflight = 0
    /// The payload bytes of those requests.
    private var inflightBytes = 0
    private var handshakeTimer: Scheduled<Void>?
    private var frameTimer: Scheduled<Void>?
    /// A peer's frames handed to the host thread and not yet stepped.
    private let queued = QueuedBytes()
    /// Reading stopped: the peer's queued frames are over the limit.
    private var pausedForHost = false
    /// Reading stopped: the client does not read its replies.
    private var pausedForWrites = false

    /// Told once the handshake succeeds, with the connector's role; false
    /// refuses it as busy (every client slot is held).
    private let onAuthenticated: (ConnectionSlots.Role) -> Bool

    init(core: NodeCore, onAuthenticated: @escaping (ConnectionSlots.Role) -> Bool = { _ in true }) throws {
        self.core = core
        self.onAuthenticated = onAuthenticated
        self.config = core.config
        self.metrics = core.metrics
        self.logger = core.logger
        // Until the handshake is done only small frames are taken: an
        // unauthenticated connection cannot make the node buffer much.
        self.decoder = try FrameDecoder(maxPayload: min(Self.handshakeFrameLimit, core.config.maxFramePayload))
        self.phase = .handshaking(HandshakeServer(credentials: core.config.credentials, nodeId: core.config.nodeId))
    }

    func channelActive(context: ChannelHandlerContext) {
        guard case .handshaking(let server) = phase else { return }
        write(server.challenge, context: context)
        let channel = context.channel
        handshakeTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(config.handshakeTimeoutMillis))) {
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        frameTimer?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if case .closing = phase { return }
        buffer.withUnsafeReadableBytes { decoder.push($0) }
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        var completed = false
        do {
            while case .some(let frame) = try decoder.next() {
                completed = true
                handle(frame, context: context)
                if case .closing = phase { return }
            }
        } catch {
            metrics.badFrames.increment()
            refuse("bad frame: \(error)", context: context)
            return
        }
        armFrameTimer(context: context, restart: completed)
    }

    /// A slow sender: the frame being received must be finished in time
    /// (its clock restarts with every frame that completes).
    private func armFrameTimer(context: ChannelHandlerContext, restart: Bool) {
        if restart || decoder.buffered == 0 {
            frameTimer?.cancel()
            frameTimer = nil
        }
        if decoder.buffered > 0 && frameTimer == nil && !pausedForHost {
            let channel = context.channel
            frameTimer = context.eventLoop.scheduleTask(in: .milliseconds(Int64(config.frameTimeoutMillis))) {
                channel.close(promise: nil)
            }
        }
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) {
        switch phase {
        case .handshaking(var server):
            switch server.receive(frame) {
            case .accepted(let role, let welcome):
                handshakeTimer?.cancel()
                handshakeTimer = nil
                switch role {
                // Any node that proves the secret may talk Raft: the groups'
                // memberships decide what its messages can do (a node being
                // added is not in this node's address book yet).
                case .peer(let id) where id != config.nodeId:
                    // Large frames (snapshots) come in pieces (`chunk`), each a frame like any other.
                    decoder.raiseLimit(to: config.maxFramePayload)
                    assembler = ChunkAssembler(maxTotal: config.maxPeerMessageBytes)
                    phase = .peer(id)
                    _ = onAuthenticated(.peer(id))
                    write(welcome, context: context)
                case .peer(let id):
                    write(welcome, context: context)
                    refuse("node \(id) is this node", context: context)
                case .client:
                    guard onAuthenticated(.client) else {
                        // The hello was valid: refused as busy, so the client
                        // tries elsewhere rather than doubt its secret.
                        let why = "too many client connections (\(config.maxConnections))"
                        return refuse(why, context: context, frame: Handshake.busy(why))
                    }
                    decoder.raiseLimit(to: config.maxFramePayload)
                    phase = .client
                    write(welcome, context: context)
                }
            case .refused(let reason, let refusal):
                metrics.authFailures.increment()
                logger.info("handshake refused", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(reason)"])
                write(refusal, context: context)
                phase = .closing
                context.close(promise: nil)
            }
        case .peer(let id):
            var frame = frame
            if frame.kind == .chunk {
                do {
                    guard let whole = try assembler.push(frame) else { return }
                    frame = whole
                } catch {
                    metrics.badFrames.increment()
                    return refuse("bad chunk: \(error)", context: context)
                }
            }
            let core = core, whole = frame
            let step: @Sendable () -> Void
            switch frame.kind {
            case .raft: step = { core.receive(whole, from: id) }
            case .delta: step = { core.receiveDelta(whole, from: id) }
            case .watermark: step = { core.receiveWatermark(whole, from: id) }
            default: return refuse("a peer may not send \(frame.kind) frames", context: context)
            }
            queueForHost(frame.payload.count, step, context: context)
        case .client:
            guard frame.kind == .request else { return refuse("a client may not send \(frame.kind) frames", context: context) }
            let request: ClientRequest
            do {
                request = try ClientRequest(decoding: frame.payload)
            } catch {
                metrics.badFrames.increment()
                return refuse("malformed request: \(error)", context: context)
            }
            let size = frame.payload.count
            // One request is always taken, whatever its size (up to the frame limit).
            guard inflight < config.maxInflightPerConnection,
                inflight == 0 || inflightBytes + size <= config.maxInflightBytesPerConnection
            else {
                let reply = ClientReply(id: request.id, status: .unavailable, message: "too many requests in flight on this connection")
                write(Frame(.reply, group: frame.group, payload: reply.encoded()), context: context)
                return
            }
            inflight += 1
            inflightBytes += size
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let group = frame.group
            let core = core
            core.loop.execute {
                core.submit(request, group: group) { reply in
                    bound.eventLoop.execute {
                        let (handler, context) = bound.value
                        handler.inflight -= 1
                        handler.inflightBytes -= size
                        handler.write(Frame(.reply, group: group, payload: reply.encoded()), context: context)
                    }
                }
            }
        case .closing:
            return
        }
    }

    /// Hands a peer's frame to the host thread, and stops reading the
    /// connection while more than `maxPeerQueuedBytes` of its frames wait
    /// there; the host thread resumes it once they drained below that.
    private func queueForHost(_ size: Int, _ step: @escaping @Sendable () -> Void, context: ChannelHandlerContext) {
        let limit = config.maxPeerQueuedBytes
        let total = queued.bytes.wrappingAdd(size, ordering: .relaxed).newValue
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        core.loop.execute { [queued] in
            step()
            let left = queued.bytes.wrappingSubtract(size, ordering: .relaxed).newValue
            if left <= limit && left + size > limit {
                bound.eventLoop.execute {
                    let (handler, context) = bound.value
                    handler.resumeIfDrained(context: context)
                }
            }
        }
        if total > limit && !pausedForHost {
            pausedForHost = true
            metrics.peerReadPauses.increment()
            // Not a slow sender: this node stopped reading.
            frameTimer?.cancel()
            frameTimer = nil
            updateAutoRead(context: context)
        }
    }

    private func resumeIfDrained(context: ChannelHandlerContext) {
        guard pausedForHost, queued.bytes.load(ordering: .relaxed) <= config.maxPeerQueuedBytes else { return }
        pausedForHost = false
        updateAutoRead(context: context)
        armFrameTimer(context: context, restart: true)
    }

    private func updateAutoRead(context: ChannelHandlerContext) {
        let read = !pausedForHost && !pausedForWrites
        context.channel.setOption(ChannelOptions.autoRead, value: read).whenFailure { _ in }
    }

    /// A client that does not read its replies stops being read from.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pausedForWrites = !context.channel.isWritable
        updateAutoRead(context: context)
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext, frame: Frame? = nil) {
        guard context.channel.isActive else { return }
        logger.info("connection refused", metadata: ["reason": "\(reason)"])
        write(frame ?? Handshake.refusal(reason), context: context)
        phase = .closing
        context.close(promise: nil)
    }

    private func write(_ frame: Frame, context: ChannelHandlerContext) {
        guard context.channel.isActive, let bytes = try? frame.encoded() else { return }
        metrics.framesOut.increment()
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }
}

/// Bytes shared by a connection's event loop and the host thread.
private final class QueuedBytes: Sendable {
    let bytes = Atomic<Int>(0)
}
