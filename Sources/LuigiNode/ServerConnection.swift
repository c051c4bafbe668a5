import Logging
import LuigiWire
import NIOCore

/// One accepted connection, peer or client. It sends the challenge at once
/// and accepts nothing but a valid hello until the connector has proved it
/// holds the cluster secret. After that, a peer's connection carries Raft
/// messages to this node and a client's carries requests and replies.
///
/// Every fault closes only this connection: garbage or a bad checksum, a
/// frame over the size limit (refused from its header, before it is
/// buffered), a wrong secret, a handshake not finished in time, a frame
/// left half-sent too long (a slow sender), or a frame kind the role may
/// not send. A client with too many requests in flight gets `unavailable`
/// replies; one that does not read its replies stops being read from.
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
    private var phase: Phase
    private var inflight = 0
    private var handshakeTimer: Scheduled<Void>?
    private var frameTimer: Scheduled<Void>?

    init(core: NodeCore) throws {
        self.core = core
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
        if decoder.buffered > 0 && frameTimer == nil {
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
                write(welcome, context: context)
                switch role {
                // Any node that proves the secret may talk Raft: the groups'
                // memberships decide what its messages can do (a node being
                // added is not in this node's address book yet).
                case .peer(let id) where id != config.nodeId:
                    // A peer's frames carry whole Raft snapshots (one message each).
                    decoder.raiseLimit(to: config.maxPeerFramePayload)
                    phase = .peer(id)
                case .peer(let id):
                    refuse("node \(id) is this node", context: context)
                case .client:
                    decoder.raiseLimit(to: config.maxFramePayload)
                    phase = .client
                }
            case .refused(let reason, let refusal):
                metrics.authFailures.increment()
                logger.info("handshake refused", metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(reason)"])
                write(refusal, context: context)
                phase = .closing
                context.close(promise: nil)
            }
        case .peer(let id):
            let core = core
            switch frame.kind {
            case .raft: core.loop.execute { core.receive(frame, from: id) }
            case .delta: core.loop.execute { core.receiveDelta(frame, from: id) }
            case .watermark: core.loop.execute { core.receiveWatermark(frame, from: id) }
            default: refuse("a peer may not send \(frame.kind) frames", context: context)
            }
        case .client:
            guard frame.kind == .request else { return refuse("a client may not send \(frame.kind) frames", context: context) }
            let request: ClientRequest
            do {
                request = try ClientRequest(decoding: frame.payload)
            } catch {
                metrics.badFrames.increment()
                return refuse("malformed request: \(error)", context: context)
            }
            guard inflight < config.maxInflightPerConnection else {
                let reply = ClientReply(id: request.id, status: .unavailable, message: "too many requests in flight on this connection")
                write(Frame(.reply, group: frame.group, payload: reply.encoded()), context: context)
                return
            }
            inflight += 1
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let group = frame.group
            let core = core
            core.loop.execute {
                core.submit(request, group: group) { reply in
                    bound.eventLoop.execute {
                        let (handler, context) = bound.value
                        handler.inflight -= 1
                        handler.write(Frame(.reply, group: group, payload: reply.encoded()), context: context)
                    }
                }
            }
        case .closing:
            return
        }
    }

    /// A client that does not read its replies stops being read from.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    private func refuse(_ reason: String, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        logger.info("connection refused", metadata: ["reason": "\(reason)"])
        write(Handshake.refusal(reason), context: context)
        phase = .closing
        context.close(promise: nil)
    }

    private func write(_ frame: Frame, context: ChannelHandlerContext) {
        guard context.channel.isActive, let bytes = try? frame.encoded() else { return }
        metrics.framesOut.increment()
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
    }
}
