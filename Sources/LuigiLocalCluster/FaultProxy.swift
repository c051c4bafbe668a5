import LuigiBase
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A TCP proxy for one directed link between two nodes (node A dials its
/// peer B through it), with faults the tests switch on and off: `cut`
/// closes the link's connections and refuses new ones (a partition, as a
/// node sees one: its peer is unreachable); `delayMillis` holds every chunk
/// before forwarding it. One accept thread, two pump threads per connection;
/// plain blocking sockets.
public final class FaultProxy: Sendable {
    public let port: Int
    public let target: Int
    private let listener: Int32
    private struct State {
        var cut = false
        var delayMillis = 0
        var open: [Int32] = []
        var stopped = false
    }
    private let state = Mutex(State())

    /// Listens on a free loopback port and forwards to `target` on loopback.
    public init(target: Int) throws {
        self.target = target
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = loopback(0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else {
            close(fd)
            throw LuigiError.state("proxy cannot listen: \(String(cString: strerror(errno)))")
        }
        listener = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
        let proxy = self
        detach { proxy.acceptLoop() }
    }

    /// Cuts the link (true) or restores it (false).
    public func setCut(_ cut: Bool) {
        // Shut down under the lock: a pump closes its sockets only after
        // taking them out of `open` under the same lock.
        state.withLock { s in
            s.cut = cut
            guard cut else { return }
            for fd in s.open { shutdown(fd, Int32(SHUT_RDWR)) }
            s.open = []
        }
    }

    public func setDelay(_ ms: Int) { state.withLock { $0.delayMillis = max(0, ms) } }

    public func stop() {
        state.withLock { s in
            s.stopped = true
            for fd in s.open { shutdown(fd, Int32(SHUT_RDWR)) }
            s.open = []
        }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                break
            }
            let (refuse, stopped) = state.withLock { ($0.cut, $0.stopped) }
            if stopped {
                close(client)
                break
            }
            if refuse {
                close(client)
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = loopback(target)
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                close(client)
                close(upstream)
                continue
            }
            state.withLock { $0.open += [client, upstream] }
            let proxy = self
            let pair = Pair(client, upstream)
            detach { proxy.pump(from: client, to: upstream, pair) }
            detach { proxy.pump(from: upstream, to: client, pair) }
        }
        close(listener)
    }

    /// The two sockets of one proxied connection: closed by whichever pump
    /// finishes last, so neither pump writes to a descriptor already reused.
    private final class Pair: Sendable {
        let a: Int32, b: Int32
        let running = Atomic<Int>(2)
        init(_ a: Int32, _ b: Int32) { self.a = a; self.b = b }
    }

    private func pump(from source: Int32, to sink: Int32, _ pair: Pair) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            let (cut, delay) = state.withLock { ($0.cut, $0.delayMillis) }
            if cut { break }
            if delay > 0 { usleep(UInt32(min(delay, 60_000)) * 1000) }
            var sent = 0
            while sent < n {
                let m = buffer.withUnsafeBytes { send(sink, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { break }
                sent += m
            }
            if sent < n { break }
        }
        shutdown(source, Int32(SHUT_RDWR))
        shutdown(sink, Int32(SHUT_RDWR))
        guard pair.running.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        state.withLock { s in s.open.removeAll { $0 == pair.a || $0 == pair.b } }
        close(pair.a)
        close(pair.b)
    }
}

func loopback(_ port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = UInt16(port).bigEndian
    return addr
}

/// Runs `body` on a detached OS thread.
func detach(_ body: @escaping @Sendable () -> Void) {
    final class Box: @unchecked Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
    let box = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    if pthread_create(&thread, nil, { raw in
        Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, box) == 0 {
        pthread_detach(thread)
    } else {
        Unmanaged<Box>.fromOpaque(box).release()
    }
}
