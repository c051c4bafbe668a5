import LuigiCore
import LuigiSimulation

#if canImport(Glibc)
import Glibc
#endif

/// Seeds for a sweep: LUIGI_SEED=<n> replays one exactly.
func raftSeeds(_ count: Int) -> [UInt64] {
    if let p = getenv("LUIGI_SEED"), let seed = UInt64(String(cString: p)) { return [seed] }
    return (1...UInt64(count)).map { $0 &* 7919 }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

extension RaftCluster {
    /// Ticks until some node leads (and has committed its no-op).
    @discardableResult
    func electLeader(maxTicks: Int = 500) throws -> UInt64 {
        for _ in 0..<maxTicks {
            if let l = leader, let s = status(l), s.commit >= s.lastIndex { return l }
            try tick()
        }
        throw LuigiError.notConverged("no leader after \(maxTicks) ticks")
    }

    /// Ticks until every live node has applied the leader's commit index.
    func settle(maxTicks: Int = 2_000) throws {
        for _ in 0..<maxTicks {
            if let l = leader, let ls = status(l), ls.commit == ls.lastIndex {
                let live = nodeIDs.filter { isAlive($0) }
                if live.allSatisfy({ status($0)?.applied == ls.commit && status($0)?.lastIndex == ls.lastIndex }) {
                    return
                }
            }
            try tick()
        }
        throw LuigiError.notConverged("not settled after \(maxTicks) ticks")
    }

    func put(_ k: String, _ v: String, timeout: Int = 300) throws -> Bool {
        try execute(.put(key: k, value: bytes(v)), timeout: timeout) != nil
    }

    /// Applied non-empty commands of a node, as strings (request ids stripped).
    func appliedCommands(_ id: UInt64) -> [[UInt8]] {
        appliedLog(id).map(\.data).filter { !$0.isEmpty }
    }
}
