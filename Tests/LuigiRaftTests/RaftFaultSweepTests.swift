import LuigiCore
import LuigiSimulation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Random client histories under random faults (message loss, duplication,
/// reordering, delays, crashes, restarts, isolation, cut links): every step
/// is checked for Raft's safety properties, and at the end the history must
/// be linearizable and every replica must hold the same state.
@Suite struct RaftFaultSweepTests {
    /// Schedules per run: LUIGI_RAFT_SWEEP overrides (`make soak` runs many more).
    static var schedules: Int {
        if let p = getenv("LUIGI_RAFT_SWEEP"), let n = Int(String(cString: p)) { return n }
        return 1_500
    }

    static func run(seed: UInt64) throws -> (ops: Int, completed: Int) {
        var rng = SplitMix64(seed: seed)
        var o = RaftCluster.Options(nodes: rng.chance(0.5) ? 3 : 5, seed: seed)
        o.faults = NetworkFaults(drop: 0.05, duplicate: 0.05, reorder: 0.2, maxDelay: 2)
        o.compactAfter = rng.chance(0.5) ? 20 : 0
        let c = try RaftCluster(o)
        var down: Set<UInt64> = []
        var completed = 0
        let ops = 30
        for _ in 0..<ops {
            switch Int.random(in: 0..<10, using: &rng) {
            case 0:
                let victim = c.nodeIDs.randomElement(using: &rng)!
                if down.count < (c.nodeIDs.count - 1) / 2 && !down.contains(victim) {
                    c.crash(victim)
                    down.insert(victim)
                }
            case 1:
                if let back = down.randomElement(using: &rng) {
                    try c.restart(back)
                    down.remove(back)
                }
            case 2:
                c.isolate(c.nodeIDs.randomElement(using: &rng)!)
            case 3:
                c.heal()
            default:
                break
            }
            let key = "k\(Int.random(in: 0..<3, using: &rng))"
            let value = bytes("v\(Int.random(in: 0..<1000, using: &rng))")
            let result: [UInt8]?
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: result = try c.execute(.put(key: key, value: value), timeout: 40)
            case 1: result = try c.linearizableGet(key, timeout: 40)
            case 2: result = try c.execute(.cas(key: key, expected: rng.chance(0.5) ? nil : value, new: value), timeout: 40)
            default: result = try c.execute(.delete(key: key), timeout: 40)
            }
            if result != nil { completed += 1 }
        }
        c.heal()
        for id in down { try c.restart(id) }
        try c.setFaults(.none)
        try c.electLeader(maxTicks: 2_000)
        try c.settle(maxTicks: 5_000)
        let check = c.history.check()
        guard check.isLinearizable else {
            throw RaftCluster.SafetyViolation(description: "seed \(seed): history is not linearizable: \(check)")
        }
        let reference = c.machine(c.nodeIDs[0])!.data
        for id in c.nodeIDs where c.machine(id)!.data != reference {
            throw RaftCluster.SafetyViolation(description: "seed \(seed): node \(id)'s state differs")
        }
        return (ops, completed)
    }

    @Test func randomHistoriesUnderRandomFaultsAreLinearizable() throws {
        var total = 0, completed = 0
        for seed in raftSeeds(Self.schedules) {
            do {
                let r = try Self.run(seed: seed)
                total += r.ops
                completed += r.completed
            } catch {
                Issue.record("seed \(seed) (replay with LUIGI_SEED=\(seed)): \(error)")
            }
        }
        // Faults must not stop every operation: most still complete.
        #expect(completed * 2 > total, "\(completed) of \(total) operations completed")
    }
}
