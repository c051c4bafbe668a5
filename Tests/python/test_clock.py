"""VectorClock: mapping behaviour, causal comparison, encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import luigi_node as ln
from luigi_node import CausalOrder, VectorClock

U64 = 2**64 - 1
nodes = st.integers(min_value=0, max_value=U64)
small_clocks = st.dictionaries(
    st.integers(min_value=0, max_value=6), st.integers(min_value=0, max_value=4), max_size=7
)
clocks = st.dictionaries(nodes, st.integers(min_value=0, max_value=U64), max_size=20)


def reference_order(a: dict[int, int], b: dict[int, int]) -> CausalOrder:
    keys = set(a) | set(b)
    le = all(a.get(k, 0) <= b.get(k, 0) for k in keys)
    ge = all(a.get(k, 0) >= b.get(k, 0) for k in keys)
    if le and ge:
        return CausalOrder.EQUAL
    if le:
        return CausalOrder.BEFORE
    if ge:
        return CausalOrder.AFTER
    return CausalOrder.CONCURRENT


def test_empty_clock() -> None:
    vc = VectorClock()
    assert len(vc) == 0
    assert vc[7] == 0
    assert 7 not in vc
    assert list(vc) == []
    assert dict(vc) == {}
    assert repr(vc) == "VectorClock({})"


def test_tick_get_set() -> None:
    vc = VectorClock()
    assert vc.tick(3) == 1
    assert vc.tick(3) == 2
    assert vc[3] == 2
    assert 3 in vc
    vc[9] = 5
    assert len(vc) == 2
    vc[3] = 0  # 0 removes the entry
    assert len(vc) == 1
    assert 3 not in vc
    assert vc[3] == 0
    del vc[9]
    assert len(vc) == 0


def test_entries_come_in_node_order() -> None:
    vc = VectorClock({5: 1, 1: 2, 2**64 - 1: 7, 0: 3})
    assert vc.keys() == [0, 1, 5, 2**64 - 1]
    assert list(vc) == [0, 1, 5, 2**64 - 1]
    assert vc.values() == [3, 2, 1, 7]
    assert vc.items() == [(0, 3), (1, 2), (5, 1), (2**64 - 1, 7)]
    assert dict(vc) == {0: 3, 1: 2, 5: 1, 2**64 - 1: 7}


def test_repr() -> None:
    assert repr(VectorClock({5: 1, 1: 2})) == "VectorClock({1: 2, 5: 1})"


def test_constructor_accepts_pairs_and_mappings() -> None:
    assert VectorClock([(1, 2), (5, 1)]) == VectorClock({1: 2, 5: 1})
    assert VectorClock({1: 0}) == VectorClock()
    assert VectorClock(entries={2: 2})[2] == 2
    assert VectorClock(VectorClock({4: 4})) == VectorClock({4: 4})


@pytest.mark.parametrize("bad", [-1, 2**64, -(2**70)])
def test_node_ids_outside_uint64_overflow(bad: int) -> None:
    vc = VectorClock()
    with pytest.raises(ln.LuigiOverflowError):
        vc.tick(bad)
    with pytest.raises(OverflowError):
        vc[bad] = 1
    with pytest.raises(ln.LuigiOverflowError):
        vc[bad]
    with pytest.raises(ln.LuigiOverflowError):
        VectorClock({bad: 1})
    with pytest.raises(ln.LuigiOverflowError):
        vc[1] = bad
    assert bad not in vc
    assert len(vc) == 0


def test_non_int_node_ids_are_type_errors() -> None:
    vc = VectorClock()
    with pytest.raises(TypeError):
        vc.tick(1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vc["1"]  # type: ignore[index]
    with pytest.raises(TypeError):
        VectorClock({"a": 1})  # type: ignore[arg-type]
    assert "a" not in vc


def test_tick_overflow_is_an_error_and_changes_nothing() -> None:
    vc = VectorClock({1: U64})
    with pytest.raises(ln.LuigiOverflowError):
        vc.tick(1)
    assert vc[1] == U64


def test_compare() -> None:
    a = VectorClock({1: 1})
    b = VectorClock({1: 2})
    c = VectorClock({2: 1})
    assert a.compare(a.copy()) is CausalOrder.EQUAL
    assert a.compare(b) is CausalOrder.BEFORE
    assert b.compare(a) is CausalOrder.AFTER
    assert a.compare(c) is CausalOrder.CONCURRENT
    assert a.happened_before(b) and not b.happened_before(a)
    assert a.concurrent_with(c) and not a.concurrent_with(b)
    assert not a.happened_before(a.copy())


def test_equality_and_hashing() -> None:
    assert VectorClock({1: 1}) == VectorClock({1: 1})
    assert VectorClock({1: 1}) != VectorClock({1: 2})
    assert VectorClock() != {}  # a dict is not a VectorClock
    with pytest.raises(TypeError):
        hash(VectorClock())
    with pytest.raises(TypeError):
        VectorClock().compare({})  # type: ignore[arg-type]


def test_merge_and_copy() -> None:
    a = VectorClock({1: 3, 2: 1})
    b = VectorClock({2: 4, 3: 1})
    snapshot = a.copy()
    a.merge(b)
    assert dict(a) == {1: 3, 2: 4, 3: 1}
    assert dict(snapshot) == {1: 3, 2: 1}  # the copy is independent
    assert dict(b) == {2: 4, 3: 1}


def test_bytes_round_trip_and_decode_errors() -> None:
    vc = VectorClock({1: 2, 2**64 - 1: U64})
    data = bytes(vc)
    assert VectorClock.from_bytes(data) == vc
    assert VectorClock.from_bytes(bytearray(data)) == vc
    assert VectorClock.from_bytes(memoryview(data)) == vc
    for bad in (b"", data[:-1], data + b"\0", b"\xff" * len(data)):
        with pytest.raises(ln.DecodeError):
            VectorClock.from_bytes(bad)
    with pytest.raises(TypeError):
        VectorClock.from_bytes("not bytes")  # type: ignore[arg-type]


@given(clocks)
def test_encoding_round_trips(entries: dict[int, int]) -> None:
    vc = VectorClock(entries)
    back = VectorClock.from_bytes(bytes(vc))
    assert back == vc
    assert dict(back) == {k: v for k, v in entries.items() if v != 0}


@given(clocks, st.data())
def test_single_bit_flips_are_detected(entries: dict[int, int], data: st.DataObject) -> None:
    vc = VectorClock(entries)
    encoded = bytearray(bytes(vc))
    bit = data.draw(st.integers(min_value=0, max_value=len(encoded) * 8 - 1))
    encoded[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = VectorClock.from_bytes(bytes(encoded))
    except ln.DecodeError:
        return
    assert decoded == vc  # only acceptable alternative: a bit that carries no meaning


@given(st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes) -> None:
    try:
        vc = VectorClock.from_bytes(data)
    except ln.DecodeError:
        return
    assert VectorClock.from_bytes(bytes(vc)) == vc


@given(small_clocks, small_clocks)
def test_compare_matches_pointwise_reference(a: dict[int, int], b: dict[int, int]) -> None:
    va, vb = VectorClock(a), VectorClock(b)
    order = reference_order(a, b)
    assert va.compare(vb) is order
    assert (va == vb) == (order is CausalOrder.EQUAL)
    mirrored = {
        CausalOrder.BEFORE: CausalOrder.AFTER,
        CausalOrder.AFTER: CausalOrder.BEFORE,
    }.get(order, order)
    assert vb.compare(va) is mirrored


@given(small_clocks, small_clocks)
def test_merge_is_the_least_upper_bound(a: dict[int, int], b: dict[int, int]) -> None:
    va = VectorClock(a)
    va.merge(VectorClock(b))
    expected = {k: max(a.get(k, 0), b.get(k, 0)) for k in set(a) | set(b)}
    assert dict(va) == {k: v for k, v in expected.items() if v}
    assert VectorClock(a).compare(va) in (CausalOrder.BEFORE, CausalOrder.EQUAL)
    assert VectorClock(b).compare(va) in (CausalOrder.BEFORE, CausalOrder.EQUAL)
