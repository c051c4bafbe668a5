"""The package as installed: layout, version, exceptions."""

from __future__ import annotations

import os
import sys
import sysconfig

import pytest

import luigi_node as ln


def test_imported_from_an_installation_not_the_source_tree() -> None:
    here = os.path.dirname(os.path.abspath(ln.__file__))
    assert os.sep + os.path.join("bindings", "python") not in here
    purelib = os.path.realpath(sysconfig.get_paths()["purelib"])
    platlib = os.path.realpath(sysconfig.get_paths()["platlib"])
    assert os.path.realpath(here).startswith((purelib, platlib)), (here, sys.path)


def test_version_and_shipped_files() -> None:
    assert ln.__version__ == "0.1.0"
    assert ln._luigi.LIBRARY_VERSION == ln.__version__
    assert os.path.isfile(ln.library_path())
    assert os.path.basename(ln.library_path()) == "libluigi.so"
    header = os.path.join(ln.include_dir(), "luigi.h")
    assert os.path.isfile(header)
    with open(header, encoding="utf-8") as f:
        assert "luigi_status" in f.read()


def test_extension_uses_the_shipped_library() -> None:
    maps = "/proc/self/maps"
    if not os.path.exists(maps):
        pytest.skip("needs /proc")
    with open(maps, encoding="utf-8") as f:
        loaded = {line.split()[-1] for line in f if line.rstrip().endswith("libluigi.so")}
    assert loaded == {os.path.realpath(ln.library_path())}


def test_py_typed_and_stubs_ship() -> None:
    here = os.path.dirname(ln.__file__)
    assert os.path.isfile(os.path.join(here, "py.typed"))
    assert os.path.isfile(os.path.join(here, "_luigi.pyi"))


@pytest.mark.parametrize(
    "cls, bases",
    [
        (ln.LuigiValueError, (ValueError,)),
        (ln.InvalidHandleError, ()),
        (ln.DecodeError, (ValueError,)),
        (ln.NotAlgebraicError, (TypeError,)),
        (ln.TypeConflictError, (TypeError,)),
        (ln.LuigiOverflowError, (OverflowError,)),
        (ln.TransactionStateError, (RuntimeError,)),
        (ln.NotConvergedError, ()),
        (ln.LuigiIndexError, (IndexError,)),
        (ln.InvariantViolation, ()),
        (ln.ConflictError, ()),
    ],
)
def test_exception_hierarchy(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    assert issubclass(cls, ln.LuigiError)
    assert issubclass(ln.LuigiError, Exception)
    for base in bases:
        assert issubclass(cls, base)


def test_types_are_not_constructible_where_they_should_not_be() -> None:
    with pytest.raises(TypeError):
        ln.Update()
    with pytest.raises(TypeError):
        ln.Transaction()


def test_types_are_final() -> None:
    for cls in (
        ln.VectorClock,
        ln.Replica,
        ln.Transaction,
        ln.Update,
        ln.SimulatedCluster,
        ln.ShardedCluster,
        ln.WatermarkCoordinator,
        ln.WatermarkShard,
        ln.TableLog,
    ):
        with pytest.raises(TypeError):
            type("Sub", (cls,), {})


def test_causal_order_values() -> None:
    assert [int(o) for o in ln.CausalOrder] == [0, 1, 2, 3]
    assert [o.name for o in ln.CausalOrder] == ["EQUAL", "BEFORE", "AFTER", "CONCURRENT"]
