"""Plain value types of the table log (``TableLog``, over a
``RaftCluster(state_machine="tables")``).

Defined here, in Python, so they are ordinary immutable values (frozen
dataclasses). The extension imports this module while it initialises
(``_luigi_module.c``); it reads the fields of ``DataFile`` and
``CommitRequest`` by name and constructs ``DataFile`` and ``TableVersion``
positionally (``_luigi_meta.c``), so their field order is part of the
contract with the extension. The byte layouts they come from are documented
in luigi.h (``luigi_meta_files``, ``luigi_meta_versions``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

__all__ = ["DataFile", "TableVersion", "CommitRequest"]


@dataclass(frozen=True)
class DataFile:
    """One data file of a table.

    ``path`` names it (1..4096 bytes of UTF-8, no NUL; unique among a
    version's live files). ``rows`` and ``size`` (bytes) are at most
    2**63-1. ``partition`` is ``""`` when the table is not partitioned.
    ``min_stats``/``max_stats`` are opaque column statistics (at most 64 KiB
    each); ``None`` means absent, ``b""`` present and empty.
    """

    path: str
    rows: int
    size: int
    partition: str = ""
    min_stats: Optional[bytes] = None
    max_stats: Optional[bytes] = None


@dataclass(frozen=True)
class TableVersion:
    """One readable version of a table: the transaction that made it (``""``
    for version 0, the table's creation) and how many files it added and
    removed."""

    __slots__ = ("version", "txn_id", "added", "removed")

    version: int
    txn_id: str
    added: int
    removed: int


@dataclass(frozen=True)
class CommitRequest:
    """One commit for ``TableLog.commit_many`` (the arguments of
    ``TableLog.commit``). ``adds`` and ``removes`` are stored as tuples."""

    table: str
    base_version: int
    txn_id: str
    adds: Sequence[DataFile] = ()
    removes: Sequence[str] = ()

    def __post_init__(self) -> None:
        if isinstance(self.removes, (str, bytes)):
            raise TypeError("removes must be a sequence of paths (str), not a single "
                            + type(self.removes).__name__)
        object.__setattr__(self, "adds", tuple(self.adds))
        object.__setattr__(self, "removes", tuple(self.removes))
