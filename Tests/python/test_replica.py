"""Replica, Transaction and Update behaviour through the installed package."""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Callable

import pytest

import luigi_node as ln
from luigi_node import Replica, Update, VectorClock
from luigi_test_helpers import assert_all_equal, canonical, commit_add, deliver_all, snapshot

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)


def bits(x: float) -> bytes:
    return struct.pack("<d", x)


# ------------------------------------------------------------------ basics


def test_new_replica_is_empty() -> None:
    r = Replica(7)
    assert r.node_id == 7
    assert r.value("anything") is None
    assert r.keys() == []
    assert r.clock == VectorClock()
    assert r.pending == 0
    assert r.conflicts == 0
    assert repr(r) == "Replica(7)"


def test_node_id_bounds() -> None:
    assert Replica(2**64 - 1).node_id == 2**64 - 1
    assert Replica(node_id=0).node_id == 0
    for bad in (-1, 2**64):
        with pytest.raises(ln.LuigiOverflowError):
            Replica(bad)
    with pytest.raises(TypeError):
        Replica("1")  # type: ignore[arg-type]


def test_counter_transaction_and_update_metadata() -> None:
    r = Replica(1)
    tx = r.transaction()
    assert tx.update is None
    tx.add("hits", 5)
    tx.add("hits", -2)
    tx.add("misses", 1)
    assert len(tx) == 3
    u = tx.commit()
    assert tx.update is u
    assert r.value("hits") == 3
    assert r.value("misses") == 1
    assert r.keys() == ["hits", "misses"]
    assert u.origin == 1
    assert u.seq == 1
    assert len(u) >= 1
    assert r.clock == VectorClock({1: 1})
    u2 = commit_add(r, "hits", 1)
    assert u2.seq == 2
    assert r.clock == VectorClock({1: 2})
    assert repr(u2) == f"Update(origin=1, seq=2, ops={len(u2)})"


def test_keys_are_str_and_utf8() -> None:
    r = Replica(1)
    tx = r.transaction()
    for key in ("b", "a", "é", "a\0b", "", "日本"):
        tx.add(key, 1)
    tx.commit()
    keys = r.keys()
    assert sorted(keys, key=lambda k: k.encode()) == keys
    assert set(keys) == {"b", "a", "é", "a\0b", "", "日本"}
    assert r.value("a\0b") == 1
    tx = r.transaction()
    with pytest.raises(TypeError):
        tx.add(b"bytes-key", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tx.add(1, 1)  # type: ignore[arg-type]
    with pytest.raises(UnicodeEncodeError):
        tx.add("\ud800", 1)
    with pytest.raises(TypeError):
        r.value(None)  # type: ignore[arg-type]
    assert len(tx) == 0


def test_delta_type_and_range() -> None:
    r = Replica(1)
    tx = r.transaction()
    for bad in (I64_MAX + 1, I64_MIN - 1, 2**100):
        with pytest.raises(ln.LuigiOverflowError):
            tx.add("k", bad)
    with pytest.raises(TypeError):
        tx.add("k", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tx.add("k", "1")  # type: ignore[arg-type]
    assert len(tx) == 0
    tx.add("k", I64_MAX)
    tx.add("j", I64_MIN)
    tx.commit()
    assert r.value("k") == I64_MAX
    assert r.value("j") == I64_MIN


# ------------------------------------------------------------------ transactions


def test_context_manager_commits_on_normal_exit() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.add("k", 2)
        assert r.value("k") is None  # buffered until commit
    assert tx.update is not None
    assert r.value("k") == 2
    with pytest.raises(ln.TransactionStateError):
        tx.add("k", 1)
    with pytest.raises(ln.TransactionStateError):
        tx.commit()


def test_context_manager_discards_on_exception_and_reraises() -> None:
    r = Replica(1)
    commit_add(r, "k", 1)
    before = snapshot(r)

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with r.transaction() as tx:
            tx.add("k", 100)
            tx.add("other", 1)
            raise Boom()
    assert snapshot(r) == before
    assert tx.update is None
    with pytest.raises(ln.TransactionStateError):
        tx.add("k", 1)
    with pytest.raises(ln.TransactionStateError):
        tx.commit()
    # The next transaction gets the next sequence number: nothing was used up.
    assert commit_add(r, "k", 1).seq == 2


def test_explicit_commit_inside_with_is_not_repeated() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.add("k", 1)
        u = tx.commit()
    assert tx.update is u
    assert r.value("k") == 1
    assert r.clock == VectorClock({1: 1})


def test_failed_commit_in_with_raises_and_discards() -> None:
    r = Replica(1)
    commit_add(r, "k", 1)
    before = snapshot(r)
    with pytest.raises(ln.TypeConflictError):
        with r.transaction() as tx:
            tx.max("k", 5)
    assert snapshot(r) == before
    with pytest.raises(ln.TransactionStateError):
        tx.commit()


def test_rejected_transaction_is_atomic() -> None:
    r = Replica(1)
    u1 = commit_add(r, "k", 1)
    before = snapshot(r)
    tx = r.transaction()
    tx.add("x", 5)
    tx.union("s", {"a"})
    tx.max("k", 1)  # k is a counter
    with pytest.raises(ln.TypeConflictError):
        tx.commit()
    assert snapshot(r) == before
    assert r.value("x") is None and r.value("s") is None
    assert r.clock == VectorClock({1: u1.seq})
    # The failed transaction stays open (it may be discarded), and still fails.
    assert tx.update is None
    with pytest.raises(ln.TypeConflictError):
        tx.commit()
    assert snapshot(r) == before
    del tx
    # The sequence number was not consumed.
    assert commit_add(r, "x", 5).seq == u1.seq + 1
    assert r.value("x") == 5


def test_rejected_overflowing_transaction_is_atomic() -> None:
    r = Replica(1)
    commit_add(r, "big", I64_MAX)
    before = snapshot(r)
    tx = r.transaction()
    tx.add("small", 1)
    tx.add("big", 1)
    with pytest.raises(ln.LuigiOverflowError):
        tx.commit()
    assert snapshot(r) == before


def test_set_is_buffered_but_not_algebraic() -> None:
    r = Replica(1)
    tx = r.transaction()
    tx.add("k", 1)
    tx.set("r", 5)
    tx.set("r", 1.5)  # replaces the earlier set
    bad: list[tuple[object, type[Exception]]] = [
        ("text", TypeError),
        (None, TypeError),
        (2**80, ln.LuigiOverflowError),
        (math.nan, ln.LuigiValueError),
    ]
    for value, error in bad:
        with pytest.raises(error):
            tx.set("r", value)  # type: ignore[arg-type]
    assert len(tx) == 3
    with pytest.raises(ln.NotAlgebraicError) as info:
        tx.commit()  # an overwrite needs the replicated log
    assert isinstance(info.value, TypeError) and "set('r')" in str(info.value)
    assert len(tx) == 3 and r.value("k") is None and r.value("r") is None  # still open, nothing changed
    assert tx.proposed_index is None and tx.update is None
    with pytest.raises(ln.NotAlgebraicError):
        with r.transaction() as t:
            t.set("r", 1)
    assert r.keys() == []


def test_local_type_conflicts() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.add("c", 1)
        tx.union("s", [1])
        tx.max("m", 1)
    before = snapshot(r)
    attempts: list[Callable[[ln.Transaction], None]] = [
        lambda t: t.max("c", 1),
        lambda t: t.min("c", 1),
        lambda t: t.union("c", ["x"]),
        lambda t: t.add("s", 1),
        lambda t: t.add("m", 1),
        lambda t: t.min("m", 1),
    ]
    for attempt in attempts:
        tx = r.transaction()
        with pytest.raises(ln.TypeConflictError) as info:
            attempt(tx)
            tx.commit()
        assert isinstance(info.value, TypeError)
        assert snapshot(r) == before


def test_type_conflict_within_one_transaction() -> None:
    r = Replica(1)
    tx = r.transaction()
    with pytest.raises(ln.TypeConflictError):
        tx.add("k", 1)
        tx.union("k", ["x"])
        tx.commit()
    assert r.value("k") is None
    assert r.clock == VectorClock()


# ------------------------------------------------------------------ conflicts


def test_concurrent_mixed_type_updates_converge_in_any_order() -> None:
    a, b, c = Replica(1), Replica(2), Replica(3)
    ua = commit_add(a, "k", 3)
    with b.transaction() as tb:
        tb.max("k", 100)
    with c.transaction() as tc:
        tc.union("k", {"x"})
    assert tb.update is not None and tc.update is not None
    ups = {1: ua, 2: tb.update, 3: tc.update}
    results = []
    for order in itertools.permutations([1, 2, 3]):
        observer = Replica(99)
        deliver_all(observer, (ups[o] for o in order))
        results.append(observer)
    for replica in (a, b, c):
        deliver_all(replica, ups.values())
        results.append(replica)
    # Every replica, whatever the order, shows the same value and the same
    # conflict count: two of the three ops are kept under a losing type.
    values = {canonical(r.value("k")) for r in results}
    assert len(values) == 1, values
    assert values.pop() in {canonical(3), canonical(100), canonical(frozenset({"x"}))}
    assert {r.conflicts for r in results} == {2}
    assert {tuple(r.clock.items()) for r in results} == {((1, 1), (2, 1), (3, 1))}


def test_conflicts_count_every_losing_op() -> None:
    a, b = Replica(1), Replica(2)
    ups = [commit_add(a, "k", 1), commit_add(a, "k", 1)]
    for _ in range(3):
        with b.transaction() as tb:
            tb.union("k", ["x"])
        assert tb.update is not None
        ups.append(tb.update)
    for r in (a, b):
        deliver_all(r, ups)
    assert_all_equal([a, b])
    losing = 3 if isinstance(a.value("k"), int) else 2
    assert a.conflicts == b.conflicts == losing


# ------------------------------------------------------------------ counters


def test_counter_contribution_overflow() -> None:
    r = Replica(1)
    commit_add(r, "k", I64_MAX)
    before = snapshot(r)
    tx = r.transaction()
    tx.add("k", 1)
    with pytest.raises(ln.LuigiOverflowError) as info:
        tx.commit()
    assert isinstance(info.value, OverflowError)
    assert snapshot(r) == before
    # The negative end too.
    commit_add(r, "n", I64_MIN)
    tx = r.transaction()
    tx.add("n", -1)
    with pytest.raises(ln.LuigiOverflowError):
        tx.commit()
    assert r.value("n") == I64_MIN
    # Coming back into range is fine.
    commit_add(r, "k", -10)
    commit_add(r, "k", 10)
    assert r.value("k") == I64_MAX


def test_counter_overflow_within_one_transaction() -> None:
    r = Replica(1)
    tx = r.transaction()
    tx.add("k", I64_MAX)
    tx.add("k", 1)
    with pytest.raises(ln.LuigiOverflowError):
        tx.commit()
    assert r.value("k") is None


@pytest.mark.parametrize("origins", [2, 3, 5, 17])
def test_counter_sums_across_origins_are_exact(origins: int) -> None:
    replicas = [Replica(i + 1) for i in range(origins)]
    ups = [commit_add(r, "up", I64_MAX) for r in replicas]
    ups += [commit_add(r, "down", I64_MIN) for r in replicas]
    observer = Replica(1000)
    observer.apply_many(ups)
    up = observer.value("up")
    down = observer.value("down")
    assert up == origins * I64_MAX
    assert down == origins * I64_MIN
    if origins >= 3:
        assert isinstance(up, int) and up > 2**64
        assert isinstance(down, int) and down < -(2**64)
    for r in replicas:
        r.apply_many(ups)
    assert_all_equal([observer, *replicas][1:])
    assert all(r.value("up") == up for r in replicas)


@pytest.mark.parametrize(
    "contributions",
    [
        [-1],
        [I64_MIN, 0],
        [I64_MIN, -1],
        [I64_MAX, I64_MAX, 1],
        [I64_MAX, I64_MAX, 2],
        [I64_MIN, I64_MIN],
        [I64_MIN, I64_MIN, -1],
        [I64_MAX, I64_MAX, I64_MAX, I64_MAX, 4],
        [I64_MIN, I64_MIN, I64_MIN, I64_MIN],
    ],
)
def test_counter_values_cross_the_64_bit_boundaries_exactly(contributions: list[int]) -> None:
    observer = Replica(0)
    for origin, delta in enumerate(contributions, start=1):
        observer.apply(commit_add(Replica(origin), "k", delta))
    assert observer.value("k") == sum(contributions)


def test_counter_contributions_replace_not_double_count() -> None:
    a, b = Replica(1), Replica(2)
    ups = [commit_add(a, "k", 5), commit_add(a, "k", 7), commit_add(a, "k", -2)]
    for u in ups:
        b.apply(u)
        b.apply(u)
    assert b.value("k") == a.value("k") == 10


# ------------------------------------------------------------------ max / min


def test_max_min_ints_and_floats() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.max("mx", 3)
        tx.max("mx", 2.5)
        tx.min("mn", 3)
        tx.min("mn", 2.5)
    assert canonical(r.value("mx")) == canonical(3)
    assert canonical(r.value("mn")) == canonical(2.5)
    with r.transaction() as tx:
        tx.max("mx", 3.5)
        tx.min("mn", -7)
    assert canonical(r.value("mx")) == canonical(3.5)
    assert canonical(r.value("mn")) == canonical(-7)
    with r.transaction() as tx:
        tx.max("mx", I64_MAX)
        tx.min("mn", I64_MIN)
    assert r.value("mx") == I64_MAX
    assert r.value("mn") == I64_MIN


def test_max_min_argument_checks() -> None:
    r = Replica(1)
    tx = r.transaction()
    with pytest.raises(ln.LuigiOverflowError):
        tx.max("m", 2**63)
    with pytest.raises(TypeError):
        tx.max("m", "3")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tx.min("m", None)  # type: ignore[arg-type]
    assert len(tx) == 0


@pytest.mark.parametrize("op", ["max", "min"])
def test_nan_is_rejected(op: str) -> None:
    r = Replica(1)
    tx = r.transaction()
    tx.max("other", 1)
    with pytest.raises(ln.LuigiValueError) as info:
        getattr(tx, op)("k", math.nan)
        tx.commit()
    assert isinstance(info.value, ValueError)
    assert r.value("k") is None


@pytest.mark.parametrize("op", ["max", "min"])
@pytest.mark.parametrize(
    "x, y",
    [
        (-0.0, 0.0),
        (math.inf, 1e308),
        (-math.inf, -1e308),
        (math.inf, I64_MAX),
        (-math.inf, I64_MIN),
        (2**53 + 1, float(2**53)),  # exact comparison, no rounding through double
        (2**53, float(2**53)),  # equal value, different types
        (1, 1.0),
        (0, -0.0),
        (I64_MAX, float(2**63)),
        (I64_MIN, float(-(2**63))),
    ],
)
def test_max_min_converge_bit_identically(op: str, x: float, y: float) -> None:
    a, b = Replica(1), Replica(2)
    with a.transaction() as ta:
        getattr(ta, op)("k", x)
    with b.transaction() as tb:
        getattr(tb, op)("k", y)
    assert ta.update is not None and tb.update is not None
    a.apply(tb.update)
    b.apply(ta.update)
    va, vb = a.value("k"), b.value("k")
    assert canonical(va) == canonical(vb), (va, vb)
    # The result is one of the inputs and is the max/min by exact value.
    assert canonical(va) in (canonical(x), canonical(y))
    pick = max if op == "max" else min
    assert va == pick(x, y)


def test_infinities_round_trip() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.max("hi", math.inf)
        tx.min("lo", -math.inf)
        tx.max("z", -0.0)
    assert r.value("hi") == math.inf
    assert r.value("lo") == -math.inf
    z = r.value("z")
    assert isinstance(z, float) and bits(z) == bits(-0.0)


# ------------------------------------------------------------------ sets


def test_union_of_mixed_elements() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.union("s", ["a", b"a", 1, -(2**63), 2**63 - 1, "", b""])
        tx.union("s", ("a", 1))
        tx.union("s", iter(["gen"]))
    assert r.value("s") == frozenset({"a", b"a", 1, -(2**63), 2**63 - 1, "", b"", "gen"})


def test_union_checks_every_element_before_adding_any() -> None:
    r = Replica(1)
    tx = r.transaction()
    with pytest.raises(TypeError):
        tx.union("s", ["ok", 1.5])  # type: ignore[list-item]
    with pytest.raises(ln.LuigiOverflowError):
        tx.union("s", ["ok", 2**63])
    with pytest.raises(TypeError):
        tx.union("s", "abc")  # a str is one element, not an iterable of them
    with pytest.raises(TypeError):
        tx.union("s", b"abc")
    with pytest.raises(TypeError):
        tx.union("s", 5)  # type: ignore[arg-type]
    assert len(tx) == 0


def test_value_of_a_set_is_a_frozenset_copy() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.union("s", ["x"])
    v1 = r.value("s")
    with r.transaction() as tx:
        tx.union("s", ["y"])
    assert v1 == frozenset({"x"})
    assert r.value("s") == frozenset({"x", "y"})


def test_large_sets() -> None:
    n = 10_000
    elements: list[str | bytes | int] = []
    elements += [f"user-{i}" for i in range(n)]
    elements += [i * 7919 - 10**12 for i in range(n)]
    elements += [i.to_bytes(4, "little") for i in range(n)]
    a, b = Replica(1), Replica(2)
    with a.transaction() as tx:
        tx.union("big", elements)
    assert tx.update is not None
    expected = frozenset(elements)
    assert a.value("big") == expected
    assert b.apply(Update.from_bytes(tx.update.to_bytes()))
    assert b.value("big") == expected
    with b.transaction() as tx2:
        tx2.union("big", ["extra"])
    assert tx2.update is not None
    a.apply(tx2.update)
    assert a.value("big") == b.value("big") == expected | {"extra"}


# ------------------------------------------------------------------ delivery


def test_apply_is_idempotent() -> None:
    a, b = Replica(1), Replica(2)
    u = commit_add(a, "k", 5)
    assert b.apply(u) is True
    after = snapshot(b)
    assert b.apply(u) is False
    assert b.apply(Update.from_bytes(u.to_bytes())) is False
    assert snapshot(b) == after
    assert a.apply(u) is False  # its own update is already applied
    assert a.value("k") == 5
    with pytest.raises(TypeError):
        b.apply("not an update")  # type: ignore[arg-type]


def test_apply_many_counts_new_updates() -> None:
    a, b = Replica(1), Replica(2)
    ups = [commit_add(a, "k", i) for i in range(1, 6)]
    assert b.apply_many(ups[:2]) == 2
    assert b.apply_many(ups + ups) == 3
    assert b.apply_many([]) == 0
    assert b.apply_many(u for u in ups) == 0
    assert b.value("k") == a.value("k") == 15
    with pytest.raises(TypeError):
        b.apply_many([ups[0], "nope"])  # type: ignore[list-item]


def test_causal_delivery_waits_in_pending() -> None:
    a, b = Replica(1), Replica(2)
    u1, u2, u3 = (commit_add(a, "k", 10**i) for i in range(3))
    assert b.apply(u3) is True
    assert b.pending == 1
    assert b.value("k") is None
    assert b.clock == VectorClock()
    assert b.apply(u3) is False  # a duplicate of a pending update
    assert b.apply(u2) is True
    assert b.pending == 2
    assert b.apply(u1) is True
    assert b.pending == 0
    assert b.value("k") == 111
    assert b.clock == VectorClock({1: 3})


def test_causal_delivery_across_origins() -> None:
    a, b, c = Replica(1), Replica(2), Replica(3)
    u1 = commit_add(a, "k", 1)
    b.apply(u1)
    with b.transaction() as tb:
        tb.union("seen", ["a's update"])
    v1 = tb.update
    assert v1 is not None
    assert v1.clock[1] == 1  # depends on u1
    assert v1.clock.compare(u1.clock) is ln.CausalOrder.AFTER
    assert c.apply(v1) is True
    assert c.pending == 1
    assert c.value("seen") is None
    c.apply(u1)
    assert c.pending == 0
    assert c.value("seen") == frozenset({"a's update"})
    assert_all_equal([b, c])


def test_delta_since() -> None:
    a, b = Replica(1), Replica(2)
    ups = [commit_add(a, "k", 1) for _ in range(5)]
    b.apply_many(ups[:2])
    delta = a.delta_since(b.clock)
    assert [u.seq for u in delta] == [3, 4, 5]
    assert delta == ups[2:]
    assert b.apply_many(delta) == 3
    assert_all_equal([a, b])
    assert a.delta_since(a.clock) == []
    assert a.delta_since(VectorClock()) == ups
    with pytest.raises(TypeError):
        a.delta_since({1: 1})  # type: ignore[arg-type]


def test_delta_since_is_in_causal_order() -> None:
    replicas = [Replica(i) for i in range(1, 5)]
    for round_ in range(6):
        for i, r in enumerate(replicas):
            commit_add(r, f"k{i}", round_)
            # Gossip to the next replica so updates depend on each other.
            nxt = replicas[(i + 1) % len(replicas)]
            nxt.apply_many(r.delta_since(nxt.clock))
    source = replicas[0]
    for r in replicas[1:]:
        source.apply_many(r.delta_since(source.clock))
    assert source.pending == 0
    fresh = Replica(100)
    for u in source.delta_since(VectorClock()):
        fresh.apply(u)
        assert fresh.pending == 0  # never had to wait: causal order
    assert snapshot(fresh)[0] == snapshot(source)[0]
    assert fresh.clock == source.clock


def test_union_of_no_elements_creates_an_empty_set() -> None:
    r = Replica(1)
    tx = r.transaction()
    tx.union("s", [])
    tx.commit()
    assert r.value("s") == frozenset()
    # The key is a set now: a counter op on it is a type conflict, as after
    # any other first op.
    tx = r.transaction()
    with pytest.raises(ln.TypeConflictError):
        tx.add("s", 1)
        tx.commit()
    assert r.value("s") == frozenset()
