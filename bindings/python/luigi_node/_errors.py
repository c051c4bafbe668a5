"""The exception hierarchy of luigi_node.

Every failure reported by libluigi (a ``luigi_status`` other than
``LUIGI_OK``) is raised as one of these classes; the C extension maps the
status code to the class in exactly one place (``raise_status`` in
``_luigi_common.c``). Where a failure has a natural built-in counterpart the
class derives from it too, so ``except ValueError`` and friends keep working.
"""

from __future__ import annotations

from typing import Optional

__all__ = [
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


class LuigiError(Exception):
    """Base class of every error raised by luigi_node (LUIGI_ERR_INTERNAL,
    LUIGI_ERR_BUFFER_TOO_SMALL and unknown codes are raised as this class)."""


class LuigiValueError(LuigiError, ValueError):
    """LUIGI_ERR_INVALID_ARGUMENT: bad argument (NaN, bad option, bad UTF-8)."""


class InvalidHandleError(LuigiError):
    """LUIGI_ERR_INVALID_HANDLE: a freed, unknown or wrong-type handle."""


class DecodeError(LuigiError, ValueError):
    """LUIGI_ERR_DECODE: malformed, truncated or corrupted bytes."""


class NotAlgebraicError(LuigiError, TypeError):
    """LUIGI_ERR_NOT_ALGEBRAIC: the operation needs coordination."""


class TypeConflictError(LuigiError, TypeError):
    """LUIGI_ERR_TYPE_CONFLICT: the operation's type differs from the key's."""


class LuigiOverflowError(LuigiError, OverflowError):
    """LUIGI_ERR_OVERFLOW, or a Python int that does not fit its C type."""


class TransactionStateError(LuigiError, RuntimeError):
    """LUIGI_ERR_STATE: e.g. using a transaction after commit or discard."""


class NotConvergedError(LuigiError):
    """LUIGI_ERR_NOT_CONVERGED: a simulation did not converge in time."""


class LuigiIndexError(LuigiError, IndexError):
    """LUIGI_ERR_OUT_OF_RANGE: an index outside [0, count)."""


class LuigiIOError(LuigiError, OSError):
    """LUIGI_ERR_IO: a disk failure (ENOSPC, EIO) or corrupt files, e.g. in a
    RaftNode's storage directory."""


class LuigiTimeoutError(LuigiError, TimeoutError):
    """LUIGI_ERR_TIMEOUT: gave up waiting (e.g. RaftCluster.put); the outcome
    of the operation is unknown: it may still take effect later."""


class ConflictError(LuigiError):
    """LUIGI_ERR_CONFLICT: lost to another write (TableLog: a stale base
    version, or a transaction id already committed with other files; a
    table created again with another schema or retention). ``latest`` is
    the table's latest version, the base to retry on, when the call reports
    it (commits), else ``None``."""

    latest: Optional[int]

    def __init__(self, message: str = "", latest: Optional[int] = None) -> None:
        super().__init__(message, latest)  # args stay (message, latest): pickles
        self.message = message
        self.latest = latest

    def __str__(self) -> str:
        return self.message


class AuthError(LuigiError):
    """LUIGI_ERR_AUTH: the nodes of a luigi-node cluster refused the
    client's credentials (a wrong cluster secret or cluster id), or a node
    could not prove that it knows the secret. Retrying will not help."""


class NotLinearizableError(LuigiError):
    """RaftCluster.check_history(): the recorded client history has no
    linearization (or the checker could not decide); the message explains."""


class InvariantViolation(LuigiError):
    """ShardedCluster.check(): the run broke an invariant of its protocol.
    ``invariant`` names it, ``detail`` gives the evidence."""

    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(invariant, detail)  # args stay (invariant, detail): pickles
        self.invariant = invariant
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"
