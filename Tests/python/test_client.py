"""luigi_node.Client against a live luigi-node cluster.

Needs a running cluster, named by LUIGI_ENDPOINTS, LUIGI_CLUSTER_ID and
LUIGI_CLUSTER_SECRET: `luigi-cluster-demo exec -- <command>` starts 3
luigi-node processes (one key-value group) and sets them. Tests/python/run.sh
runs this module that way when LUIGI_CLUSTER_RUNNER names luigi-cluster-demo
(make test-python does). Without a cluster every test FAILS with a message
saying so, unless LUIGI_CLIENT_TESTS_OPTIONAL=1, which skips the module.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import luigi_node as ln

ENDPOINTS = os.environ.get("LUIGI_ENDPOINTS", "")
CLUSTER_ID = os.environ.get("LUIGI_CLUSTER_ID", "")
SECRET = os.environ.get("LUIGI_CLUSTER_SECRET", "")
CLUSTER_DIR = os.environ.get("LUIGI_CLUSTER_DIR", "")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_KEY = 4096
MAX_VALUE = 8 * 1024 * 1024

if not (ENDPOINTS and CLUSTER_ID and SECRET) and os.environ.get("LUIGI_CLIENT_TESTS_OPTIONAL") == "1":
    pytest.skip(
        "no luigi-node cluster (LUIGI_ENDPOINTS unset) and LUIGI_CLIENT_TESTS_OPTIONAL=1",
        allow_module_level=True,
    )

# Keys of this run: the cluster may outlive it (or serve the example too).
RUN = f"pytest-{uuid.uuid4().hex[:8]}/"


def key(name: str) -> str:
    return RUN + name


@pytest.fixture(scope="module", autouse=True)
def cluster() -> None:
    if not (ENDPOINTS and CLUSTER_ID and SECRET):
        pytest.fail(
            "test_client.py needs a running luigi-node cluster: run it under "
            "`luigi-cluster-demo exec -- python -m pytest Tests/python/test_client.py` "
            "(Tests/python/run.sh does when LUIGI_CLUSTER_RUNNER is set; make test-python "
            "sets it), or set LUIGI_CLIENT_TESTS_OPTIONAL=1 to skip these tests. "
            "Missing: "
            + ", ".join(
                name
                for name in ("LUIGI_ENDPOINTS", "LUIGI_CLUSTER_ID", "LUIGI_CLUSTER_SECRET")
                if not os.environ.get(name)
            ),
            pytrace=False,
        )


def connect(**options: Any) -> ln.Client:
    """A Client of the cluster under test; `options` override its arguments."""
    endpoints = options.pop("endpoints", ENDPOINTS)
    arguments: dict[str, Any] = {"cluster_secret": SECRET, "cluster_id": CLUSTER_ID}
    arguments.update(options)
    return ln.Client(endpoints, **arguments)


@pytest.fixture(scope="module")
def client(cluster: None) -> Iterator[ln.Client]:
    with connect(timeout=10.0) as c:
        yield c


# ------------------------------------------------------------------ semantics


def test_put_get_delete(client: ln.Client) -> None:
    k = key("basic")
    assert client.get(k) is None
    client.put(k, b"red")
    assert client.get(k) == b"red"
    client.put(k, b"blue")  # overwrite
    assert client.get(k) == b"blue"
    assert client.delete(k) is True
    assert client.get(k) is None
    assert client.delete(k) is False


def test_empty_value_is_a_value(client: ln.Client) -> None:
    k = key("empty")
    client.put(k, b"")
    assert client.get(k) == b""
    assert client.delete(k) is True
    assert client.get(k) is None


def test_cas(client: ln.Client) -> None:
    k = key("cas")
    assert client.cas(k, b"x", b"y") is False  # absent is not b"x"
    assert client.get(k) is None
    assert client.cas(k, b"", b"y") is False  # absent is not b"" either
    assert client.get(k) is None
    assert client.cas(k, None, b"1") is True  # None: must be absent
    assert client.get(k) == b"1"
    assert client.cas(k, None, b"2") is False  # present now
    assert client.cas(k, b"2", b"3") is False  # wrong expected value
    assert client.get(k) == b"1"
    assert client.cas(k, b"1", b"") is True
    assert client.get(k) == b""
    assert client.cas(k, None, b"4") is False  # b"" is present
    assert client.cas(k, b"", b"5") is True
    assert client.get(k) == b"5"


def test_bytes_like_values(client: ln.Client) -> None:
    k = key("bytes-like")
    client.put(k, bytearray(b"from a bytearray"))
    assert client.get(k) == b"from a bytearray"
    client.put(k, memoryview(b"xx-from a memoryview-xx")[3:-3])
    assert client.get(k) == b"from a memoryview"
    assert client.cas(k, bytearray(b"from a memoryview"), memoryview(b"swapped")) is True
    assert client.get(k) == b"swapped"


@settings(max_examples=30)
@given(value=st.binary(max_size=4096))
def test_binary_values_round_trip(client: ln.Client, value: bytes) -> None:
    k = key("binary")
    client.put(k, value)
    assert client.get(k) == value


@settings(max_examples=30)
@given(name=st.text(st.characters(codec="utf-8"), min_size=1, max_size=64))
def test_unicode_keys_round_trip(client: ln.Client, name: str) -> None:
    k = key(name)
    client.put(k, k.encode("utf-8"))
    assert client.get(k) == k.encode("utf-8")
    assert client.delete(k) is True


def test_limits_are_inclusive(client: ln.Client) -> None:
    long_key = RUN + "k" * (MAX_KEY - len(RUN.encode()))
    assert len(long_key.encode()) == MAX_KEY
    client.put(long_key, b"longest key")
    assert client.get(long_key) == b"longest key"
    big = bytes(range(256)) * (MAX_VALUE // 256)
    assert len(big) == MAX_VALUE
    client.put(key("biggest"), big)
    assert client.get(key("biggest")) == big
    assert client.delete(key("biggest")) is True


def test_status(client: ln.Client) -> None:
    status = client.status()
    assert isinstance(status, dict)
    assert status["cluster"] == CLUSTER_ID
    assert isinstance(status["node"], int)
    groups = status["groups"]
    assert isinstance(groups, list) and [g["group"] for g in groups] == [1]
    assert groups[0]["role"] in ("follower", "pre_candidate", "candidate", "leader")
    assert sorted(groups[0]["voters"]) == [1, 2, 3]
    assert isinstance(client.status(timeout=2.5), dict)


def test_endpoints_as_a_list_or_a_string() -> None:
    listed = ENDPOINTS.split(",")
    with connect(endpoints=listed) as c:
        assert c.endpoints == tuple(listed)
        c.put(key("list"), b"1")
    with connect(endpoints=tuple(listed)) as c:
        assert c.get(key("list")) == b"1"
    with connect(endpoints=" , ".join(listed)) as c:  # spaces around commas are fine
        assert c.endpoints == tuple(listed)
        assert c.get(key("list")) == b"1"
    with connect(endpoints=listed[-1]) as c:  # one node is enough: it names the leader
        assert c.endpoints == (listed[-1],)
        assert c.get(key("list")) == b"1"
    with connect(cluster_secret=SECRET.encode()) as c:  # bytes secret
        assert c.get(key("list")) == b"1"
    assert repr(connect()).startswith("<luigi_node.Client (")


def test_the_default_group_and_timeout_options() -> None:
    with connect(group=1, timeout=600) as c:  # the largest timeout
        c.put(key("options"), b"ok", group=1, timeout=600.0)
        assert c.get(key("options"), group=1) == b"ok"


# ------------------------------------------------------------------ failures


def test_a_group_the_nodes_do_not_run_times_out(client: ln.Client) -> None:
    started = time.monotonic()
    with pytest.raises(ln.LuigiTimeoutError) as info:
        client.get(key("g2"), group=2, timeout=0.3)
    elapsed = time.monotonic() - started
    assert isinstance(info.value, TimeoutError)
    assert 0.25 <= elapsed < 3.0, elapsed
    with pytest.raises(ln.LuigiTimeoutError):
        client.put(key("g2"), b"x", group=2, timeout=0.2)
    # a client whose default group is 2
    with connect(group=2, timeout=0.2) as c, pytest.raises(ln.LuigiTimeoutError):
        c.get(key("g2"))
    assert client.get(key("g2")) is None  # group 1 never saw it


@pytest.mark.parametrize(
    "options",
    [
        {"cluster_secret": "not-the-cluster-secret"},
        {"cluster_secret": SECRET + "x"},
        {"cluster_id": CLUSTER_ID + "-other"},
    ],
    ids=["wrong-secret", "longer-secret", "wrong-cluster-id"],
)
def test_wrong_credentials_raise_auth_error(client: ln.Client, options: dict[str, Any]) -> None:
    k = key("auth")
    with connect(timeout=5.0, **options) as impostor:
        started = time.monotonic()
        for call in (
            lambda: impostor.get(k),
            lambda: impostor.put(k, b"intruder"),
            lambda: impostor.cas(k, None, b"intruder"),
            lambda: impostor.delete(k),
            lambda: impostor.status(),
        ):
            with pytest.raises(ln.AuthError) as info:
                call()
            assert isinstance(info.value, ln.LuigiError)
            assert "LUIGI_ERR_AUTH" in str(info.value)
        assert time.monotonic() - started < 5.0  # refused at once, not timed out
    assert client.get(k) is None  # nothing was written


def _unchanged(client: ln.Client, k: str) -> None:
    assert client.get(k) == b"original", "a refused call changed the key"


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda c, k: c.put("", b"x"), ln.LuigiValueError),
        (lambda c, k: c.get(""), ln.LuigiValueError),
        (lambda c, k: c.delete(""), ln.LuigiValueError),
        (lambda c, k: c.cas("", None, b"x"), ln.LuigiValueError),
        (lambda c, k: c.put(k + "x" * MAX_KEY, b"x"), ln.LuigiValueError),
        (lambda c, k: c.get("\u00e9" * (MAX_KEY // 2 + 1)), ln.LuigiValueError),  # 4098 bytes
        (lambda c, k: c.put(k, b"x" * (MAX_VALUE + 1)), ln.LuigiValueError),
        (lambda c, k: c.cas(k, b"original", b"x" * (MAX_VALUE + 1)), ln.LuigiValueError),
        (lambda c, k: c.cas(k, b"x" * (MAX_VALUE + 1), b"y"), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", timeout=0), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", timeout=-1.0), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", timeout=600.001), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", timeout=math.nan), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", timeout=math.inf), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", timeout=10**400), ln.LuigiValueError),
        (lambda c, k: c.get(k, timeout=0.0), ln.LuigiValueError),
        (lambda c, k: c.delete(k, timeout=-5), ln.LuigiValueError),
        (lambda c, k: c.cas(k, b"original", b"x", timeout=601), ln.LuigiValueError),
        (lambda c, k: c.status(timeout=0), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", group=0), ln.LuigiValueError),
        (lambda c, k: c.put(k, b"x", group=-1), ln.LuigiOverflowError),
        (lambda c, k: c.put(k, b"x", group=2**64), ln.LuigiOverflowError),
        (lambda c, k: c.put(k.encode(), b"x"), TypeError),
        (lambda c, k: c.get(k.encode()), TypeError),
        (lambda c, k: c.delete(None), TypeError),
        (lambda c, k: c.cas(1, None, b"x"), TypeError),
        (lambda c, k: c.put(k, "x"), TypeError),
        (lambda c, k: c.put(k, None), TypeError),
        (lambda c, k: c.put(k, 5), TypeError),
        (lambda c, k: c.cas(k, "original", b"x"), TypeError),
        (lambda c, k: c.cas(k, b"original", "x"), TypeError),
        (lambda c, k: c.cas(k, b"original", None), TypeError),
        (lambda c, k: c.put(k, b"x", timeout="1"), TypeError),
        (lambda c, k: c.put(k, b"x", timeout=b"1"), TypeError),
        (lambda c, k: c.put(k, b"x", group="1"), TypeError),
        (lambda c, k: c.put(k, b"x", group=1.0), TypeError),
        (lambda c, k: c.put(k, b"x", group=True), TypeError),
        (lambda c, k: c.put(k, b"x", 1), TypeError),  # group is keyword-only
        (lambda c, k: c.put(k, b"x", nope=1), TypeError),
        (lambda c, k: c.put(k), TypeError),
        (lambda c, k: c.put("\ud800", b"x"), UnicodeEncodeError),  # a lone surrogate
    ],
)
def test_bad_arguments_raise_and_write_nothing(
    client: ln.Client, call: Callable[[Any, Any], object], error: type[BaseException]
) -> None:
    k = key("bad-args")
    client.put(k, b"original")
    started = time.monotonic()
    with pytest.raises(error):
        call(client, k)
    assert time.monotonic() - started < 2.0  # refused before anything was sent
    _unchanged(client, k)


def test_argument_errors_subclass_the_builtins() -> None:
    assert issubclass(ln.LuigiValueError, ValueError)
    assert issubclass(ln.LuigiTimeoutError, TimeoutError)
    assert issubclass(ln.AuthError, ln.LuigiError)
    assert not issubclass(ln.AuthError, (ValueError, TimeoutError))
    assert "AuthError" in ln.__all__ and "Client" in ln.__all__


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"endpoints": ""}, ln.LuigiValueError),
        ({"endpoints": []}, ln.LuigiValueError),
        ({"endpoints": ["127.0.0.1:1", ""]}, ln.LuigiValueError),
        ({"endpoints": ["127.0.0.1:1,127.0.0.1:2"]}, ln.LuigiValueError),
        ({"endpoints": "no-port"}, ln.LuigiValueError),
        ({"endpoints": "host:notaport"}, ln.LuigiValueError),
        ({"endpoints": b"127.0.0.1:1"}, TypeError),
        ({"endpoints": 7001}, TypeError),
        ({"endpoints": [7001]}, TypeError),
        ({"cluster_secret": "too-short"}, ln.LuigiValueError),
        ({"cluster_secret": b""}, ln.LuigiValueError),
        ({"cluster_secret": 1234567890123456789}, TypeError),
        ({"cluster_secret": None}, TypeError),
        ({"cluster_id": ""}, ln.LuigiValueError),
        ({"cluster_id": "x" * 256}, ln.LuigiValueError),
        ({"cluster_id": "a\x00b"}, ln.LuigiValueError),
        ({"cluster_id": b"luigi"}, TypeError),
        ({"timeout": 0}, ln.LuigiValueError),
        ({"timeout": -0.5}, ln.LuigiValueError),
        ({"timeout": 600.5}, ln.LuigiValueError),
        ({"timeout": math.nan}, ln.LuigiValueError),
        ({"timeout": "5"}, TypeError),
        ({"group": 0}, ln.LuigiValueError),
        ({"group": -1}, ln.LuigiOverflowError),
        ({"group": "1"}, TypeError),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], error: type[BaseException]) -> None:
    with pytest.raises(error):
        connect(**kwargs)


def test_cluster_secret_is_required() -> None:
    with pytest.raises(TypeError, match="cluster_secret"):
        ln.Client(ENDPOINTS)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        ln.Client(ENDPOINTS, SECRET)  # type: ignore[call-arg]


def test_small_timeouts_round_up_to_a_millisecond() -> None:
    with connect(timeout=1e-9) as c:  # accepted: 1 ms
        try:
            c.get(key("tiny"))
        except ln.LuigiTimeoutError:
            pass  # 1 ms may well be too little


# ------------------------------------------------------------------ lifecycle


def test_context_manager_closes() -> None:
    with connect() as c:
        assert c.closed is False
        c.put(key("ctx"), b"1")
    assert c.closed is True
    assert "closed" in repr(c)
    for call in (
        lambda: c.get(key("ctx")),
        lambda: c.put(key("ctx"), b"2"),
        lambda: c.delete(key("ctx")),
        lambda: c.cas(key("ctx"), None, b"2"),
        lambda: c.status(),
    ):
        with pytest.raises(ln.TransactionStateError, match="closed"):
            call()
    c.close()  # idempotent
    with pytest.raises(ln.TransactionStateError):
        with c:
            pass
    with connect() as other:
        assert other.get(key("ctx")) == b"1"


def test_context_manager_closes_on_error_and_does_not_swallow_it() -> None:
    with pytest.raises(KeyError):
        with connect() as c:
            raise KeyError("boom")
    assert c.closed


def test_close_then_dealloc_and_dealloc_without_close() -> None:
    c = connect()
    c.put(key("dealloc"), b"1")
    del c  # frees the handle and its sockets
    c2 = connect()
    c2.close()
    del c2


def test_client_is_final() -> None:
    with pytest.raises(TypeError):
        type("Sub", (ln.Client,), {})


# ------------------------------------------------------------------ threads


def _run_threads(n: int, body: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            body(i)
        except BaseException as e:  # re-raised below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_eight_threads_each_with_its_own_client(client: ln.Client) -> None:
    def body(n: int) -> None:
        with connect(timeout=10.0) as mine:
            for i in range(25):
                mine.put(key(f"own/{n}/{i}"), f"{n}:{i}".encode())
            for i in range(25):
                assert mine.get(key(f"own/{n}/{i}")) == f"{n}:{i}".encode()
            assert mine.cas(key(f"own/{n}/0"), f"{n}:0".encode(), b"swapped") is True

    _run_threads(8, body)
    for n in range(8):
        assert client.get(key(f"own/{n}/0")) == b"swapped"
        for i in range(1, 25):
            assert client.get(key(f"own/{n}/{i}")) == f"{n}:{i}".encode()


def test_four_threads_sharing_one_client(client: ln.Client) -> None:
    shared = connect(timeout=10.0)
    counter = key("shared/counter")
    shared.put(counter, b"0")

    def body(n: int) -> None:
        for i in range(25):
            shared.put(key(f"shared/{n}/{i}"), f"{n}:{i}".encode())
            assert shared.get(key(f"shared/{n}/{i}")) == f"{n}:{i}".encode()
        for _ in range(10):  # a cas loop: every increment lands exactly once
            while True:
                current = shared.get(counter)
                assert current is not None
                if shared.cas(counter, current, str(int(current) + 1).encode()):
                    break

    _run_threads(4, body)
    assert client.get(counter) == b"40"
    for n in range(4):
        for i in range(25):
            assert client.get(key(f"shared/{n}/{i}")) == f"{n}:{i}".encode()
    shared.close()


def test_calls_release_the_gil() -> None:
    """Four clients each wait 0.5 s for a group that does not exist, at once:
    about 0.5 s in all, not 2 s, and this thread keeps running meanwhile."""
    clients = [connect() for _ in range(4)]
    ticks = 0
    done = threading.Event()

    def body(n: int) -> None:
        with pytest.raises(ln.LuigiTimeoutError):
            clients[n].get(key("gil"), group=2, timeout=0.5)

    def spin() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    spinner.start()
    started = time.monotonic()
    try:
        _run_threads(4, body)
    finally:
        done.set()
        spinner.join()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, elapsed
    assert ticks > 50, ticks
    for c in clients:
        c.close()


def test_one_client_serialises_its_callers() -> None:
    """Two threads on one Client: the second call waits for the first (the
    C handle takes one thread at a time), with the GIL released."""
    shared = connect()

    def body(n: int) -> None:
        with pytest.raises(ln.LuigiTimeoutError):
            shared.get(key("serial"), group=2, timeout=0.4)

    started = time.monotonic()
    _run_threads(2, body)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.75, elapsed
    shared.close()


def test_close_waits_for_a_call_in_progress() -> None:
    c = connect()
    entered = threading.Event()
    outcome: list[BaseException] = []

    def body(n: int) -> None:
        entered.set()
        try:
            c.get(key("close-race"), group=2, timeout=0.5)
        except BaseException as e:
            outcome.append(e)

    t = threading.Thread(target=body, args=(0,))
    t.start()
    entered.wait()
    time.sleep(0.1)
    c.close()  # waits for the get, then frees the handle
    t.join()
    assert len(outcome) == 1
    assert isinstance(outcome[0], (ln.LuigiTimeoutError, ln.TransactionStateError))
    assert c.closed


# ------------------------------------------------------------------ example


def test_cluster_client_example_runs() -> None:
    script = os.path.join(ROOT, "examples", "python", "cluster_client.py")
    proc = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for marker in (
        "endpoints: 127.0.0.1:",
        "is led by node",
        "get color -> b'red'",
        "cas color red->blue: True",
        "cas color red->green: False",
        "cas fresh absent->1: True",
        "delete fresh: True; get fresh -> None",
        "a 256 KiB binary value reads back equal: True",
        "100 writes from 4 threads, errors: 0; all read back: True",
        "empty key: LuigiValueError",
        "group 2 (the nodes run only group 1): LuigiTimeoutError",
        "closed: True",
        "AuthError: ",
    ):
        assert marker in out, f"missing {marker!r} in:\n{out}"


# ------------------------------------------------------------------ failover
# Last in the module: it kills the leader's process (found through
# /proc by its data directory under LUIGI_CLUSTER_DIR), checks that the
# client follows the new leader, then restarts the node with its own
# command line so the cluster is whole again; the node restarted here is
# stopped when the module ends.

_restarted: list[subprocess.Popen[bytes]] = []


@pytest.fixture(scope="module", autouse=True)
def _stop_restarted_nodes() -> Iterator[None]:
    yield
    for proc in _restarted:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _node_process(node: int) -> Optional[tuple[int, list[str]]]:
    """(pid, argv) of the luigi-node serving node `node` of this cluster."""
    data_dir = os.path.join(CLUSTER_DIR, f"node-{node}")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode() for a in f.read().split(b"\0") if a]
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if state == b"Z" or "serve" not in argv or "--data-dir" not in argv:
            continue
        if argv[argv.index("--data-dir") + 1] == data_dir:
            return int(entry), argv
    return None


def _leader(c: ln.Client) -> int:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            group = c.status(timeout=2.0)["groups"][0]
            if group.get("leader"):
                return int(group["leader"])
        except ln.LuigiTimeoutError:
            pass
        time.sleep(0.05)
    raise AssertionError("no leader known within 15 s")


def test_leader_failover() -> None:
    if not CLUSTER_DIR or not os.path.isdir("/proc"):
        pytest.skip("needs LUIGI_CLUSTER_DIR (luigi-cluster-demo exec) and /proc")
    with connect(timeout=15.0) as c:
        for i in range(20):
            c.put(key(f"failover/{i}"), str(i).encode())
        old = _leader(c)
        found = _node_process(old)
        if found is None:
            pytest.skip(f"cannot find the process of node {old} under {CLUSTER_DIR}")
        pid, argv = found
        os.kill(pid, signal.SIGKILL)
        try:
            started = time.monotonic()
            c.put(key("failover/after"), b"written after the leader died")
            failover = time.monotonic() - started
            assert failover < 15.0
            assert c.get(key("failover/after")) == b"written after the leader died"
            for i in range(20):  # every acknowledged write survived
                assert c.get(key(f"failover/{i}")) == str(i).encode()
            assert c.cas(key("failover/0"), b"0", b"zero") is True
            new = _leader(c)
            assert new != old
        finally:
            # Restart the killed node as it ran (it rejoins from its data dir).
            with open(os.path.join(CLUSTER_DIR, f"node-{old}.log"), "ab") as log:
                _restarted.append(
                    subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
                )
    # The restarted node answers and catches up.
    endpoint = argv[argv.index("--listen") + 1]
    with connect(endpoints=endpoint, timeout=15.0) as back:
        deadline = time.monotonic() + 20
        while True:
            try:
                status = back.status(timeout=2.0)
                if status["node"] == old and status["groups"][0].get("leader"):
                    break
            except ln.LuigiTimeoutError:
                pass
            assert time.monotonic() < deadline, "the restarted node did not come back"
            time.sleep(0.1)
        assert back.get(key("failover/0")) == b"zero"  # through the leader it names
