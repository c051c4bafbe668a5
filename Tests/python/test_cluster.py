"""SimulatedCluster: partitions, healing, faults, convergence, stats."""

from __future__ import annotations

import threading

import pytest

import luigi_node as ln
from luigi_node import SimulatedCluster
from luigi_test_helpers import assert_all_equal, commit_add, snapshot

STATS_KEYS = {
    "rounds",
    "messages",
    "bytes",
    "dropped",
    "duplicated",
    "updates_shipped",
    "type_conflicts",
}
SEEDS = [0, 1, 7, 42, 2**64 - 1]


def test_indexing_and_iteration() -> None:
    c = SimulatedCluster(4, seed=3)
    assert len(c) == 4
    assert [r.node_id for r in c] == [0, 1, 2, 3]
    assert c[2].node_id == 2
    for bad in (4, -1, 2**70):
        with pytest.raises(ln.LuigiIndexError) as info:
            c[bad]
        assert isinstance(info.value, IndexError)
    with pytest.raises(TypeError):
        c["0"]  # type: ignore[index]


def test_invalid_options() -> None:
    for kwargs in (
        {"nodes": 0},
        {"nodes": 1025},
        {"nodes": 3, "drop": 1.0},
        {"nodes": 3, "drop": -0.1},
        {"nodes": 3, "duplicate": 1.5},
        {"nodes": 3, "reorder": float("nan")},
        {"nodes": 3, "fanout": 0},
    ):
        with pytest.raises(ln.LuigiValueError):
            SimulatedCluster(**kwargs)
    with pytest.raises(ln.LuigiOverflowError):
        SimulatedCluster(-1)
    with pytest.raises(ln.LuigiOverflowError):
        SimulatedCluster(3, seed=2**64)
    with pytest.raises(ln.LuigiOverflowError):
        SimulatedCluster(3, max_delay=2**32)
    with pytest.raises(TypeError):
        positional: tuple[int, ...] = (3, 0, 1)
        SimulatedCluster(*positional)  # fanout is keyword-only


def test_single_update_spreads_and_stats() -> None:
    c = SimulatedCluster(5, seed=11)
    commit_add(c[0], "k", 42)
    assert not c.converged()
    rounds = c.run_until_converged()
    assert rounds >= 1
    assert c.converged()
    assert [r.value("k") for r in c] == [42] * 5
    stats = c.stats()
    assert set(stats) == STATS_KEYS
    assert all(isinstance(v, int) and v >= 0 for v in stats.values())
    assert stats["rounds"] >= rounds
    assert stats["messages"] > 0 and stats["bytes"] > 0
    assert stats["updates_shipped"] >= 4
    assert stats["dropped"] == stats["duplicated"] == 0
    assert stats["type_conflicts"] == 0
    assert c.run_until_converged() == 0  # already converged


def test_run_counts_rounds() -> None:
    c = SimulatedCluster(3, seed=1)
    c.run()
    c.run(rounds=4)
    c.run(0)
    assert c.stats()["rounds"] == 5


def test_partition_and_heal() -> None:
    c = SimulatedCluster(4, seed=5)
    c.partition([0, 1], [2, 3])
    commit_add(c[0], "left", 1)
    commit_add(c[3], "right", 1)
    c.run(60)
    assert c[1].value("left") == 1 and c[1].value("right") is None
    assert c[2].value("right") == 1 and c[2].value("left") is None
    assert not c.converged()
    with pytest.raises(ln.NotConvergedError):
        c.run_until_converged(max_rounds=30)
    c.heal()
    c.run_until_converged()
    assert c.converged()
    assert all(r.value("left") == 1 and r.value("right") == 1 for r in c)
    assert_all_equal(list(c))


def test_unnamed_nodes_form_one_more_group() -> None:
    c = SimulatedCluster(4, seed=9)
    c.partition([0])
    commit_add(c[1], "k", 1)
    c.run(60)
    assert c[0].value("k") is None
    assert c[2].value("k") == 1 and c[3].value("k") == 1
    c.heal()
    c.run_until_converged()
    assert c[0].value("k") == 1


def test_partition_argument_checks() -> None:
    c = SimulatedCluster(3, seed=0)
    with pytest.raises(ln.LuigiIndexError):
        c.partition([0, 3])
    with pytest.raises(ln.LuigiValueError):
        c.partition([0, 1], [1, 2])
    with pytest.raises(TypeError):
        c.partition([0, "1"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        c.partition(5)  # type: ignore[arg-type]
    c.partition()  # no groups: everybody in one group
    commit_add(c[0], "k", 1)
    c.run_until_converged()


@pytest.mark.parametrize("seed", SEEDS)
def test_converges_under_faults(seed: int) -> None:
    print(f"seed={seed}")  # shown by pytest when the test fails
    c = SimulatedCluster(6, seed=seed, fanout=2, drop=0.3, duplicate=0.2, reorder=0.3, max_delay=3)
    expected = 0
    for i, r in enumerate(c):
        for j in range(3):
            with r.transaction() as tx:
                tx.add("total", i * 10 + j)
                tx.union("who", [i])
                tx.max("hi", i * 1.5)
            expected += i * 10 + j
        c.run(2)
    c.run_until_converged(max_rounds=20_000)
    replicas = list(c)
    assert_all_equal(replicas, f"seed={seed}")
    assert replicas[0].value("total") == expected, f"seed={seed}"
    assert replicas[0].value("who") == frozenset(range(6)), f"seed={seed}"
    assert replicas[0].value("hi") == 7.5, f"seed={seed}"
    stats = c.stats()
    assert stats["dropped"] > 0 and stats["duplicated"] > 0, (f"seed={seed}", stats)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_partitions_with_faults_then_heal(seed: int) -> None:
    print(f"seed={seed}")
    c = SimulatedCluster(5, seed=seed, drop=0.2, duplicate=0.1, reorder=0.2, max_delay=2)
    c.partition([0, 1], [2], [3, 4])
    for i, r in enumerate(c):
        commit_add(r, "k", i + 1)
    c.run(20)
    c.set_faults(drop=0.5)
    c.partition([0, 4], [1, 2, 3])
    for r in c:
        commit_add(r, "k", 100)
    c.run(20)
    c.heal()
    c.set_faults()
    c.run_until_converged(max_rounds=20_000)
    assert_all_equal(list(c), f"seed={seed}")
    assert c[0].value("k") == 15 + 500, f"seed={seed}"


def test_same_seed_same_run() -> None:
    def run(seed: int) -> tuple[int, dict[str, int], list[object]]:
        c = SimulatedCluster(5, seed=seed, drop=0.2, duplicate=0.2, reorder=0.2, max_delay=2)
        for i, r in enumerate(c):
            commit_add(r, f"k{i % 2}", i)
        rounds = c.run_until_converged(max_rounds=20_000)
        return rounds, c.stats(), [snapshot(r) for r in c]

    assert run(1234) == run(1234)


def test_type_conflicts_in_a_cluster() -> None:
    c = SimulatedCluster(3, seed=2)
    commit_add(c[0], "k", 1)
    with c[1].transaction() as tx:
        tx.union("k", ["x"])
    with c[2].transaction() as tx2:
        tx2.max("k", 5)
    c.run_until_converged()
    replicas = list(c)
    assert_all_equal(replicas)
    assert [r.conflicts for r in replicas] == [2, 2, 2]
    assert c.stats()["type_conflicts"] == 6


def test_set_faults_checks_ranges() -> None:
    c = SimulatedCluster(2)
    with pytest.raises(ln.LuigiValueError):
        c.set_faults(drop=1.0)
    with pytest.raises(ln.LuigiOverflowError):
        c.set_faults(max_delay=-1)
    with pytest.raises(TypeError):
        faults: tuple[float, ...] = (0.1,)
        c.set_faults(*faults)  # keyword-only
    c.set_faults(drop=0.1, duplicate=0.1, reorder=0.1, max_delay=5)


def test_replicas_outlive_their_cluster() -> None:
    c = SimulatedCluster(2, seed=0)
    r = c[1]
    commit_add(c[0], "k", 1)
    c.run_until_converged()
    del c
    assert r.value("k") == 1
    commit_add(r, "k", 1)
    assert r.value("k") == 2


def test_replica_handles_see_the_same_replica() -> None:
    c = SimulatedCluster(2, seed=0)
    a, b = c[0], c[0]
    commit_add(a, "k", 1)
    assert b.value("k") == 1


def test_concurrent_use_from_threads() -> None:
    """run() releases the GIL; replicas of the same cluster used from another
    thread meanwhile must be serialised by the binding, not crash."""
    c = SimulatedCluster(4, seed=21, drop=0.1)
    errors: list[BaseException] = []

    def runner() -> None:
        try:
            for _ in range(100):
                c.run(3)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def writer(node: int) -> None:
        try:
            r = c[node]
            for _ in range(50):
                commit_add(r, "k", 1)
                r.value("k")
                r.clock
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=runner)] + [
        threading.Thread(target=writer, args=(i,)) for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    c.run_until_converged(max_rounds=20_000)
    assert all(r.value("k") == 200 for r in c)
