"""RaftCluster: the simulated Raft group with the key-value state machine.

Every simulated step checks Raft's safety properties inside the library (a
violation raises LuigiError); these tests add the client's view: results,
failover, partitions, membership, durability, and random fault schedules
whose client history must be linearizable with every replica's log equal.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luigi_node as ln
from luigi_node import RaftCluster


def elect(c: RaftCluster, max_ticks: int = 500) -> int:
    for _ in range(max_ticks):
        leader = c.leader()
        if leader is not None:
            return leader
        c.tick()
    raise AssertionError("no leader elected")


def consistent(logs: list[list[tuple[int, bytes]]]) -> bool:
    """A node's log() holds what it applied since it (re)started or restored a
    snapshot, so every log must be a suffix of the longest one."""
    longest = max(logs, key=len)
    return all(log == longest[len(longest) - len(log) :] for log in logs)


def converge(c: RaftCluster, max_ticks: int = 3000) -> None:
    """Heal the network, restart every crashed node and tick until every
    node has committed and applied the same entries."""
    c.heal()
    for node in c.nodes():
        c.restart(node)  # a no-op for a live node
    for _ in range(max_ticks // 10):
        c.tick(10)
        if c.leader() is None:
            continue
        statuses = [c.status(node) for node in c.nodes()]
        if len({(s.commit, s.applied) for s in statuses}) == 1:
            assert consistent([c.log(node) for node in c.nodes()])
            return
    raise AssertionError(
        "logs did not converge: "
        + ", ".join(f"node {n}: {len(c.log(n))} entries" for n in c.nodes())
    )


def test_put_get_delete_cas() -> None:
    c = RaftCluster(seed=1)
    elect(c)
    assert c.get("missing") is None
    c.put("k", b"v1")
    assert c.get("k") == b"v1"
    c.put("k", bytearray(b"v2"))
    assert c.get("k") == b"v2"
    c.put("empty", b"")
    assert c.get("empty") == b""
    c.put("clé ✓", bytes(range(256)))
    assert c.get("clé ✓") == bytes(range(256))

    assert c.cas("k", b"wrong", b"x") is False
    assert c.get("k") == b"v2"
    assert c.cas("k", b"v2", b"v3") is True
    assert c.get("k") == b"v3"
    assert c.cas("new", None, b"n") is True  # None: swap only when absent
    assert c.cas("new", None, b"again") is False
    assert c.cas("empty", None, b"x") is False  # b"" is a value, not "absent"
    assert c.cas("empty", b"", b"filled") is True
    assert c.get("empty") == b"filled"

    assert c.delete("k") is True
    assert c.delete("k") is False
    assert c.get("k") is None
    assert c.cas("k", None, b"back") is True

    history = c.history()
    assert len(history) == 22
    assert all(isinstance(op, ln.KVOperation) and op.response is not None for op in history)
    assert all(op.invoke <= op.response for op in history if op.response is not None)
    first, cas_ok, cas_absent, deleted = history[0], history[11], history[13], history[18]
    assert (first.kind, first.key, first.result) == ("get", "missing", None)
    assert (history[1].kind, history[1].value, history[2].result) == ("put", b"v1", b"v1")
    assert (cas_ok.kind, cas_ok.expected, cas_ok.value, cas_ok.result) == ("cas", b"v2", b"v3", True)
    assert (cas_absent.expected, cas_absent.result) == (None, True)
    assert (deleted.kind, deleted.key, deleted.value, deleted.result) == ("delete", "k", None, None)
    assert history[7].key == "clé ✓" and history[8].result == bytes(range(256))
    assert (history[9].expected, history[9].result) == (b"wrong", False)
    c.check_history()
    c.tick(3)  # followers learn the last commit index from the next heartbeat
    logs = [c.log(n) for n in c.nodes()]
    assert all(log == logs[0] for log in logs)
    assert all(isinstance(term, int) and isinstance(data, bytes) for term, data in logs[0])


def test_status_and_nodes() -> None:
    c = RaftCluster(5, seed=3)
    leader = elect(c)
    c.tick(3)
    assert c.nodes() == [1, 2, 3, 4, 5]
    for node in c.nodes():
        s = c.status(node)
        assert isinstance(s, ln.RaftStatus) and s.id == node
        assert s.voters == 5 and s.leader == leader
        assert s.role == ("leader" if node == leader else "follower")


def test_leader_crash_reelection_and_restart_catch_up() -> None:
    c = RaftCluster(seed=2)
    old = elect(c)
    for i in range(20):
        c.put(f"k{i}", b"%d" % i)
    c.crash(old)
    with pytest.raises(ln.TransactionStateError):
        c.status(old)
    c.put("after", b"failover")  # waits for the new leader
    new = c.leader()
    assert new is not None and new != old
    assert c.status(new).term > 1
    for i in range(20, 40):
        c.put(f"k{i}", b"%d" % i)
    c.restart(old)
    c.tick(20)
    assert c.status(old).role == "follower" and c.status(old).leader == new
    assert c.log(old) == c.log(new)
    assert [c.get(f"k{i}") for i in range(40)] == [b"%d" % i for i in range(40)]
    c.check_history()


def test_minority_leader_cannot_commit() -> None:
    c = RaftCluster(seed=4)
    old = elect(c)
    c.put("before", b"1")
    c.isolate(old)
    index = c.propose(b"minority write")  # still the only leader: it accepts...
    c.tick(3)
    assert c.status(old).commit < index  # ...but cannot commit it
    for _ in range(100):  # the majority elects a leader of a higher term
        c.tick()
        if c.leader() != old:
            break
    new = c.leader()
    assert new is not None and new != old
    c.put("majority", b"2")
    c.tick(20)
    assert c.status(old).commit < index
    assert c.status(old).role != "leader"  # check-quorum stepped it down
    converge(c)
    assert c.get("majority") == b"2" and c.get("before") == b"1"
    for node in c.nodes():
        assert all(data != b"minority write" for _, data in c.log(node))
    c.check_history()


def test_cut_link_still_commits_through_the_other_follower() -> None:
    c = RaftCluster(seed=5)
    leader = elect(c)
    a, b = [n for n in c.nodes() if n != leader]
    c.cut(leader, a)
    for i in range(10):
        c.put(f"k{i}", b"x")
    assert c.leader() in (leader, b)
    converge(c)
    c.check_history()


def test_add_and_remove_node() -> None:
    c = RaftCluster(seed=6)
    elect(c)
    c.put("k", b"v")
    new = c.add_node()
    assert new == 4 and c.nodes() == [1, 2, 3, 4]
    c.tick(20)
    leader = c.leader()
    assert leader is not None
    assert c.status(leader).voters == 4
    assert c.log(new) == c.log(leader)
    c.put("k2", b"v2")
    c.remove_node(new)
    c.tick(20)
    leader = c.leader()
    assert leader is not None and leader != new
    assert c.status(leader).voters == 3
    c.put("k3", b"v3")
    assert c.get("k2") == b"v2" and c.get("k3") == b"v3"
    c.check_history()


def test_transfer_leader() -> None:
    c = RaftCluster(seed=7)
    leader = elect(c)
    c.put("k", b"v")
    target = next(n for n in c.nodes() if n != leader)
    c.transfer_leader(target)
    c.tick(5)
    assert c.leader() == target
    c.put("k", b"w")
    assert c.get("k") == b"w"
    c.check_history()


def test_timeouts_raise_luigi_timeout_error() -> None:
    c = RaftCluster(seed=8)
    leader = elect(c)
    c.put("k", b"v")
    for node in c.nodes():
        if node != leader:
            c.crash(node)
    with pytest.raises(ln.LuigiTimeoutError) as info:
        c.put("k", b"lost?", timeout=30)
    assert isinstance(info.value, TimeoutError) and "unknown" in str(info.value)
    with pytest.raises(ln.LuigiTimeoutError):
        c.get("k", timeout=30)
    with pytest.raises(ln.LuigiTimeoutError):
        c.delete("k", timeout=30)
    with pytest.raises(ln.LuigiTimeoutError):
        c.cas("k", b"v", b"w", timeout=30)
    history = c.history()
    assert len(history) == 5
    assert [op.response for op in history[1:]] == [None] * 4  # timed out: outcome unknown
    assert all(op.result is None for op in history[1:])
    converge(c)
    # The timed-out put may or may not have happened; the history says which.
    assert c.get("k") in (b"v", b"lost?", b"w")
    c.check_history()


def test_compaction_and_snapshot_catch_up() -> None:
    c = RaftCluster(seed=9, compact_after=10)
    leader = elect(c)
    lagging = next(n for n in c.nodes() if n != leader)
    c.crash(lagging)
    for i in range(60):
        c.put(f"k{i % 7}", b"%d" % i)
    assert c.status(leader).first_index > 1  # compacted
    c.restart(lagging)
    c.tick(30)
    assert c.status(lagging).commit == c.status(leader).commit
    assert c.status(lagging).first_index > 1  # it installed a snapshot
    last = {f"k{i % 7}": b"%d" % i for i in range(60)}
    assert {key: c.get(key) for key in last} == last
    c.check_history()


def test_durable_data_dir_survives_crashing_every_node(tmp_path: Path) -> None:
    data_dir = tmp_path / "created" / "on demand"
    c = RaftCluster(seed=10, data_dir=data_dir)
    elect(c)
    for i in range(10):
        c.put(f"k{i}", b"v%d" % i)
    assert sorted(p.name for p in data_dir.iterdir()) == ["node-1", "node-2", "node-3"]
    for node in c.nodes():
        c.crash(node)
    assert c.leader() is None
    for node in c.nodes():
        c.restart(node)
    elect(c)
    assert [c.get(f"k{i}") for i in range(10)] == [b"v%d" % i for i in range(10)]
    c.put("k0", b"new")
    assert c.get("k0") == b"new"
    c.check_history()


def test_durable_data_dir_reopened_by_a_new_cluster(tmp_path: Path) -> None:
    first = RaftCluster(seed=11, data_dir=str(tmp_path))
    elect(first)
    for i in range(5):
        first.put(f"k{i}", b"v%d" % i)
    del first  # closes every node's files

    c = RaftCluster(seed=11, data_dir=tmp_path)
    elect(c)
    c.tick(10)
    # The result of a new operation must be its own, not that of an earlier
    # cluster's entry replayed from the log.
    assert c.history() == []  # it starts from the recovered store
    assert c.cas("fresh", None, b"q") is True
    assert c.get("fresh") == b"q"
    assert [c.get(f"k{i}") for i in range(5)] == [b"v%d" % i for i in range(5)]
    assert c.delete("fresh") is True
    assert c.cas("k1", b"v1", b"w") is True
    c.check_history()  # against the recovered store, not an empty one


def test_bad_arguments_raise_typed_errors(tmp_path: Path) -> None:
    cases: list[dict[str, Any]] = [
        {"nodes": 0},
        {"nodes": 65},
        {"drop": 1.0},
        {"duplicate": -0.5},
        {"reorder": float("nan")},
        {"election_tick": 1, "heartbeat_tick": 1},
        {"max_delay": 5000},
    ]
    for kwargs in cases:
        with pytest.raises(ln.LuigiValueError):
            RaftCluster(**kwargs)
    with pytest.raises(ln.LuigiOverflowError):
        RaftCluster(-1)
    with pytest.raises(ln.LuigiOverflowError):
        RaftCluster(seed=2**64)
    with pytest.raises(TypeError):
        RaftCluster(3, 0)  # type: ignore[call-arg]
    regular = tmp_path / "file"
    regular.write_bytes(b"not a directory")
    with pytest.raises(ln.LuigiIOError) as info:
        RaftCluster(data_dir=regular)
    assert isinstance(info.value, OSError)

    c = RaftCluster(seed=12)
    with pytest.raises(ln.TransactionStateError):
        c.propose(b"no leader yet")
    with pytest.raises(ln.TransactionStateError):
        c.transfer_leader(2)
    elect(c)
    for bad_node in (0, 4, 99):
        for method in (c.crash, c.restart, c.isolate, c.campaign, c.status, c.log):
            with pytest.raises(ln.LuigiValueError):
                method(bad_node)
        with pytest.raises(ln.LuigiValueError):
            c.cut(1, bad_node)
    with pytest.raises(ln.LuigiOverflowError):
        c.crash(-1)
    with pytest.raises(ln.LuigiValueError):
        c.put("k", b"v", timeout=0)
    with pytest.raises(TypeError):
        c.put(b"k", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.put("k", "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.cas("k", "v", b"w")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        c.get("k", 10)  # type: ignore[call-arg]
    with pytest.raises(UnicodeEncodeError):
        c.put("bad \ud800 key", b"v")
    assert c.history() == []  # nothing above reached the state machine
    c.check_history()


def test_not_linearizable_error_is_a_luigi_error() -> None:
    assert issubclass(ln.NotLinearizableError, ln.LuigiError)
    assert issubclass(ln.LuigiIOError, OSError) and issubclass(ln.LuigiIOError, ln.LuigiError)
    assert issubclass(ln.LuigiTimeoutError, TimeoutError)


def test_clients_on_threads() -> None:
    """put/get/tick release the GIL; the cluster's lock serialises callers."""
    c = RaftCluster(seed=13)
    elect(c)
    errors: list[BaseException] = []

    def client(tag: int) -> None:
        try:
            for i in range(25):
                c.put(f"t{tag}-{i}", b"%d" % i)
                assert c.get(f"t{tag}-{i}") == b"%d" % i
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def observer() -> None:
        try:
            for _ in range(50):
                c.tick(3)
                c.stabilize()
                for node in c.nodes():
                    c.status(node)
                c.leader()
                c.history()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(3)]
    threads.append(threading.Thread(target=observer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(c.history()) == 150
    c.check_history()


# ------------------------------------------------------------ random schedules

KEYS = ["a", "b", "c"]
VALUES = [b"", b"0", b"1", b"2"]
# (drop, duplicate, reorder, max_delay)
FAULTS = [(0.0, 0.0, 0.0, 0), (0.05, 0.05, 0.1, 2), (0.2, 0.1, 0.2, 3)]

client_operation = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("delete"), st.sampled_from(KEYS)),
    st.tuples(
        st.just("cas"),
        st.sampled_from(KEYS),
        st.one_of(st.none(), st.sampled_from(VALUES)),
        st.sampled_from(VALUES),
    ),
)
fault = st.one_of(
    st.tuples(st.just("crash"), st.integers(1, 3)),
    st.tuples(st.just("restart"), st.integers(1, 3)),
    st.tuples(st.just("isolate"), st.integers(1, 3)),
    st.tuples(st.just("cut"), st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.just("heal")),
    st.tuples(st.just("transfer"), st.integers(1, 3)),
    st.tuples(st.just("tick"), st.integers(1, 30)),
)
operation = st.one_of(client_operation, client_operation, fault)  # 2:1


def run_schedule(
    seed: int,
    faults: tuple[float, float, float, int],
    compact_after: int,
    schedule: list[tuple[Any, ...]],
    data_dir: Optional[Path] = None,
) -> None:
    print(f"seed={seed} faults={faults} compact_after={compact_after} data_dir={data_dir}")
    drop, duplicate, reorder, max_delay = faults
    c = RaftCluster(
        seed=seed,
        data_dir=data_dir,
        drop=drop,
        duplicate=duplicate,
        reorder=reorder,
        max_delay=max_delay,
        compact_after=compact_after,
    )
    model_ops = timeouts = 0
    for op in schedule:
        kind = op[0]
        try:
            if kind == "put":
                c.put(op[1], op[2], timeout=60)
            elif kind == "get":
                c.get(op[1], timeout=60)
            elif kind == "delete":
                c.delete(op[1], timeout=60)
            elif kind == "cas":
                c.cas(op[1], op[2], op[3], timeout=60)
        except ln.LuigiTimeoutError:
            timeouts += 1  # outcome unknown: the checker treats it as maybe-applied
        if kind in ("put", "get", "delete", "cas"):
            model_ops += 1
        elif kind == "crash":
            c.crash(op[1])
        elif kind == "restart":
            c.restart(op[1])
        elif kind == "isolate":
            c.isolate(op[1])
        elif kind == "cut":
            if op[1] != op[2]:
                c.cut(op[1], op[2])
        elif kind == "heal":
            c.heal()
        elif kind == "tick":
            c.tick(op[1])
        elif kind == "transfer":
            try:
                c.transfer_leader(op[1])
            except ln.TransactionStateError:
                pass  # no leader right now
    assert len(c.history()) == model_ops
    print(f"{model_ops} client operations, {timeouts} timed out")
    converge(c)
    c.check_history()
    if compact_after == 0:
        logs = [c.log(node) for node in c.nodes()]
        assert all(log == logs[0] for log in logs)


@settings(max_examples=200)
@given(
    seed=st.integers(0, 2**64 - 1),
    faults=st.sampled_from(FAULTS),
    compact_after=st.sampled_from([0, 0, 8]),
    schedule=st.lists(operation, min_size=5, max_size=60),
)
def test_random_fault_schedules_are_linearizable(
    seed: int,
    faults: tuple[float, float, float, int],
    compact_after: int,
    schedule: list[tuple[Any, ...]],
) -> None:
    run_schedule(seed, faults, compact_after, schedule)


def random_schedule(rng: random.Random, length: int) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(length):
        r = rng.random()
        key = rng.choice(KEYS)
        if r < 0.25:
            ops.append(("put", key, rng.choice(VALUES)))
        elif r < 0.45:
            ops.append(("get", key))
        elif r < 0.55:
            ops.append(("delete", key))
        elif r < 0.7:
            ops.append(("cas", key, rng.choice([None, *VALUES]), rng.choice(VALUES)))
        elif r < 0.76:
            ops.append(("crash", rng.randint(1, 3)))
        elif r < 0.84:
            ops.append(("restart", rng.randint(1, 3)))
        elif r < 0.87:
            ops.append(("isolate", rng.randint(1, 3)))
        elif r < 0.9:
            ops.append(("cut", rng.randint(1, 3), rng.randint(1, 3)))
        elif r < 0.94:
            ops.append(("heal",))
        elif r < 0.96:
            ops.append(("transfer", rng.randint(1, 3)))
        else:
            ops.append(("tick", rng.randint(1, 30)))
    return ops


def sweep(seeds: range, data_root: Optional[Path] = None) -> None:
    for seed in seeds:
        data_dir = None
        if data_root is not None:
            data_dir = data_root / f"seed-{seed}"
            data_dir.mkdir()
        schedule = random_schedule(random.Random(seed), 80)
        try:
            run_schedule(seed, FAULTS[seed % 3], [0, 8][seed % 2], schedule, data_dir)
        except Exception as e:
            raise AssertionError(f"seed {seed} failed: {e!r}") from e


@pytest.mark.parametrize("block", range(4))
def test_seeded_fault_sweep(block: int) -> None:
    """400 long seeded schedules (80 steps each); a failure names its seed:
    sweep(range(seed, seed + 1)) replays it exactly."""
    sweep(range(block * 100, block * 100 + 100))


def test_seeded_fault_sweep_durable(tmp_path: Path) -> None:
    """The same with every node's log on disk: a crash keeps what was synced."""
    sweep(range(1000, 1008), tmp_path)


def test_random_schedules_replay_exactly() -> None:
    """Same seed, same schedule: the same logs (the simulator is deterministic)."""
    rng = random.Random(20)
    steps = [(rng.choice(KEYS), bytes([rng.randrange(256)])) for _ in range(30)]

    def run() -> list[list[tuple[int, bytes]]]:
        c = RaftCluster(seed=99, drop=0.1, duplicate=0.1, reorder=0.1, max_delay=2)
        for i, (key, value) in enumerate(steps):
            if i == 10:
                c.crash(1)
            if i == 20:
                c.restart(1)
            try:
                c.put(key, value, timeout=100)
            except ln.LuigiTimeoutError:
                pass
        converge(c)
        return [c.log(node) for node in c.nodes()]

    assert run() == run()
