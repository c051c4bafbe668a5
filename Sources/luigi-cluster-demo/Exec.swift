import LuigiLocalCluster

#if canImport(Glibc)
import Glibc
#endif

/// `luigi-cluster-demo exec [--nodes N] [--groups G] [--replica-groups R] [--shards S] -- COMMAND ARGS...`:
/// starts a cluster (by default 3 nodes, 1 key-value group, 1 replica
/// group, 2 watermark shards), runs COMMAND with LUIGI_ENDPOINTS,
/// LUIGI_CLUSTER_ID and LUIGI_CLUSTER_SECRET set (what the C and Python
/// client tests read), then stops the cluster and exits with COMMAND's status.
func runExec(_ arguments: [String]) -> Never {
    guard let dash = arguments.firstIndex(of: "--"), dash + 1 < arguments.count else {
        print("usage: luigi-cluster-demo exec [--nodes N] [--groups G] [--replica-groups R] [--shards S] -- COMMAND [ARGS...]")
        exit(2)
    }
    func value(_ name: String, _ fallback: Int) -> Int {
        guard let i = arguments[..<dash].firstIndex(of: name), i + 1 < dash, let v = Int(arguments[i + 1]) else { return fallback }
        return v
    }
    let command = Array(arguments[(dash + 1)...])
    do {
        let cluster = try ProcessCluster(
            binary: executableDirectory() + "/luigi-node", size: value("--nodes", 3), groups: value("--groups", 1),
            extraArguments: [
                "--replica-groups", String(value("--replica-groups", 1)), "--shards", String(value("--shards", 2)),
            ])
        try cluster.startAll()
        guard cluster.awaitLeader() != nil else {
            cluster.keep = true
            print("exec: no leader within 10 s; logs in \(cluster.directory)")
            exit(1)
        }
        setenv("LUIGI_ENDPOINTS", cluster.endpoints.joined(separator: ","), 1)
        setenv("LUIGI_CLUSTER_ID", cluster.clusterId, 1)
        setenv("LUIGI_CLUSTER_SECRET", cluster.secret, 1)
        setenv("LUIGI_CLUSTER_DIR", cluster.directory, 1)
        let status = try runAndWait(command)
        cluster.stopAll()
        exit(status)
    } catch {
        print("exec: \(error)")
        exit(2)
    }
}
