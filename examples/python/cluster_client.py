"""luigi_node Client tour: talk to a running luigi-node cluster over TCP.
Linearizable put/get/cas/delete through whichever node leads, a node's
status, threads, a commit on a replica group read back on every node, and
what a wrong secret gets.

The cluster comes from the environment, as `luigi-cluster-demo exec` sets it
for the command it runs (it starts 3 luigi-node processes on loopback):

    LUIGI_ENDPOINTS       host:port,host:port,...
    LUIGI_CLUSTER_ID      the cluster id
    LUIGI_CLUSTER_SECRET  the shared secret

Run it:  .build/release/luigi-cluster-demo exec -- python examples/python/cluster_client.py
"""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid

import luigi_node as ln


def main() -> int:
    try:
        endpoints = os.environ["LUIGI_ENDPOINTS"]
        cluster_id = os.environ["LUIGI_CLUSTER_ID"]
        secret = os.environ["LUIGI_CLUSTER_SECRET"]
    except KeyError as missing:
        print(f"set {missing} (run me under `luigi-cluster-demo exec -- python {sys.argv[0]}`)")
        return 2

    with ln.Client(endpoints, cluster_secret=secret, cluster_id=cluster_id, timeout=5.0) as c:
        print(f"== {len(c.endpoints)} endpoints: {', '.join(c.endpoints)}")
        status = c.status()
        group = status["groups"][0]
        print(f"node {status['node']} of cluster {status['cluster']!r} answered: group "
              f"{group['group']} is led by node {group['leader']} in term {group['term']}")

        print("\n== writes and linearizable reads")
        c.put("example/color", b"red")
        print(f"get color -> {c.get('example/color')!r}")
        print(f"cas color red->blue: {c.cas('example/color', b'red', b'blue')}")
        print(f"cas color red->green: {c.cas('example/color', b'red', b'green')}")
        c.delete("example/fresh")
        print(f"cas fresh absent->1: {c.cas('example/fresh', None, b'1')}")
        print(f"delete fresh: {c.delete('example/fresh')}; get fresh -> "
              f"{c.get('example/fresh')!r}")
        blob = bytes(range(256)) * 1024
        c.put("example/blob", blob)
        print(f"a 256 KiB binary value reads back equal: {c.get('example/blob') == blob}")

        print("\n== four threads, a Client each (calls release the GIL)")
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                with ln.Client(endpoints, cluster_secret=secret, cluster_id=cluster_id) as mine:
                    for i in range(25):
                        mine.put(f"example/t{n}/{i}", f"{n}:{i}".encode())
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        read_back = all(c.get(f"example/t{n}/{i}") == f"{n}:{i}".encode()
                        for n in range(4) for i in range(25))
        print(f"100 writes from 4 threads, errors: {len(errors)}; all read back: {read_back}")

        print("\n== a replica group: an algebraic commit, no coordination")
        group = ln.REPLICA_GROUP_BASE + 1  # luigi-cluster-demo runs one replica group
        visits = f"example/visits/{uuid.uuid4().hex[:8]}"  # a fresh counter each run
        origin, seq = c.commit([("add", visits, 5), ("union", "example/langs", "python")],
                               group=group)
        print(f"commit on replica group {group} -> dot ({origin}, {seq})")
        # It committed on the node the client reached and spreads to the others
        # by anti-entropy: read each node's replica until all have it.
        on_each_node: list[object] = []
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            on_each_node = [c.value(visits, group=group, endpoint=node) for node in c.endpoints]
            if all(v == 5 for v in on_each_node):
                break
            time.sleep(0.02)
        converged = all(v == 5 for v in on_each_node)
        print(f"the counter on each node: {on_each_node}")
        print(f"the set: {c.value('example/langs', group=group)}")

        print("\n== bad input is refused before anything is sent")
        try:
            c.put("", b"x")
        except ln.LuigiValueError as e:
            print(f"empty key: LuigiValueError ({e})")
        try:
            c.get("example/color", group=2, timeout=0.3)
        except ln.LuigiTimeoutError:
            print("group 2 (the nodes run only group 1): LuigiTimeoutError after 0.3 s")

    print(f"closed: {c.closed}")

    print("\n== a wrong secret")
    try:
        with ln.Client(endpoints, cluster_secret="not-the-cluster-secret",
                       cluster_id=cluster_id) as impostor:
            impostor.get("example/color")
        print("the impostor got in: WRONG")
        return 1
    except ln.AuthError as e:
        print(f"AuthError: {e}")
    return 0 if not errors and read_back and converged else 1


if __name__ == "__main__":
    sys.exit(main())
