"""Plain value types of the watermark-commit interfaces (ShardedCluster,
WatermarkCoordinator, WatermarkShard).

Defined here, in Python, so they are ordinary immutable values (named
tuples). The extension imports this module while it initialises
(``_luigi_module.c``) and constructs ``TxnId`` and ``TxnResult``
positionally (``_luigi_watermark.c``), so their field order is part of the
contract with the extension.
"""

from __future__ import annotations

from typing import Dict, Literal, NamedTuple, Optional, Tuple, Union

__all__ = ["TxnId", "TxnResult", "TxnOp", "TxnReads"]

# One op of a transaction, as submit() takes it: (kind, shard, key[, value]).
TxnOp = Union[
    Tuple[Literal["read"], int, str],
    Tuple[Literal["write", "add", "check"], int, str, int],
]

# What a transaction read, by (shard, key); None: the key was absent. A key
# read twice on one shard keeps its last read.
TxnReads = Dict[Tuple[int, str], Optional[int]]


class TxnId(NamedTuple):
    """A transaction's id: its coordinator, stream (worker) and sequence
    number. Retries reuse it."""

    coordinator: int
    worker: int
    seq: int


class TxnResult(NamedTuple):
    """An acknowledged transaction: committed (False: a check failed or an
    add overflowed, so nothing it wrote took effect), its agreed timestamp
    (microseconds) and what it read."""

    committed: bool
    ts: int
    reads: TxnReads
