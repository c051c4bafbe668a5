"""TableLog: versioned table metadata on a RaftCluster(state_machine="tables").

The contract is luigi.h's ("table log"): a commit is checked in a fixed
order (1. the table exists, 2. a known transaction id with the same files
returns its original version and with other files is a conflict, 3. the base
is the latest, 4. removed files are live and added ones are not unless also
removed, 5. the new version is latest + 1), a refused commit changes nothing,
versions stay readable up to the table's retention. These tests check the
binding against it, and against a pure-Python model that keeps every
version's files. Everything is seeded and runs on the cluster's virtual time.
"""

from __future__ import annotations

import pickle
import random
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luigi_node as ln
from luigi_node import CommitRequest, ConflictError, DataFile, TableLog, TableVersion



def new_log(
    seed: int = 0,
    *,
    data_dir: Optional[Path] = None,
    max_delay: int = 0,
    lossy: bool = False,
) -> TableLog:
    rate = 0.05 if lossy else 0.0
    cluster = ln.RaftCluster(seed=seed, state_machine="tables", data_dir=data_dir,
                             drop=rate, duplicate=rate, reorder=rate, max_delay=max_delay)
    return TableLog(cluster)


def f(
    path: str,
    rows: int = 1,
    size: int = 10,
    partition: str = "",
    min_stats: Optional[bytes] = None,
    max_stats: Optional[bytes] = None,
) -> DataFile:
    return DataFile(path, rows, size, partition, min_stats, max_stats)


def paths(files: Iterable[DataFile]) -> list[str]:
    return [x.path for x in files]


def state(t: TableLog, table: str = "t") -> tuple[list[TableVersion], list[list[DataFile]]]:
    """Everything readable about a table: its versions and each one's files."""
    versions = t.versions(table)
    return versions, [t.files(table, v.version) for v in versions]


# ---------------------------------------------------------------- the API


def test_the_cluster_and_its_state_machine() -> None:
    kv = ln.RaftCluster(seed=1)
    tables = ln.RaftCluster(seed=1, state_machine="tables")
    assert kv.state_machine == "kv" and tables.state_machine == "tables"
    with pytest.raises(AttributeError):
        tables.state_machine = "kv"  # type: ignore[misc]
    with pytest.raises(ln.LuigiValueError, match="state_machine"):
        ln.RaftCluster(state_machine="sql")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ln.RaftCluster(state_machine=1)  # type: ignore[arg-type]
    with pytest.raises(ln.TransactionStateError, match='state_machine="tables"'):
        TableLog(kv)
    with pytest.raises(TypeError):
        TableLog(object())  # type: ignore[arg-type]
    t = TableLog(tables)
    assert t.cluster is tables
    with pytest.raises(TypeError):
        type("Sub", (TableLog,), {})
    # Every RaftCluster method but the key-value ones works on a tables cluster.
    t.create_table("t")
    leader = tables.leader()
    assert leader is not None and tables.nodes() == [1, 2, 3]
    assert tables.status(leader).role == "leader"
    tables.tick(5)
    tables.stabilize()
    for call in (
        lambda: tables.put("k", b"v"),
        lambda: tables.get("k"),
        lambda: tables.delete("k"),
        lambda: tables.cas("k", None, b"v"),
    ):
        with pytest.raises(ln.TransactionStateError):
            call()
    # ...and the table log needs the tables machine on the C side too.
    assert t.latest("t") == 0


def test_values_and_errors() -> None:
    assert issubclass(ConflictError, ln.LuigiError)
    e = ConflictError("lost", 7)
    assert (e.latest, str(e)) == (7, "lost")
    back = pickle.loads(pickle.dumps(e))
    assert isinstance(back, ConflictError) and (back.latest, str(back)) == (7, "lost")
    assert ConflictError("x").latest is None
    d = DataFile("a", 1, 2)
    assert (d.partition, d.min_stats, d.max_stats) == ("", None, None)
    assert d == DataFile("a", 1, 2, "", None, None) and hash(d) == hash(DataFile("a", 1, 2))
    r = CommitRequest("t", 0, "x", [d], ["b"])
    assert r.adds == (d,) and r.removes == ("b",) and hash(r) == hash(CommitRequest("t", 0, "x", (d,), ("b",)))
    with pytest.raises(TypeError):
        CommitRequest("t", 0, "x", removes="abc")
    v = TableVersion(1, "x", 2, 0)
    with pytest.raises(AttributeError):
        v.version = 2  # type: ignore[misc]


def test_create_table_schema_and_retention() -> None:
    t = new_log(1)
    t.create_table("t", b"\x00schema\xff", retain=2)
    assert t.schema("t") == b"\x00schema\xff"
    assert t.latest("t") == 0
    assert t.versions("t") == [TableVersion(0, "", 0, 0)]
    assert t.files("t") == [] and t.files("t", 0) == []
    t.create_table("t", b"\x00schema\xff", retain=2)  # the same again: a no-op
    with pytest.raises(ConflictError) as other_schema:
        t.create_table("t", b"other", retain=2)
    assert other_schema.value.latest is None
    with pytest.raises(ConflictError):
        t.create_table("t", b"\x00schema\xff", retain=3)
    t.create_table("plain")
    assert t.schema("plain") == b""
    t.create_table("from bytearray", bytearray(b"abc"))
    assert t.schema("from bytearray") == b"abc"
    with pytest.raises(ln.LuigiValueError):
        t.schema("missing")
    assert t.versions("t") == [TableVersion(0, "", 0, 0)]


def test_files_roundtrip_every_field() -> None:
    t = new_log(2)
    t.create_table("t")
    adds = [
        DataFile("z/last", 0, 0),
        DataFile("a/ünïcödé ✓", 2**63 - 1, 2**63 - 1, "region=eu", b"", b"\x00\xff" * 100),
        DataFile("m/stats", 5, 6, "", bytes(range(256)), None),
        DataFile("B/upper", 1, 1, "p" * 1024),
    ]
    assert t.commit("t", base_version=0, txn_id="all fields", adds=adds) == 1
    got = t.files("t")
    # In path byte order (upper case sorts before lower case).
    assert paths(got) == sorted(paths(adds), key=lambda p: p.encode())
    assert sorted(got, key=lambda x: x.path) == sorted(adds, key=lambda x: x.path)
    assert t.versions("t") == [TableVersion(0, "", 0, 0), TableVersion(1, "all fields", 4, 0)]


# ---------------------------------------------------------------- the checks, in order


def test_check_1_unknown_table_first() -> None:
    t = new_log(3)
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="a", adds=[f("x")])
    before = state(t)
    # Even a transaction id the other table knows, with its files: the table decides first.
    with pytest.raises(ln.LuigiValueError, match="no table"):
        t.commit("u", base_version=0, txn_id="a", adds=[f("x")])
    with pytest.raises(ln.LuigiValueError):
        t.latest("u")
    with pytest.raises(ln.LuigiValueError):
        t.files("u")
    with pytest.raises(ln.LuigiValueError):
        t.versions("u")
    assert state(t) == before


def test_check_2_retries_return_the_original_version() -> None:
    t = new_log(4)
    t.create_table("t")
    adds = [f("b"), f("a", 2), f("c", 3, partition="p=1")]
    assert t.commit("t", base_version=0, txn_id="first", adds=adds) == 1
    assert t.commit("t", base_version=1, txn_id="second", adds=[f("d")], removes=["a", "b"]) == 2
    assert t.commit("t", base_version=2, txn_id="third", adds=[f("e")]) == 3
    before = state(t)
    # The same files in any order, on the original (now stale) base...
    assert t.commit("t", base_version=0, txn_id="first", adds=list(reversed(adds))) == 1
    assert t.commit("t", base_version=1, txn_id="second", adds=[f("d")], removes=["b", "a"]) == 2
    # ...or on any other base: check 2 comes before check 3.
    assert t.commit("t", base_version=3, txn_id="first", adds=adds) == 1
    assert t.commit("t", base_version=99, txn_id="second", adds=[f("d")], removes=["a", "b"]) == 2
    # commit_many agrees.
    assert t.commit_many([CommitRequest("t", 0, "first", tuple(adds)),
                          CommitRequest("t", 2, "third", (f("e"),))]) == [1, 3]
    assert state(t) == before
    assert [v.txn_id for v in t.versions("t")].count("first") == 1


def test_check_2_same_id_other_files_is_a_conflict() -> None:
    t = new_log(5)
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="x", adds=[f("a"), f("b")])
    t.commit("t", base_version=1, txn_id="y", adds=[f("c")])
    before = state(t)
    others: list[tuple[list[DataFile], list[str]]] = [
        ([f("a")], []),  # fewer files
        ([f("a"), f("b"), f("z")], []),  # more
        ([f("a", rows=2), f("b")], []),  # the same paths, other rows
        ([f("a"), f("b", partition="p")], []),  # other partition
        ([f("a"), f("b", min_stats=b"")], []),  # statistics present vs absent
        ([f("a"), f("b")], ["c"]),  # a remove more
    ]
    for adds, removes in others:
        for base in (0, 2):  # the base does not matter: check 2 decides
            with pytest.raises(ConflictError, match="other files") as e:
                t.commit("t", base_version=base, txn_id="x", adds=adds, removes=removes)
            assert e.value.latest == 2
    assert state(t) == before


def test_check_3_stale_base_names_the_latest() -> None:
    t = new_log(6)
    t.create_table("t")
    for v in range(3):
        t.commit("t", base_version=v, txn_id=f"t{v}", adds=[f(f"p{v}")])
    before = state(t)
    for base in (0, 1, 2, 4, 2**64 - 1):
        with pytest.raises(ConflictError, match="stale base") as e:
            t.commit("t", base_version=base, txn_id="new", adds=[f("q")])
        assert e.value.latest == 3
    # Check 3 before check 4: a stale commit that would also be invalid.
    with pytest.raises(ConflictError) as e:
        t.commit("t", base_version=1, txn_id="new", removes=["not live"])
    assert e.value.latest == 3
    assert state(t) == before
    # Retrying on the latest the conflict named succeeds.
    assert t.commit("t", base_version=e.value.latest, txn_id="new", adds=[f("q")]) == 4


def test_check_4_removed_must_be_live_added_must_not_be() -> None:
    t = new_log(7)
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="a", adds=[f("x"), f("y")])
    t.commit("t", base_version=1, txn_id="b", removes=["y"])
    before = state(t)
    bad: list[tuple[list[DataFile], list[str], str]] = [
        ([], ["never"], "not live"),
        ([], ["y"], "not live"),  # live once, removed since
        ([], ["x", "y"], "not live"),
        ([f("x")], [], "already live"),
        ([f("new"), f("x", 5)], [], "already live"),
    ]
    for adds, removes, why in bad:
        with pytest.raises(ln.LuigiValueError, match=why):
            t.commit("t", base_version=2, txn_id="c", adds=adds, removes=removes)
    assert state(t) == before
    # The refused id is not remembered: it commits later with other files.
    assert t.commit("t", base_version=2, txn_id="c", adds=[f("y")]) == 3


def test_check_4_replace_removes_and_adds_the_same_path() -> None:
    t = new_log(8)
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="a", adds=[f("x", 1, 10), f("keep")])
    v = t.commit("t", base_version=1, txn_id="rewrite", adds=[f("x", 2, 20)], removes=["x"])
    assert v == 2
    assert t.files("t") == [f("keep"), f("x", 2, 20)]
    assert t.files("t", 1) == [f("keep"), f("x", 1, 10)]
    assert t.versions("t")[-1] == TableVersion(2, "rewrite", 1, 1)


def test_check_5_versions_are_consecutive() -> None:
    t = new_log(9)
    t.create_table("t")
    t.create_table("u")
    for v in range(10):
        assert t.commit("t", base_version=v, txn_id=str(v), adds=[f(f"f{v}")]) == v + 1
    assert t.commit("u", base_version=0, txn_id="0", adds=[f("other")]) == 1  # per table
    assert [v.version for v in t.versions("t")] == list(range(11))
    assert t.latest("t") == 10 and t.latest("u") == 1


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_a_typed_error_and_changes_nothing() -> None:
    t = new_log(10)
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="a", adds=[f("x"), f("y")])
    before = state(t)

    def commit(**kw: Any) -> None:
        args: dict[str, Any] = dict(base_version=1, txn_id="bad", adds=[f("new")], removes=())
        args.update(kw)
        t.commit(args.pop("table", "t"), **args)

    cases: list[tuple[type[BaseException], Callable[[], object]]] = [
        (ln.LuigiValueError, lambda: commit(adds=[f("")])),
        (ln.LuigiValueError, lambda: commit(adds=[f("dup"), f("dup", 2)])),
        (ln.LuigiValueError, lambda: commit(adds=[], removes=["x", "x"])),
        (ln.LuigiValueError, lambda: commit(adds=[f("big", rows=2**63)])),
        (ln.LuigiValueError, lambda: commit(adds=[f("big", size=2**63)])),
        (ln.LuigiValueError, lambda: commit(adds=[f("big", rows=2**64 - 1)])),
        (ln.LuigiOverflowError, lambda: commit(adds=[f("big", rows=2**64)])),
        (ln.LuigiOverflowError, lambda: commit(adds=[f("neg", size=-1)])),
        (ln.LuigiValueError, lambda: commit(adds=[f("a\x00b")])),
        (ln.LuigiValueError, lambda: commit(adds=[], removes=["x\x00"])),
        (ln.LuigiValueError, lambda: commit(adds=[f("p" * 4097)])),
        (ln.LuigiValueError, lambda: commit(adds=[f("part", partition="p" * 1025)])),
        (ln.LuigiValueError, lambda: commit(adds=[f("stats", min_stats=bytes(65537))])),
        (ln.LuigiValueError, lambda: commit(adds=[f("stats", max_stats=bytes(65537))])),
        (ln.LuigiValueError, lambda: commit(txn_id="")),
        (ln.LuigiValueError, lambda: commit(txn_id="t" * 257)),
        (ln.LuigiValueError, lambda: commit(txn_id="nul\x00")),
        (ln.LuigiValueError, lambda: commit(table="unknown")),
        (ln.LuigiValueError, lambda: commit(table="")),
        (ln.LuigiOverflowError, lambda: commit(base_version=-1)),
        (ln.LuigiOverflowError, lambda: commit(base_version=2**64)),
        (ln.LuigiValueError, lambda: commit(timeout=0)),
        (ln.LuigiValueError, lambda: commit(timeout=10_000_001)),
        (ln.LuigiOverflowError, lambda: commit(timeout=-1)),
        (ValueError, lambda: commit(adds=[f("\udc80")])),  # not encodable as UTF-8
        (TypeError, lambda: commit(adds=["x"])),
        (TypeError, lambda: commit(adds=[f("x", rows=cast(int, 1.5))])),
        (TypeError, lambda: commit(adds=[f("x", min_stats=cast(bytes, bytearray(b"s")))])),
        (TypeError, lambda: commit(adds=[f("x", partition=cast(str, None))])),
        (TypeError, lambda: commit(adds=f("x"))),  # not an iterable of files
        (TypeError, lambda: commit(removes="x")),
        (TypeError, lambda: commit(removes=[b"x"])),
        (TypeError, lambda: commit(table=b"t")),
        (TypeError, lambda: commit(txn_id=1)),
        (TypeError, lambda: t.commit("t", base_version=1)),  # type: ignore[call-arg]
        (TypeError, lambda: t.commit("t", txn_id="x")),  # type: ignore[call-arg]
        (ln.LuigiValueError, lambda: t.files("t", 2)),
        (ln.LuigiValueError, lambda: t.files("t", 2**64 - 1)),
        (ln.LuigiOverflowError, lambda: t.files("t", -1)),
        (ln.LuigiOverflowError, lambda: t.files("t", 2**64)),
        (ln.LuigiValueError, lambda: t.latest("t", timeout=0)),
        (ln.LuigiValueError, lambda: t.create_table("")),
        (ln.LuigiValueError, lambda: t.create_table("n" * 256)),
        (ln.LuigiValueError, lambda: t.create_table("nul\x00")),
        (ln.LuigiValueError, lambda: t.create_table("big", bytes(2**20 + 1))),
        (ln.LuigiOverflowError, lambda: t.create_table("neg", retain=-1)),
        (TypeError, lambda: t.create_table("s", "schema")),  # type: ignore[arg-type]
        # A malformed request refuses the whole batch: the valid one is not proposed.
        (ln.LuigiValueError, lambda: t.commit_many([
            CommitRequest("t", 1, "fine", (f("fine"),)),
            CommitRequest("t", 1, "bad", (f(""),)),
        ])),
        (TypeError, lambda: t.commit_many([CommitRequest("t", 1, "fine"), ("t", 1, "tuple")])),  # type: ignore[list-item]
        (TypeError, lambda: t.commit_many("requests")),  # type: ignore[arg-type]
        (ln.LuigiValueError, lambda: t.commit_many([CommitRequest("t", 1, "x")] * 65537)),
    ]
    for i, (error, call) in enumerate(cases):
        with pytest.raises(error):
            call()
        assert state(t) == before, f"case {i} changed the table"
    assert t.latest("t") == 1
    with pytest.raises(ln.LuigiValueError):
        t.latest("big")


def test_limits_are_inclusive() -> None:
    t = new_log(11)
    t.create_table("n" * 255, bytes(2**20), retain=2**64 - 1)
    t.create_table("t")
    edge = DataFile("p" * 4096, 2**63 - 1, 2**63 - 1, "q" * 1024, bytes(65536), bytes(65536))
    assert t.commit("t", base_version=0, txn_id="i" * 256, adds=[edge]) == 1
    assert t.files("t") == [edge]
    assert t.schema("n" * 255) == bytes(2**20)


# ---------------------------------------------------------------- the model


@dataclass
class Model:
    """A table as the header describes it: every version's files, the
    transaction that made each version, and the retention bound."""

    retain: int
    snapshots: list[dict[str, DataFile]] = field(default_factory=lambda: [{}])
    records: list[tuple[str, frozenset[DataFile], frozenset[str]]] = field(default_factory=list)
    txn_version: dict[str, int] = field(default_factory=dict)

    @property
    def latest(self) -> int:
        return len(self.snapshots) - 1

    @property
    def oldest(self) -> int:
        return 0 if self.retain == 0 else max(0, self.latest - self.retain + 1)

    @property
    def live(self) -> dict[str, DataFile]:
        return self.snapshots[-1]

    def remembered(self, txn_id: str) -> Optional[int]:
        v = self.txn_version.get(txn_id)
        return v if v is not None and v >= max(self.oldest, 1) else None

    def commit(
        self, base: int, txn_id: str, adds: Sequence[DataFile], removes: Sequence[str]
    ) -> Union[int, tuple[str, int], str]:
        """The version, ("conflict", latest) or "invalid"; applies a new version."""
        v = self.remembered(txn_id)
        if v is not None:
            _, old_adds, old_removes = self.records[v - 1]
            if old_adds == frozenset(adds) and old_removes == frozenset(removes):
                return v
            return ("conflict", self.latest)
        if base != self.latest:
            return ("conflict", self.latest)
        if any(p not in self.live for p in removes):
            return "invalid"
        if any(a.path in self.live and a.path not in removes for a in adds):
            return "invalid"
        files = dict(self.live)
        for p in removes:
            del files[p]
        for a in adds:
            files[a.path] = a
        self.snapshots.append(files)
        self.records.append((txn_id, frozenset(adds), frozenset(removes)))
        self.txn_version[txn_id] = self.latest
        return self.latest

    def versions(self) -> list[TableVersion]:
        out = [TableVersion(0, "", 0, 0)] if self.oldest == 0 else []
        for v in range(max(self.oldest, 1), self.latest + 1):
            txn_id, adds, removes = self.records[v - 1]
            out.append(TableVersion(v, txn_id, len(adds), len(removes)))
        return out


Outcome = Union[int, tuple[str, int], str]


def outcome(call: Callable[[], int]) -> Outcome:
    """What a commit did, in the model's terms."""
    try:
        return call()
    except ConflictError as e:
        assert e.latest is not None
        return ("conflict", e.latest)
    except ln.LuigiValueError:
        return "invalid"


def check_against(t: TableLog, model: Model, table: str = "t") -> None:
    assert t.latest(table) == model.latest
    assert t.versions(table) == model.versions()
    for v in range(model.latest + 1):
        if v < model.oldest:
            with pytest.raises(ln.LuigiValueError, match="not readable"):
                t.files(table, v)
        else:
            want = sorted(model.snapshots[v].values(), key=lambda x: x.path.encode())
            assert t.files(table, v) == want, f"version {v}"
    with pytest.raises(ln.LuigiValueError):
        t.files(table, model.latest + 1)


POOL = [f"part={i % 3}/f{i}.parquet" for i in range(10)]


def a_file(path: str) -> st.SearchStrategy[DataFile]:
    stats = st.one_of(st.none(), st.binary(max_size=4))
    return st.builds(DataFile, st.just(path), st.integers(0, 2**63 - 1), st.integers(0, 1000),
                     st.just(path.split("/")[0]), stats, stats)


# One time in ten (sampled_from, not integers: Hypothesis favours small integers).
rarely = st.sampled_from([False] * 9 + [True])


@st.composite
def a_commit(draw: st.DrawFn, model: Model) -> tuple[list[DataFile], list[str]]:
    """Mostly valid against the model's latest files, sometimes not."""
    live = sorted(model.live)
    dead = [p for p in POOL if p not in model.live]
    removes = draw(st.lists(st.sampled_from(live), unique=True, max_size=3)) if live else []
    if draw(rarely):
        removes.append(draw(st.sampled_from(dead or ["gone"])))  # not live: invalid
    fresh = dead + removes  # a removed path may be added back (a replace)
    adds = [draw(a_file(p)) for p in
            (draw(st.lists(st.sampled_from(fresh), unique=True, max_size=3)) if fresh else [])]
    if draw(rarely) and live:
        extra = draw(st.sampled_from(live))  # already live: invalid unless also removed
        if extra not in [a.path for a in adds]:
            adds.append(draw(a_file(extra)))
    return draw(st.permutations(adds)), draw(st.permutations(removes))


def run_model(data: st.DataObject, seed: int, retain: int, faults: bool, steps: int) -> int:
    """Runs `steps` random operations against the cluster and the model;
    returns how many commit attempts timed out (and were retried)."""
    t = new_log(seed, lossy=faults, max_delay=2 if faults else 0)
    c = t.cluster
    t.create_table("t", retain=retain)
    model = Model(retain)
    acknowledged: list[tuple[int, str, list[DataFile], list[str], int]] = []
    timeouts = 0

    def crash_leader() -> None:
        leader = c.leader()
        if leader is not None:
            c.crash(leader)
            c.tick(data.draw(st.integers(0, 30)))
            c.restart(leader)

    def commit(base: int, txn_id: str, adds: list[DataFile], removes: list[str]) -> Outcome:
        """Under faults the first attempt may be short: a timeout leaves the
        outcome unknown, and the same commit is retried (sometimes after a
        leader crash) until it is known."""
        nonlocal timeouts
        timeout = data.draw(st.sampled_from([1, 2, 5, 200])) if faults else 200
        for _ in range(30):
            try:
                return outcome(lambda: t.commit("t", base_version=base, txn_id=txn_id, adds=adds,
                                                removes=removes, timeout=timeout))
            except ln.LuigiTimeoutError:
                timeouts += 1
                timeout = 200
                if data.draw(st.booleans()):
                    crash_leader()
        raise AssertionError("a commit never completed")
    for step in range(steps):
        kind = data.draw(st.sampled_from(
            ["new", "new", "new", "stale", "retry", "reuse"] + (["crash", "tick"] if faults else [])))
        if kind in ("new", "stale"):
            adds, removes = data.draw(a_commit(model))
            base = model.latest
            if kind == "stale":
                base = data.draw(st.integers(0, model.latest + 2).filter(lambda b: b != model.latest))
            txn_id = f"txn-{step}"
            got = commit(base, txn_id, adds, removes)
            want = model.commit(base, txn_id, adds, removes)
            assert got == want, (step, kind, base, txn_id, adds, removes)
            if isinstance(got, int):
                acknowledged.append((base, txn_id, adds, removes, got))
        elif kind in ("retry", "reuse") and acknowledged:
            base, txn_id, adds, removes, version = data.draw(st.sampled_from(acknowledged))
            if kind == "reuse":  # the same id, other files
                adds = adds + [data.draw(a_file("other"))] if not adds else adds[1:]
            else:  # any order
                adds, removes = data.draw(st.permutations(adds)), data.draw(st.permutations(removes))
            got = commit(base, txn_id, adds, removes)
            want = model.commit(base, txn_id, adds, removes)
            assert got == want, (step, kind, base, txn_id, adds, removes)
            if kind == "retry" and model.remembered(txn_id) is not None:
                assert got == version  # the original version, whatever came since
        elif kind == "crash":
            crash_leader()
        elif kind == "tick":
            c.tick(data.draw(st.integers(1, 20)))
    c.heal()
    check_against(t, model)
    return timeouts


@settings(max_examples=60, derandomize=True)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32),
    retain=st.sampled_from([0, 0, 1, 2, 3, 5]),
    steps=st.integers(1, 25),
)
def test_model_every_version_folds_alike(data: st.DataObject, seed: int, retain: int, steps: int) -> None:
    run_model(data, seed, retain, faults=False, steps=steps)


@settings(max_examples=25, derandomize=True)
@given(
    data=st.data(),
    seed=st.integers(0, 2**32),
    retain=st.sampled_from([0, 2, 4]),
    steps=st.integers(1, 25),
)
def test_model_under_faults_and_leader_crashes(
    data: st.DataObject, seed: int, retain: int, steps: int
) -> None:
    """Lossy network, leader crashes: timeouts are retried with the same
    transaction id and every outcome still matches the model."""
    run_model(data, seed, retain, faults=True, steps=steps)


def test_retention_keeps_the_last_versions() -> None:
    t = new_log(12)
    t.create_table("t", retain=3)
    model = Model(3)
    for v in range(7):
        adds, removes = [f(f"f{v}", v)], ([f"f{v - 2}"] if v >= 2 else [])
        assert t.commit("t", base_version=v, txn_id=f"x{v}", adds=adds, removes=removes) == v + 1
        model.commit(v, f"x{v}", adds, removes)
        check_against(t, model)
    assert [v.version for v in t.versions("t")] == [5, 6, 7]
    # A retry older than the bound: its id is forgotten, check 3 refuses it.
    with pytest.raises(ConflictError) as e:
        t.commit("t", base_version=0, txn_id="x0", adds=[f("f0", 0)])
    assert e.value.latest == 7
    # A retry within it returns its version.
    assert t.commit("t", base_version=4, txn_id="x4", adds=[f("f4", 4)], removes=["f2"]) == 5


# ---------------------------------------------------------------- commit_many


@pytest.mark.parametrize("seed, writers, base", [(13, 2, 0), (14, 5, 0), (15, 8, 3), (16, 32, 1)])
def test_commit_many_on_one_base_one_wins(seed: int, writers: int, base: int) -> None:
    t = new_log(seed)
    t.create_table("t")
    for v in range(base):
        t.commit("t", base_version=v, txn_id=f"setup{v}", adds=[f(f"setup{v}")])
    requests = [CommitRequest("t", base, f"w{i}", (f(f"w{i}"),)) for i in range(writers)]
    results = t.commit_many(requests)
    assert len(results) == writers
    wins = [(i, r) for i, r in enumerate(results) if isinstance(r, int)]
    assert len(wins) == 1 and wins[0][1] == base + 1
    for r in results:
        if not isinstance(r, int):
            assert isinstance(r, ConflictError) and r.latest == base + 1, r
    winner = wins[0][0]
    assert t.files("t")[-1] == f(f"w{winner}")
    assert t.versions("t")[-1] == TableVersion(base + 1, f"w{winner}", 1, 0)
    # The losers retry on the latest the conflict named: now they all commit, in turn.
    latest = base + 1
    for i, r in enumerate(results):
        if isinstance(r, ConflictError):
            assert r.latest is not None
            latest = t.commit("t", base_version=latest, txn_id=f"w{i}", adds=[f(f"w{i}")])
    assert latest == base + writers
    assert sorted(v.txn_id for v in t.versions("t") if v.txn_id.startswith("w")) == sorted(
        f"w{i}" for i in range(writers))


def test_commit_many_outcomes_of_every_kind() -> None:
    t = new_log(17)
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="done", adds=[f("a")])
    results = t.commit_many([
        CommitRequest("t", 1, "new", (f("b"),)),
        CommitRequest("t", 0, "done", (f("a"),)),  # a retry
        CommitRequest("t", 0, "done", (f("z"),)),  # the same id, other files
        CommitRequest("missing", 0, "x"),  # unknown table
        CommitRequest("t", 1, "dead", (), ("never",)),  # its base may be stale by now
    ])
    assert results[0] == 2 and results[1] == 1
    assert isinstance(results[2], ConflictError) and results[2].latest is not None
    assert isinstance(results[3], ln.LuigiValueError)
    assert isinstance(results[4], (ln.LuigiValueError, ConflictError))
    assert t.commit_many([]) == []
    # A timeout is an outcome too: the cluster has no quorum.
    c = t.cluster
    leader = c.leader()
    assert leader is not None
    for node in c.nodes():
        if node != leader:
            c.crash(node)
    timed_out = t.commit_many([CommitRequest("t", 2, "late", (f("late"),))], timeout=30)
    assert isinstance(timed_out[0], ln.LuigiTimeoutError)
    for node in c.nodes():
        c.restart(node)
    # Unknown outcome: retrying the same commit is safe and lands exactly once.
    assert t.commit("t", base_version=2, txn_id="late", adds=[f("late")]) == 3
    assert [v.txn_id for v in t.versions("t")].count("late") == 1


# ---------------------------------------------------------------- faults and durability


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("first_timeout", [1, 2, 4])
@pytest.mark.parametrize("max_delay", [0, 3])
def test_retry_across_a_leader_crash_lands_once(seed: int, first_timeout: int, max_delay: int) -> None:
    """Propose, crash the leader mid-commit, restart it, retry: one version."""
    t = new_log(seed, max_delay=max_delay)
    c = t.cluster
    t.create_table("t")
    t.commit("t", base_version=0, txn_id="before", adds=[f("a")])
    leader = c.leader()
    assert leader is not None
    adds, removes = [f("b", 7), f("c", 8)], ["a"]
    first: Optional[int] = None
    try:
        first = t.commit("t", base_version=1, txn_id="x", adds=adds, removes=removes,
                         timeout=first_timeout)
    except ln.LuigiTimeoutError:
        pass  # the outcome is unknown: the entry may be anywhere
    c.crash(leader)
    c.tick(25)
    c.restart(leader)
    version = t.commit("t", base_version=1, txn_id="x", adds=adds[::-1],
                                         removes=removes)
    if first is not None:
        assert version == first
    assert version == 2
    versions = t.versions("t")
    assert [v.txn_id for v in versions].count("x") == 1
    assert versions[-1] == TableVersion(2, "x", 2, 1)
    assert t.files("t") == [f("b", 7), f("c", 8)]
    assert t.files("t", 1) == [f("a")]


def test_the_first_attempt_timing_out_is_exercised() -> None:
    """The crash test above covers both outcomes of the first attempt."""
    timed_out = 0
    for seed in range(6):
        t = new_log(seed)
        t.create_table("t")
        try:
            t.commit("t", base_version=0, txn_id="x", adds=[f("a")], timeout=1)
        except ln.LuigiTimeoutError:
            timed_out += 1
    assert timed_out > 0


def test_durable_cluster_survives_crashing_every_node(tmp_path: Path) -> None:
    t = new_log(18, data_dir=tmp_path)
    c = t.cluster
    t.create_table("t", b"schema-v1", retain=4)
    t.create_table("u")
    model = Model(4)
    rng = random.Random(18)
    for v in range(8):
        removes = rng.sample(sorted(model.live), k=min(len(model.live), rng.randint(0, 2)))
        adds = [f(f"f{v}-{k}", rng.randint(0, 100)) for k in range(rng.randint(1, 3))]
        assert t.commit("t", base_version=v, txn_id=f"x{v}", adds=adds, removes=removes) == v + 1
        model.commit(v, f"x{v}", adds, removes)
    t.commit("u", base_version=0, txn_id="u1", adds=[f("only")])
    before = state(t), state(t, "u")
    for node in c.nodes():
        c.crash(node)
    with pytest.raises(ln.LuigiTimeoutError):
        t.latest("t", timeout=20)
    for node in c.nodes():
        c.restart(node)
    assert (state(t), state(t, "u")) == before
    check_against(t, model)
    assert t.schema("t") == b"schema-v1"
    # Retries still land once after the restart.
    _, made, gone = model.records[6]  # version 7, made on base 6
    assert t.commit("t", base_version=6, txn_id="x6", adds=made, removes=gone) == 7
    del t, c
    # A new cluster object on the same directories recovers the same tables.
    again = new_log(19, data_dir=tmp_path)
    assert (state(again), state(again, "u")) == before
    assert again.commit("t", base_version=8, txn_id="after", adds=[f("after")]) == 9


def test_compaction_is_a_commit() -> None:
    t = new_log(20)
    t.create_table("t")
    rng = random.Random(20)
    small = [f(f"small/{i:03}", rng.randint(1, 1000), rng.randint(100, 200)) for i in range(40)]
    for v in range(4):
        t.commit("t", base_version=v, txn_id=f"ingest-{v}", adds=small[v * 10:(v + 1) * 10])
    before = {v: t.files("t", v) for v in range(5)}
    total_rows = sum(x.rows for x in small)
    merged = DataFile("big/000", total_rows, sum(x.size for x in small))
    version = t.commit("t", base_version=4, txn_id="compact-1", adds=[merged],
                       removes=[x.path for x in reversed(small)])
    assert version == 5
    assert t.files("t") == [merged]
    assert sum(x.rows for x in t.files("t")) == total_rows
    assert t.versions("t")[-1] == TableVersion(5, "compact-1", 1, 40)
    for v, files in before.items():  # old versions still read their original files
        assert t.files("t", v) == files
    assert sum(x.rows for x in t.files("t", 4)) == total_rows
    # A writer that raced the compaction on base 4 loses and learns the latest.
    with pytest.raises(ConflictError) as e:
        t.commit("t", base_version=4, txn_id="late-delete", removes=["small/000"])
    assert e.value.latest == 5


def test_threads_share_one_table_log() -> None:
    """Calls release the GIL and serialise on the cluster's lock: writers on
    threads, each retrying on ConflictError, all land exactly once."""
    t = new_log(21)
    t.create_table("t")
    errors: list[BaseException] = []
    acknowledged: list[tuple[str, int]] = []

    def writer(w: int) -> None:
        try:
            base = 0
            for i in range(10):
                txn_id = f"w{w}-{i}"
                while True:
                    try:
                        v = t.commit("t", base_version=base, txn_id=txn_id, adds=[f(txn_id)])
                        break
                    except ConflictError as e:
                        assert e.latest is not None
                        base = e.latest
                acknowledged.append((txn_id, v))
                base = v
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    versions = t.versions("t")
    assert len(versions) == 41
    assert sorted((v.txn_id, v.version) for v in versions[1:]) == sorted(acknowledged)
    assert paths(t.files("t")) == sorted(txn for txn, _ in acknowledged)
