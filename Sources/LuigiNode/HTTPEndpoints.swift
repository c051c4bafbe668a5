import NIOCore
import NIOHTTP1

/// The operations port: GET /metrics (Prometheus text), /health (200 when
/// every group's storage works, 503 otherwise) and /status (JSON: each
/// group's role, term, commit, applied and followers' lag). Anything else
/// is 404; a method other than GET or HEAD is 405.
final class HTTPEndpoints: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let core: NodeCore
    private var head: HTTPRequestHead?

    init(core: NodeCore) { self.core = core }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            head = nil
            route(h, context: context)
        }
    }

    private func route(_ h: HTTPRequestHead, context: ChannelHandlerContext) {
        guard h.method == .GET || h.method == .HEAD else {
            return respond(.methodNotAllowed, "text/plain", Array("GET only\n".utf8), h, context)
        }
        let path = h.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? h.uri
        let core = core
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        switch path {
        case "/metrics":
            respond(.ok, "text/plain; version=0.0.4", core.metrics.text(), h, context)
        case "/health", "/status":
            core.loop.submit { (core.failure, core.statusJSON()) }.whenComplete { result in
                bound.eventLoop.execute {
                    let (handler, context) = bound.value
                    switch result {
                    case .success(let (failure, status)):
                        if path == "/status" {
                            handler.respond(.ok, "application/json", Array(status.utf8), h, context)
                        } else if let failure {
                            handler.respond(.serviceUnavailable, "text/plain", Array("failed: \(failure)\n".utf8), h, context)
                        } else {
                            handler.respond(.ok, "text/plain", Array("ok\n".utf8), h, context)
                        }
                    case .failure(let error):
                        handler.respond(.serviceUnavailable, "text/plain", Array("\(error)\n".utf8), h, context)
                    }
                }
            }
        default:
            respond(.notFound, "text/plain", Array("not found\n".utf8), h, context)
        }
    }

    private func respond(
        _ status: HTTPResponseStatus, _ type: String, _ body: [UInt8], _ request: HTTPRequestHead,
        _ context: ChannelHandlerContext
    ) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: type)
        headers.add(name: "Content-Length", value: String(body.count))
        let keepAlive = request.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
