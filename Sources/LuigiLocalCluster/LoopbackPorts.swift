import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Ports handed out by this process, never handed out twice: test suites
/// start clusters concurrently in one process.
private let handedOut = Mutex(Set<Int>())

/// `n` distinct loopback ports for listeners that bind later.
///
/// They come from below the kernel's ephemeral range, checked free by a
/// bind. A port from the ephemeral range (bind to 0, release) can be taken
/// meanwhile as the local port of any outgoing connection, and a node
/// stopped and restarted on its port races every dial on the machine; a
/// port outside the range is only ever taken by an explicit bind.
public func freeLoopbackPorts(_ n: Int) -> [Int] {
    let ephemeralLow = ephemeralRangeLow()
    let low = max(10_000, ephemeralLow - 16_384)
    guard ephemeralLow - low >= 1_024 else { return ephemeralPorts(n) }
    var ports: [Int] = []
    var attempts = 0
    while ports.count < n, attempts < 20_000 {
        attempts += 1
        let port = Int.random(in: low..<ephemeralLow)
        let fresh = handedOut.withLock { used in used.insert(port).inserted }
        guard fresh else { continue }
        if canBind(port) { ports.append(port) }
    }
    return ports.count == n ? ports : ports + ephemeralPorts(n - ports.count)
}

/// The low end of `net.ipv4.ip_local_port_range` (Linux's default 32768).
private func ephemeralRangeLow() -> Int {
    guard let file = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r") else { return 32_768 }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 64)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return 32_768 }
    let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
    guard let first = fields.first, let low = Int(first), (1_024...65_535).contains(low) else { return 32_768 }
    return low
}

/// Whether a listener could bind `port` on 127.0.0.1 now (no SO_REUSEADDR,
/// so a port with connections in TIME_WAIT counts as taken).
private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = loopback(port: port)
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
}

/// The fallback: ports the kernel picked from the ephemeral range.
private func ephemeralPorts(_ n: Int) -> [Int] {
    var fds: [Int32] = []
    var ports: [Int] = []
    for _ in 0..<n {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                _ = bind(fd, $0, length)
                _ = getsockname(fd, $0, &length)
            }
        }
        ports.append(Int(UInt16(bigEndian: addr.sin_port)))
        fds.append(fd)
    }
    for fd in fds { close(fd) }
    return ports
}

private func loopback(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return addr
}
