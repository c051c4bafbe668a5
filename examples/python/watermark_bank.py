"""luigi_node watermark-commit tour: a bank on a simulated cluster of 2 shards
x 3 replicas (one Raft group per shard). Transfers move money between
accounts, across shards half of the time, each with a balance check. A
shard's leader crashes mid-run; the checker then verifies every invariant
(atomicity, serializability, durability, ...) and the money is all there.
The same workload runs beside it under two-phase commit over the same Raft
groups, the baseline (which supports fault-free runs only).

Run it with the package installed:  python examples/python/watermark_bank.py
"""

from __future__ import annotations

from typing import Literal

import luigi_node as ln

SHARDS, REPLICAS = 2, 3
# The bank workload opens ACCOUNTS accounts per shard, named acct<shard>.<i>,
# with OPENING each.
ACCOUNTS, OPENING = 100, 1000
TRANSFERS = 400


def money(cluster: ln.ShardedCluster) -> int:
    return sum(
        cluster.value(shard, f"acct{shard}.{i}") or 0
        for shard in range(SHARDS)
        for i in range(ACCOUNTS)
    )


def bank(protocol: Literal["watermark", "2pc"], crash: bool) -> dict[str, int | float]:
    cluster = ln.ShardedCluster(shards=SHARDS, replicas=REPLICAS, protocol=protocol, seed=7)
    cluster.load("bank", TRANSFERS)
    if crash:
        cluster.run(50_000)  # 50 ms of virtual time: transfers are under way
        crashed = cluster.crash_leader(0)
        cluster.run(300_000)
        print(f"shard 0's leader, node {crashed}, crashed; node {cluster.leader(0)} took over")
        cluster.restart(crashed)
    if not cluster.run_until_idle(10_000_000):
        raise RuntimeError("the cluster did not finish its work")
    cluster.run(100_000)  # followers catch up before the check
    cluster.check()  # raises InvariantViolation(invariant, detail) if one broke
    print("check(): every invariant holds")
    total, expected = money(cluster), SHARDS * ACCOUNTS * OPENING
    print(f"money: {total} of {expected}" + ("" if total == expected else "  MONEY WAS LOST"))
    return cluster.stats()


def main() -> None:
    print("== watermark commit, a leader crash mid-run")
    watermark = bank("watermark", crash=True)
    print("\n== two-phase commit (the baseline), fault-free")
    two_pc = bank("2pc", crash=False)

    print("\n== side by side (the watermark run includes the crash)")
    print(f"{'':28}{'watermark':>12}{'2pc':>12}")
    for label, key, fmt in [
        ("committed", "committed", "d"),
        ("aborted (balance check)", "aborted", "d"),
        ("latency p50 (round trips)", "latency_p50_rtt", ".2f"),
        ("latency p99 (round trips)", "latency_p99_rtt", ".2f"),
        ("fast path rate", "fast_path_rate", ".2f"),
        ("messages", "messages", "d"),
    ]:
        print(f"{label:28}{watermark[key]:>12{fmt}}{two_pc[key]:>12{fmt}}")


if __name__ == "__main__":
    main()
