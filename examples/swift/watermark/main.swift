// luigi-watermark-example: watermark commit from Swift. Bank transfers on
// 2 shards x 3 replicas; a shard leader crashes mid-run; every invariant is
// checked, money is conserved, and the same run under two-phase commit over
// the same Raft groups is printed beside it.
import LuigiCore
import LuigiSimulation

func bank(_ proto: ShardedProtocol, crash: Bool) throws -> ShardedSummary {
    var options = ShardedCluster.Options()
    options.proto = proto
    options.shards = 2
    options.replicas = 3
    options.window = 16
    options.seed = 7
    let cluster = try ShardedCluster(options)
    try cluster.load(.bank, count: 500, crossShard: 0.5)
    if crash {
        try cluster.run(forUs: 40_000)
        if let leader = cluster.leader(of: 1) {
            try cluster.crash(leader)
            try cluster.run(forUs: 200_000)
            try cluster.restart(leader)
        }
    }
    guard try cluster.runUntilIdle(limitUs: 60_000_000) else { throw LuigiError.timeout("the run did not finish") }
    try cluster.run(forUs: 100_000)  // followers catch up
    try cluster.checkInvariants()

    var money: Int64 = 0
    for shard in 0..<UInt64(2) {
        for i in 0..<100 { money += try cluster.value(BankWorkload.account(shard, i), shard: shard) ?? 0 }
    }
    guard money == 2 * 100 * 1_000 else { throw LuigiError.state("money is \(money), not 200000") }
    return cluster.summary()
}

for (proto, crash) in [(ShardedProtocol.watermark, false), (.watermark, true), (.twoPhaseCommit, false)] {
    let s = try bank(proto, crash: crash)
    let p50 = (s.latencyP50 * 100).rounded() / 100
    print("\(proto.rawValue) bank\(crash ? ", leader crashed" : ""): \(s.committed) committed, \(s.aborted) aborted,",
          "p50 \(p50) round trips, money conserved, invariants hold")
}
