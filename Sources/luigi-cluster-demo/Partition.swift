import LuigiBase
import LuigiClient
import LuigiLocalCluster

#if canImport(Glibc)
import Glibc
#endif

/// `luigi-cluster-demo partition [--rounds N]`: 3 luigi-node processes whose
/// links to each other run through fault proxies. Each round isolates the
/// leader: a write to it alone must not commit, the majority elects another
/// leader and commits; after the heal the old leader catches up and the
/// minority write is nowhere. Then every link gets 30 ms of delay and writes
/// still commit. Exits 0 when every check held.
func runPartition(_ arguments: [String]) -> Never {
    let rounds = arguments.firstIndex(of: "--rounds").flatMap { Int(arguments[$0 + 1]) } ?? 2
    var checks = Checklist()
    func check(_ ok: Bool, _ what: String) { checks.check(ok, what) }
    let cluster: ProcessCluster
    do {
        cluster = try ProcessCluster(binary: executableDirectory() + "/luigi-node", size: 3, proxied: true)
        try cluster.startAll()
    } catch {
        say("cannot start the cluster: \(error)")
        exit(2)
    }
    say("partition scenarios: 3 luigi-node processes, every peer link through a fault proxy")
    for round in 1...rounds {
        guard let leader = cluster.awaitLeader() else {
            check(false, "round \(round): a leader is elected")
            break
        }
        say("round \(round): leader \(leader); isolating it from both peers")
        let others = cluster.ids.filter { $0 != leader }
        cluster.isolate(leader)
        let minorityKey = "minority-\(round)", majorityKey = "majority-\(round)"
        let pinned = try! cluster.client(endpoints: [cluster.endpoint(leader)], timeoutMillis: 1500)
        let minority = Result { try pinned.put(minorityKey, [1]) }
        if case .failure(let error) = minority {
            check(true, "the isolated leader cannot commit (\(error))")
        } else {
            check(false, "the isolated leader cannot commit")
        }
        let majority = try! cluster.client(endpoints: others.map(cluster.endpoint), timeoutMillis: 10_000)
        let started = monotonicNanoseconds()
        let committed = (try? majority.put(majorityKey, Array(majorityKey.utf8))) != nil
        check(committed, "the majority elects a new leader and commits (\((monotonicNanoseconds() - started) / 1_000_000) ms)")
        let newLeader = cluster.leader()
        check(newLeader != nil && newLeader != leader, "the new leader (\(newLeader.map(String.init) ?? "none")) is not the isolated node")

        cluster.heal()
        say("  healed")
        var caughtUp = false
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while !caughtUp && monotonicNanoseconds() < deadline {
            if let s = groupStatus(cluster, leader), let l = cluster.leader(), l != leader, let ls = groupStatus(cluster, l),
                s.role == "follower", s.applied == ls.commit, s.lastIndex == ls.lastIndex
            {
                caughtUp = true
            } else {
                usleep(50_000)
            }
        }
        check(caughtUp, "the old leader rejoins as a follower and applies everything the leader committed")
        let reader = try! cluster.client(timeoutMillis: 5000)
        check((try? reader.get(majorityKey)) == .some(Array(majorityKey.utf8)), "the majority's write is there")
        check((try? reader.get(minorityKey)) == .some(nil), "the minority's write is nowhere")
    }

    say("delay: 30 ms on every peer link")
    cluster.setDelay(30)
    let slow = try! cluster.client(timeoutMillis: 10_000)
    var ok = 0
    for i in 0..<20 where (try? slow.put("delayed-\(i)", [UInt8(i)])) != nil { ok += 1 }
    check(ok == 20, "writes commit with delayed links (\(ok) of 20)")
    cluster.heal()
    check((try? slow.get("delayed-19")) == .some([19]), "the last delayed write reads back")
    checks.finish(cluster, success: "partition scenarios held")
}

struct GroupStatus {
    var role: String
    var commit: UInt64
    var applied: UInt64
    var lastIndex: UInt64
}

/// Group 1's numbers from a node's status document (no JSON library: the
/// fields are flat and known).
func groupStatus(_ cluster: ProcessCluster, _ id: UInt64) -> GroupStatus? {
    guard let client = try? cluster.client(endpoints: [cluster.endpoint(id)], timeoutMillis: 1000),
        let text = try? client.status()
    else { return nil }
    let chars = Array(text)
    func field(_ name: String) -> Substring? {
        let needle = Array("\"\(name)\":")
        guard chars.count >= needle.count else { return nil }
        for i in 0...(chars.count - needle.count) where Array(chars[i..<(i + needle.count)]) == needle {
            let rest = String(chars[(i + needle.count)...])
            return rest.prefix { $0 != "," && $0 != "}" }
        }
        return nil
    }
    guard let role = field("role"), let commit = field("commit").flatMap({ UInt64($0) }),
        let applied = field("applied").flatMap({ UInt64($0) }), let last = field("last_index").flatMap({ UInt64($0) })
    else { return nil }
    return GroupStatus(role: role.trimmingCharacters(in: "\""), commit: commit, applied: applied, lastIndex: last)
}

extension Substring {
    func trimmingCharacters(in quote: Character) -> String { String(self.filter { $0 != quote }) }
}
