import LuigiLocalCluster

#if canImport(Glibc)
import Glibc
#endif

/// The checks of one scenario: each is printed as it is made; `finish`
/// stops the cluster and exits 0 when all held, else keeps its directory
/// for the logs and exits 1.
struct Checklist {
    private(set) var failures: [String] = []

    mutating func check(_ ok: Bool, _ what: String) {
        say("  \(ok ? "ok  " : "FAIL") \(what)")
        if !ok { failures.append(what) }
    }

    func finish(_ cluster: ProcessCluster, success: String) -> Never {
        cluster.stopAll()
        if failures.isEmpty {
            say("OK: \(success)")
            exit(0)
        }
        cluster.keep = true
        say("FAILED: \(failures.count) checks (logs in \(cluster.directory))")
        exit(1)
    }
}
