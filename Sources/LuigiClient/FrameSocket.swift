import LuigiBase
import LuigiWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A blocking TCP connection that speaks frames, with deadlines on every
/// wait (poll), opened and authenticated by `connect`. No event loop: this
/// is what the C ABI and Python reach, so libluigi.so needs no networking
/// runtime.
final class FrameSocket {
    private var fd: Int32
    private var decoder: FrameDecoder
    /// The node id the server proved itself as.
    private(set) var serverNode: UInt64 = 0

    private init(fd: Int32, maxPayload: Int) throws {
        self.fd = fd
        self.decoder = try FrameDecoder(maxPayload: maxPayload)
    }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    /// Connects to `address`, then runs the client side of the handshake.
    /// Throws `.timeout` past `deadline`, `.unauthenticated` when either
    /// side's proof fails, `.state` on socket errors.
    static func connect(
        to address: String, credentials: ClusterCredentials, role: ConnectionRole = .client, deadline: Deadline,
        maxPayload: Int = Frame.defaultMaxPayload
    ) throws -> FrameSocket {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            throw LuigiError.invalidArgument("endpoint '\(address)' is not host:port")
        }
        var host = String(address[..<colon])
        // "[::1]:7001": the brackets only delimit an IPv6 address.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw LuigiError.state("cannot resolve '\(host)': \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LuigiError.state("socket: \(errnoText())") }
        let socket = try FrameSocket(fd: fd, maxPayload: maxPayload)
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        // Non-blocking from here on: every wait is a poll with a deadline.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else { throw LuigiError.state("connect to \(address): \(errnoText())") }
            try socket.wait(for: Int16(POLLOUT), until: deadline, what: "connecting to \(address)")
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            guard error == 0 else { throw LuigiError.state("connect to \(address): \(String(cString: strerror(error)))") }
        }
        var handshake = HandshakeClient(credentials: credentials, role: role)
        let challenge = try socket.receive(until: deadline)
        try socket.send([try handshake.answer(challenge)], until: deadline)
        socket.serverNode = try handshake.finish(try socket.receive(until: deadline))
        return socket
    }

    /// True when the node has closed this connection (or it failed) while
    /// it sat idle: checked before reusing it for a request sent only once.
    var isClosedByPeer: Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) > 0 else { return false }
        if p.revents & Int16(POLLERR | POLLHUP) != 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK))
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
    }

    func send(_ frames: [Frame], until deadline: Deadline) throws {
        var bytes: [UInt8] = []
        for frame in frames { bytes += try frame.encoded() }
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                sent += n
            } else if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                try wait(for: Int16(POLLOUT), until: deadline, what: "sending")
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                throw LuigiError.state("connection lost while sending: \(errnoText())")
            }
        }
    }

    /// The next frame, waiting until `deadline`.
    func receive(until deadline: Deadline) throws -> Frame {
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            if let frame = try decoder.next() { return frame }
            let n = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress!, $0.count, 0) }
            if n > 0 {
                decoder.push(chunk[0..<n])
            } else if n == 0 {
                throw LuigiError.state("the node closed the connection")
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                try wait(for: Int16(POLLIN), until: deadline, what: "waiting for a reply")
            } else if errno != EINTR {
                throw LuigiError.state("connection lost while receiving: \(errnoText())")
            }
        }
    }

    private func wait(for events: Int16, until deadline: Deadline, what: String) throws {
        while true {
            let left = deadline.millisecondsLeft
            guard left > 0 else { throw LuigiError.timeout("timed out \(what)") }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&p, 1, Int32(min(left, Int(Int32.max))))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw LuigiError.state("poll: \(errnoText())") }
        }
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }

/// A point on the monotonic clock.
struct Deadline {
    let nanoseconds: UInt64

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    init(millisecondsFromNow ms: Int) { nanoseconds = Deadline.now() + UInt64(max(ms, 0)) * 1_000_000 }

    var millisecondsLeft: Int {
        let now = Deadline.now()
        return now >= nanoseconds ? 0 : Int((nanoseconds - now + 999_999) / 1_000_000)
    }
}
