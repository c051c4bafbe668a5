"""Plain value types of the Raft interfaces (RaftNode, RaftCluster).

The C extension builds these from what libluigi hands out; they are defined
here, in Python, so they are ordinary immutable values (frozen dataclasses).
``_luigi.c`` imports this module while it initialises and constructs both
classes positionally, so the field order below is part of the contract with
``_luigi.c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

__all__ = ["Entry", "RaftStatus"]


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
