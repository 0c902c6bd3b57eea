"""RedisStore against real Redis servers: 127.0.0.1:6379, a closed port, servers of its own (hung,
TLS, behind Sentinel) and one that never answers; the cluster is in test_redis_cluster.py."""

from __future__ import annotations

import asyncio
import importlib
import logging
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from benchmarks.redis_servers import (
    answers,
    free_ports,
    redis_server,
    sentinel_for,
    silent_server,
    tls_files,
)
from fastapi_serdes._types import Store
from fastapi_serdes.cache import redis_client, redis_store
from fastapi_serdes.cache.redis_store import RedisStore

pytestmark = pytest.mark.redis

URL = "redis://127.0.0.1:6379/0"
#: The timeout of stores whose tests are about what they do, not about a slow Redis: on a loaded
#: machine the shared server itself may not be scheduled for 50 ms (issue 15).
GENEROUS = 5.0


@pytest.fixture
async def raw() -> AsyncIterator[Redis]:
    """A plain client on the shared server, to look behind the store's back."""
    client = Redis.from_url(URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(raw: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; whatever is left under it is deleted afterwards."""
    prefix = f"test-serdes:{uuid.uuid4().hex}:"
    yield prefix
    keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
    if keys:
        await raw.delete(*keys)


@pytest.fixture
async def store(prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(URL, prefix=prefix, timeout=GENEROUS)
    yield store
    await store.aclose()


@pytest.mark.anyio
async def test_implements_the_store_protocol(store: RedisStore) -> None:
    assert isinstance(store, Store)
    assert store.name == "redis"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "pass exactly one of url and client, got url=None and client=None"),
        ({"url": URL, "timeout": 0}, ValueError, "timeout must be a positive number"),
        ({"url": URL, "retry_after": -1}, ValueError, "retry_after must be a positive number"),
        ({"url": URL, "max_item_bytes": 0}, ValueError, "max_item_bytes must be a positive int"),
        ({"url": URL, "prefix": b"x"}, TypeError, "prefix must be a str, got b'x'"),
        (
            {"client": "redis://x"},
            TypeError,
            "client must be a redis.asyncio.Redis or RedisCluster",
        ),
        ({"client": Redis(), "cluster": True}, ValueError, "cluster=True applies to a url"),
    ],
)
def test_settings_are_validated(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match="^" + message.replace("(", r"\(")):
        RedisStore(**kwargs)


def test_a_decoding_client_is_refused() -> None:
    with pytest.raises(ValueError, match="decode_responses=False, got decode_responses=True"):
        RedisStore(client=Redis.from_url(URL, decode_responses=True))


def test_import_without_redis_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "fastapi_serdes.cache.redis_store")
    for name in [n for n in sys.modules if n == "redis" or n.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'fastapi-serdes\[redis\]'"):
        importlib.import_module("fastapi_serdes.cache.redis_store")


@pytest.mark.anyio
async def test_get_set_delete(store: RedisStore, raw: Redis, prefix: str) -> None:
    assert await store.get("k") is None
    await store.set("k", b"\x00\xff\x80 binary", ttl=30)
    assert await store.get("k") == b"\x00\xff\x80 binary"
    assert 29_000 < await raw.pttl(f"{prefix}k:k") <= 30_000
    await store.set("k", b"new", ttl=30)
    assert await store.get("k") == b"new"
    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None
    assert store.available


async def eventually(condition: Any, within: float = 10.0) -> None:
    """Wait until ``condition()`` (awaited) is true: expiry is asserted, not its speed."""
    deadline = time.monotonic() + within
    while not await condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        await asyncio.sleep(0.02)


@pytest.mark.anyio
async def test_ttl_expiry(store: RedisStore, raw: Redis, prefix: str) -> None:
    await store.set("k", b"v", ttl=0.3)
    assert 0 < await raw.pttl(f"{prefix}k:k") <= 300  # stored with the TTL, in ms

    async def gone() -> bool:
        return await store.get("k") is None

    await eventually(gone)


@pytest.mark.anyio
@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_ttl_must_be_positive(store: RedisStore, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        await store.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        await store.acquire("k", ttl)


@pytest.mark.anyio
async def test_per_item_cap(prefix: str) -> None:
    store = RedisStore(URL, prefix=prefix, max_item_bytes=10, timeout=GENEROUS)
    try:
        await store.set("k", b"x" * 10, ttl=30)
        assert await store.get("k") == b"x" * 10
        await store.set("k", b"x" * 11, ttl=30)
        assert await store.get("k") is None  # not sent, and the older value deleted
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_invalidate_by_tags(store: RedisStore, raw: Redis, prefix: str) -> None:
    await store.set("a", b"1", ttl=30, tags=["user:1", "path:/a"])
    await store.set("b", b"2", ttl=30, tags=["user:1"])
    await store.set("c", b"3", ttl=30, tags=["user:2"])
    await store.set("d", b"4", ttl=30, tags=["user:3"])
    assert await store.invalidate(["user:1"]) == 2
    assert [await store.get(k) for k in "abcd"] == [None, None, b"3", b"4"]
    assert await store.invalidate(["path:/a", "nobody"]) == 0  # a is already gone
    assert await store.invalidate(["user:2", "user:3"]) == 2
    assert await store.invalidate([]) == 0
    left = {key async for key in raw.scan_iter(match=f"{prefix}*")}
    # What stays: the clock, and each invalidated tag's mark (kept an hour: a value computed
    # before the invalidation and written after it is refused).
    tags = ["user:1", "user:2", "user:3", "path:/a", "nobody"]
    marks = {f"{prefix}i:{tag}".encode() for tag in tags}
    assert left == {f"{prefix}clock".encode(), *marks}
    assert await raw.get(f"{prefix}clock") == b"3"
    assert 3_500_000 < await raw.pttl(f"{prefix}i:user:1") <= 3_600_000


@pytest.mark.anyio
async def test_invalidate_many_members(store: RedisStore, raw: Redis, prefix: str) -> None:
    # More members than Lua's unpack() takes at once (about 8000): the script deletes in batches.
    keys = [f"{prefix}k:{i}" for i in range(10_000)]
    async with raw.pipeline(transaction=False) as pipe:
        pipe.mset(dict.fromkeys(keys, b"v"))
        pipe.zadd(f"{prefix}t:big", dict.fromkeys(keys, 0))
        await pipe.execute()
    assert await store.invalidate(["big"]) == 10_000
    assert await raw.exists(*keys[:100]) == 0


@pytest.mark.anyio
async def test_a_burst_past_the_pool_does_not_open_the_circuit(prefix: str) -> None:
    client = Redis.from_url(URL, max_connections=5)
    # A generous timeout: the calls that got a connection must not time out on a loaded machine
    # (a timeout opens the circuit); what is tested is that an exhausted pool does not.
    store = RedisStore(client=client, prefix=prefix, timeout=GENEROUS)
    try:
        await store.set("k", b"v", ttl=30)
        got = await asyncio.gather(*(store.get("k") for _ in range(200)))
        assert set(got) <= {b"v", None}  # those without a connection are misses, not errors
        assert b"v" in got
        assert store.available
        assert await store.get("k") == b"v"
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_tag_sets_drop_expired_members_and_expire(
    store: RedisStore, raw: Redis, prefix: str
) -> None:
    tag = f"{prefix}t:hot"
    await store.set("gone", b"1", ttl=0.05, tags=["hot"])
    await asyncio.sleep(0.1)
    await store.set("live", b"2", ttl=30, tags=["hot"])
    assert await raw.zrange(tag, 0, -1) == [f"{prefix}k:live".encode()]
    await store.set("short", b"3", ttl=1, tags=["hot"])
    assert 29_000 < await raw.pttl(tag) <= 30_000  # lives as long as its longest member


@pytest.mark.anyio
async def test_lock_one_winner_among_replicas(prefix: str) -> None:
    # Ten cold clients connecting at once: with the 50 ms default, a loaded machine could time
    # some out, and a failed acquire is granted (fail-open), making two winners.
    replicas = [RedisStore(URL, prefix=prefix, timeout=GENEROUS) for _ in range(10)]
    try:
        got = await asyncio.gather(*(r.acquire("job", 5) for r in replicas))
        assert sorted(got) == [False] * 9 + [True]
        winner = replicas[got.index(True)]
        loser = replicas[got.index(False)]
        await loser.release("job")  # not ours: nothing happens
        assert await loser.acquire("job", 5) is False
        await winner.release("job")
        assert await loser.acquire("job", 5) is True
    finally:
        for r in replicas:
            await r.aclose()


@pytest.mark.anyio
async def test_lock_expiry_frees_it(raw: Redis, prefix: str) -> None:
    one = RedisStore(URL, prefix=prefix, timeout=GENEROUS)
    two = RedisStore(URL, prefix=prefix, timeout=GENEROUS)
    lock = f"{prefix}l:job"
    try:
        assert await one.acquire("job", 2) is True
        assert 0 < await raw.pttl(lock) <= 2000  # the lock expires on its own
        assert await two.acquire("job", 5) is False
        await raw.pexpire(lock, 1)  # its TTL runs out now, not after a race against the clock

        async def expired() -> bool:
            return await raw.exists(lock) == 0

        await eventually(expired)
        assert await two.acquire("job", 5) is True
        await one.release("job")  # one's lock expired and two took it: two keeps it
        assert await one.acquire("job", 5) is False
    finally:
        await one.aclose()
        await two.aclose()


@pytest.mark.anyio
async def test_unexpected_values_do_not_raise(store: RedisStore, raw: Redis, prefix: str) -> None:
    # Someone else wrote other types under our keys: error replies, answered as misses.
    await raw.rpush(f"{prefix}k:list", b"x")
    await raw.set(f"{prefix}t:broken", b"not a sorted set")
    assert await store.get("list") is None
    await store.set("k", b"v", ttl=30, tags=["broken"])
    assert await store.invalidate(["broken"]) == 0
    # Error replies come back fast: the circuit stays closed and other keys still work.
    assert store.available
    await store.set("ok", b"v", ttl=30)
    assert await store.get("ok") == b"v"


@pytest.mark.anyio
async def test_a_passed_client_is_used_and_left_open(raw: Redis, prefix: str) -> None:
    store = RedisStore(client=raw, prefix=prefix)
    await store.set("k", b"v", ttl=30)
    await store.aclose()
    assert await raw.get(f"{prefix}k:k") == b"v"  # raw still works


class FakeTime:
    """Stands in for the ``time`` module of the store's module: the circuit breaker's clock
    (``time.monotonic``) moves only when a test advances it, so ``retry_after`` elapses exactly
    when the test says, however slow the machine."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(redis_client, "time", fake)
    return fake


class Commands:
    """Counts the commands a store sends to its client (scripts included), and the most that
    were in flight at once: what reached the network, instead of how long it took."""

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent = 0
        self.in_flight = 0
        self.most_in_flight = 0
        real = store._client.execute_command

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.sent += 1
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                return await real(*args, **kwargs)
            finally:
                self.in_flight -= 1

        monkeypatch.setattr(store._client, "execute_command", counting)


@pytest.mark.anyio
async def test_fails_open_on_a_closed_port(
    caplog: pytest.LogCaptureFixture, clock: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A generous timeout: the refusal, not a timeout on a loaded machine, is what fails.
    store = RedisStore("redis://127.0.0.1:1/0", timeout=GENEROUS)
    commands = Commands(store, monkeypatch)
    caplog.set_level(logging.INFO, logger="fastapi_serdes")
    assert await store.get("k") is None
    await store.set("k", b"v", ttl=30, tags=["t"])
    await store.delete("k")
    assert await store.invalidate(["t"]) == 0
    assert await store.acquire("k", 5) is True  # the caller computes
    await store.release("k")
    assert await store.ping() is False
    # The first call tried the network and opened the circuit; the others (before
    # retry_after, on the fake clock) skipped it, but for the invalidation, which is tried
    # anyway (other replicas may be serving the entries) and kept for later when it fails.
    assert commands.sent == 2
    assert not store.available
    assert len(caplog.records) == 2  # the streak once, and the invalidation kept for later
    assert "ConnectionError" in caplog.records[0].getMessage()
    assert "invalidating 1 tag(s) in Redis failed" in caplog.records[1].getMessage()
    await store.aclose()


@pytest.fixture
def own_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A redis-server of this test's own, which it may SIGSTOP."""
    (port,) = free_ports(1)
    with redis_server("--port", str(port), ready=lambda: answers(port)) as proc:
        yield proc, port


#: The timeout of the stores on a server of ours: short enough to wait for when it hangs, long
#: enough that a loaded machine does not time out the live server (issue 15).
HUNG_TIMEOUT = 1.0


@pytest.mark.anyio
async def test_a_hung_redis_costs_one_timeout_then_nothing_until_it_recovers(
    own_redis: tuple[subprocess.Popen[bytes], int],
    clock: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, port = own_redis
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=HUNG_TIMEOUT, retry_after=5)
    commands = Commands(store, monkeypatch)
    try:
        await store.set("k", b"v", ttl=60, tags=["t"])
        assert await store.get("k") == b"v"  # connected and warm

        proc.send_signal(signal.SIGSTOP)
        # The kernel still accepts connections and buffers writes: only the reads hang.
        sent = commands.sent
        first = await asyncio.gather(*(store.get("k") for _ in range(50)))
        assert first == [None] * 50
        # One attempt each (no retries), all waiting at once: together they cost one timeout.
        assert commands.sent - sent == 50
        assert commands.most_in_flight == 50
        assert not store.available

        sent = commands.sent
        for _ in range(200):  # circuit open: no network at all...
            assert await store.get("k") is None
            await store.set("k", b"v2", ttl=60, tags=["t"])
            assert await store.acquire("lock", 5) is True
            assert await store.invalidate(["t"]) == 0
        clock.now += 4.9  # still within retry_after
        assert await store.get("k") is None
        # ...but for the first invalidation, tried anyway: one timeout, then kept for later.
        assert commands.sent == sent + 1
        assert not store.available

        proc.send_signal(signal.SIGCONT)
        clock.now += 0.2  # past retry_after: the next call probes and closes the circuit
        assert await store.get("k") == b"v"
        assert commands.sent == sent + 2
        assert store.available
        # The kept invalidation runs as soon as Redis answers again.
        assert store.replaying is not None
        assert await store.replaying == 1
        assert await store.get("k") is None
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_while_half_open_only_one_call_probes(
    own_redis: tuple[subprocess.Popen[bytes], int],
    clock: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, port = own_redis
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=HUNG_TIMEOUT, retry_after=5)
    commands = Commands(store, monkeypatch)
    try:
        await store.set("k", b"v", ttl=60)
        proc.send_signal(signal.SIGSTOP)
        assert await store.get("k") is None  # times out and opens the circuit
        assert not store.available
        clock.now += 5  # retry_after has passed: the next call probes
        # Still hung: one call probes (and waits a timeout), the 49 others skip at once.
        sent = commands.sent
        tasks = [asyncio.create_task(store.get("k")) for _ in range(50)]
        await asyncio.sleep(0)  # every task takes its first step
        skipped = [task for task in tasks if task.done()]
        assert len(skipped) == 49  # done without waiting for anything
        assert all(task.result() is None for task in skipped)
        assert commands.sent == sent + 1  # only the probe reached Redis
        assert await asyncio.gather(*tasks) == [None] * 50
        assert commands.sent == sent + 1
        assert not store.available  # the probe timed out: open again
    finally:
        await store.aclose()


# --- The timeout times Redis, not the event loop (issue 17) ------------------------------------


async def hog(stop: asyncio.Event, chunk: float) -> int:
    """A CPU-bound task holding the event loop for ``chunk`` seconds between awaits, until
    ``stop``; returns how many times it held it."""
    turns = 0
    while not stop.is_set():
        end = time.perf_counter() + chunk
        while time.perf_counter() < end:
            pass
        turns += 1
        await asyncio.sleep(0)
    return turns


@pytest.mark.anyio
async def test_a_cold_burst_on_a_busy_loop_does_not_open_the_circuit(prefix: str) -> None:
    # 200 gets on new connections while a handler holds the loop for 2.5 timeouts at a time: the
    # replies wait in the sockets far longer than the timeout, but Redis answered each in time.
    # With a wall-clock timeout every call timed out and the circuit opened.
    client = Redis.from_url(URL, max_connections=1000)  # enough for every call: none fails open
    store = RedisStore(client=client, prefix=prefix, timeout=0.02)
    try:
        async with Redis.from_url(URL) as raw:
            await raw.set(f"{prefix}k:k", b"v")
        stop = asyncio.Event()
        busy = asyncio.create_task(hog(stop, chunk=0.05))
        await asyncio.sleep(0)  # the hog holds the loop first
        got = await asyncio.gather(*(store.get("k") for _ in range(200)))
        stop.set()
        assert await busy >= 3  # the burst waited through several chunks
        assert got == [b"v"] * 200
        assert store.available
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_a_server_that_never_answers_opens_the_circuit(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Only the store's own deadline can end these calls: the wall-clock backstop is an hour.
    monkeypatch.setattr(redis_client, "BUSY_LOOP_GRACE", 3600.0)
    async with silent_server() as port:
        store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.05)
        commands = Commands(store, monkeypatch)
        try:
            got = await asyncio.wait_for(asyncio.gather(*(store.get("k") for _ in range(200))), 60)
            assert got == [None] * 200
            assert not store.available
            assert "TimeoutError" in caplog.text
            sent = commands.sent
            assert await store.get("k") is None
            assert await store.acquire("k", 5) is True
            assert commands.sent == sent  # open: nothing reaches the silent server
        finally:
            await store.aclose()


@pytest.mark.anyio
async def test_a_busy_loop_does_not_hide_a_silent_server_for_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A loop that never stops being busy leaves no quiet time to judge Redis by: the wall-clock
    # backstop (timeout + BUSY_LOOP_GRACE) ends the calls and opens the circuit.
    monkeypatch.setattr(redis_client, "BUSY_LOOP_GRACE", 0.3)
    async with silent_server() as port:
        store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.02)
        stop = asyncio.Event()
        busy = asyncio.create_task(hog(stop, chunk=0.05))
        try:
            got = await asyncio.wait_for(asyncio.gather(*(store.get("k") for _ in range(50))), 60)
            assert got == [None] * 50
            assert not store.available
        finally:
            stop.set()
            await busy
            await store.aclose()


@pytest.mark.anyio
async def test_a_stuck_call_does_not_open_the_circuit_while_redis_answers_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Latency injected: GET "stuck" never returns; every other call answers on the next turn.
    # The timeout is long enough that this process, descheduled on a loaded machine, does not
    # miss an answer for that long (the circuit would then rightly open).
    monkeypatch.setattr(redis_client, "BUSY_LOOP_GRACE", 0.25)
    store = RedisStore(URL, timeout=0.25)
    never = asyncio.Event()

    async def execute_command(*args: Any, **options: Any) -> Any:
        if args[:2] == ("GET", f"{redis_store.DEFAULT_PREFIX}k:stuck"):
            await never.wait()
        await asyncio.sleep(0)
        return b"v"

    monkeypatch.setattr(store._client, "execute_command", execute_command)
    try:
        stuck = asyncio.create_task(store.get("stuck"))
        answered = 0
        while not stuck.done():  # Redis keeps answering other calls meanwhile
            assert await store.get("k") == b"v"
            answered += 1
            await asyncio.sleep(0.001)
        assert await stuck is None  # ended by the backstop, alone
        assert answered > 0
        assert store.available
        # With nothing else answering, the same stuck call is a silent Redis.
        assert await store.get("stuck") is None
        assert not store.available
    finally:
        await store.aclose()


# --- Deployments: TLS, Sentinel, a prefix per app ---------------------------------------------


@pytest.mark.anyio
async def test_tls_url(tmp_path: Path) -> None:
    cert, key = tls_files(tmp_path)
    (port,) = free_ports(1)
    tls = ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    tls += ["--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"]
    with redis_server(
        "--port", "0", "--tls-port", str(port), *tls,
        ready=lambda: answers(port, ssl=True, ssl_ca_certs=str(cert)),
    ):  # fmt: skip
        store = RedisStore(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}", timeout=GENEROUS)
        plain = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=GENEROUS)
        try:
            assert await store.ping() is True
            await store.set("k", b"v", ttl=30, tags=["t"])
            assert await store.get("k") == b"v"
            assert await store.invalidate(["t"]) == 1
            assert store.available
            assert await plain.get("k") is None  # the port speaks TLS only
            assert not plain.available
        finally:
            await store.aclose()
            await plain.aclose()


@pytest.mark.anyio
async def test_from_sentinel(tmp_path: Path) -> None:
    (master,) = free_ports(1)
    with (
        redis_server("--port", str(master), ready=lambda: answers(master)),
        sentinel_for(master, tmp_path, "cache") as port,
    ):
        sentinel = Sentinel([("127.0.0.1", port)], socket_timeout=GENEROUS)
        store = RedisStore.from_sentinel(sentinel, "cache", prefix="app:", timeout=GENEROUS)
        try:
            await store.set("k", b"v", ttl=30, tags=["t"])
            assert await store.get("k") == b"v"
            async with Redis(port=master) as raw:  # written to the master Sentinel named
                assert await raw.get("app:k:k") == b"v"
                assert await store.acquire("job", 5) is True
                assert await raw.exists("app:l:job") == 1
            assert await store.acquire("job", 5) is False
            await store.release("job")
            assert await store.invalidate(["t"]) == 1
            assert await store.get("k") is None
            assert store.available
        finally:
            await store.aclose()
            for sentinel_client in sentinel.sentinels:
                await sentinel_client.aclose()
        with pytest.raises(ValueError, match="timeout must be a positive number"):
            RedisStore.from_sentinel(sentinel, "cache", timeout=0)


@pytest.mark.anyio
async def test_apps_with_their_own_prefixes_never_see_each_other(raw: Redis, prefix: str) -> None:
    shop = RedisStore(URL, prefix=f"{prefix}shop:", timeout=GENEROUS)
    blog = RedisStore(URL, prefix=f"{prefix}blog:", timeout=GENEROUS)
    try:
        await shop.set("k", b"shop", ttl=30, tags=["path:/", "t"])
        assert await blog.get("k") is None
        await blog.set("k", b"blog", ttl=30, tags=["path:/", "t"])
        assert await shop.get("k") == b"shop"
        assert await blog.invalidate(["path:/"]) == 1
        assert await shop.get("k") == b"shop"
        assert await blog.acquire("job", 5) is True
        assert await shop.acquire("job", 5) is True
        assert await shop.invalidate(["t"]) == 1
        assert [key async for key in raw.scan_iter(match=f"{prefix}*k:*")] == []
    finally:
        await shop.aclose()
        await blog.aclose()


@pytest.mark.anyio
async def test_the_default_prefix_keeps_keys_readable(raw: Redis) -> None:
    store = RedisStore(URL, timeout=GENEROUS)
    key = f"test-default-prefix-{uuid.uuid4().hex}"
    try:
        await store.set(key, b"v", ttl=30)
        assert await raw.get(f"fastapi-serdes:k:{key}") == b"v"
    finally:
        await store.delete(key)
        await store.aclose()
