import LuigiCore
import LuigiSimulation
import Testing

/// The one simulated network both simulators share.
@Suite struct NetworkTests {
    /// Delays of `count` messages sent at time 0 (each delivered alone).
    static func delays(_ faults: NetworkFaults, seed: UInt64, count: Int = 2_000) throws -> [UInt64] {
        let net = try SimulatedNetwork(seed: seed, faults: faults)
        for i in 0..<count { net.send([UInt8(truncatingIfNeeded: i)], from: 1, to: 2, at: 0) }
        var out: [UInt64] = []
        var t: UInt64 = 0
        while !net.isEmpty {
            out += net.deliver(dueBy: t).map { _ in t }
            t += 1
        }
        return out
    }

    @Test func theSameSeedGivesTheSameDeliveries() throws {
        let faults = NetworkFaults(drop: 0.1, duplicate: 0.1, reorder: 0.2, maxDelay: 3,
                                   jitter: ParetoJitter(scale: 2, shape: 1.5, cap: 500))
        #expect(try Self.delays(faults, seed: 9) == Self.delays(faults, seed: 9))
        #expect(try Self.delays(faults, seed: 9) != Self.delays(faults, seed: 10))
    }

    @Test func paretoJitterHasAHeavyCappedTail() throws {
        let jitter = ParetoJitter(scale: 10, shape: 1.5, cap: 10_000)
        let d = try Self.delays(NetworkFaults(jitter: jitter), seed: 3, count: 20_000).sorted()
        let median = d[d.count / 2], p999 = d[d.count * 999 / 1000]
        // Pareto(alpha 1.5) shifted: median = scale (2^(2/3) - 1) ~ 5.9; the
        // 99.9th percentile = scale (1000^(2/3) - 1) = 990: far above a
        // uniform or normal spread with that median.
        #expect((4...8).contains(median), "median \(median)")
        #expect(p999 > 40 * median, "p99.9 \(p999) vs median \(median)")
        #expect(d.last! <= 10_000)
        #expect(throws: LuigiError.self) { try SimulatedNetwork(seed: 1, faults: NetworkFaults(jitter: ParetoJitter(scale: 0, cap: 5))) }
    }

    @Test func downLinksLoseWhatIsInFlight() throws {
        let net = try SimulatedNetwork(seed: 1)
        net.latency = { _, _ in 5 }
        net.send([1], from: 1, to: 2, at: 0)
        net.send([2], from: 2, to: 3, at: 0)
        net.send([3], from: 3, to: 1, at: 0)
        net.partition(groupOf: [1: 0, 2: 0])  // 3 is alone
        #expect(net.deliver(dueBy: 4).isEmpty)
        #expect(net.deliver(dueBy: 5).map(\.bytes) == [[1]])
        #expect(net.stats.dropped == 2 && net.stats.delivered == 1)
        net.heal()
        net.isolate(2)
        net.send([4], from: 1, to: 2, at: 10)
        #expect(net.deliverAll().isEmpty)
    }
}
