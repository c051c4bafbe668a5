"""luigi_node.Client against a live luigi-node cluster.

Needs a running cluster, named by LUIGI_ENDPOINTS, LUIGI_CLUSTER_ID and
LUIGI_CLUSTER_SECRET: `luigi-cluster-demo exec -- <command>` starts 3
luigi-node processes (one key-value group, 1, one replica group,
REPLICA_GROUP_BASE + 1 = 1001, and 2 watermark shards, groups 2001 and
2002) and sets them. Tests/python/run.sh
runs this module that way when LUIGI_CLUSTER_RUNNER names luigi-cluster-demo
(make test-python does). Without a cluster every test FAILS with a message
saying so, unless LUIGI_CLIENT_TESTS_OPTIONAL=1, which skips the module.
"""

from __future__ import annotations

import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
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
GROUP = ln.REPLICA_GROUP_BASE + 1  # the replica group luigi-cluster-demo exec runs
SHARDS = 2  # the watermark shards it runs; shard s is Raft group 2001 + s
SHARD_GROUPS = [2001 + s for s in range(SHARDS)]
NODES = [node.strip() for node in ENDPOINTS.split(",") if node.strip()]  # one host:port each

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


Unreached = tuple[ln.Client, socket.socket]


@pytest.fixture(scope="module")
def unreached(cluster: None) -> Iterator[Unreached]:
    """A Client whose only endpoint is a socket listening here that nothing
    accepts from, and that socket. Connecting to it completes in the kernel
    (the connection waits in its backlog), so after a call returns,
    listener.accept() finds a connection exactly when the call went to the
    network; a call that sent a request there could only time out."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        with connect(endpoints=f"127.0.0.1:{port}", timeout=2.0) as c:
            yield c, listener


def refused_before_sending(
    unreached: Unreached, call: Callable[[ln.Client], object], error: type[BaseException]
) -> None:
    """`call` raises exactly `error` (not a subclass, not a timeout) without
    connecting to the client's endpoint: it was refused before any network I/O."""
    c, listener = unreached
    with pytest.raises(error) as info:
        call(c)
    assert type(info.value) is error, f"{type(info.value).__name__}: {info.value}"
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return  # nothing connected
    conn.close()
    raise AssertionError(f"the refused call connected to its endpoint first: {call!r}")


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
    # the key-value group 1, the replica group REPLICA_GROUP_BASE + 1, the shards
    assert isinstance(groups, list) and [g["group"] for g in groups] == [1, 1001, *SHARD_GROUPS]
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
    with pytest.raises(ln.LuigiTimeoutError) as info:
        client.get(key("g2"), group=2, timeout=0.3)
    # The call's own deadline ended it: a timeout, not a refusal or another error.
    assert type(info.value) is ln.LuigiTimeoutError
    assert isinstance(info.value, TimeoutError)
    assert "LUIGI_ERR_TIMEOUT" in str(info.value)
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
        for call in (
            lambda: impostor.get(k),
            lambda: impostor.put(k, b"intruder"),
            lambda: impostor.cas(k, None, b"intruder"),
            lambda: impostor.delete(k),
            lambda: impostor.status(),
            lambda: impostor.commit([("add", k, 1)], group=GROUP),
            lambda: impostor.coordinate([("set", k, 1)], group=GROUP),
            lambda: impostor.value(k, group=GROUP),
            lambda: impostor.value(k, group=GROUP, endpoint=NODES[0]),
            lambda: impostor.remove_member(99),
        ):
            with pytest.raises(ln.AuthError) as info:
                call()
            # Reported as a refusal, not as a timeout (AuthError is no TimeoutError).
            assert type(info.value) is ln.AuthError
            assert isinstance(info.value, ln.LuigiError)
            assert "LUIGI_ERR_AUTH" in str(info.value)
    assert client.get(k) is None  # nothing was written
    assert client.value(k, group=GROUP) is None


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
    client: ln.Client,
    unreached: Unreached,
    call: Callable[[Any, Any], object],
    error: type[BaseException],
) -> None:
    k = key("bad-args")
    client.put(k, b"original")
    refused_before_sending(unreached, lambda c: call(c, k), error)
    with pytest.raises(error) as info:
        call(client, k)
    assert type(info.value) is error
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
        lambda: c.commit([("add", key("ctx"), 1)], group=GROUP),
        lambda: c.coordinate([("add", key("ctx"), 1)], group=GROUP),
        lambda: c.value(key("ctx"), group=GROUP),
        lambda: c.add_member(9, "127.0.0.1:1"),
        lambda: c.remove_member(99),
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


@contextmanager
def _switching_only_when_blocked() -> Iterator[None]:
    """Python threads switch only where the running one blocks or releases
    the GIL (waiting on a lock or an Event, inside a Client call, at its
    end), never between two bytecodes: what the threads' flags record then
    follows from the order of the code, not from where the scheduler
    happened to preempt a thread. (A switch interval, not a measurement.)"""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _assert_calls_release_the_gil(calls: list[Callable[[], object]]) -> None:
    """Runs each call (one that blocks until its timeout) in a thread of its
    own while another thread counts to 100000 once all of them have started,
    and checks that the count finished while none had returned. A thread
    sets its `started` and goes straight into its call (no preemption), so
    a call that held the GIL while it blocked would stop every other thread
    until it returned: the counter could then only run after a return."""
    lock = threading.Lock()
    started = returned = 0
    all_started = threading.Event()
    returned_when_counted: list[int] = []

    def count() -> None:
        all_started.wait()
        ticks = 0
        while ticks < 100_000:
            ticks += 1
        with lock:
            returned_when_counted.append(returned)

    def body(n: int) -> None:
        nonlocal started, returned
        with lock:
            started += 1
            if started == len(calls):
                all_started.set()
        with pytest.raises(ln.LuigiTimeoutError):
            calls[n]()
        with lock:
            returned += 1

    with _switching_only_when_blocked():
        counter = threading.Thread(target=count)
        counter.start()
        try:
            _run_threads(len(calls), body)
        finally:
            all_started.set()  # the counter ends even when a thread failed early
            counter.join()
    assert returned == len(calls)
    assert returned_when_counted == [0], (
        f"the counter only ran after {returned_when_counted} of {len(calls)} calls returned: "
        "a blocked call held the GIL"
    )


def test_calls_release_the_gil() -> None:
    """Four clients each wait for a group that does not exist, at once, and
    another Python thread counts while all four are blocked."""
    clients = [connect() for _ in range(4)]
    _assert_calls_release_the_gil(
        [partial(c.get, key("gil"), group=2, timeout=0.5) for c in clients]
    )
    for c in clients:
        c.close()


def test_one_client_serialises_its_callers() -> None:
    """Two threads on one Client: the second call waits for the first (the
    C handle takes one thread at a time), with the GIL released.

    The first thread goes straight from setting `first_entered` into its
    call, which takes the Client's lock before it releases the GIL, so the
    second call starts while the first holds the handle. Both wait for a
    group no node runs, the second for less time than the first: run side
    by side, the second would return while the first still waits; run in
    turn, it returns only after the first has."""
    shared = connect(timeout=10.0)
    k = key("serial")
    first_entered = threading.Event()
    first_returned = threading.Event()
    second_saw_first_returned: list[bool] = []

    def body(n: int) -> None:
        if n == 0:
            first_entered.set()
            with pytest.raises(ln.LuigiTimeoutError):
                shared.get(k, group=2, timeout=1.0)
            first_returned.set()
        else:
            first_entered.wait()
            with pytest.raises(ln.LuigiTimeoutError):
                shared.get(k, group=2, timeout=0.5)
            second_saw_first_returned.append(first_returned.is_set())
            # and the handle serves the next call normally
            shared.put(k, b"after both")
            assert shared.get(k) == b"after both"

    with _switching_only_when_blocked():
        _run_threads(2, body)
    assert second_saw_first_returned == [True], "the two calls ran side by side"
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


# ------------------------------------------------------------------ replica groups
# luigi-cluster-demo exec runs one replica group, REPLICA_GROUP_BASE + 1, on
# every node. commit() runs on the node the client reaches and spreads by
# anti-entropy, so a test commits through clients pinned to one node each and
# polls value(..., endpoint=node) on every node until they agree.

CONVERGE_WITHIN = 30.0  # seconds; a generous polling deadline (it takes well under 1 s)


@pytest.fixture(scope="module")
def pinned(cluster: None) -> Iterator[list[ln.Client]]:
    """A Client per node, each with that node as its only endpoint."""
    clients = [connect(endpoints=node, timeout=10.0) for node in NODES]
    yield clients
    for c in clients:
        c.close()


def values_on_every_node(client: ln.Client, k: str) -> list[object]:
    return [client.value(k, group=GROUP, endpoint=node) for node in NODES]


def converge(client: ln.Client, k: str, expected: object) -> None:
    """Polls k on every node until each holds `expected` (of its type: 1 is
    not 1.0 here), failing after CONVERGE_WITHIN seconds."""
    deadline = time.monotonic() + CONVERGE_WITHIN
    while True:
        seen = values_on_every_node(client, k)
        if all(type(v) is type(expected) and v == expected for v in seen):
            return
        assert time.monotonic() < deadline, f"{k}: {seen!r} on {NODES}, expected {expected!r}"
        time.sleep(0.02)


def test_the_replica_group_constant_and_status(client: ln.Client) -> None:
    assert ln.REPLICA_GROUP_BASE == 1000
    assert "REPLICA_GROUP_BASE" in ln.__all__ and "ReplicaOp" in ln.__all__
    groups = {g["group"]: g for g in client.status()["groups"]}
    assert GROUP in groups and sorted(groups[GROUP]["voters"]) == [1, 2, 3]
    assert len(NODES) == 3


def test_commits_on_every_node_converge(client: ln.Client, pinned: list[ln.Client]) -> None:
    views, who, top, low = key("rg/views"), key("rg/who"), key("rg/top"), key("rg/low")
    dots = []
    for i, p in enumerate(pinned):
        dot = p.commit(
            [
                ("add", views, 10 * (i + 1)),
                ("union", who, NODES[i]),
                ("union", who, NODES[i].encode()),
                ("union", who, -i),
                ("max", top, i * 1.5),
                ("min", low, -i),
            ],
            group=GROUP,
        )
        assert isinstance(dot, tuple) and len(dot) == 2
        origin, seq = dot
        assert origin >= 1 and seq >= 1
        dots.append(dot)
    assert len({origin for origin, _ in dots}) == 3  # each node commits as its own origin
    converge(client, views, 60)
    converge(client, who, frozenset([*NODES, *(n.encode() for n in NODES), 0, -1, -2]))
    converge(client, top, 3.0)
    converge(client, low, -2)
    assert client.value(views, group=GROUP) == 60  # the first node that answers


def test_counter_totals_beyond_64_bits(client: ln.Client, pinned: list[ln.Client]) -> None:
    k = key("rg/huge")
    for p in pinned:  # each node's contribution fits int64; their total does not
        p.commit([("add", k, 2**63 - 1)], group=GROUP)
    converge(client, k, 3 * (2**63 - 1))
    neg = key("rg/huge-negative")
    for p in pinned:
        p.commit([("add", neg, -(2**63))], group=GROUP)
    converge(client, neg, -3 * 2**63)


def test_value_of_an_absent_key_is_none(client: ln.Client) -> None:
    k = key("rg/absent")
    assert client.value(k, group=GROUP) is None
    assert values_on_every_node(client, k) == [None, None, None]


def test_commit_with_a_set_is_not_algebraic(client: ln.Client, pinned: list[ln.Client]) -> None:
    k = key("rg/not-algebraic")
    with pytest.raises(ln.NotAlgebraicError) as info:
        client.commit([("set", k, 7)], group=GROUP)
    assert isinstance(info.value, TypeError)
    with pytest.raises(ln.NotAlgebraicError):  # with algebraic ops too: all or nothing
        pinned[0].commit([("add", k + "/other", 1), ("set", k, 7)], group=GROUP)
    assert values_on_every_node(client, k) == [None, None, None]
    assert values_on_every_node(client, k + "/other") == [None, None, None]


def test_coordinate_sets_a_register_on_every_node(client: ln.Client) -> None:
    mode, hits = key("rg/mode"), key("rg/mode-hits")
    coordinate: Any = client.coordinate  # typed as returning None: check that it does
    assert coordinate([("set", mode, 7)], group=GROUP) is None
    converge(client, mode, 7)
    client.coordinate([("set", mode, 2.5), ("add", hits, 5)], group=GROUP)
    converge(client, mode, 2.5)  # the register now holds a float
    converge(client, hits, 5)
    client.coordinate([("add", hits, 1)], group=GROUP)  # algebraic ops go through the log too
    converge(client, hits, 6)


def test_a_type_conflict_on_a_pinned_node(client: ln.Client, pinned: list[ln.Client]) -> None:
    k = key("rg/typed")
    p = pinned[1]
    p.commit([("add", k, 1)], group=GROUP)  # this node knows k as a counter now
    conflicting: list[list[ln.ReplicaOp]] = [
        [("max", k, 1)],
        [("union", k, "x")],
        [("add", key("rg/typed-other"), 1), ("min", k, 1)],  # all or nothing
    ]
    for ops in conflicting:
        with pytest.raises(ln.TypeConflictError) as info:
            p.commit(ops, group=GROUP)
        assert isinstance(info.value, TypeError)
    converge(client, k, 1)
    assert client.value(key("rg/typed-other"), group=GROUP, endpoint=NODES[1]) is None
    # Through the log: every replica knows k as a counter by now, so all reject it.
    with pytest.raises(ln.TypeConflictError):
        client.coordinate([("set", k, 5)], group=GROUP)
    converge(client, k, 1)


def test_a_counter_overflow_on_a_pinned_node(client: ln.Client, pinned: list[ln.Client]) -> None:
    k = key("rg/overflow")
    p = pinned[2]
    p.commit([("add", k, 2**63 - 1)], group=GROUP)
    with pytest.raises(ln.LuigiOverflowError) as info:
        p.commit([("add", k, 1)], group=GROUP)  # this node's contribution would overflow
    assert isinstance(info.value, OverflowError)
    converge(client, k, 2**63 - 1)


@settings(max_examples=20)
@given(deltas=st.lists(st.integers(-(2**61), 2**61), min_size=1, max_size=6))
def test_counter_deltas_converge_to_their_sum(
    client: ln.Client, pinned: list[ln.Client], deltas: list[int]
) -> None:
    k = key(f"rg/sum/{uuid.uuid4().hex}")
    for i, delta in enumerate(deltas):
        pinned[i % len(pinned)].commit([("add", k, delta)], group=GROUP)
    converge(client, k, sum(deltas))


def test_commits_from_threads_converge(client: ln.Client) -> None:
    k = key("rg/threads")
    shared = connect(timeout=10.0)

    def body(n: int) -> None:
        with connect(endpoints=NODES[n % len(NODES)], timeout=10.0) as mine:
            for _ in range(10):
                mine.commit([("add", k, 1)], group=GROUP)
                shared.commit([("add", k, 1)], group=GROUP)  # one Client, four threads

    _run_threads(4, body)
    shared.close()
    converge(client, k, 80)


def test_replica_calls_release_the_gil() -> None:
    """Four clients each wait for a replica group no node runs, at once, and
    another Python thread counts while all four are blocked."""
    clients = [connect() for _ in range(4)]
    _assert_calls_release_the_gil(
        [partial(c.value, key("rg/gil"), group=GROUP + 1, timeout=0.5) for c in clients]
    )
    for c in clients:
        c.close()


def test_a_replica_group_the_nodes_do_not_run(client: ln.Client) -> None:
    k = key("rg/missing-group")
    # The node refuses it (it runs no such group): nothing committed, said at once.
    with pytest.raises(ln.TransactionStateError):
        client.commit([("add", k, 1)], group=GROUP + 1, timeout=0.5)
    with pytest.raises(ln.LuigiTimeoutError):
        client.value(k, group=GROUP + 1, timeout=0.3)
    with pytest.raises(ln.LuigiError):  # a pinned read says so at once
        client.value(k, group=GROUP + 1, endpoint=NODES[0], timeout=2.0)


_OPS_CASES: list[tuple[Callable[[str], Any], type[BaseException]]] = [
    (lambda k: [], ln.LuigiValueError),
    (lambda k: (), ln.LuigiValueError),
    (lambda k: "add", TypeError),
    (lambda k: b"add", TypeError),
    (lambda k: 5, TypeError),
    (lambda k: None, TypeError),
    (lambda k: ("add", k, 1), TypeError),  # one op, not wrapped in a list
    (lambda k: [["add", k, 1]], TypeError),  # an op is a tuple
    (lambda k: [()], ln.LuigiValueError),
    (lambda k: [("nope", k, 1)], ln.LuigiValueError),
    (lambda k: [("ADD", k, 1)], ln.LuigiValueError),
    (lambda k: [(1, k, 1)], TypeError),
    (lambda k: [("add", k)], ln.LuigiValueError),
    (lambda k: [("add", k, 1, 2)], ln.LuigiValueError),
    (lambda k: [("union", k, 1, 2)], ln.LuigiValueError),
    (lambda k: [("add", k.encode(), 1)], TypeError),
    (lambda k: [("add", None, 1)], TypeError),
    (lambda k: [("add", "", 1)], ln.LuigiValueError),
    (lambda k: [("add", "k" * (MAX_KEY + 1), 1)], ln.LuigiValueError),
    (lambda k: [("add", "\ud800", 1)], UnicodeEncodeError),
    (lambda k: [("add", k, 1.0)], TypeError),
    (lambda k: [("add", k, "1")], TypeError),
    (lambda k: [("add", k, None)], TypeError),
    (lambda k: [("add", k, True)], TypeError),
    (lambda k: [("add", k, 2**63)], ln.LuigiOverflowError),
    (lambda k: [("add", k, -(2**63) - 1)], ln.LuigiOverflowError),
    (lambda k: [("max", k, math.nan)], ln.LuigiValueError),
    (lambda k: [("min", k, -math.nan)], ln.LuigiValueError),
    (lambda k: [("set", k, math.nan)], ln.LuigiValueError),
    (lambda k: [("max", k, "3")], TypeError),
    (lambda k: [("max", k, None)], TypeError),
    (lambda k: [("min", k, False)], TypeError),
    (lambda k: [("set", k, b"1")], TypeError),
    (lambda k: [("max", k, 2**63)], ln.LuigiOverflowError),
    (lambda k: [("union", k, [1, 2])], TypeError),  # one element per union op
    (lambda k: [("union", k, {"a"})], TypeError),
    (lambda k: [("union", k, 1.5)], TypeError),
    (lambda k: [("union", k, True)], TypeError),
    (lambda k: [("union", k, bytearray(b"x"))], TypeError),
    (lambda k: [("union", k, None)], TypeError),
    (lambda k: [("union", k, 2**63)], ln.LuigiOverflowError),
    (lambda k: [("add", k, 1), ("max", k, 1)], ln.TypeConflictError),  # two types on one key
    (lambda k: [("add", k, 1), ("oops", k, 1)], ln.LuigiValueError),  # a bad op anywhere
    (lambda k: [("add", k, 1)] * 10_001, ln.LuigiValueError),  # at most 10000 ops
]


@pytest.mark.parametrize("method", ["commit", "coordinate"])
@pytest.mark.parametrize("make_ops, error", _OPS_CASES)
def test_bad_ops_raise_and_commit_nothing(
    client: ln.Client,
    unreached: Unreached,
    method: str,
    make_ops: Callable[[str], Any],
    error: type[BaseException],
) -> None:
    k = key("rg/bad-ops")
    refused_before_sending(unreached, lambda c: getattr(c, method)(make_ops(k), group=GROUP), error)
    with pytest.raises(error) as info:
        getattr(client, method)(make_ops(k), group=GROUP)
    assert type(info.value) is error
    assert client.value(k, group=GROUP) is None


def test_ops_may_be_any_iterable_and_at_most_10000(client: ln.Client) -> None:
    k = key("rg/iterable")
    client.commit((("add", k, i) for i in range(10_000)), group=GROUP)  # a generator
    converge(client, k, sum(range(10_000)))


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda c, k: c.commit([("add", k, 1)], group=ln.REPLICA_GROUP_BASE), ln.LuigiValueError),
        (lambda c, k: c.commit([("add", k, 1)], group=1), ln.LuigiValueError),
        (lambda c, k: c.commit([("add", k, 1)], group=0), ln.LuigiValueError),
        (lambda c, k: c.commit([("add", k, 1)], group=-1), ln.LuigiOverflowError),
        (lambda c, k: c.commit([("add", k, 1)], group=2**64), ln.LuigiOverflowError),
        (lambda c, k: c.commit([("add", k, 1)], group=None), TypeError),
        (lambda c, k: c.commit([("add", k, 1)], group=True), TypeError),
        (lambda c, k: c.commit([("add", k, 1)], group="1001"), TypeError),
        (lambda c, k: c.commit([("add", k, 1)], group=1001.0), TypeError),
        (lambda c, k: c.commit([("add", k, 1)]), TypeError),  # group is required
        (lambda c, k: c.commit([("add", k, 1)], GROUP), TypeError),  # and keyword-only
        (lambda c, k: c.commit([("add", k, 1)], group=GROUP, timeout=0), ln.LuigiValueError),
        (lambda c, k: c.commit([("add", k, 1)], group=GROUP, timeout="1"), TypeError),
        (lambda c, k: c.commit([("add", k, 1)], group=GROUP, nope=1), TypeError),
        (lambda c, k: c.coordinate([("add", k, 1)], group=GROUP - 1), ln.LuigiValueError),
        (lambda c, k: c.coordinate([("add", k, 1)]), TypeError),
        (lambda c, k: c.coordinate([("add", k, 1)], group=GROUP, timeout=-1), ln.LuigiValueError),
        (lambda c, k: c.value(k, group=ln.REPLICA_GROUP_BASE), ln.LuigiValueError),
        (lambda c, k: c.value(k, group=1), ln.LuigiValueError),
        (lambda c, k: c.value(k), TypeError),
        (lambda c, k: c.value(k, group=GROUP, timeout=math.inf), ln.LuigiValueError),
        (lambda c, k: c.value(k.encode(), group=GROUP), TypeError),
        (lambda c, k: c.value("", group=GROUP), ln.LuigiValueError),
        (lambda c, k: c.value("k" * (MAX_KEY + 1), group=GROUP), ln.LuigiValueError),
        (lambda c, k: c.value(k, group=GROUP, endpoint=7001), TypeError),
        (lambda c, k: c.value(k, group=GROUP, endpoint=NODES[0].encode()), TypeError),
        (lambda c, k: c.value(k, group=GROUP, endpoint=""), ln.LuigiValueError),
        (lambda c, k: c.value(k, group=GROUP, endpoint="no-port"), ln.LuigiValueError),
    ],
)
def test_bad_replica_arguments_raise(
    client: ln.Client,
    unreached: Unreached,
    call: Callable[[Any, Any], object],
    error: type[BaseException],
) -> None:
    k = key("rg/bad-args")
    refused_before_sending(unreached, lambda c: call(c, k), error)
    with pytest.raises(error) as info:
        call(client, k)
    assert type(info.value) is error
    assert client.value(k, group=GROUP) is None


# ------------------------------------------------------------------ sharded transactions
# luigi-cluster-demo exec runs SHARDS watermark shards on every node; every
# node coordinates the transactions it receives. Keys carry the run's prefix.


@pytest.fixture(scope="module")
def sharded(client: ln.Client) -> ln.Client:
    """The module's client, once the shards serve: their Raft groups elect
    leaders beside group 1's, so a read-only transaction (harmless to send
    again) is retried until one commits."""
    for _ in range(10):
        try:
            assert client.transact([("read", 0, key("txn/ready"))]).committed
            return client
        except ln.LuigiTimeoutError:
            pass
    raise AssertionError("the watermark shards did not serve a transaction")


def _read(c: ln.Client, *keys: tuple[int, str]) -> dict[tuple[int, str], Optional[int]]:
    """The values of `keys` ((shard, key) pairs), read in one transaction."""
    r = c.transact([("read", shard, k) for shard, k in keys])
    assert r.committed
    return r.reads


def test_transact_round_trip(sharded: ln.Client) -> None:
    a, b = key("txn/a"), key("txn/b")
    r = sharded.transact([("write", 0, a, 100), ("write", 1, b, -5)])
    assert isinstance(r, ln.TxnResult) and r.committed is True
    assert isinstance(r.ts, int) and r.ts > 0 and r.reads == {}
    assert _read(sharded, (0, a), (1, b), (1, a)) == {(0, a): 100, (1, b): -5, (1, a): None}
    # A shard's ops run in order; a key read twice keeps its last read, and a
    # check reads too. Any iterable of op tuples will do.
    ops: list[ln.TxnOp] = [
        ("check", 0, a, 100),
        ("add", 0, a, 1),
        ("read", 0, a),
        ("add", 1, b, 5),
    ]
    r = sharded.transact(op for op in ops)
    assert r.committed and r.reads == {(0, a): 101}
    assert _read(sharded, (0, a), (1, b)) == {(0, a): 101, (1, b): 0}


def test_an_aborted_transaction_changes_no_shard(sharded: ln.Client) -> None:
    a, b = key("txn/abort-a"), key("txn/abort-b")
    assert sharded.transact([("write", 0, a, 5), ("write", 1, b, 7)]).committed
    # shard 1's check fails: shard 0's write does not take effect either
    r = sharded.transact([("write", 0, a, 99), ("check", 1, b, 8), ("write", 1, b, 0)])
    assert isinstance(r, ln.TxnResult) and r.committed is False
    assert _read(sharded, (0, a), (1, b)) == {(0, a): 5, (1, b): 7}
    # an add that would overflow aborts too (an abort is a result, not an error)
    assert sharded.transact([("write", 0, a, 2**63 - 1)]).committed
    assert not sharded.transact([("write", 1, b, 0), ("add", 0, a, 1)]).committed
    assert not sharded.transact([("add", 1, b, -(2**63)), ("add", 1, b, -(2**63))]).committed
    assert _read(sharded, (0, a), (1, b)) == {(0, a): 2**63 - 1, (1, b): 7}


def test_transfers_from_threads_keep_the_total(sharded: ln.Client) -> None:
    """Threads, each with its own client (starting on a different node),
    move money between accounts on both shards with checked transfers while
    a reader sums every account in one transaction. Every sum is the total,
    no balance goes negative, and each final balance is the start plus the
    committed transfers in and out (adds commute, so their order does not
    matter)."""
    accounts = [(n % SHARDS, key(f"txn/bank/{n}")) for n in range(6)]
    start, writers, transfers = 100, 4, 12
    assert sharded.transact([("write", shard, k, start) for shard, k in accounts]).committed
    total = start * len(accounts)
    moved: list[tuple[int, int, int]] = []  # (from, to, amount) of committed transfers
    aborted = 0
    sums: list[int] = []
    lock = threading.Lock()

    def body(n: int) -> None:
        nonlocal aborted
        nodes = NODES[n % len(NODES) :] + NODES[: n % len(NODES)]
        with connect(endpoints=nodes, timeout=30.0) as mine:
            if n == writers:  # the reader
                for _ in range(transfers):
                    reads = _read(mine, *accounts)
                    with lock:
                        sums.append(sum(v or 0 for v in reads.values()))
                    assert all(v is not None and v >= 0 for v in reads.values()), reads
                return
            rng = random.Random(n)
            for _ in range(transfers):
                i, j = rng.sample(range(len(accounts)), 2)
                amount = rng.randint(1, 80)
                (si, ki), (sj, kj) = accounts[i], accounts[j]
                r = mine.transact(
                    [("check", si, ki, amount), ("add", si, ki, -amount), ("add", sj, kj, amount)]
                )
                with lock:
                    if r.committed:
                        moved.append((i, j, amount))
                    else:
                        aborted += 1

    _run_threads(writers + 1, body)
    assert len(moved) + aborted == writers * transfers and moved
    assert sums and all(total_seen == total for total_seen in sums), sums
    expected = [start] * len(accounts)
    for i, j, amount in moved:
        expected[i] -= amount
        expected[j] += amount
    final = _read(sharded, *accounts)
    assert [final[account] for account in accounts] == expected
    assert sum(expected) == total and min(expected) >= 0


def test_a_shard_the_cluster_does_not_run(sharded: ln.Client) -> None:
    k = key("txn/no-shard")
    # The node refuses it (its coordinator runs SHARDS shards): nothing applies.
    with pytest.raises(ln.LuigiValueError):
        sharded.transact([("write", 0, k, 1), ("write", SHARDS, k, 1)])
    assert _read(sharded, (0, k)) == {(0, k): None}


_TXN_CASES: list[tuple[Callable[[str], Any], type[BaseException]]] = [
    (lambda k: [], ln.LuigiValueError),
    (lambda k: (), ln.LuigiValueError),
    (lambda k: "read", TypeError),
    (lambda k: b"read", TypeError),
    (lambda k: 5, TypeError),
    (lambda k: None, TypeError),
    (lambda k: ("read", 0, k), TypeError),  # one op, not wrapped in a list
    (lambda k: [["read", 0, k]], TypeError),  # an op is a tuple
    (lambda k: [()], ln.LuigiValueError),
    (lambda k: [("nope", 0, k)], ln.LuigiValueError),
    (lambda k: [("READ", 0, k)], ln.LuigiValueError),
    (lambda k: [(1, 0, k)], TypeError),
    (lambda k: [("read", 0)], ln.LuigiValueError),
    (lambda k: [("read", 0, k, 1)], ln.LuigiValueError),
    (lambda k: [("write", 0, k)], ln.LuigiValueError),
    (lambda k: [("check", 0, k, 1, 2)], ln.LuigiValueError),
    (lambda k: [("write", 0, k.encode(), 1)], TypeError),
    (lambda k: [("write", 0, None, 1)], TypeError),
    (lambda k: [("write", 0, "k" * 1025, 1)], ln.LuigiValueError),  # keys: at most 1024 bytes
    (lambda k: [("write", 0, "\ud800", 1)], UnicodeEncodeError),
    (lambda k: [("write", 0, k, True)], TypeError),  # bool is refused as an int
    (lambda k: [("check", 0, k, False)], TypeError),
    (lambda k: [("write", True, k, 1)], TypeError),
    (lambda k: [("read", False, k)], TypeError),
    (lambda k: [("write", 0, k, 1.0)], TypeError),
    (lambda k: [("write", 0, k, "1")], TypeError),
    (lambda k: [("write", 0, k, None)], TypeError),
    (lambda k: [("write", 1.0, k, 1)], TypeError),
    (lambda k: [("write", "0", k, 1)], TypeError),
    (lambda k: [("write", 0, k, 2**63)], ln.LuigiOverflowError),
    (lambda k: [("add", 0, k, -(2**63) - 1)], ln.LuigiOverflowError),
    (lambda k: [("write", -1, k, 1)], ln.LuigiOverflowError),
    (lambda k: [("write", 2**64, k, 1)], ln.LuigiOverflowError),
    (lambda k: [("write", 2**16, k, 1)], ln.LuigiValueError),  # shards are below 2**16
    (lambda k: [("write", 0, k, 1), ("oops", 0, k, 1)], ln.LuigiValueError),  # a bad op anywhere
    (lambda k: [("write", 0, k, 1)] * 4097, ln.LuigiValueError),  # at most 4096 ops per shard
]


@pytest.mark.parametrize("make_ops, error", _TXN_CASES)
def test_bad_transactions_raise_and_change_nothing(
    sharded: ln.Client,
    unreached: Unreached,
    make_ops: Callable[[str], Any],
    error: type[BaseException],
) -> None:
    k = key("txn/bad")
    refused_before_sending(unreached, lambda c: c.transact(make_ops(k)), error)
    with pytest.raises(error) as info:
        sharded.transact(make_ops(k))
    assert type(info.value) is error
    assert _read(sharded, (0, k), (1, k)) == {(0, k): None, (1, k): None}


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda c, ops: c.transact(ops, timeout=0), ln.LuigiValueError),
        (lambda c, ops: c.transact(ops, timeout=-1.0), ln.LuigiValueError),
        (lambda c, ops: c.transact(ops, timeout=600.5), ln.LuigiValueError),
        (lambda c, ops: c.transact(ops, timeout=math.nan), ln.LuigiValueError),
        (lambda c, ops: c.transact(ops, timeout="1"), TypeError),
        (lambda c, ops: c.transact(ops, 1.0), TypeError),  # timeout is keyword-only
        (lambda c, ops: c.transact(ops, group=1), TypeError),  # no group: shards are in the ops
        (lambda c, ops: c.transact(), TypeError),
    ],
)
def test_bad_transact_arguments_raise(
    sharded: ln.Client,
    unreached: Unreached,
    call: Callable[[Any, Any], object],
    error: type[BaseException],
) -> None:
    k = key("txn/bad-args")
    ops = [("write", 0, k, 1)]
    refused_before_sending(unreached, lambda c: call(c, ops), error)
    with pytest.raises(error):
        call(sharded, ops)
    assert _read(sharded, (0, k)) == {(0, k): None}


def test_transact_on_a_closed_client() -> None:
    c = connect()
    c.close()
    with pytest.raises(ln.TransactionStateError):
        c.transact([("read", 0, key("txn/closed"))])


def test_transact_releases_the_gil_and_times_out() -> None:
    """Four clients whose endpoint never answers (a socket listening here
    that nothing accepts from) each wait in transact until their deadline:
    LuigiTimeoutError (a TimeoutError; the outcome is unknown), with the GIL
    released meanwhile. Nothing is measured in wall-clock time."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        port = listener.getsockname()[1]
        clients = [connect(endpoints=f"127.0.0.1:{port}") for _ in range(4)]
        _assert_calls_release_the_gil(
            [partial(c.transact, [("add", 0, key("txn/gil"), 1)], timeout=0.5) for c in clients]
        )
        with pytest.raises(TimeoutError):
            clients[0].transact([("read", 0, key("txn/gil"))], timeout=0.2)
        for c in clients:
            c.close()


# ------------------------------------------------------------------ membership
# Adding a real node needs a new luigi-node process (serve --join); the Swift
# tests do that. Here: the idempotent no-op and the refusals.


ALL_VOTERS = {group: [1, 2, 3] for group in [1, GROUP, *SHARD_GROUPS]}


def _voters(client: ln.Client) -> dict[int, list[int]]:
    return {g["group"]: sorted(g["voters"]) for g in client.status()["groups"]}


def test_removing_a_non_member_is_a_no_op(client: ln.Client) -> None:
    before = _voters(client)
    remove_member: Any = client.remove_member  # typed as returning None: check that it does
    assert remove_member(99) is None
    assert remove_member(99) is None  # idempotent
    assert remove_member(99, group=1, timeout=5.0) is None
    assert remove_member(99, group=GROUP) is None  # a replica group's Raft log
    assert _voters(client) == before == ALL_VOTERS


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda c: c.add_member(0, "127.0.0.1:1"), ln.LuigiValueError),
        (lambda c: c.add_member(9, ""), ln.LuigiValueError),
        (lambda c: c.add_member(9, "no-port"), ln.LuigiValueError),  # the leader refuses it
        (lambda c: c.add_member(9, "host:notaport"), ln.LuigiValueError),
        (lambda c: c.add_member(9, "h" * 301 + ":1"), ln.LuigiValueError),
        (lambda c: c.add_member(9, b"127.0.0.1:1"), TypeError),
        (lambda c: c.add_member(9, None), TypeError),
        (lambda c: c.add_member(True, "127.0.0.1:1"), TypeError),
        (lambda c: c.add_member("9", "127.0.0.1:1"), TypeError),
        (lambda c: c.add_member(-1, "127.0.0.1:1"), ln.LuigiOverflowError),
        (lambda c: c.add_member(2**64, "127.0.0.1:1"), ln.LuigiOverflowError),
        (lambda c: c.add_member(9, "127.0.0.1:1", group=0), ln.LuigiValueError),
        (lambda c: c.add_member(9, "127.0.0.1:1", group=True), TypeError),
        (lambda c: c.add_member(9, "127.0.0.1:1", timeout=0), ln.LuigiValueError),
        (lambda c: c.add_member(9, "127.0.0.1:1", 1), TypeError),  # group is keyword-only
        (lambda c: c.add_member(9), TypeError),
        (lambda c: c.remove_member(0), ln.LuigiValueError),
        (lambda c: c.remove_member(True), TypeError),
        (lambda c: c.remove_member(None), TypeError),
        (lambda c: c.remove_member(-1), ln.LuigiOverflowError),
        (lambda c: c.remove_member(99, group=0), ln.LuigiValueError),
        (lambda c: c.remove_member(99, timeout=601), ln.LuigiValueError),
        (lambda c: c.remove_member(99, 1), TypeError),
    ],
)
def test_bad_membership_arguments_raise_and_change_nothing(
    client: ln.Client, call: Callable[[Any], object], error: type[BaseException]
) -> None:
    with pytest.raises(error):
        call(client)
    assert _voters(client) == ALL_VOTERS


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
        "commit on replica group 1001 -> dot (",
        "the counter on each node: [5, 5, 5]",
        "the set: frozenset({'python'})",
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
            # Returns rather than raising LuigiTimeoutError at the client's
            # deadline: the client found the new leader.
            c.put(key("failover/after"), b"written after the leader died")
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
