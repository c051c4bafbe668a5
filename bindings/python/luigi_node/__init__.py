"""luigi_node: Python bindings for Luigi's coordination-free replicas, its
Raft replicated log, its watermark commit of multi-shard transactions, its
table log (versioned table metadata) and a client of a running luigi-node
cluster (Client).

The heavy lifting happens in libluigi.so (Swift, behind the C ABI in
``luigi.h``); ``luigi_node._luigi`` is a thin CPython extension over that
header and this package re-exports it. See docs/PYTHON_API.md.
"""

from __future__ import annotations

import enum
import os
from typing import Literal, Tuple, Union

__version__ = "0.1.0"

# One op of a replica-group transaction, as Client.commit() and
# Client.coordinate() take it: (kind, key, value). "set" (a register
# overwrite) is not algebraic: only coordinate() takes it.
ReplicaOp = Union[
    Tuple[Literal["add"], str, int],
    Tuple[Literal["max", "min", "set"], str, Union[int, float]],
    Tuple[Literal["union"], str, Union[str, bytes, int]],
]


class CausalOrder(enum.IntEnum):
    """How two vector clocks relate (values match ``luigi_causal_order``)."""

    EQUAL = 0
    BEFORE = 1  # a happened before b
    AFTER = 2  # b happened before a
    CONCURRENT = 3


# The extension looks up CausalOrder on this (partially initialised) module
# while it is being imported, so CausalOrder must be defined above this line.
from ._errors import (  # noqa: E402
    AuthError,
    ConflictError,
    DecodeError,
    InvalidHandleError,
    InvariantViolation,
    LuigiError,
    LuigiIndexError,
    LuigiIOError,
    LuigiOverflowError,
    LuigiTimeoutError,
    LuigiValueError,
    NotAlgebraicError,
    NotConvergedError,
    NotLinearizableError,
    TransactionStateError,
    TypeConflictError,
)
from ._raft import Entry, HardState, KVOperation, RaftStatus  # noqa: E402
from ._watermark import TxnId, TxnOp, TxnResult  # noqa: E402
from ._tablelog import CommitRequest, DataFile, TableVersion  # noqa: E402
from ._luigi import (  # noqa: E402
    REPLICA_GROUP_BASE,
    Client,
    RaftCluster,
    RaftNode,
    Ready,
    Replica,
    ShardedCluster,
    SimulatedCluster,
    TableLog,
    Transaction,
    Update,
    VectorClock,
    WatermarkCoordinator,
    WatermarkShard,
)

_HERE = os.path.dirname(os.path.abspath(__file__))


def library_path() -> str:
    """Path of the libluigi.so shipped inside this package."""
    return os.path.join(_HERE, "libluigi.so")


def include_dir() -> str:
    """Directory holding the luigi.h this package was built against."""
    return os.path.join(_HERE, "include")


__all__ = [
    "__version__",
    "library_path",
    "include_dir",
    "CausalOrder",
    "VectorClock",
    "Replica",
    "Transaction",
    "Update",
    "SimulatedCluster",
    "RaftNode",
    "Ready",
    "Entry",
    "HardState",
    "KVOperation",
    "RaftStatus",
    "RaftCluster",
    "ShardedCluster",
    "WatermarkCoordinator",
    "WatermarkShard",
    "TxnId",
    "TxnResult",
    "TxnOp",
    "TableLog",
    "DataFile",
    "TableVersion",
    "CommitRequest",
    "Client",
    "ReplicaOp",
    "REPLICA_GROUP_BASE",
    "LuigiError",
    "LuigiValueError",
    "InvalidHandleError",
    "DecodeError",
    "NotAlgebraicError",
    "TypeConflictError",
    "LuigiOverflowError",
    "TransactionStateError",
    "NotConvergedError",
    "LuigiIndexError",
    "LuigiIOError",
    "LuigiTimeoutError",
    "ConflictError",
    "AuthError",
    "NotLinearizableError",
    "InvariantViolation",
]
