"""luigi_node Raft tour: a simulated 3-node Raft group with a key-value
state machine. Writes and linearizable reads, a leader crash and failover,
a partitioned minority that cannot commit, a restart that catches up, and a
linearizability check of everything the client saw.

Run it with the package installed:  python examples/python/raft_cluster.py
"""

from __future__ import annotations

import luigi_node as ln


def wait_for_leader(cluster: ln.RaftCluster) -> int:
    for _ in range(500):
        leader = cluster.leader()
        if leader is not None:
            return leader
        cluster.tick()
    raise RuntimeError("no leader elected")


def main() -> None:
    cluster = ln.RaftCluster(3, seed=42)
    leader = wait_for_leader(cluster)
    print(f"nodes {cluster.nodes()}; node {leader} leads term {cluster.status(leader).term}")

    print("\n== writes and linearizable reads")
    cluster.put("color", b"red")
    print(f"get color -> {cluster.get('color')!r}")
    print(f"cas color red->blue: {cluster.cas('color', b'red', b'blue')}")
    print(f"cas color red->green: {cluster.cas('color', b'red', b'green')}")
    print(f"cas fresh absent->1: {cluster.cas('fresh', None, b'1')}")
    print(f"delete fresh: {cluster.delete('fresh')}; get fresh -> {cluster.get('fresh')!r}")

    print("\n== the leader crashes")
    cluster.crash(leader)
    cluster.put("color", b"violet")  # waits until the survivors elect a leader
    new_leader = cluster.leader()
    assert new_leader is not None and new_leader != leader
    print(f"node {new_leader} took over in term {cluster.status(new_leader).term}; "
          f"get color -> {cluster.get('color')!r}")

    print("\n== the old leader restarts and catches up")
    cluster.restart(leader)
    cluster.tick(20)
    caught_up = cluster.log(leader) == cluster.log(new_leader)
    print(f"node {leader} is a {cluster.status(leader).role} again; same log as the leader: "
          f"{caught_up}")

    print("\n== a partitioned minority cannot commit")
    cluster.isolate(new_leader)
    index = cluster.propose(b"never committed")  # the isolated leader still accepts it...
    cluster.tick(40)  # ...while the majority elects a leader of a higher term
    majority_leader = cluster.leader()
    print(f"isolated node {new_leader}: commit index {cluster.status(new_leader).commit} < "
          f"{index}, role {cluster.status(new_leader).role}; "
          f"majority leader: node {majority_leader}")
    try:
        cluster.put("color", b"indigo", timeout=200)
        print(f"the majority commits: get color -> {cluster.get('color')!r}")
    except ln.LuigiTimeoutError as e:
        print(f"timed out (outcome unknown): {e}")
    cluster.heal()
    cluster.tick(20)
    logs = [cluster.log(node) for node in cluster.nodes()]
    print(f"healed: every node applied the same {len(logs[0])} entries: "
          f"{all(log == logs[0] for log in logs)}")

    print("\n== what the client saw")
    cluster.check_history()
    print(f"{len(cluster.history())} operations recorded; the history is linearizable")


if __name__ == "__main__":
    main()
