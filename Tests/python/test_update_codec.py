"""Update encoding: round trips, and hostile bytes never crash the process."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import luigi_node as ln
from luigi_node import Replica, Update

keys = st.text(min_size=0, max_size=12)
elements = st.one_of(
    st.text(max_size=10), st.binary(max_size=10), st.integers(min_value=-(2**63), max_value=2**63 - 1)
)
numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False)
)


@st.composite
def updates(draw: st.DrawFn) -> Update:
    """A committed update with random ops (one type per key, so it commits)."""
    node = draw(st.integers(min_value=0, max_value=2**64 - 1))
    r = Replica(node)
    history = draw(st.integers(min_value=0, max_value=3))
    for _ in range(history):  # some earlier updates so seq and clock vary
        with r.transaction() as tx:
            tx.add("history", 1)
    # Remote updates the new one will depend on.
    for origin in draw(st.lists(st.integers(min_value=0, max_value=5), max_size=3, unique=True)):
        if origin == node:
            continue
        other = Replica(origin)
        with other.transaction() as tx:
            tx.add("remote", 1)
        assert tx.update is not None
        r.apply(tx.update)
    tx = r.transaction()
    for i, kind in enumerate(draw(st.lists(st.sampled_from("cmns"), max_size=6))):
        key = f"{kind}{i}:" + draw(keys)
        if kind == "c":
            tx.add(key, draw(st.integers(min_value=-(2**63), max_value=2**63 - 1)))
        elif kind == "m":
            tx.max(key, draw(numbers))
        elif kind == "n":
            tx.min(key, draw(numbers))
        else:
            tx.union(key, draw(st.lists(elements, max_size=5)))
    return tx.commit()


@given(updates())
def test_round_trip(u: Update) -> None:
    data = u.to_bytes()
    back = Update.from_bytes(data)
    assert back == u
    assert hash(back) == hash(u)
    assert back.to_bytes() == data
    assert (back.origin, back.seq, len(back)) == (u.origin, u.seq, len(u))
    assert back.clock == u.clock


@given(updates())
def test_decoded_update_applies_like_the_original(u: Update) -> None:
    a, b = Replica(10**6), Replica(10**6 + 1)
    a.apply(u)
    b.apply(Update.from_bytes(u.to_bytes()))
    for key in a.keys():
        va, vb = a.value(key), b.value(key)
        if isinstance(va, float) and isinstance(vb, float):
            assert math.copysign(1, va) == math.copysign(1, vb)
        assert va == vb
    assert a.keys() == b.keys()
    assert a.clock == b.clock
    assert a.pending == b.pending


@given(st.binary(max_size=300))
def test_random_bytes_raise_decode_error_or_decode(data: bytes) -> None:
    try:
        u = Update.from_bytes(data)
    except ln.DecodeError:
        return
    assert Update.from_bytes(u.to_bytes()) == u


@given(updates(), st.data())
def test_bit_flips_are_detected(u: Update, data: st.DataObject) -> None:
    encoded = bytearray(u.to_bytes())
    flips = data.draw(
        st.lists(st.integers(min_value=0, max_value=len(encoded) * 8 - 1), min_size=1, max_size=3, unique=True)
    )
    for bit in flips:
        encoded[bit // 8] ^= 1 << (bit % 8)
    try:
        decoded = Update.from_bytes(bytes(encoded))
    except ln.DecodeError:
        return
    assert decoded == u


@given(updates(), st.data())
def test_truncations_and_extensions_are_rejected(u: Update, data: st.DataObject) -> None:
    encoded = u.to_bytes()
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(ln.DecodeError):
        Update.from_bytes(encoded[:cut])
    extra = data.draw(st.binary(min_size=1, max_size=8))
    try:
        decoded = Update.from_bytes(encoded + extra)
    except ln.DecodeError:
        return
    assert decoded == u


def test_equality_and_hash_are_by_bytes() -> None:
    r = Replica(1)
    with r.transaction() as tx:
        tx.add("k", 1)
    u = tx.update
    assert u is not None
    same = Update.from_bytes(u.to_bytes())
    assert u == same and not (u != same)
    assert len({u, same}) == 1
    with r.transaction() as tx2:
        tx2.add("k", 1)
    assert tx2.update is not None
    assert tx2.update != u
    assert u != u.to_bytes()  # not equal to its bytes
    assert Update.from_bytes(bytearray(u.to_bytes())) == u
    assert Update.from_bytes(memoryview(u.to_bytes())) == u


def test_empty_and_garbage() -> None:
    for bad in (b"", b"\0", b"LU", b"\xff" * 64):
        with pytest.raises(ln.DecodeError) as info:
            Update.from_bytes(bad)
        assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError):
        Update.from_bytes("text")  # type: ignore[arg-type]


def test_encode_many_round_trips_a_delta_and_rejects_damage() -> None:
    a, b = Replica(1), Replica(2)
    for i in range(50):
        with a.transaction() as tx:
            tx.add(f"k{i % 5}", i)
    delta = a.delta_since(b.clock)
    wire = Update.encode_many(delta)
    decoded = Update.decode_many(wire)
    assert decoded == delta
    assert b.apply_many(decoded) == 50
    assert b.clock == a.clock and b.value("k0") == a.value("k0")
    assert Update.decode_many(Update.encode_many([])) == []
    for i in range(0, len(wire) * 8, 11):
        damaged = bytearray(wire)
        damaged[i // 8] ^= 1 << (i % 8)
        with pytest.raises(ln.DecodeError):
            Update.decode_many(bytes(damaged))
    with pytest.raises(ln.DecodeError):
        Update.decode_many(wire[:-1])
    with pytest.raises(TypeError):
        Update.encode_many([a.clock])  # type: ignore[list-item]


@given(st.binary(max_size=200))
def test_decode_many_never_crashes(data: bytes) -> None:
    try:
        Update.decode_many(data)
    except ln.DecodeError:
        pass


def test_delta_bytes_and_apply_bytes_sync_without_update_objects() -> None:
    a, b = Replica(1), Replica(2)
    for i in range(30):
        with a.transaction() as tx:
            tx.union("s", [i])
        with b.transaction() as tx:
            tx.add("n", i)
    to_b = a.delta_bytes(b.clock)
    assert Update.decode_many(to_b) == a.delta_since(b.clock)
    assert b.apply_bytes(to_b) == 30
    assert b.apply_bytes(to_b) == 0  # redelivery is idempotent
    assert a.apply_bytes(b.delta_bytes(a.clock)) == 30
    assert a.clock == b.clock and a.value("s") == b.value("s") == frozenset(range(30))
    assert a.delta_bytes(b.clock) == Update.encode_many([])
    before = b.clock
    with pytest.raises(ln.DecodeError):
        b.apply_bytes(b"\x00" * 12)
    assert b.clock == before
