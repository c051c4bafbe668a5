"""Plain value types of the Raft interfaces (RaftNode, RaftCluster).

The C extension builds these from what libluigi hands out; they are defined
here, in Python, so they are ordinary immutable values (frozen dataclasses).
The extension imports this module while it initialises (``_luigi_module.c``)
and constructs ``Entry``, ``HardState`` and ``RaftStatus`` positionally
(``_luigi_raft.c``), so their field order is part of the contract with the
extension; it hands ``decode_history`` the bytes of
``luigi_raft_cluster_history`` (``_luigi_raft_cluster.c``; layout in luigi.h).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal, Optional, Union

__all__ = ["Entry", "HardState", "KVOperation", "RaftStatus"]


@dataclass(frozen=True)
class Entry:
    """One committed log entry, to apply to the state machine in order.

    ``kind`` is ``"normal"`` (``data`` is what was proposed; an empty
    ``data`` is the no-op a new leader appends) or ``"conf_change"`` (a
    membership change, already applied to the Raft configuration by
    ``RaftNode.advance``).
    """

    __slots__ = ("index", "term", "kind", "data")

    index: int
    term: int
    kind: Literal["normal", "conf_change"]
    data: bytes


@dataclass(frozen=True)
class HardState:
    """The term, vote (``None``: none in this term) and commit index a node
    persisted: ``Ready.hard_state``."""

    __slots__ = ("term", "vote", "commit")

    term: int
    vote: Optional[int]
    commit: int


@dataclass(frozen=True)
class RaftStatus:
    """A snapshot of one node's Raft state.

    ``vote`` and ``leader`` are ``None`` when the node voted for nobody in
    this term / knows no leader. ``voters`` and ``learners`` count the
    members of the current configuration.
    """

    __slots__ = (
        "role", "id", "term", "vote", "leader", "commit", "applied",
        "first_index", "last_index", "voters", "learners",
    )

    role: Literal["follower", "pre_candidate", "candidate", "leader"]
    id: int
    term: int
    vote: Optional[int]
    leader: Optional[int]
    commit: int
    applied: int
    first_index: int
    last_index: int
    voters: int
    learners: int

    @property
    def is_leader(self) -> bool:
        return self.role == "leader"


@dataclass(frozen=True)
class KVOperation:
    """One client operation of ``RaftCluster``'s recorded history.

    ``response`` is ``None`` when the client got no answer (a timeout): the
    operation may or may not have taken effect. ``value`` is what a put or
    cas writes; ``expected`` what a cas compares with (``None``: absent).
    ``result``: a completed get's value (``None``: absent), a completed
    cas's ``True``/``False``; ``None`` for puts, deletes and unanswered
    operations. Times are the cluster's virtual ticks.
    """

    __slots__ = ("client", "kind", "key", "value", "expected", "invoke", "response", "result")

    client: int
    kind: Literal["put", "get", "delete", "cas"]
    key: str
    value: Optional[bytes]
    expected: Optional[bytes]
    invoke: int
    response: Optional[int]
    result: Union[bytes, bool, None]


_KINDS: tuple[Literal["put", "get", "delete", "cas"], ...] = ("put", "get", "delete", "cas")
_COMPLETED, _FOUND, _SWAPPED, _EXPECTED = 1, 2, 4, 8
_HEAD = struct.Struct("<BBQQQ")


def decode_history(data: bytes) -> list[KVOperation]:
    """The records of ``luigi_raft_cluster_history`` as KVOperations."""
    ops: list[KVOperation] = []
    view = memoryview(data)
    at = 0

    def field() -> bytes:
        nonlocal at
        (n,) = struct.unpack_from("<I", view, at)
        at += 4
        if at + n > len(view):
            raise ValueError("truncated history record")
        out = bytes(view[at : at + n])
        at += n
        return out

    while at < len(view):
        kind_code, flags, client, invoke, response = _HEAD.unpack_from(view, at)
        at += _HEAD.size
        kind = _KINDS[kind_code]
        key, value, expected = field().decode(), field(), field()
        completed = bool(flags & _COMPLETED)
        result: Union[bytes, bool, None] = None
        if completed and kind == "get":
            result = value if flags & _FOUND else None
        elif completed and kind == "cas":
            result = bool(flags & _SWAPPED)
        ops.append(KVOperation(
            client=client,
            kind=kind,
            key=key,
            value=value if kind in ("put", "cas") else None,
            expected=expected if kind == "cas" and flags & _EXPECTED else None,
            invoke=invoke,
            response=response if completed else None,
            result=result,
        ))
    return ops
