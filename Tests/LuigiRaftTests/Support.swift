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
    func put(_ k: String, _ v: String, timeout: Int = 300) throws -> Bool {
        try execute(.put(key: k, value: bytes(v)), timeout: timeout) != nil
    }

    /// Applied non-empty commands of a node, as strings (request ids stripped).
    func appliedCommands(_ id: UInt64) -> [[UInt8]] {
        appliedLog(id).map(\.data).filter { !$0.isEmpty }
    }
}
