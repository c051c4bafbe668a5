import LuigiBase
import LuigiWire

#if canImport(Glibc)
import Glibc
#endif

/// A bare TCP connection for sending a node what a real client never would.
final class RawConnection {
    let fd: Int32
    private var decoder = try! FrameDecoder(maxPayload: 1 << 20)

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw LuigiError.state("connect: \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send(_ frame: Frame) { send(try! frame.encoded()) }

    /// Reads until the next frame, the peer closes (nil), or `ms` passes (nil).
    func frame(within ms: Int32 = 3000) -> Frame? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let frame = try? decoder.next() { return frame }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, ms) > 0 else { return nil }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return nil }
            decoder.push(chunk[0..<n])
        }
    }

    /// True when the node closes the connection within `ms` (reading and
    /// discarding whatever it sends first).
    func closedByPeer(within ms: Int32 = 3000) -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, ms) > 0 else { return false }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return true }
        }
    }

    /// Runs the handshake as `role`; returns the server's answer to the hello.
    func handshake(_ credentials: ClusterCredentials, role: ConnectionRole = .client) throws -> Frame? {
        var client = HandshakeClient(credentials: credentials, role: role)
        guard let challenge = frame() else { return nil }
        send(try client.answer(challenge))
        guard let answer = frame() else { return nil }
        if answer.kind == .welcome { _ = try client.finish(answer) }
        return answer
    }
}
