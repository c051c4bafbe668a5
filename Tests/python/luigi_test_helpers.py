"""Helpers shared by the luigi_node tests (not a test module)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Union

import luigi_node as ln

Element = Union[str, bytes, int]
Value = Union[int, float, frozenset[Element], None]
# A value in a form where equality is exact: floats by their bits (so -0.0 and
# 0.0 differ, and 1 differs from 1.0), ints tagged as ints.
Canonical = Union[tuple[str, int], tuple[str, bytes], tuple[str, frozenset[Element]], None]


def canonical(value: Value) -> Canonical:
    if value is None:
        return None
    if isinstance(value, frozenset):
        return ("set", value)
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    return ("int", value)


Snapshot = tuple[
    tuple[tuple[str, Canonical], ...], tuple[tuple[int, int], ...], int, int
]


def snapshot(replica: ln.Replica) -> Snapshot:
    """Everything observable about a replica's state, exactly comparable."""
    values = tuple((key, canonical(replica.value(key))) for key in replica.keys())
    return (values, tuple(replica.clock.items()), replica.pending, replica.conflicts)


def deliver_all(replica: ln.Replica, updates: Iterable[ln.Update]) -> None:
    for update in updates:
        replica.apply(update)


def assert_all_equal(replicas: Sequence[ln.Replica], context: str = "") -> None:
    first = snapshot(replicas[0])
    for other in replicas[1:]:
        assert snapshot(other) == first, (
            f"replica {other.node_id} differs from replica {replicas[0].node_id} {context}"
        )


def commit_add(replica: ln.Replica, key: str, delta: int) -> ln.Update:
    tx = replica.transaction()
    tx.add(key, delta)
    return tx.commit()
