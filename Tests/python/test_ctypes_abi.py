"""Drives libluigi's raw C ABI (Include/luigi.h) through ctypes only.

No extension module is imported: this proves that any FFI that can load a
shared library and call C functions can use Luigi. `luigi_node` is imported
only to find the shipped libluigi.so when LUIGI_LIBRARY is not set.
"""

from __future__ import annotations

import ctypes
import math
import os
import struct
import threading
from ctypes import (
    POINTER,
    Structure,
    byref,
    c_char_p,
    c_double,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

# ------------------------------------------------------------------ loading


def _library_path() -> str | None:
    env = os.environ.get("LUIGI_LIBRARY")
    if env:
        return env
    try:
        import luigi_node  # type: ignore[import-not-found,unused-ignore]  # only to locate the .so

        return str(luigi_node.library_path())
    except Exception:  # not installed (or too old): try the repository build
        pass
    built = Path(__file__).resolve().parents[2] / ".build" / "release" / "libluigi.so"
    return str(built) if built.exists() else None


_PATH = _library_path()
if _PATH is None or not Path(_PATH).exists():
    pytest.skip(
        "libluigi.so not found (set LUIGI_LIBRARY or install luigi_node)",
        allow_module_level=True,
    )

lib = ctypes.CDLL(_PATH)

# ------------------------------------------------------------ declarations

OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_INVALID_HANDLE = 2
ERR_DECODE = 3
ERR_NOT_ALGEBRAIC = 4
ERR_TYPE_CONFLICT = 5
ERR_OVERFLOW = 6
ERR_STATE = 7
ERR_BUFFER_TOO_SMALL = 8
ERR_NOT_CONVERGED = 9
ERR_OUT_OF_RANGE = 10

ORDER_EQUAL, ORDER_BEFORE, ORDER_AFTER, ORDER_CONCURRENT = 0, 1, 2, 3
KIND_NONE, KIND_COUNTER, KIND_MAX, KIND_MIN, KIND_SET = 0, 1, 2, 3, 4
NUMBER_INT, NUMBER_FLOAT = 0, 1
ELEMENT_INT, ELEMENT_STR, ELEMENT_BYTES = 1, 2, 3


class Buffer(Structure):
    _fields_ = [("data", POINTER(c_uint8)), ("len", c_size_t)]


class Value(Structure):
    _fields_ = [
        ("kind", c_uint32),
        ("number_type", c_uint32),
        ("counter_hi", c_int64),
        ("counter_lo", c_uint64),
        ("int_value", c_int64),
        ("float_value", c_double),
        ("set_size", c_uint64),
    ]


class ClusterOptions(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("nodes", c_uint32),
        ("seed", c_uint64),
        ("fanout", c_uint32),
        ("max_delay", c_uint32),
        ("drop_rate", c_double),
        ("duplicate_rate", c_double),
        ("reorder_rate", c_double),
    ]


class ClusterStats(Structure):
    _fields_ = [
        ("version", c_uint32),
        ("reserved", c_uint32),
        ("rounds", c_uint64),
        ("messages", c_uint64),
        ("bytes", c_uint64),
        ("dropped", c_uint64),
        ("duplicated", c_uint64),
        ("updates_shipped", c_uint64),
        ("type_conflicts", c_uint64),
    ]


H = c_void_p  # every handle is opaque
S = c_int32  # luigi_status
P = POINTER

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "luigi_version_number": (c_uint32, []),
    "luigi_abi_version": (c_uint32, []),
    "luigi_version_string": (c_char_p, []),
    "luigi_last_error_message": (c_char_p, []),
    "luigi_status_name": (c_char_p, [S]),
    "luigi_buffer_free": (None, [P(Buffer)]),
    "luigi_clock_new": (S, [P(H)]),
    "luigi_clock_free": (None, [H]),
    "luigi_clock_copy": (S, [H, P(H)]),
    "luigi_clock_tick": (S, [H, c_uint64, P(c_uint64)]),
    "luigi_clock_get": (S, [H, c_uint64, P(c_uint64)]),
    "luigi_clock_set": (S, [H, c_uint64, c_uint64]),
    "luigi_clock_merge": (S, [H, H]),
    "luigi_clock_compare": (S, [H, H, P(c_int)]),
    "luigi_clock_len": (S, [H, P(c_size_t)]),
    "luigi_clock_entries": (S, [H, P(c_uint64), P(c_uint64), c_size_t, P(c_size_t)]),
    "luigi_clock_encode": (S, [H, P(Buffer)]),
    "luigi_clock_decode": (S, [c_char_p, c_size_t, P(H)]),
    "luigi_replica_new": (S, [c_uint64, P(H)]),
    "luigi_replica_free": (None, [H]),
    "luigi_replica_node_id": (S, [H, P(c_uint64)]),
    "luigi_replica_begin": (S, [H, P(H)]),
    "luigi_txn_free": (None, [H]),
    "luigi_txn_add": (S, [H, c_char_p, c_size_t, c_int64]),
    "luigi_txn_max_int": (S, [H, c_char_p, c_size_t, c_int64]),
    "luigi_txn_max_float": (S, [H, c_char_p, c_size_t, c_double]),
    "luigi_txn_min_int": (S, [H, c_char_p, c_size_t, c_int64]),
    "luigi_txn_min_float": (S, [H, c_char_p, c_size_t, c_double]),
    "luigi_txn_union_int": (S, [H, c_char_p, c_size_t, c_int64]),
    "luigi_txn_union_str": (S, [H, c_char_p, c_size_t, c_char_p, c_size_t]),
    "luigi_txn_union_bytes": (S, [H, c_char_p, c_size_t, c_char_p, c_size_t]),
    "luigi_txn_union_empty": (S, [H, c_char_p, c_size_t]),
    "luigi_txn_set_int": (S, [H, c_char_p, c_size_t, c_int64]),
    "luigi_txn_set_float": (S, [H, c_char_p, c_size_t, c_double]),
    "luigi_txn_op_count": (S, [H, P(c_size_t)]),
    "luigi_txn_commit": (S, [H, P(H)]),
    "luigi_replica_apply": (S, [H, H, P(c_int)]),
    "luigi_replica_apply_list": (S, [H, H, P(c_size_t)]),
    "luigi_replica_value": (S, [H, c_char_p, c_size_t, P(Value)]),
    "luigi_replica_set_elements": (S, [H, c_char_p, c_size_t, P(Buffer)]),
    "luigi_replica_keys": (S, [H, P(Buffer)]),
    "luigi_replica_key_count": (S, [H, P(c_size_t)]),
    "luigi_replica_clock": (S, [H, P(H)]),
    "luigi_replica_pending": (S, [H, P(c_size_t)]),
    "luigi_replica_conflicts": (S, [H, P(c_uint64)]),
    "luigi_replica_delta_since": (S, [H, H, P(H)]),
    "luigi_update_free": (None, [H]),
    "luigi_update_origin": (S, [H, P(c_uint64)]),
    "luigi_update_seq": (S, [H, P(c_uint64)]),
    "luigi_update_clock": (S, [H, P(H)]),
    "luigi_update_op_count": (S, [H, P(c_size_t)]),
    "luigi_update_encode": (S, [H, P(Buffer)]),
    "luigi_update_decode": (S, [c_char_p, c_size_t, P(H)]),
    "luigi_update_list_new": (S, [P(H)]),
    "luigi_update_list_free": (None, [H]),
    "luigi_update_list_len": (S, [H, P(c_size_t)]),
    "luigi_update_list_get": (S, [H, c_size_t, P(H)]),
    "luigi_update_list_push": (S, [H, H]),
    "luigi_cluster_options_init": (None, [P(ClusterOptions)]),
    "luigi_cluster_new": (S, [P(ClusterOptions), P(H)]),
    "luigi_cluster_free": (None, [H]),
    "luigi_cluster_size": (S, [H, P(c_size_t)]),
    "luigi_cluster_replica": (S, [H, c_size_t, P(H)]),
    "luigi_cluster_set_faults": (S, [H, c_double, c_double, c_double, c_uint32]),
    "luigi_cluster_partition": (S, [H, P(c_uint32), c_size_t]),
    "luigi_cluster_heal": (S, [H]),
    "luigi_cluster_run": (S, [H, c_uint64]),
    "luigi_cluster_run_until_converged": (S, [H, c_uint64, P(c_uint64)]),
    "luigi_cluster_converged": (S, [H, P(c_int)]),
    "luigi_cluster_get_stats": (S, [H, P(ClusterStats)]),
}

for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes

# ------------------------------------------------------------------ helpers


def message() -> str:
    raw: bytes | None = lib.luigi_last_error_message()
    assert raw is not None
    return raw.decode("utf-8")


def name_of(status: int) -> str:
    raw: bytes = lib.luigi_status_name(status)
    return raw.decode()


def ok(status: int) -> None:
    """Asserts a call succeeded, showing the library's own explanation if not."""
    assert status == OK, f"{name_of(status)}: {message()}"


def fails(status: int, expected: int) -> str:
    """Asserts a call failed with exactly `expected` and left a message."""
    assert status == expected, f"got {name_of(status)}, expected {name_of(expected)}: {message()}"
    text = message()
    assert text, f"{name_of(status)} came with an empty luigi_last_error_message()"
    return text


def new(ctor: Callable[..., int], *args: Any) -> int:
    out = H()
    ok(ctor(*args, byref(out)))
    assert out.value
    return out.value


def k(text: str) -> tuple[bytes, int]:
    raw = text.encode()
    return raw, len(raw)


def take(buf: Buffer) -> bytes:
    """Copies a library-owned buffer into Python and releases it."""
    data = ctypes.string_at(buf.data, buf.len) if buf.len else b""
    lib.luigi_buffer_free(byref(buf))
    assert not buf.data and buf.len == 0  # freeing zeroes it
    return data


def clock_entries(clock: int) -> dict[int, int]:
    count = c_size_t()
    status = lib.luigi_clock_entries(clock, None, None, 0, byref(count))
    assert status in (OK, ERR_BUFFER_TOO_SMALL)
    n = count.value
    nodes = (c_uint64 * max(n, 1))()
    counters = (c_uint64 * max(n, 1))()
    ok(lib.luigi_clock_entries(clock, nodes, counters, n, byref(count)))
    return {nodes[i]: counters[i] for i in range(count.value)}


def commit(replica: int, build: Callable[[int], None]) -> int:
    txn = new(lib.luigi_replica_begin, replica)
    try:
        build(txn)
        return new(lib.luigi_txn_commit, txn)
    finally:
        lib.luigi_txn_free(txn)


def value(replica: int, key: str) -> Any:
    v = Value()
    ok(lib.luigi_replica_value(replica, *k(key), byref(v)))
    if v.kind == KIND_NONE:
        return None
    if v.kind == KIND_COUNTER:
        return (v.counter_hi << 64) | v.counter_lo  # Python ints are unbounded
    if v.kind in (KIND_MAX, KIND_MIN):
        return v.int_value if v.number_type == NUMBER_INT else v.float_value
    assert v.kind == KIND_SET
    buf = Buffer()
    ok(lib.luigi_replica_set_elements(replica, *k(key), byref(buf)))
    elements = parse_elements(take(buf))
    assert len(elements) == v.set_size
    return elements


def parse_elements(raw: bytes) -> list[Any]:
    out: list[Any] = []
    pos = 0
    while pos < len(raw):
        tag = raw[pos]
        pos += 1
        if tag == ELEMENT_INT:
            out.append(struct.unpack_from("<q", raw, pos)[0])
            pos += 8
        else:
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            chunk = raw[pos : pos + n]
            pos += n
            out.append(chunk.decode() if tag == ELEMENT_STR else chunk)
    return out


def keys(replica: int) -> list[str]:
    buf = Buffer()
    ok(lib.luigi_replica_keys(replica, byref(buf)))
    raw = take(buf)
    out, pos = [], 0
    while pos < len(raw):
        (n,) = struct.unpack_from("<I", raw, pos)
        out.append(raw[pos + 4 : pos + 4 + n].decode())
        pos += 4 + n
    return out


def encode_update(update: int) -> bytes:
    buf = Buffer()
    ok(lib.luigi_update_encode(update, byref(buf)))
    return take(buf)


def decode_update(data: bytes) -> int:
    return new(lib.luigi_update_decode, data, len(data))


@pytest.fixture
def replicas() -> Iterator[tuple[int, int]]:
    a = new(lib.luigi_replica_new, 1)
    b = new(lib.luigi_replica_new, 2)
    yield a, b
    lib.luigi_replica_free(a)
    lib.luigi_replica_free(b)


def make_cluster(nodes: int, seed: int = 1, **fields: Any) -> int:
    options = ClusterOptions()
    lib.luigi_cluster_options_init(byref(options))
    options.nodes = nodes
    options.seed = seed
    for field, v in fields.items():
        setattr(options, field, v)
    return new(lib.luigi_cluster_new, byref(options))


def stats(cluster: int) -> ClusterStats:
    s = ClusterStats()
    s.version = 1
    ok(lib.luigi_cluster_get_stats(cluster, byref(s)))
    return s


# -------------------------------------------------------------------- tests


def test_version() -> None:
    number = lib.luigi_version_number()
    text = lib.luigi_version_string().decode()
    assert text == f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    assert lib.luigi_abi_version() == 1


def test_status_names() -> None:
    assert name_of(OK) == "LUIGI_OK"
    assert name_of(ERR_DECODE) == "LUIGI_ERR_DECODE"
    assert name_of(ERR_NOT_CONVERGED) == "LUIGI_ERR_NOT_CONVERGED"
    assert name_of(12345)  # unknown codes still get a name


def test_clock_operations() -> None:
    a = new(lib.luigi_clock_new)
    b = new(lib.luigi_clock_new)
    try:
        counter = c_uint64()
        ok(lib.luigi_clock_tick(a, 1, byref(counter)))
        ok(lib.luigi_clock_tick(a, 1, byref(counter)))
        assert counter.value == 2
        ok(lib.luigi_clock_set(b, 2, 5))
        order = c_int()
        ok(lib.luigi_clock_compare(a, b, byref(order)))
        assert order.value == ORDER_CONCURRENT

        merged = new(lib.luigi_clock_copy, a)
        ok(lib.luigi_clock_merge(merged, b))
        assert clock_entries(merged) == {1: 2, 2: 5}
        ok(lib.luigi_clock_compare(a, merged, byref(order)))
        assert order.value == ORDER_BEFORE
        ok(lib.luigi_clock_compare(merged, b, byref(order)))
        assert order.value == ORDER_AFTER

        # 2^64 - 1 survives the trip through uint64 and the codec.
        ok(lib.luigi_clock_set(merged, 2**64 - 1, 2**64 - 1))
        length = c_size_t()
        ok(lib.luigi_clock_len(merged, byref(length)))
        assert length.value == 3
        buf = Buffer()
        ok(lib.luigi_clock_encode(merged, byref(buf)))
        raw = take(buf)
        decoded = new(lib.luigi_clock_decode, raw, len(raw))
        ok(lib.luigi_clock_compare(merged, decoded, byref(order)))
        assert order.value == ORDER_EQUAL
        assert clock_entries(decoded)[2**64 - 1] == 2**64 - 1

        # Too-small arrays report the size needed.
        needed = c_size_t()
        nodes = (c_uint64 * 1)()
        counters = (c_uint64 * 1)()
        fails(
            lib.luigi_clock_entries(decoded, nodes, counters, 1, byref(needed)),
            ERR_BUFFER_TOO_SMALL,
        )
        assert needed.value == 3
        # The counter at 2^64 - 1 cannot tick.
        fails(lib.luigi_clock_tick(decoded, 2**64 - 1, byref(counter)), ERR_OVERFLOW)
        lib.luigi_clock_free(decoded)
        lib.luigi_clock_free(merged)
    finally:
        lib.luigi_clock_free(a)
        lib.luigi_clock_free(b)


def test_replica_commit_encode_decode_apply(replicas: tuple[int, int]) -> None:
    alice, bob = replicas
    node = c_uint64()
    ok(lib.luigi_replica_node_id(alice, byref(node)))
    assert node.value == 1

    def alice_ops(txn: int) -> None:
        ok(lib.luigi_txn_add(txn, *k("visits"), 5))
        ok(lib.luigi_txn_add(txn, *k("big"), 2**63 - 1))
        ok(lib.luigi_txn_max_int(txn, *k("best"), 42))
        ok(lib.luigi_txn_min_float(txn, *k("low"), 1.5))
        ok(lib.luigi_txn_union_str(txn, *k("tags"), *k("réd")))
        ok(lib.luigi_txn_union_int(txn, *k("tags"), -7))
        ok(lib.luigi_txn_union_bytes(txn, *k("tags"), b"\x00\xff", 2))
        count = c_size_t()
        ok(lib.luigi_txn_op_count(txn, byref(count)))
        assert count.value == 7

    def bob_ops(txn: int) -> None:
        ok(lib.luigi_txn_add(txn, *k("visits"), -2))
        ok(lib.luigi_txn_add(txn, *k("big"), 2**63 - 1))
        ok(lib.luigi_txn_max_float(txn, *k("best"), 42.5))
        ok(lib.luigi_txn_min_float(txn, *k("low"), -math.inf))
        ok(lib.luigi_txn_union_str(txn, *k("tags"), *k("green")))

    from_alice = commit(alice, alice_ops)
    from_bob = commit(bob, bob_ops)
    try:
        origin, seq = c_uint64(), c_uint64()
        ok(lib.luigi_update_origin(from_alice, byref(origin)))
        ok(lib.luigi_update_seq(from_alice, byref(seq)))
        assert (origin.value, seq.value) == (1, 1)
        update_clock = new(lib.luigi_update_clock, from_alice)
        assert clock_entries(update_clock) == {1: 1}
        lib.luigi_clock_free(update_clock)

        # Ship both ways as bytes; a second delivery is a duplicate.
        is_new = c_int()
        for update, target, expect_new in ((from_alice, bob, 1), (from_alice, bob, 0), (from_bob, alice, 1)):
            received = decode_update(encode_update(update))
            ok(lib.luigi_replica_apply(target, received, byref(is_new)))
            assert is_new.value == expect_new
            lib.luigi_update_free(received)

        for r in (alice, bob):
            assert keys(r) == ["best", "big", "low", "tags", "visits"]
            assert value(r, "visits") == 3
            assert value(r, "big") == 2 * (2**63 - 1)  # needs the 128-bit total
            assert value(r, "best") == 42.5
            assert value(r, "low") == -math.inf
            tags = value(r, "tags")
            assert sorted(map(repr, tags)) == sorted(map(repr, [-7, "réd", "green", b"\x00\xff"]))
            assert value(r, "absent") is None
            pending = c_size_t()
            ok(lib.luigi_replica_pending(r, byref(pending)))
            assert pending.value == 0
        vv = new(lib.luigi_replica_clock, bob)
        assert clock_entries(vv) == {1: 1, 2: 1}
        lib.luigi_clock_free(vv)
    finally:
        lib.luigi_update_free(from_alice)
        lib.luigi_update_free(from_bob)


def test_causal_order_and_delta(replicas: tuple[int, int]) -> None:
    alice, bob = replicas
    first = commit(alice, lambda t: ok(lib.luigi_txn_add(t, *k("n"), 1)))
    second = commit(alice, lambda t: ok(lib.luigi_txn_add(t, *k("n"), 10)))
    is_new, pending = c_int(), c_size_t()
    # Out of order: the second waits in pending for the first.
    ok(lib.luigi_replica_apply(bob, second, byref(is_new)))
    assert is_new.value == 1
    ok(lib.luigi_replica_pending(bob, byref(pending)))
    assert pending.value == 1 and value(bob, "n") is None
    ok(lib.luigi_replica_apply(bob, first, byref(is_new)))
    ok(lib.luigi_replica_pending(bob, byref(pending)))
    assert pending.value == 0 and value(bob, "n") == 11

    # Delta sync: only what the other side's clock lacks.
    carol = new(lib.luigi_replica_new, 3)
    carol_clock = new(lib.luigi_replica_clock, carol)
    delta = new(lib.luigi_replica_delta_since, alice, carol_clock)
    length, applied = c_size_t(), c_size_t()
    ok(lib.luigi_update_list_len(delta, byref(length)))
    assert length.value == 2
    ok(lib.luigi_replica_apply_list(carol, delta, byref(applied)))
    assert applied.value == 2 and value(carol, "n") == 11
    item = new(lib.luigi_update_list_get, delta, 1)
    seq = c_uint64()
    ok(lib.luigi_update_seq(item, byref(seq)))
    assert seq.value == 2
    out = H()
    fails(lib.luigi_update_list_get(delta, 2, byref(out)), ERR_OUT_OF_RANGE)

    own = new(lib.luigi_update_list_new)
    ok(lib.luigi_update_list_push(own, first))
    ok(lib.luigi_update_list_push(own, second))
    ok(lib.luigi_replica_apply_list(carol, own, byref(applied)))
    assert applied.value == 0  # all duplicates

    for h in (item,):
        lib.luigi_update_free(h)
    lib.luigi_update_list_free(own)
    lib.luigi_update_list_free(delta)
    lib.luigi_clock_free(carol_clock)
    lib.luigi_replica_free(carol)
    lib.luigi_update_free(first)
    lib.luigi_update_free(second)


def test_cluster_run() -> None:
    cluster = make_cluster(6, seed=42, fanout=2)
    try:
        size = c_size_t()
        ok(lib.luigi_cluster_size(cluster, byref(size)))
        assert size.value == 6
        groups = (c_uint32 * 6)(0, 0, 0, 1, 1, 1)
        ok(lib.luigi_cluster_partition(cluster, groups, 6))
        for i in range(6):
            replica = new(lib.luigi_cluster_replica, cluster, i)

            def hits(txn: int, delta: int = i + 1) -> None:
                ok(lib.luigi_txn_add(txn, *k("hits"), delta))

            update = commit(replica, hits)
            lib.luigi_update_free(update)
            lib.luigi_replica_free(replica)
        ok(lib.luigi_cluster_run(cluster, 10))
        converged = c_int()
        ok(lib.luigi_cluster_converged(cluster, byref(converged)))
        assert converged.value == 0
        rounds = c_uint64()
        fails(lib.luigi_cluster_run_until_converged(cluster, 5, byref(rounds)), ERR_NOT_CONVERGED)

        ok(lib.luigi_cluster_set_faults(cluster, 0.2, 0.1, 0.1, 2))
        ok(lib.luigi_cluster_heal(cluster))
        ok(lib.luigi_cluster_run_until_converged(cluster, 2000, byref(rounds)))
        assert rounds.value >= 1
        ok(lib.luigi_cluster_converged(cluster, byref(converged)))
        assert converged.value == 1
        s = stats(cluster)
        assert s.rounds == 15 + rounds.value
        assert s.messages > 0 and s.bytes > 0 and s.updates_shipped >= 6 * 5
        last = new(lib.luigi_cluster_replica, cluster, 5)
    finally:
        lib.luigi_cluster_free(cluster)
    assert value(last, "hits") == 21  # the handle outlives its cluster
    lib.luigi_replica_free(last)


def test_error_statuses_with_messages(replicas: tuple[int, int]) -> None:
    alice, bob = replicas
    txn = new(lib.luigi_replica_begin, alice)
    fails(lib.luigi_txn_max_float(txn, *k("x"), math.nan), ERR_INVALID_ARGUMENT)
    fails(lib.luigi_txn_add(txn, b"\xff\xfe", 2, 1), ERR_INVALID_ARGUMENT)
    fails(lib.luigi_txn_union_str(txn, *k("s"), b"\xc0\xaf", 2), ERR_INVALID_ARGUMENT)
    fails(lib.luigi_txn_set_float(txn, *k("x"), math.nan), ERR_INVALID_ARGUMENT)
    ok(lib.luigi_txn_add(txn, *k("c"), 1))
    ok(lib.luigi_txn_union_int(txn, *k("c"), 1))  # a conflict inside the txn ...
    out = H()
    fails(lib.luigi_txn_commit(txn, byref(out)), ERR_TYPE_CONFLICT)  # ... found by commit
    assert not out.value
    lib.luigi_txn_free(txn)
    assert keys(alice) == []  # nothing changed

    update = commit(alice, lambda t: ok(lib.luigi_txn_add(t, *k("c"), 2**63 - 1)))
    txn = new(lib.luigi_replica_begin, alice)
    ok(lib.luigi_txn_add(txn, *k("c"), 1))
    fails(lib.luigi_txn_commit(txn, byref(out)), ERR_OVERFLOW)
    lib.luigi_txn_free(txn)

    txn = new(lib.luigi_replica_begin, alice)
    ok(lib.luigi_txn_set_int(txn, *k("r"), 1))  # buffered, but only the log can commit it
    fails(lib.luigi_txn_commit(txn, byref(out)), ERR_NOT_ALGEBRAIC)
    lib.luigi_txn_free(txn)

    txn = new(lib.luigi_replica_begin, alice)
    ok(lib.luigi_txn_add(txn, *k("d"), 1))
    done = new(lib.luigi_txn_commit, txn)
    fails(lib.luigi_txn_add(txn, *k("d"), 1), ERR_STATE)
    lib.luigi_txn_free(txn)
    lib.luigi_update_free(done)

    # Decoding: garbage, truncation, a flipped bit.
    raw = encode_update(update)
    for bad in (b"", b"garbage", raw[:-1], raw[: len(raw) // 2], raw[:5] + bytes([raw[5] ^ 1]) + raw[6:]):
        fails(lib.luigi_update_decode(bad, len(bad), byref(out)), ERR_DECODE)
        fails(lib.luigi_clock_decode(bad, len(bad), byref(out)), ERR_DECODE)

    # Freed and wrong-type handles.
    lib.luigi_update_free(update)
    seq = c_uint64()
    fails(lib.luigi_update_seq(update, byref(seq)), ERR_INVALID_HANDLE)
    lib.luigi_update_free(update)  # double free: a no-op
    fails(lib.luigi_update_seq(bob, byref(seq)), ERR_INVALID_HANDLE)  # a replica, not an update
    fails(lib.luigi_clock_merge(alice, alice), ERR_INVALID_HANDLE)
    fails(lib.luigi_replica_node_id(0x12345678, byref(seq)), ERR_INVALID_HANDLE)
    fails(lib.luigi_replica_node_id(None, byref(seq)), ERR_INVALID_ARGUMENT)  # NULL
    fails(lib.luigi_replica_node_id(alice, None), ERR_INVALID_ARGUMENT)

    # Cluster options out of range.
    options = ClusterOptions()
    lib.luigi_cluster_options_init(byref(options))
    for field, bad_value in (("version", 0), ("nodes", 0), ("fanout", 0), ("drop_rate", 1.0),
                             ("duplicate_rate", -0.5), ("reorder_rate", math.nan)):
        o = ClusterOptions.from_buffer_copy(options)
        o.nodes = 3
        setattr(o, field, bad_value)
        fails(lib.luigi_cluster_new(byref(o), byref(out)), ERR_INVALID_ARGUMENT)
    cluster = make_cluster(2)
    fails(lib.luigi_cluster_replica(cluster, 2, byref(out)), ERR_OUT_OF_RANGE)
    fails(lib.luigi_cluster_set_faults(cluster, 1.0, 0.0, 0.0, 0), ERR_INVALID_ARGUMENT)
    s = ClusterStats()  # version left 0
    fails(lib.luigi_cluster_get_stats(cluster, byref(s)), ERR_INVALID_ARGUMENT)
    lib.luigi_cluster_free(cluster)


def test_error_message_is_per_thread() -> None:
    fails(lib.luigi_clock_new(None), ERR_INVALID_ARGUMENT)
    here = message()
    seen: list[str] = []

    def other() -> None:
        seen.append(message())

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [""]  # a fresh thread does not see this thread's failure
    assert message() == here


def test_distinct_handles_from_many_threads() -> None:
    """ctypes drops the GIL around each call, so these really run in parallel."""
    results: dict[int, int] = {}
    errors: list[str] = []

    def work(node: int) -> None:
        try:
            replica = new(lib.luigi_replica_new, node)
            for i in range(300):
                update = commit(replica, lambda t: ok(lib.luigi_txn_add(t, *k("n"), 1)))
                raw = encode_update(update)
                lib.luigi_update_free(update)
                lib.luigi_update_free(decode_update(raw))
            results[node] = value(replica, "n")
            lib.luigi_replica_free(replica)
        except AssertionError as e:  # pragma: no cover - reported below
            errors.append(str(e))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == {n: 300 for n in range(8)}
