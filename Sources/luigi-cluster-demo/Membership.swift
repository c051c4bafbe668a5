import LuigiBase
import LuigiClient
import LuigiLocalCluster
import LuigiSimulation

#if canImport(Glibc)
import Glibc
#endif

/// `luigi-cluster-demo membership`: membership changes under load. Three
/// nodes serve a workload of writes (each acknowledged key unique); node 4
/// starts with --join and is added; it catches up; then the current leader
/// is removed and stopped, and the remaining three serve on. At the end
/// every acknowledged write is read back, from node 4 alone too.
func runMembership(_ arguments: [String]) -> Never {
    var checks = Checklist()
    func check(_ ok: Bool, _ what: String) { checks.check(ok, what) }
    let cluster: ProcessCluster
    do {
        cluster = try ProcessCluster(binary: executableDirectory() + "/luigi-node", size: 3, spare: 1)
        try cluster.startAll()
    } catch {
        say("cannot start the cluster: \(error)")
        exit(2)
    }
    guard cluster.awaitLeader() != nil else {
        say("no leader")
        exit(1)
    }
    say("membership under load: nodes 1-3 serve 4 writers; node 4 joins, then the leader leaves")
    let everyone = cluster.ids.map(cluster.endpoint)
    let run = MembershipRun(cluster)
    onThreads(5) { i in if i < 4 { run.write(i) } else { run.change() } }
    let changes = run.changes
    let load = run
    for change in changes { check(!change.hasPrefix("FAIL"), change) }
    let acknowledged = load.acknowledged
    say("  \(acknowledged.count) writes acknowledged, \(load.failed) without an answer")
    let reader = try! cluster.client(endpoints: everyone, timeoutMillis: 10_000)
    var missing = 0
    for (key, value) in acknowledged where (try? reader.get(key)) != .some(value) { missing += 1 }
    check(missing == 0, "every acknowledged write reads back (\(acknowledged.count - missing) of \(acknowledged.count))")
    if let s = groupStatus(cluster, 4), let l = cluster.leader(), let ls = groupStatus(cluster, l) {
        let deadline = monotonicNanoseconds() + 10_000_000_000
        var current = s
        while current.applied < ls.commit && monotonicNanoseconds() < deadline {
            usleep(50_000)
            current = groupStatus(cluster, 4) ?? current
        }
        check(current.applied >= ls.commit, "node 4 applied everything the leader committed (\(current.applied) >= \(ls.commit))")
    } else {
        check(false, "node 4 and a leader answer")
    }
    checks.finish(cluster, success: "membership changed under load without losing a write")
}

/// The shared state of the membership run: the writers add to
/// `acknowledged` under `lock`; the changer thread alone touches the cluster
/// and `changes` until the threads are joined.
final class MembershipRun: @unchecked Sendable {
    let cluster: ProcessCluster
    let everyone: [String]
    var acknowledged: [String: [UInt8]] = [:]
    var failed = 0
    var changes: [String] = []
    private var lock = pthread_mutex_t()
    private var doneFlag = false

    init(_ cluster: ProcessCluster) {
        self.cluster = cluster
        everyone = cluster.ids.map(cluster.endpoint)
        pthread_mutex_init(&lock, nil)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return body()
    }

    var done: Bool { locked { doneFlag } }

    func write(_ i: Int) {
        guard let client = try? cluster.client(endpoints: everyone, timeoutMillis: 10_000) else { return }
        var n = 0
        while !done {
            n += 1
            let key = "w\(i)-\(n)"
            let ok = (try? client.put(key, Array(key.utf8))) != nil
            locked {
                if ok { acknowledged[key] = Array(key.utf8) } else { failed += 1 }
            }
        }
    }

    func change() {
        usleep(1_000_000)
        let admin = try! cluster.client(timeoutMillis: 10_000)
        do {
            try cluster.start(4)
            try admin.addMember(4, address: cluster.endpoint(4))
            changes.append("node 4 added")
        } catch {
            changes.append("FAIL: adding node 4: \(error)")
        }
        usleep(1_500_000)
        if let leader = cluster.leader(), leader != 4 {
            do {
                try admin.removeMember(leader)
                cluster.stop(leader)
                changes.append("leader \(leader) removed and stopped")
            } catch {
                changes.append("FAIL: removing leader \(leader): \(error)")
            }
        } else {
            changes.append("FAIL: no leader other than node 4 to remove")
        }
        usleep(1_500_000)
        locked { doneFlag = true }
    }
}
