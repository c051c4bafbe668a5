"""RaftNode: three nodes driven over an in-Python transport (a dict of queues).

The test is the "bring your own transport" user: it ticks the nodes, steps
every message into its recipient, takes each Ready, sends its messages,
applies its snapshot and committed entries to a tiny state machine, and
advances.
"""

from __future__ import annotations

import os
import struct
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luigi_node as ln
from luigi_node import Entry, RaftNode, RaftStatus, Ready

VOTERS = [1, 2, 3]


class Machine:
    """The state machine under test: the list of non-empty normal commands
    applied, in log order. Its snapshot is that list, length-prefixed."""

    def __init__(self) -> None:
        self.commands: list[bytes] = []
        self.applied = 0
        self.snapshots: list[tuple[int, int, bytes]] = []
        self.read_states: list[tuple[int, bytes]] = []
        self.conf_changes: list[Entry] = []

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied + 1, f"entry {entry.index} after {self.applied}"
        self.applied = entry.index
        if entry.kind == "conf_change":
            self.conf_changes.append(entry)
        elif entry.data:
            self.commands.append(entry.data)

    def snapshot(self) -> bytes:
        return b"".join(struct.pack("<I", len(c)) + c for c in self.commands)

    def restore(self, index: int, term: int, data: bytes) -> None:
        self.snapshots.append((index, term, data))
        self.commands = []
        offset = 0
        while offset < len(data):
            (n,) = struct.unpack_from("<I", data, offset)
            self.commands.append(data[offset + 4 : offset + 4 + n])
            offset += 4 + n
        self.applied = index


class Network:
    """Nodes plus a queue of undelivered messages per recipient."""

    def __init__(
        self, ids: Sequence[int] = VOTERS, *, storage: Optional[Path] = None, **options: Any
    ) -> None:
        self.ids = list(ids)
        self.storage = storage
        self.options = options
        self.nodes: dict[int, Optional[RaftNode]] = {}
        self.machines: dict[int, Machine] = {}
        self.inbox: dict[int, deque[bytes]] = {i: deque() for i in self.ids}
        self.isolated: set[int] = set()
        for i in self.ids:
            self.start(i)

    def start(self, i: int) -> None:
        path = None if self.storage is None else self.storage / f"node-{i}"
        self.nodes[i] = RaftNode(i, self.ids, storage=path, seed=7, **self.options)
        self.machines[i] = Machine()

    def crash(self, i: int) -> None:
        self.nodes[i] = None  # the last reference: the node (and its files) close now
        self.inbox[i].clear()

    def node(self, i: int) -> RaftNode:
        node = self.nodes[i]
        assert node is not None, f"node {i} is down"
        return node

    def status(self, i: int) -> RaftStatus:
        return self.node(i).status()

    def process(self, i: int) -> None:
        node = self.nodes[i]
        if node is None:
            return
        machine = self.machines[i]
        rd = node.ready()
        while rd is not None:
            for to, message in rd.messages:
                if to in self.inbox and self.nodes.get(to) is not None:
                    if i not in self.isolated and to not in self.isolated:
                        self.inbox[to].append(message)
            if rd.snapshot is not None:
                machine.restore(*rd.snapshot)
            for entry in rd.committed:
                machine.apply(entry)
            machine.read_states.extend(rd.read_states)
            node.advance(rd)
            rd = node.ready()

    def deliver_all(self) -> None:
        for i in self.ids:
            self.process(i)
        while any(self.inbox.values()):
            for i in self.ids:
                batch = list(self.inbox[i])
                self.inbox[i].clear()
                node = self.nodes[i]
                if node is not None:
                    for message in batch:
                        node.step(message)
            for i in self.ids:
                self.process(i)

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            for i in self.ids:
                node = self.nodes[i]
                if node is not None:
                    node.tick()
            self.deliver_all()

    def leader(self) -> Optional[int]:
        best: Optional[RaftStatus] = None
        for i in self.ids:
            node = self.nodes[i]
            if node is None:
                continue
            st = node.status()
            if st.role == "leader" and (best is None or st.term > best.term):
                best = st
        return None if best is None else best.id

    def wait_for_leader(self, max_ticks: int = 500) -> int:
        for _ in range(max_ticks):
            leader = self.leader()
            if leader is not None:
                return leader
            self.tick()
        raise AssertionError("no leader elected")


def test_election() -> None:
    net = Network()
    leader = net.wait_for_leader()
    net.tick(3)
    statuses = [net.status(i) for i in VOTERS]
    assert [s.role for s in statuses].count("leader") == 1
    term = statuses[0].term
    assert term >= 1
    for s in statuses:
        assert isinstance(s, RaftStatus)
        assert s.term == term and s.leader == leader and s.voters == 3 and s.learners == 0
        assert s.role in ("leader", "follower")
    assert net.status(leader).is_leader and net.status(leader).vote == leader
    # The new leader's no-op is committed and applied everywhere.
    for s in statuses:
        assert s.commit >= 1 and s.applied == s.commit


def test_a_thousand_proposals_apply_identically_everywhere() -> None:
    net = Network()
    leader = net.wait_for_leader()
    expected = [f"set k{i % 10}={i}".encode() for i in range(1000)]
    indices = []
    for i, command in enumerate(expected):
        indices.append(net.node(leader).propose(command))
        if i % 100 == 99:
            net.deliver_all()
    net.deliver_all()
    net.tick(3)
    assert indices == sorted(set(indices)) and len(indices) == 1000
    for i in VOTERS:
        assert net.machines[i].commands == expected, f"node {i}"
        st = net.status(i)
        assert st.commit == st.applied == st.last_index >= indices[-1]


def test_committed_entries_are_typed() -> None:
    net = Network(ids=[1], election_tick=5)
    node = net.node(1)
    node.campaign()
    rd = node.ready()
    assert isinstance(rd, Ready)
    node.advance(rd)
    index = node.propose(bytearray(b"abc"))
    rd = node.ready()
    assert rd is not None
    [entry] = rd.committed
    assert entry == Entry(index, rd.committed[0].term, "normal", b"abc")
    assert isinstance(entry.data, bytes) and entry.kind == "normal"
    assert rd.messages == [] and rd.read_states == [] and rd.snapshot is None
    assert "1 committed" in repr(rd)
    with pytest.raises(AttributeError):
        entry.data = b"x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        rd.committed = []  # type: ignore[misc]
    assert not rd.advanced
    node.advance(rd)
    assert rd.advanced
    assert node.ready() is None


def test_ready_reports_what_the_library_persisted() -> None:
    net = Network()
    leader = net.wait_for_leader()
    node = net.node(leader)
    term = node.status().term
    index = node.propose(b"payload")
    rd = node.ready()
    assert rd is not None
    assert [(e.index, e.term, e.data) for e in rd.entries] == [(index, term, b"payload")]
    assert rd.must_sync  # new entries: synced (on a durable node) before ready() returned
    with pytest.raises(AttributeError):
        rd.must_sync = False  # type: ignore[misc]
    node.advance(rd)

    # A new term and vote are persisted, and synced, before anything depends on them.
    single = RaftNode(7, [7])
    single.campaign()
    rd = single.ready()
    assert rd is not None and rd.must_sync
    hs = rd.hard_state
    assert hs is not None and (hs.term, hs.vote) == (1, 7)
    assert [e.data for e in rd.entries] == [b""]  # the new leader's no-op
    single.advance(rd)


def test_ready_lifecycle_is_checked() -> None:
    a, b = RaftNode(1, [1]), RaftNode(2, [2])
    a.campaign()
    b.campaign()
    ra, rb = a.ready(), b.ready()
    assert ra is not None and rb is not None
    with pytest.raises(ln.TransactionStateError):
        a.ready()  # the previous batch was not advanced yet
    with pytest.raises(ln.LuigiValueError):
        a.advance(rb)
    with pytest.raises(TypeError):
        a.advance("ready")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Ready()
    a.advance(ra)
    with pytest.raises(ln.TransactionStateError):
        a.advance(ra)
    # Dropping an un-advanced Ready releases it: the node can hand out more.
    del rb
    b.propose(b"x")
    rd = b.ready()
    assert rd is not None and [e.data for e in rd.committed][-1] == b"x"
    b.advance(rd)


def test_follower_refuses_proposals() -> None:
    net = Network()
    leader = net.wait_for_leader()
    follower = next(i for i in VOTERS if i != leader)
    with pytest.raises(ln.TransactionStateError) as info:
        net.node(follower).propose(b"x")
    assert isinstance(info.value, RuntimeError)
    assert "not the leader" in str(info.value)
    with pytest.raises(ln.TransactionStateError):
        net.node(follower).read_index(b"ctx")
    with pytest.raises(ln.TransactionStateError):
        net.node(follower).transfer_leader(leader)


def test_garbage_is_refused_and_the_node_keeps_working() -> None:
    net = Network()
    leader = net.wait_for_leader()
    follower = next(i for i in VOTERS if i != leader)
    node = net.node(follower)
    before = node.status()
    for garbage in (b"", b"garbage", bytes(range(256)), b"\xff" * 64):
        with pytest.raises(ln.DecodeError):
            node.step(garbage)
    with pytest.raises(TypeError):
        node.step("text")  # type: ignore[arg-type]
    # A well-formed message, but addressed to another node.
    other = next(i for i in VOTERS if i not in (leader, follower))
    net.node(leader).propose(b"probe")
    net.process(leader)
    assert net.inbox[other]
    with pytest.raises(ln.LuigiValueError):
        node.step(net.inbox[other][0])
    assert node.status() == before
    net.deliver_all()
    net.node(leader).propose(b"after garbage")
    net.deliver_all()
    net.tick(2)
    for i in VOTERS:
        assert net.machines[i].commands == [b"probe", b"after garbage"]


def test_read_index_yields_a_read_state() -> None:
    net = Network()
    leader = net.wait_for_leader()
    net.node(leader).propose(b"w1")
    net.deliver_all()
    commit = net.status(leader).commit
    net.node(leader).read_index(b"ctx-1")
    net.deliver_all()
    net.tick(2)
    states = net.machines[leader].read_states
    assert len(states) == 1
    index, context = states[0]
    assert context == b"ctx-1" and index >= commit
    assert net.machines[leader].applied >= index  # safe to serve the read now


def test_transfer_leader() -> None:
    net = Network()
    leader = net.wait_for_leader()
    net.node(leader).propose(b"before")
    net.deliver_all()
    target = next(i for i in VOTERS if i != leader)
    net.node(leader).transfer_leader(target)
    net.deliver_all()
    for _ in range(50):
        if net.leader() == target:
            break
        net.tick()
    assert net.leader() == target
    assert net.status(leader).role == "follower"
    with pytest.raises(ln.LuigiValueError):
        net.node(target).transfer_leader(99)  # not a voter
    net.node(target).propose(b"after")
    net.deliver_all()
    net.tick(2)
    for i in VOTERS:
        assert net.machines[i].commands == [b"before", b"after"]


def test_membership_change_entry() -> None:
    net = Network()
    leader = net.wait_for_leader()
    node = net.node(leader)
    with pytest.raises(ln.LuigiValueError):
        node.propose_conf_change("promote", 4)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        node.propose_conf_change(0, 4)  # type: ignore[arg-type]
    with pytest.raises(ln.LuigiValueError):
        node.propose_conf_change("add_voter", leader)  # already a voter
    index = node.propose_conf_change("add_learner", 4)
    with pytest.raises(ln.TransactionStateError):
        node.propose_conf_change("add_learner", 5)  # one change at a time
    net.deliver_all()
    net.tick(2)
    for i in VOTERS:
        [change] = net.machines[i].conf_changes
        assert change.index == index and change.kind == "conf_change"
        assert net.status(i).learners == 1 and net.status(i).voters == 3
    index = node.propose_conf_change("remove_node", 4)
    net.deliver_all()
    net.tick(2)
    assert all(net.status(i).learners == 0 for i in VOTERS)


def test_compaction_sends_a_snapshot_to_a_lagging_node() -> None:
    net = Network()
    leader = net.wait_for_leader()
    lagging = next(i for i in VOTERS if i != leader)
    net.isolated.add(lagging)
    for i in range(200):
        net.node(leader).propose(b"cmd-%d" % i)
    net.deliver_all()
    st = net.status(leader)
    assert st.commit == st.applied == st.last_index
    snapshot = net.machines[leader].snapshot()
    net.node(leader).compact(st.applied, snapshot)
    assert net.status(leader).first_index == st.applied + 1
    with pytest.raises(ln.LuigiValueError):
        net.node(leader).compact(st.applied + 10, b"")  # not applied yet
    assert net.status(lagging).last_index < st.applied

    net.isolated.clear()
    for _ in range(50):
        net.tick()
        if net.machines[lagging].applied >= st.applied:
            break
    machine = net.machines[lagging]
    assert machine.snapshots, "the lagging node's Ready never carried a snapshot"
    index, term, data = machine.snapshots[0]
    assert index == st.applied and term == st.term and data == snapshot
    net.node(leader).propose(b"after snapshot")
    net.deliver_all()
    net.tick(2)
    expected = [b"cmd-%d" % i for i in range(200)] + [b"after snapshot"]
    for i in VOTERS:
        assert net.machines[i].commands == expected, f"node {i}"


def test_durable_restart_recovers_term_commit_and_log(tmp_path: Path) -> None:
    net = Network(storage=tmp_path)
    leader = net.wait_for_leader()
    for i in range(50):
        net.node(leader).propose(b"a%d" % i)
    net.deliver_all()
    net.tick(2)
    follower = next(i for i in VOTERS if i != leader)
    before = net.status(follower)
    applied_before = list(net.machines[follower].commands)
    assert before.commit >= 51 and len(applied_before) == 50
    assert os.listdir(tmp_path / f"node-{follower}")

    net.crash(follower)
    for i in range(20):
        net.node(leader).propose(b"b%d" % i)
    net.deliver_all()  # the two survivors still commit

    # Reopen from the directory (voters is ignored then).
    net.nodes[follower] = RaftNode(follower, [follower], storage=tmp_path / f"node-{follower}")
    net.machines[follower] = Machine()
    after = net.status(follower)
    assert (after.term, after.vote, after.commit, after.last_index) == (
        before.term,
        before.vote,
        before.commit,
        before.last_index,
    )
    assert after.voters == 3 and after.applied < after.commit
    # Its first batches re-deliver the committed log from its own storage.
    net.process(follower)
    assert net.machines[follower].commands == applied_before
    # Rejoined, it catches up on what it missed.
    net.tick(3)
    expected = [b"a%d" % i for i in range(50)] + [b"b%d" % i for i in range(20)]
    assert net.machines[follower].commands == expected


def test_durable_node_whole_cluster_restart(tmp_path: Path) -> None:
    net = Network(storage=tmp_path)
    leader = net.wait_for_leader()
    for i in range(30):
        net.node(leader).propose(b"c%d" % i)
    net.deliver_all()
    terms = {i: net.status(i).term for i in VOTERS}
    for i in VOTERS:
        net.crash(i)
    for i in VOTERS:
        net.start(i)
        assert net.status(i).term == terms[i]
    net.wait_for_leader()
    net.tick(3)
    for i in VOTERS:
        assert net.machines[i].commands == [b"c%d" % i for i in range(30)]


def test_storage_errors_are_io_errors(tmp_path: Path) -> None:
    regular = tmp_path / "file"
    regular.write_bytes(b"not a directory")
    with pytest.raises(ln.LuigiIOError) as info:
        RaftNode(1, [1], storage=regular)
    assert isinstance(info.value, OSError)
    with pytest.raises(ln.LuigiIOError):
        RaftNode(1, [1], storage=regular / "sub")

    # Corruption before the tail of the write-ahead log is an error, never
    # silently skipped.
    directory = tmp_path / "node"
    node = RaftNode(1, [1], storage=str(directory))
    node.campaign()
    for i in range(6):
        rd = node.ready()
        while rd is not None:
            node.advance(rd)
            rd = node.ready()
        node.propose(b"entry %d" % i)
    del node, rd
    logs = [p for p in directory.iterdir() if p.is_file() and not p.name.endswith(".snap")]
    assert logs, f"no log file in {sorted(p.name for p in directory.iterdir())}"
    log = max(logs, key=lambda p: p.stat().st_size)
    data = bytearray(log.read_bytes())
    assert len(data) > 64
    data[20] ^= 0xFF
    log.write_bytes(bytes(data))
    with pytest.raises(ln.LuigiIOError):
        RaftNode(1, [1], storage=directory)


def test_bad_arguments() -> None:
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = [
        ((0, [1]), {}),  # id 0 is reserved
        ((1, []), {}),  # no voters
        ((1, [1, 1]), {}),  # duplicates
        ((1, [0, 1]), {}),
        ((1, [1]), {"election_tick": 1, "heartbeat_tick": 1}),
        ((1, [1]), {"heartbeat_tick": 0}),
        ((1, [1]), {"max_inflight": 0}),
    ]
    for args, kwargs in cases:
        with pytest.raises(ln.LuigiValueError):
            RaftNode(*args, **kwargs)
    with pytest.raises(ln.LuigiOverflowError):
        RaftNode(-1, [1])
    with pytest.raises(ln.LuigiOverflowError):
        RaftNode(1, [1], election_tick=2**32)
    with pytest.raises(TypeError):
        RaftNode(1, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        RaftNode(1, ["1"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        RaftNode(1, [1], 10)  # type: ignore[call-arg, arg-type]
    node = RaftNode(1, [1])
    assert node.id == 1 and repr(node) == "<RaftNode 1>"
    with pytest.raises(ln.LuigiOverflowError):
        node.transfer_leader(2**64)
    with pytest.raises(TypeError):
        node.propose("text")  # type: ignore[arg-type]


def test_nodes_on_threads() -> None:
    """Each node may live on its own thread; ready() releases the GIL while
    it persists, and a node's lock serialises callers of the same node."""
    node = RaftNode(1, [1])
    node.campaign()
    applied: list[bytes] = []
    first = node.ready()
    assert first is not None
    node.advance(first)
    assert node.status().role == "leader"

    def worker(tag: int) -> None:
        for i in range(200):
            node.propose(b"%d-%d" % (tag, i))
            try:
                rd = node.ready()
            except ln.TransactionStateError:
                continue  # the other thread holds a Ready right now
            if rd is not None:
                applied.extend(e.data for e in rd.committed if e.data)
                node.advance(rd)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rd = node.ready()
    while rd is not None:
        applied.extend(e.data for e in rd.committed if e.data)
        node.advance(rd)
        rd = node.ready()
    assert sorted(applied) == sorted(b"%d-%d" % (t, i) for t in range(2) for i in range(200))


# ------------------------------------------------ the replica as a plugin

LOG_ORIGIN = 100


class ReplicaNetwork(Network):
    """A Network whose nodes each carry a Replica attached to their log."""

    def start(self, i: int) -> None:
        super().start(i)
        if not hasattr(self, "replicas"):
            self.replicas: dict[int, ln.Replica] = {}
        self.replicas[i] = ln.Replica(i)  # a restart loses the in-memory replica
        self.node(i).attach_replica(self.replicas[i], log_origin=LOG_ORIGIN)

    def propose(self, build: Callable[[ln.Transaction], None]) -> tuple[int, int]:
        leader = self.wait_for_leader()
        tx = self.replicas[leader].transaction()
        build(tx)
        return leader, self.node(leader).propose_transaction(tx)


def test_set_commits_through_the_log_on_every_replica() -> None:
    net = ReplicaNetwork()
    leader = net.wait_for_leader()
    node, replica = net.node(leader), net.replicas[leader]
    tx = replica.transaction()
    tx.set("owner", 7)
    tx.add("visits", 2)
    with pytest.raises(ln.NotAlgebraicError):
        tx.commit()
    index = node.propose_transaction(tx)
    assert tx.proposed_index == index and tx.update is None and len(tx) == 2
    assert "proposed" in repr(tx)
    with pytest.raises(ln.TransactionStateError, match="proposed"):
        tx.add("visits", 1)
    with pytest.raises(ln.TransactionStateError):
        node.propose_transaction(tx)
    assert node.transaction_outcome(index) == "pending"
    net.deliver_all()
    assert node.transaction_outcome(index) == "committed"
    _, second = net.propose(lambda t: t.set("owner", 8.5))
    net.deliver_all()
    assert node.transaction_outcome(second) == "committed"
    for r in net.replicas.values():
        assert (r.value("owner"), r.value("visits")) == (8.5, 2)
        assert r.clock[LOG_ORIGIN] == 2
    # The log's updates travel by delta sync to a replica outside the group.
    outsider = ln.Replica(50)
    assert outsider.apply_bytes(replica.delta_bytes(outsider.clock)) == 2
    assert outsider.value("owner") == 8.5
    assert node.transaction_outcome(12345) == "unknown"


def test_the_log_rejects_an_overflow_on_every_node() -> None:
    net = ReplicaNetwork()
    leader = net.wait_for_leader()
    node = net.node(leader)
    _, first = net.propose(lambda t: t.add("big", 2**63 - 1))

    def overflowing(t: ln.Transaction) -> None:
        t.add("big", 1)  # the log's share of "big" would pass 2**63 - 1
        t.set("owner", 1)

    _, second = net.propose(overflowing)
    net.deliver_all()
    assert node.transaction_outcome(first) == "committed"
    with pytest.raises(ln.LuigiOverflowError, match="overflows"):
        node.transaction_outcome(second)
    for r in net.replicas.values():
        assert (r.value("big"), r.value("owner")) == (2**63 - 1, None)


def test_coordinated_proposals_are_checked() -> None:
    net = ReplicaNetwork()
    leader = net.wait_for_leader()
    follower = next(i for i in net.ids if i != leader)
    tx = net.replicas[follower].transaction()
    tx.set("r", 1)
    with pytest.raises(ln.TransactionStateError):
        net.node(follower).propose_transaction(tx)  # not the leader
    assert "open" in repr(tx)
    with pytest.raises(ln.LuigiValueError):
        net.node(leader).propose_transaction(tx)  # another replica's transaction
    with pytest.raises(TypeError):
        net.node(leader).propose_transaction(b"not a transaction")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        net.node(leader).attach_replica(ln.Replica(9))  # type: ignore[call-arg]
    for origin, error in ((0, ln.LuigiValueError), (9, ln.LuigiValueError), (-1, ln.LuigiOverflowError)):
        with pytest.raises(error):
            net.node(leader).attach_replica(ln.Replica(9), log_origin=origin)
    with pytest.raises(ln.TransactionStateError):
        RaftNode(1, [1]).transaction_outcome(1)  # nothing attached
    _, index = net.propose(lambda t: t.set("r", 1))
    net.deliver_all()
    conflicting = net.replicas[leader].transaction()
    conflicting.add("r", 1)  # "r" is a register here
    with pytest.raises(ln.TypeConflictError):
        net.node(leader).propose_transaction(conflicting)
    assert net.node(leader).transaction_outcome(index) == "committed"


def test_a_proposal_replaced_after_a_leader_change_is_lost() -> None:
    net = ReplicaNetwork()
    old = net.wait_for_leader()
    net.isolated.add(old)
    _, lost = net.propose(lambda t: t.set("r", 1))
    for _ in range(300):
        if net.leader() not in (None, old):
            break
        net.tick()
    new, won = net.propose(lambda t: t.set("r", 2))
    net.deliver_all()
    net.isolated.clear()
    net.tick(30)
    assert net.node(old).transaction_outcome(lost) == "lost"
    assert net.node(new).transaction_outcome(won) == "committed"
    assert all(r.value("r") == 2 for r in net.replicas.values())


def test_a_restarted_node_rebuilds_its_replica_from_the_log(tmp_path: Path) -> None:
    net = ReplicaNetwork(storage=tmp_path)
    for i in range(5):
        tx = net.replicas[net.wait_for_leader()].transaction()
        tx.set("r", i)
        tx.union("s", [i])
        net.node(net.wait_for_leader()).propose_transaction(tx)
        net.deliver_all()
    leader = net.wait_for_leader()
    victim = next(i for i in net.ids if i != leader)
    net.crash(victim)
    net.start(victim)  # replays its durable log into a fresh replica
    net.tick(20)
    assert net.replicas[victim].value("r") == 4
    assert net.replicas[victim].value("s") == frozenset(range(5))
    # A node that falls behind a compaction gets the replica's snapshot.
    net.crash(victim)
    net.propose(lambda t: t.set("r", 5))
    net.deliver_all()
    with pytest.raises(ln.TransactionStateError):
        RaftNode(9, [9]).compact_replica()
    assert net.node(leader).compact_replica() == net.status(leader).applied
    net.start(victim)  # its log ends before the leader's snapshot
    net.tick(30)
    assert net.machines[victim].snapshots  # it was sent a snapshot, not the entries
    assert net.replicas[victim].value("r") == 5
    assert net.replicas[victim].value("s") == frozenset(range(5))


GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "raft_message_v2.hex"


def golden_messages() -> dict[str, bytes]:
    """The frozen "LRM" v2 encodings (Tests/golden, written by the Swift tests)."""
    out: dict[str, bytes] = {}
    for line in GOLDEN.read_text().splitlines():
        name, text = line.split()
        out[name] = bytes.fromhex(text)
    return out


def test_golden_messages_step_into_the_group_they_name() -> None:
    vectors = golden_messages()
    assert set(vectors) == {"heartbeat", "append", "reject", "snapshot", "read"}
    for message in vectors.values():
        assert message[:4] == b"LRM\x02"
    # A heartbeat of group 0 from node 2 in term 3: node 1 of group 0 follows it.
    node = RaftNode(1, [1, 2, 3])
    node.step(vectors["heartbeat"])
    status = node.status()
    assert status.term == 3 and status.leader == 2
    # The reject and the read belong to other groups: refused, nothing changes.
    for name in ("reject", "read"):
        with pytest.raises(ln.LuigiValueError, match="group"):
            node.step(vectors[name])
    assert node.status() == status
    # A node of group 2^40 takes the read (a heartbeat of term 300) and
    # stamps its own group on what it sends back.
    member = RaftNode(1, [1, 2, 3], group=1 << 40)
    member.step(vectors["read"])
    assert member.status().term == 300
    rd = member.ready()
    assert rd is not None and rd.messages
    for _to, reply in rd.messages:
        assert reply[:5] == b"LRM\x02\x08" and reply[5:11] == b"\x80\x80\x80\x80\x80\x20"
    member.advance(rd)
    with pytest.raises(ln.LuigiValueError, match="group"):
        member.step(vectors["heartbeat"])
    # A v1 message (the same bytes with the old version) is another format.
    old = bytearray(vectors["heartbeat"])
    old[3] = 1
    with pytest.raises(ln.DecodeError, match="version"):
        node.step(bytes(old))


def parse_committed(buf: bytes) -> list[tuple[int, int, int, bytes]]:
    out, at = [], 0
    while at < len(buf):
        index, term, kind, n = struct.unpack_from("<QQBI", buf, at)
        at += 21
        out.append((index, term, kind, buf[at : at + n]))
        at += n
    return out


def test_drain_and_step_many_run_a_group_in_batches() -> None:
    ids = [1, 2, 3]
    nodes = {i: RaftNode(i, ids, seed=3) for i in ids}
    applied: dict[int, list[bytes]] = {i: [] for i in ids}

    def pump() -> None:
        busy = True
        while busy:
            busy = False
            for i, node in nodes.items():
                messages, committed, snapshot, batches = node.drain()
                assert snapshot is None
                busy = busy or batches > 0
                applied[i] += [data for _, _, kind, data in parse_committed(committed) if kind == 0 and data]
                for to, frames in messages.items():
                    assert nodes[to].step_many(frames) == 0
                    busy = True

    nodes[1].campaign()
    pump()
    assert nodes[1].status().role == "leader"
    for n in range(200):
        nodes[1].propose(b"cmd-%d" % n)
    pump()
    for _ in range(3):
        nodes[1].tick()
        pump()
    expected = [b"cmd-%d" % n for n in range(200)]
    assert all(applied[i] == expected for i in ids)
    # Framing is checked whole first: a bad length steps nothing.
    before = nodes[2].status()
    with pytest.raises(ln.DecodeError):
        nodes[2].step_many(b"\x05\x00\x00\x00ab")
    # A well-framed message the node refuses is skipped and counted.
    assert nodes[2].step_many(struct.pack("<I", 3) + b"bad") == 1
    assert nodes[2].status() == before
    # drain() refuses while a Ready is handed out.
    nodes[1].propose(b"x")
    rd = nodes[1].ready()
    assert rd is not None
    with pytest.raises(ln.TransactionStateError):
        nodes[1].drain()
    nodes[1].advance(rd)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_step_many_takes_any_bytes(frames: bytes) -> None:
    """Arbitrary bytes: a framing error changes nothing; otherwise each framed
    message is stepped or refused, never a crash."""
    node = RaftNode(1, [1, 2, 3])
    before = node.status()
    try:
        refused = node.step_many(frames)
    except ln.DecodeError:
        assert node.status() == before
        return
    count, at = 0, 0
    while at < len(frames):
        at += 4 + int.from_bytes(frames[at : at + 4], "little")
        count += 1
    assert 0 <= refused <= count
