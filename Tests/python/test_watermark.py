"""Watermark commit: ShardedCluster (shards x replicas on virtual time, with
the invariant checker and the two-phase-commit baseline) and the pure roles
WatermarkCoordinator and WatermarkShard carried over a Python network.

Everything runs on virtual time; nothing here depends on the wall clock.
"""

from __future__ import annotations

import os
import pickle
import random
from collections.abc import Callable, Sequence
from typing import Literal, Optional, Union

import pytest
from hypothesis import given
from hypothesis import strategies as st

import luigi_node as ln
from luigi_node import (
    ShardedCluster,
    TxnId,
    TxnOp,
    TxnResult,
    WatermarkCoordinator,
    WatermarkShard,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(ROOT, "Tests", "golden", "watermark_v1.hex")
IDLE_LIMIT_US = 10_000_000  # a bound on virtual time; these runs go idle within 1 s
CATCH_UP_US = 100_000  # followers learn the last commits before check()
ACCOUNTS, OPENING = 100, 1000  # the bank workload: accounts per shard, and each one's balance
Stats = dict[str, Union[int, float]]


def settle(c: ShardedCluster) -> None:
    """Run until idle, let followers catch up, and check every invariant."""
    assert c.run_until_idle(IDLE_LIMIT_US)
    c.run(CATCH_UP_US)
    c.check()


def assert_consistent(s: Stats) -> None:
    assert s["committed"] + s["aborted"] + s["unacknowledged"] == s["submitted"]
    assert s["in_flight"] == 0
    assert 0 <= s["fast_path"] <= s["replies"]
    assert 0.0 <= s["fast_path_rate"] <= 1.0


def money(c: ShardedCluster, shards: int = 2) -> int:
    """The bank workload's total: every account on every shard."""
    total = 0
    for shard in range(shards):
        for i in range(ACCOUNTS):
            balance = c.value(shard, f"acct{shard}.{i}")
            assert balance is not None, f"account acct{shard}.{i} is missing"
            total += balance
    return total


# ------------------------------------------------------------ ShardedCluster


@pytest.mark.parametrize("seed", [1, 2])
def test_micro_fault_free_commits_everything(seed: int) -> None:
    c = ShardedCluster(seed=seed)
    c.load("micro", 300)
    settle(c)
    s = c.stats()
    assert_consistent(s)
    assert s["submitted"] == s["committed"] == 300
    assert s["ops_applied"] > 0 and s["messages"] > 0 and s["dropped"] == 0
    assert s["now_us"] > 0 and s["round_trip_us"] > 0
    assert 0.0 < s["latency_p50_rtt"] <= s["latency_p99_rtt"]


@pytest.mark.parametrize("protocol", ["watermark", "2pc"])
def test_bank_fault_free_conserves_money(protocol: Literal["watermark", "2pc"]) -> None:
    c = ShardedCluster(seed=3, protocol=protocol)
    c.load("bank", 300)
    settle(c)
    s = c.stats()
    assert_consistent(s)
    assert s["committed"] > 300  # the transfers, after the accounts were opened
    assert money(c) == 2 * ACCOUNTS * OPENING
    if protocol == "2pc":
        assert s["replies"] == s["fast_path"] == 0  # watermark-only counters


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bank_survives_a_leader_crash(seed: int) -> None:
    c = ShardedCluster(shards=3, seed=seed)
    c.load("bank", 300)
    c.run(50_000)
    assert c.stats()["committed"] < 300  # mid-run
    crashed = c.crash_leader(0)
    assert crashed in c.replicas(0)
    c.run(300_000)
    assert c.leader(0) != crashed
    c.restart(crashed)
    settle(c)
    assert_consistent(c.stats())
    assert money(c, shards=3) == 3 * ACCOUNTS * OPENING


@pytest.mark.parametrize("seed", [1, 2])
def test_coordinator_crash_mid_run(seed: int) -> None:
    c = ShardedCluster(seed=seed)
    c.load("bank", 300)
    c.run(60_000)
    c.crash_coordinator(0)  # its transactions are finished by the shards alone
    settle(c)
    assert_consistent(c.stats())
    assert c.stats()["unacknowledged"] > 0
    assert money(c) == 2 * ACCOUNTS * OPENING


def test_submit_result_and_value() -> None:
    c = ShardedCluster(seed=1)
    first = c.submit([("write", 0, "a", 5), ("add", 1, "b", 7), ("read", 0, "a")])
    assert isinstance(first, TxnId) and (first.worker, first.seq) == (0, 1)
    assert c.result(first) is None  # pending until acknowledged
    assert c.run_until_idle(IDLE_LIMIT_US)
    done = c.result(first)
    assert isinstance(done, TxnResult)
    assert done.committed and done.ts > 0
    assert done.reads == {(0, "a"): 5}  # a shard's ops run in order
    assert (c.value(0, "a"), c.value(1, "b"), c.value(1, "absent")) == (5, 7, None)

    second = c.submit(
        [("read", 0, "a"), ("read", 1, "b"), ("read", 1, "absent"), ("add", 0, "a", -2)],
        worker=3,
    )
    # A failing check aborts the whole transaction: its write on shard 0 is lost.
    third = c.submit([("write", 0, "a", 99), ("check", 1, "b", 100)], worker=1)
    assert second.worker == 3 and third.worker == 1
    settle(c)
    read = c.result(second)
    assert read is not None and read.committed and read.ts > done.ts
    assert read.reads == {(0, "a"): 5, (1, "b"): 7, (1, "absent"): None}
    aborted = c.result(third)
    assert aborted is not None and not aborted.committed
    assert aborted.reads == {(1, "b"): 7}  # a check reads its key
    assert (c.value(0, "a"), c.value(1, "b")) == (3, 7)
    assert_consistent(c.stats())


# ------------------------------------------------------------ bad input


def test_bad_input_raises_typed_errors_and_changes_nothing() -> None:
    c = ShardedCluster(seed=1)
    c.load("micro", 20)
    c.run(20_000)
    before = c.stats()
    cases: list[tuple[type[Exception], Callable[[], object]]] = [
        (ln.LuigiValueError, lambda: c.submit([("delete", 0, "a")])),  # type: ignore[list-item]
        (ln.LuigiValueError, lambda: c.submit([("read", 0, "a", 1)])),  # type: ignore[list-item]
        (ln.LuigiValueError, lambda: c.submit([("write", 0, "a")])),  # type: ignore[list-item]
        (ln.LuigiValueError, lambda: c.submit([()])),  # type: ignore[list-item]
        (TypeError, lambda: c.submit([["read", 0, "a"]])),  # type: ignore[list-item]
        (TypeError, lambda: c.submit([(1, 0, "a")])),  # type: ignore[list-item]
        (TypeError, lambda: c.submit([("read", 0, b"a")])),  # type: ignore[list-item]
        (TypeError, lambda: c.submit([("write", 0, "a", 1.5)])),  # type: ignore[list-item]
        (TypeError, lambda: c.submit("read")),  # type: ignore[arg-type]
        (ln.LuigiValueError, lambda: c.submit([("read", 0, "k" * 1025)])),
        (ln.LuigiValueError, lambda: c.submit([("read", 0, "é" * 513)])),  # 1026 bytes
        (ln.LuigiValueError, lambda: c.submit([("read", 2, "a")])),
        (ln.LuigiValueError, lambda: c.submit([])),
        (ln.LuigiValueError, lambda: c.submit([("read", 0, "a")], coordinator=1)),
        (ln.LuigiValueError, lambda: c.submit([("read", 0, "a")], worker=4)),
        (ln.LuigiOverflowError, lambda: c.submit([("read", -1, "a")])),
        (ln.LuigiOverflowError, lambda: c.submit([("write", 0, "a", 2**63)])),
        (ln.LuigiOverflowError, lambda: c.submit([("add", 0, "a", -(2**63) - 1)])),
        (ln.LuigiOverflowError, lambda: c.submit([("read", 0, "a")], worker=-1)),
        (ln.LuigiValueError, lambda: c.load("nope", 1)),  # type: ignore[arg-type]
        (ln.LuigiValueError, lambda: c.load("bank", 10**9)),
        (ln.LuigiValueError, lambda: c.load("micro", 1, cross_shard=1.5)),
        (ln.LuigiValueError, lambda: c.load("micro", 1, cross_shard=float("nan"))),
        (ln.LuigiOverflowError, lambda: c.load("micro", -1)),
        (ln.LuigiOverflowError, lambda: c.load("micro", 2**64)),
        (ln.LuigiValueError, lambda: c.run(2**41)),
        (ln.LuigiValueError, lambda: c.run_until_idle(2**64 - 1)),
        (ln.LuigiOverflowError, lambda: c.run(-1)),
        (ln.LuigiValueError, lambda: c.set_faults(drop=1.0)),
        (ln.LuigiValueError, lambda: c.set_faults(reorder=-0.1)),
        (ln.LuigiValueError, lambda: c.set_faults(duplicate=float("nan"))),
        (ln.LuigiIndexError, lambda: c.value(2, "a")),
        (ln.LuigiIndexError, lambda: c.leader(2)),
        (ln.LuigiIndexError, lambda: c.replicas(2)),
        (ln.LuigiIndexError, lambda: c.crash_leader(2)),
        (ln.LuigiIndexError, lambda: c.crash(99)),
        (ln.LuigiIndexError, lambda: c.restart(99)),
        (ln.LuigiIndexError, lambda: c.partition([1, 99])),
        (ln.LuigiValueError, lambda: c.crash_coordinator(1)),
        (TypeError, lambda: c.value(0, 5)),  # type: ignore[arg-type]
        (TypeError, lambda: c.result((0, 1))),  # type: ignore[arg-type]
    ]
    for i, (error, call) in enumerate(cases):
        with pytest.raises(error):
            call()
        assert c.stats() == before, f"case {i} changed the cluster"
    settle(c)  # and the cluster still works
    assert c.stats()["committed"] == 20


@pytest.mark.parametrize(
    "options, error",
    [
        ({"profile": "moon"}, ln.LuigiValueError),
        ({"protocol": "3pc"}, ln.LuigiValueError),
        ({"rule": "some-streams"}, ln.LuigiValueError),
        ({"profile": 1}, TypeError),
        ({"drift_ppm": -1.0}, ln.LuigiValueError),
        ({"drift_ppm": 10_001.0}, ln.LuigiValueError),
        ({"skew_us": 10_000_001}, ln.LuigiValueError),
        ({"drop": 1.0}, ln.LuigiValueError),
        ({"duplicate": -0.5}, ln.LuigiValueError),
        ({"reorder": float("nan")}, ln.LuigiValueError),
        ({"shards": 0}, ln.LuigiValueError),
        ({"shards": 65}, ln.LuigiValueError),
        ({"replicas": 10}, ln.LuigiValueError),
        ({"window": 0}, ln.LuigiValueError),
        ({"shards": -1}, ln.LuigiOverflowError),
        ({"shards": 2**32}, ln.LuigiOverflowError),
        ({"seed": 2**64}, ln.LuigiOverflowError),
    ],
)
def test_bad_options(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        ShardedCluster(**options)  # type: ignore[arg-type]


def test_bad_role_options() -> None:
    with pytest.raises(ln.LuigiValueError):
        WatermarkCoordinator(9, 2, 2, rule="x")  # type: ignore[arg-type]
    with pytest.raises(ln.LuigiValueError):
        WatermarkCoordinator(9, 0, 2)
    with pytest.raises(ln.LuigiOverflowError):
        WatermarkCoordinator(-9, 2, 2)
    with pytest.raises(ln.LuigiValueError):
        WatermarkShard(2, 2, 2, [9])  # shard 2 of 2
    with pytest.raises(ln.LuigiValueError):
        WatermarkCoordinator(9, 2, 2).submit([], now_us=0)


def test_invariant_violation_carries_its_evidence() -> None:
    e = ln.InvariantViolation("atomicity", "txn 1 applied on shard 0 only")
    assert isinstance(e, ln.LuigiError)
    assert (e.invariant, e.detail) == ("atomicity", "txn 1 applied on shard 0 only")
    assert str(e) == "atomicity: txn 1 applied on shard 0 only"
    again = pickle.loads(pickle.dumps(e))
    assert (again.invariant, again.detail) == (e.invariant, e.detail)


# ------------------------------------------------------------ serializability

Key = tuple[int, str]
VALUE_KINDS: tuple[Literal["write", "add", "check"], ...] = ("write", "add", "check")


def read_op(shard: int, key: str) -> TxnOp:
    return ("read", shard, key)


def value_op(kind: Literal["write", "add", "check"], shard: int, key: str, value: int) -> TxnOp:
    return (kind, shard, key, value)


def serial_step(
    state: dict[Key, int], ops: Sequence[TxnOp]
) -> tuple[bool, dict[Key, Optional[int]]]:
    """Runs one transaction on `state` (changed only if it commits):
    whether it commits, and what it read (a check reads its key too)."""
    view = dict(state)
    reads: dict[Key, Optional[int]] = {}
    commits = True
    for op in ops:
        key = (op[1], op[2])
        current = view.get(key)
        if op[0] == "read":
            reads[key] = current
        elif op[0] == "write":
            view[key] = op[3]
        elif op[0] == "add":
            total = (current or 0) + op[3]
            if -(2**63) <= total < 2**63:
                view[key] = total
            else:
                commits = False
        else:
            reads[key] = current
            commits = commits and (current or 0) >= op[3]
    if commits:
        state.clear()
        state.update(view)
    return commits, reads


OPS = st.one_of(
    st.builds(read_op, st.integers(0, 1), st.sampled_from(["x", "y", "z"])),
    st.builds(
        value_op,
        st.sampled_from(VALUE_KINDS),
        st.integers(0, 1),
        st.sampled_from(["x", "y", "z"]),
        st.integers(-3, 8),
    ),
)


@given(
    txns=st.lists(st.lists(OPS, min_size=1, max_size=6), min_size=1, max_size=8),
    seed=st.integers(0, 2**64 - 1),
)
def test_committed_history_is_serial_in_timestamp_order(
    txns: list[list[TxnOp]], seed: int
) -> None:
    c = ShardedCluster(seed=seed, coordinators=2, workers=2)
    ids = [c.submit(ops, coordinator=i // 2 % 2, worker=i % 2) for i, ops in enumerate(txns)]
    settle(c)
    done: list[TxnResult] = []
    for txn_id in ids:
        result = c.result(txn_id)
        assert result is not None, f"{txn_id} is still pending"
        done.append(result)
    state: dict[Key, int] = {}
    for i in sorted(range(len(txns)), key=lambda i: (done[i].ts, ids[i])):
        commits, reads = serial_step(state, txns[i])
        assert (done[i].committed, done[i].reads) == (commits, reads), f"transaction {i}"
    for shard, key in {(op[1], op[2]) for ops in txns for op in ops}:
        assert c.value(shard, key) == state.get((shard, key)), (shard, key)


# ------------------------------------------------------------ golden vectors

COORDINATOR = 9  # the coordinator id the golden vectors were made for
TO_COORDINATOR = ("message.reply", "message.marks")
ROLE_CATCH_UP_US = 50_000  # five times the shards' default resend_after_us


def golden() -> dict[str, bytes]:
    with open(GOLDEN, encoding="ascii") as f:
        lines = [line.split() for line in f if line.strip()]
    return {name: bytes.fromhex(data) for name, data in lines}


def leading_shard(
    shard: int = 1, shard_count: int = 2, workers: int = 2, coordinators: Sequence[int] = (COORDINATOR,)
) -> WatermarkShard:
    """A shard whose Raft node leads term 1 and applied its (empty) entry."""
    s = WatermarkShard(shard, shard_count, workers, coordinators)
    s.set_role(True, 1)
    s.apply(b"", 1, 0)
    return s


def test_golden_messages_step() -> None:
    vectors = golden()
    shard = leading_shard()
    assert not shard.serving
    shard.step(vectors["message.recovered"], 0)  # completes the recovery serving waits for
    assert shard.serving
    for name, message in vectors.items():
        if name.startswith("message.") and name not in TO_COORDINATOR:
            shard.step(message, 0)
    coordinator = WatermarkCoordinator(COORDINATOR, 2, 2)
    for name in TO_COORDINATOR:
        coordinator.step(vectors[name], 0)


def test_golden_messages_with_a_flipped_bit_are_refused() -> None:
    shard, coordinator = leading_shard(), WatermarkCoordinator(COORDINATOR, 2, 2)
    for name, message in golden().items():
        if not name.startswith("message."):
            continue
        target = coordinator if name in TO_COORDINATOR else shard
        for bit in range(len(message) * 8):
            flipped = bytearray(message)
            flipped[bit // 8] ^= 1 << (bit % 8)
            with pytest.raises(ln.DecodeError):
                target.step(flipped, 0)


def test_golden_records_apply() -> None:
    shard = leading_shard()
    for name, record in golden().items():
        if name.startswith("record."):
            shard.apply(record, 1, 0)


# ------------------------------------------------------------ the pure roles


class RoleNetwork:
    """A WatermarkCoordinator and shards wired through a list used as the
    network. Each shard's Raft group is a one-replica log: a record it hands
    out is committed, so applied back to it, at once."""

    def __init__(self, shards: int, workers: int, coordinators: Sequence[int] = (COORDINATOR,)) -> None:
        self.coordinator = WatermarkCoordinator(COORDINATOR, shards, workers)
        self.shards = [leading_shard(i, shards, workers, coordinators) for i in range(shards)]
        # The coordinator ids whose messages reach self.coordinator (others are lost).
        self.answers_for = {COORDINATOR}
        self.network: list[tuple[bool, int, bytes]] = []
        self.now = 0

    def collect(self) -> None:
        self.network.extend(self.coordinator.take_messages())
        for shard in self.shards:
            messages, records = shard.take_output()
            for record in records:
                shard.apply(record, 1, self.now)
            self.network.extend(messages)

    def advance(self, us: int) -> list[tuple[TxnId, bool, int, dict[Key, Optional[int]]]]:
        """Ticks every role after `us`, delivers until the network is empty,
        and returns the transactions acknowledged meanwhile."""
        self.now += us
        self.coordinator.tick(self.now)
        for shard in self.shards:
            shard.tick(self.now)
        self.collect()
        while self.network:
            to_shard, to, message = self.network.pop(0)
            if to_shard:
                self.shards[to].step(message, self.now)
            elif to in self.answers_for:
                # A crashed coordinator's messages go to the one that took it over.
                self.coordinator.step(message, self.now)
            self.collect()
        return self.coordinator.take_completions()


def test_roles_end_to_end_over_a_python_network() -> None:
    net = RoleNetwork(shards=2, workers=2)
    rng = random.Random(5)
    expected: dict[Key, int] = {}
    submitted: set[TxnId] = set()
    done: dict[TxnId, bool] = {}
    for i in range(50):
        ops: list[TxnOp] = []
        for shard in (0, 1):
            key, delta = f"k{rng.randrange(4)}", rng.randint(1, 9)
            ops.append(("add", shard, key, delta))
            expected[(shard, key)] = expected.get((shard, key), 0) + delta
        submitted.add(net.coordinator.submit(ops, worker=i % 2, now_us=net.now))
        if i % 5 == 4:
            done.update((c[0], c[1]) for c in net.advance(100))
    for _ in range(10_000):
        if len(done) == len(submitted):
            break
        done.update((c[0], c[1]) for c in net.advance(100))
    assert set(done) == submitted and all(done.values())
    # Acknowledged from the shards' committed votes: a shard shows the writes
    # once it has applied the outcome record too (a vote may wait for a resend).
    for _ in range(ROLE_CATCH_UP_US // 100):
        net.advance(100)
    assert all(shard.serving for shard in net.shards)
    for (shard, key), total in expected.items():
        assert net.shards[shard].value(key) == total
    for shard in (0, 1):
        on_shard = sum(v for (s, _), v in expected.items() if s == shard)
        assert sum(net.shards[shard].value(f"k{i}") or 0 for i in range(4)) == on_shard


SUCCESSOR = COORDINATOR + 1


def test_a_successor_takes_over_what_a_crashed_coordinator_left() -> None:
    """The coordinator crashes with transactions in flight and records not
    retired; its successor (a new id) adopts it: every transaction it left
    applies on both shards or on neither, and no record stays."""
    net = RoleNetwork(shards=2, workers=2, coordinators=(COORDINATOR, SUCCESSOR))
    net.advance(100)  # the shards recover and serve
    for i in range(30):
        net.coordinator.submit([("add", 0, "x", 1), ("add", 1, "y", 1)], worker=i % 2, now_us=net.now)
        if i == 20:
            for _ in range(4):  # the first ones run, before the first retire point (10 ms)
                net.advance(1_000)
    net.collect()
    del net.network[len(net.network) // 2 :]  # the crash loses what it had not sent
    net.coordinator = WatermarkCoordinator(SUCCESSOR, 2, 2)
    with pytest.raises(ln.LuigiValueError):
        net.coordinator.adopt(SUCCESSOR, SUCCESSOR)  # not itself
    with pytest.raises(ln.LuigiValueError):
        net.coordinator.adopt(5, 4)
    assert not net.coordinator.adopting
    net.coordinator.adopt(COORDINATOR, COORDINATOR)
    net.answers_for = {COORDINATOR, SUCCESSOR}
    assert net.coordinator.adopting
    assert sum(shard.records for shard in net.shards) > 0
    completions = []
    for _ in range(10_000):
        completions += net.advance(1_000)
        if not net.coordinator.adopting and all(shard.records == 0 for shard in net.shards):
            break
    assert not net.coordinator.adopting
    assert [shard.records for shard in net.shards] == [0, 0]
    assert completions == []  # no client waited for them
    x, y = net.shards[0].value("x"), net.shards[1].value("y")
    assert x == y and x is not None and 21 <= x <= 30


def test_two_phase_baseline_refuses_faults() -> None:
    """The baseline has no timeouts or failover: every fault is refused, and
    nothing changes."""
    c = ShardedCluster(protocol="2pc", seed=3)
    c.load("bank", 20)
    before = c.stats()
    for fault in (
        lambda: c.crash_leader(0),
        lambda: c.crash(c.replicas(0)[0]),
        lambda: c.crash_coordinator(0),
        lambda: c.partition([c.replicas(1)[0]]),
        lambda: c.set_faults(drop=0.1),
    ):
        with pytest.raises(ln.TransactionStateError):
            fault()
    assert c.stats() == before
    with pytest.raises(ln.LuigiValueError):
        ShardedCluster(protocol="2pc", drop=0.1)
    assert c.run_until_idle(IDLE_LIMIT_US)
    c.run(100_000)
    c.check()
    assert money(c) == 2 * ACCOUNTS * OPENING
