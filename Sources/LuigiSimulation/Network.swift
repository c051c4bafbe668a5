import LuigiCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A heavy-tailed extra delay: Pareto with minimum `scale` above the base,
/// shifted to start at 0, so most messages get a little jitter and a few a
/// lot (wide-area links), capped at `cap` time units.
public struct ParetoJitter: Equatable, Sendable {
    /// The tail's scale, in the network's time units (> 0).
    public var scale: Double
    /// The tail index alpha (> 0): smaller is heavier (at or below 2 the
    /// variance is infinite; the cap keeps every delay finite).
    public var shape: Double
    public var cap: UInt64

    public init(scale: Double, shape: Double = 2.5, cap: UInt64) {
        self.scale = scale
        self.shape = shape
        self.cap = cap
    }

    /// scale * (U^(-1/shape) - 1) for U uniform in (0, 1], capped.
    func sample(_ rng: inout SplitMix64) -> UInt64 {
        let u = 1 - rng.unit()  // in (0, 1]
        let x = scale * (pow(u, -1 / shape) - 1)
        guard x.isFinite, x < Double(cap) else { return cap }
        return UInt64(x)
    }
}

/// Fault settings of the simulated network.
public struct NetworkFaults: Equatable, Sendable {
    public var drop: Double
    public var duplicate: Double
    /// Chance that a message is held back a further random 1...(maxDelay+2) time units.
    public var reorder: Double
    /// Extra delivery delay, uniform in 0...maxDelay time units.
    public var maxDelay: Int
    /// Extra heavy-tailed delay on every message, if set.
    public var jitter: ParetoJitter?

    public init(drop: Double = 0, duplicate: Double = 0, reorder: Double = 0, maxDelay: Int = 0,
                jitter: ParetoJitter? = nil) {
        self.drop = drop
        self.duplicate = duplicate
        self.reorder = reorder
        self.maxDelay = maxDelay
        self.jitter = jitter
    }

    public static let none = NetworkFaults()

    public func validated() throws -> NetworkFaults {
        for (name, rate) in [("drop", drop), ("duplicate", duplicate), ("reorder", reorder)] {
            guard rate >= 0 && rate < 1 else {
                throw LuigiError.invalidArgument("\(name) rate must be in [0, 1), got \(rate)")
            }
        }
        guard maxDelay >= 0 && maxDelay <= 1_000 else {
            throw LuigiError.invalidArgument("max delay must be in 0...1000 rounds, got \(maxDelay)")
        }
        if let j = jitter {
            guard j.scale > 0, j.scale.isFinite, j.shape > 0, j.shape.isFinite, j.cap <= 1 << 40 else {
                throw LuigiError.invalidArgument("jitter needs scale > 0, shape > 0 and cap <= 2^40")
            }
        }
        return self
    }
}

/// The one seeded, faulty network every simulator sends through: bytes
/// between node ids, delivered at a virtual time after a per-link base
/// latency plus uniform and heavy-tailed extra delay, with drop,
/// duplication, reordering, and unreachable links (isolated nodes, cut
/// links, partitions) checked at delivery time. Delivery order is by due
/// time, then send order. Same seed and same sends: same deliveries.
public final class SimulatedNetwork {
    public struct Packet: Sendable {
        public let from: UInt64
        public let to: UInt64
        public let bytes: [UInt8]
        let deliverAt: UInt64
        let order: UInt64
    }

    public struct Stats: Equatable, Sendable {
        /// Messages handed to `send` (and their bytes).
        public var sent: UInt64 = 0
        public var bytes: UInt64 = 0
        /// Lost to the drop rate or to an unreachable link at delivery.
        public var dropped: UInt64 = 0
        public var duplicated: UInt64 = 0
        public var delivered: UInt64 = 0
    }

    public private(set) var faults: NetworkFaults
    public private(set) var stats = Stats()
    /// Fixed one-way latency of a link (e.g. between regions); 0 if nil.
    public var latency: ((_ from: UInt64, _ to: UInt64) -> UInt64)?
    private var rng: SplitMix64
    /// A binary min-heap by (due time, send order).
    private var inFlight: [Packet] = []
    private var sends: UInt64 = 0
    private var isolated: Set<UInt64> = []
    private var cutLinks: Set<[UInt64]> = []
    private var groupOf: [UInt64: Int]?

    public init(seed: UInt64, faults: NetworkFaults = .none) throws {
        self.faults = try faults.validated()
        rng = SplitMix64(seed: seed ^ 0x6E65_7477_6F72_6B00)  // "network": its own stream
    }

    public func setFaults(_ faults: NetworkFaults) throws { self.faults = try faults.validated() }

    public var isEmpty: Bool { inFlight.isEmpty }
    /// When the earliest packet in flight is due (nil: none in flight).
    public var nextDue: UInt64? { inFlight.first?.deliverAt }
    public var inFlightCount: Int { inFlight.count }

    // MARK: - Sending and delivering

    /// Sends `bytes` at time `now`; it becomes due at `now` + latency + delays.
    public func send(_ bytes: [UInt8], from: UInt64, to: UInt64, at now: UInt64) {
        stats.sent += 1
        stats.bytes += UInt64(bytes.count)
        if rng.chance(faults.drop) {
            stats.dropped += 1
            return
        }
        enqueue(bytes, from: from, to: to, at: now)
        if rng.chance(faults.duplicate) {
            stats.duplicated += 1
            enqueue(bytes, from: from, to: to, at: now)
        }
    }

    private func enqueue(_ bytes: [UInt8], from: UInt64, to: UInt64, at now: UInt64) {
        var delay = latency?(from, to) ?? 0
        if faults.maxDelay > 0 { delay += UInt64.random(in: 0...UInt64(faults.maxDelay), using: &rng) }
        if rng.chance(faults.reorder) { delay += UInt64.random(in: 1...UInt64(faults.maxDelay + 2), using: &rng) }
        if let jitter = faults.jitter { delay += jitter.sample(&rng) }
        sends += 1
        push(Packet(from: from, to: to, bytes: bytes, deliverAt: now + delay, order: sends))
    }

    /// Removes and returns the packets due by `now` whose link is up, in
    /// delivery order; the due ones on a down link are lost.
    public func deliver(dueBy now: UInt64) -> [Packet] {
        var due: [Packet] = []
        while let first = inFlight.first, first.deliverAt <= now { due.append(pop()) }
        return due.isEmpty ? [] : reachableOnly(due)
    }

    /// Removes and returns every packet in flight whatever its due time, in
    /// send order (the network at its fastest); those on a down link are lost.
    public func deliverAll() -> [Packet] {
        let all = inFlight.sorted { $0.order < $1.order }
        inFlight = []
        return reachableOnly(all)
    }

    // MARK: - The heap

    private static func before(_ a: Packet, _ b: Packet) -> Bool { (a.deliverAt, a.order) < (b.deliverAt, b.order) }

    private func push(_ p: Packet) {
        inFlight.append(p)
        var i = inFlight.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(inFlight[i], inFlight[parent]) else { break }
            inFlight.swapAt(i, parent)
            i = parent
        }
    }

    private func pop() -> Packet {
        let top = inFlight[0]
        let last = inFlight.removeLast()
        if !inFlight.isEmpty {
            inFlight[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < inFlight.count && Self.before(inFlight[l], inFlight[m]) { m = l }
                if r < inFlight.count && Self.before(inFlight[r], inFlight[m]) { m = r }
                guard m != i else { break }
                inFlight.swapAt(i, m)
                i = m
            }
        }
        return top
    }

    private func reachableOnly(_ packets: [Packet]) -> [Packet] {
        var out: [Packet] = []
        out.reserveCapacity(packets.count)
        for p in packets {
            if reachable(p.from, p.to) {
                out.append(p)
            } else {
                stats.dropped += 1
            }
        }
        stats.delivered += UInt64(out.count)
        return out
    }

    /// Forgets what is in flight to `node` (it crashed).
    public func discard(to node: UInt64) {
        let kept = inFlight.filter { $0.to != node }
        inFlight = []
        for p in kept { push(p) }
    }

    // MARK: - Reachability

    public func reachable(_ a: UInt64, _ b: UInt64) -> Bool {
        if isolated.contains(a) || isolated.contains(b) || cutLinks.contains([a, b]) { return false }
        if let groups = groupOf, groups[a] != groups[b] { return false }
        return true
    }

    public func isolate(_ node: UInt64) { isolated.insert(node) }

    public func cut(_ a: UInt64, _ b: UInt64) {
        cutLinks.insert([a, b])
        cutLinks.insert([b, a])
    }

    /// Nodes in different groups cannot reach each other; nodes absent from
    /// the table form one more group together.
    public func partition(groupOf table: [UInt64: Int]) { groupOf = table }

    /// Every link is up again.
    public func heal() {
        isolated = []
        cutLinks = []
        groupOf = nil
    }
}
