"""luigi_node quickstart: vector clocks, two replicas exchanging updates, a
transaction as a context manager, an overwrite committed through a Raft log,
and a small simulated cluster that is partitioned and healed.

Run it with the package installed:  python examples/python/quickstart.py
"""

from __future__ import annotations

import luigi_node as ln


def vector_clocks() -> None:
    print("== vector clocks")
    a = ln.VectorClock()
    a.tick(1)  # node 1 does something
    b = a.copy()
    b.tick(2)  # node 2 saw it, then did something
    c = a.copy()
    c.tick(3)  # node 3 saw it too, independently
    print(f"a = {a!r}\nb = {b!r}\nc = {c!r}")
    print(f"a vs b: {a.compare(b).name}   b vs c: {b.compare(c).name}")
    merged = b.copy()
    merged.merge(c)
    print(f"b merged with c = {merged!r}, which comes after both: "
          f"{b.happened_before(merged) and c.happened_before(merged)}")
    encoded = bytes(merged)
    print(f"encoded in {len(encoded)} bytes; decodes back equal: "
          f"{ln.VectorClock.from_bytes(encoded) == merged}")


def two_replicas() -> None:
    print("\n== two replicas exchanging updates")
    paris, tokyo = ln.Replica(1), ln.Replica(2)

    # A transaction is a context manager: it commits when the block ends.
    with paris.transaction() as tx:
        tx.add("visits", 3)
        tx.max("peak_temperature", 31.5)
        tx.union("cities", ["paris"])
    from_paris = tx.update
    assert from_paris is not None

    with tokyo.transaction() as tx:
        tx.add("visits", 5)
        tx.max("peak_temperature", 29)
        tx.union("cities", ["tokyo"])
    from_tokyo = tx.update
    assert from_tokyo is not None

    # Ship the encoded updates both ways; delivering one twice is harmless.
    wire = from_paris.to_bytes()
    print(f"paris's update: {from_paris!r}, {len(wire)} bytes on the wire")
    tokyo.apply(ln.Update.from_bytes(wire))
    print(f"tokyo applies it again: new={tokyo.apply(from_paris)}")
    paris.apply(from_tokyo)

    for replica in (paris, tokyo):
        values = {key: replica.value(key) for key in replica.keys()}
        print(f"replica {replica.node_id}: {values} clock={replica.clock!r}")

    # A transaction is all or nothing: this one fails as a whole.
    try:
        with paris.transaction() as tx:
            tx.add("visits", 1)
            tx.union("visits", ["oops"])  # visits is a counter, not a set
    except ln.TypeConflictError as e:
        print(f"rejected, nothing changed (visits={paris.value('visits')}): {e}")

    # Overwrites need coordination, so a local commit refuses them.
    try:
        with paris.transaction() as tx:
            tx.set("owner", 7)
    except ln.NotAlgebraicError as e:
        print(f"local set() refused: {e}")


def overwrite_through_the_log() -> None:
    print("\n== an overwrite through the replicated log")
    # A one-node Raft group keeps the example short; with more nodes, every
    # node attaches its own replica and they all apply the same log.
    node = ln.RaftNode(1, [1])
    lyon = ln.Replica(30)
    node.attach_replica(lyon, log_origin=1000)  # the log's own origin id
    node.campaign()

    def drive() -> None:
        while (ready := node.ready()) is not None:
            node.advance(ready)  # one node: no messages to send

    drive()
    for owner in (7, 8):
        tx = lyon.transaction()
        tx.set("owner", owner)
        tx.add("handovers", 1)
        index = node.propose_transaction(tx)
        drive()
        print(f"proposed at log index {index}: {node.transaction_outcome(index)}")
    print(f"lyon: owner={lyon.value('owner')} handovers={lyon.value('handovers')}")


def simulated_cluster() -> None:
    print("\n== a simulated cluster: partition, then heal")
    cluster = ln.SimulatedCluster(5, seed=2024, drop=0.1, duplicate=0.05, max_delay=2)
    cluster.partition([0, 1], [2, 3, 4])
    for replica in cluster:
        with replica.transaction() as tx:
            tx.add("requests", 10 * (replica.node_id + 1))
    cluster.run(30)
    print("while partitioned:", [replica.value("requests") for replica in cluster])
    print("converged?", cluster.converged())
    cluster.heal()
    rounds = cluster.run_until_converged()
    print(f"healed; converged after {rounds} more rounds:",
          [replica.value("requests") for replica in cluster])
    print("stats:", cluster.stats())


def main() -> None:
    vector_clocks()
    two_replicas()
    overwrite_through_the_log()
    simulated_cluster()


if __name__ == "__main__":
    main()
