"""A value computed before an invalidation and written after it is never stored.

The race: a GET misses and reads the origin; a write changes the origin and invalidates; the GET
then stores what it read. Without the invalidation clock, every replica would serve the old
value until its TTL, after the write had returned (no read-your-writes).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, Store, cached
from fastapi_serdes.cache.memory_store import MAX_MARKS
from fastapi_serdes.cache.redis_store import RedisStore

pytestmark = pytest.mark.anyio

URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["memory", "redis", "redis-near"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    prefix = f"coherence-{os.getpid()}-{id(request)}:"
    near = 1 << 20 if request.param == "redis-near" else None
    redis = RedisStore(URL, prefix=prefix, timeout=5.0, near_bytes=near, near_lease=0.05)
    try:
        yield redis
    finally:
        client = redis._client
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await redis.aclose()


async def test_a_write_after_an_invalidation_of_its_tags_is_refused(store: Any) -> None:
    since = await store.clock()
    assert await store.set("k", b"old", ttl=30, tags=["item:1"], since=since) is True
    before = await store.clock()
    assert await store.invalidate(["item:1", "other"]) == 1
    # Computed before the invalidation, written after: refused, and any old value is gone.
    assert await store.set("k", b"stale", ttl=30, tags=["item:1", "x"], since=before) is False
    assert await store.get("k") is None
    # Other tags are not concerned; a value computed after the invalidation is stored.
    assert await store.set("j", b"fine", ttl=30, tags=["item:2"], since=before) is True
    after = await store.clock()
    assert after > before
    assert await store.set("k", b"new", ttl=30, tags=["item:1"], since=after) is True
    assert await store.get("k") == b"new"
    # A slow computation that began before the invalidation finishes now: refused, and the
    # newer value stays.
    assert await store.set("k", b"slow", ttl=30, tags=["item:1"], since=before) is False
    assert await store.get("k") == b"new"
    # Without `since`, a store writes as it always did.
    assert await store.set("k", b"unchecked", ttl=30, tags=["item:1"]) is True


async def test_forgotten_marks_make_the_memory_store_refuse_rather_than_guess() -> None:
    store = MemoryStore()
    since = await store.clock()
    for i in range(MAX_MARKS + 1):  # the first mark is forgotten
        await store.invalidate([f"tag:{i}"])
    assert await store.set("k", b"v", ttl=30, tags=["tag:0"], since=since) is False
    assert await store.set("k", b"v", ttl=30, tags=["unrelated"], since=since) is False
    assert await store.set("k", b"v", ttl=30, tags=["unrelated"], since=await store.clock())


def build(store: Store) -> tuple[FastAPI, dict[str, Any]]:
    origin: dict[str, Any] = {"version": 1, "gate": None, "read": asyncio.Event()}
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=store)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items/{item_id}")
    @cached(60)
    async def get_item(item_id: int) -> dict[str, int]:
        version = origin["version"]  # read the origin, then take a while
        origin["read"].set()
        if origin["gate"] is not None:
            await origin["gate"].wait()
        return {"id": item_id, "version": version}

    @router.put("/items/{item_id}")
    async def put_item(item_id: int) -> dict[str, int]:
        origin["version"] += 1
        return {"id": item_id, "version": origin["version"]}

    app.include_router(router)
    return app, origin


# Cache-Control: no-cache skips the lookup (as a stale-while-revalidate refresh does), but what
# it computes is stored like any miss: under the clock it read before computing.
@pytest.mark.parametrize("headers", [{}, {"cache-control": "no-cache"}], ids=["miss", "no-cache"])
async def test_a_read_that_overlaps_a_write_does_not_leave_the_old_value_cached(
    store: Any, headers: dict[str, str]
) -> None:
    app, origin = build(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/items/5")  # reads the route table; stores version 1
        assert (await client.put("/items/5")).status_code == 200  # version 2, invalidated
        origin["gate"] = asyncio.Event()
        origin["read"] = asyncio.Event()
        slow = asyncio.create_task(client.get("/items/5", headers=headers))  # reads version 2
        await origin["read"].wait()
        written = await client.put("/items/5")  # version 3, invalidated while the GET computes
        assert written.json()["version"] == 3
        origin["gate"].set()
        late = await slow
        assert late.json()["version"] == 2  # what it read: fine for that request...
        assert late.headers["cache-status"] == "fastapi-serdes; fwd=miss; detail=not-stored"
        origin["gate"] = None
        # ...but it was not stored: a read after the write sees the write.
        after = await client.get("/items/5")
        assert after.json()["version"] == 3
        assert "stored" in after.headers["cache-status"]
        hit = await client.get("/items/5")
        assert hit.headers["cache-status"] == "fastapi-serdes; hit"
        assert hit.json()["version"] == 3


async def test_a_no_cache_read_computes_its_own_answer(store: Any) -> None:
    # Not the entry, and not the result another request published for its followers either.
    computed: list[str] = []
    app = replica(store, {"version": 1}, computed, "a")
    async with client_of(app) as client:
        first = await client.get("/items/7")
        again = await client.get("/items/7", headers={"cache-control": "no-cache"})
    assert computed == ["a", "a"]
    assert "stored" in first.headers["cache-status"]
    assert again.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"


def replica(store: Store, origin: dict[str, Any], computed: list[str], name: str) -> FastAPI:
    """One replica of a service whose items live in ``origin``."""
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=store)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items/{item_id}")
    @cached(60)
    async def get_item(item_id: int) -> dict[str, int]:
        seen = origin["version"]
        computed.append(name)
        gate = origin.get("gate")
        if gate is not None and seen == 1:
            origin["read"].set()
            await gate.wait()  # the first computation takes a while
        return {"id": item_id, "version": seen}

    @router.put("/items/{item_id}")
    async def put_item(item_id: int) -> dict[str, int]:
        origin["version"] += 1
        return {"id": item_id, "version": origin["version"]}

    app.include_router(router)
    return app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)
    # Identity only: one lookup per request (one variant).
    headers = {"accept-encoding": "identity"}
    return httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers)


async def test_a_request_that_began_after_a_write_never_shares_an_older_computation(
    store: Any,
) -> None:
    # GET 1 reads version 1 and is held; a PUT writes version 2 and returns; GET 2 begins
    # after it, while GET 1 still computes: it must not be handed GET 1's answer.
    origin: dict[str, Any] = {"version": 1, "gate": asyncio.Event(), "read": asyncio.Event()}
    computed: list[str] = []
    async with client_of(replica(store, origin, computed, "A")) as client:
        await client.get("/nothing")  # reads the route table
        first = asyncio.create_task(client.get("/items/1"))
        await origin["read"].wait()
        assert (await client.put("/items/1")).json()["version"] == 2
        second = asyncio.create_task(client.get("/items/1"))
        # Let GET 2 join GET 1's flight (had it not by then, it leads its own: the answer
        # must be version 2 either way).
        await asyncio.sleep(0.2)
        origin["gate"].set()
        one, two = await first, await second
        assert one.json()["version"] == 1
        assert two.json()["version"] == 2
        assert (await client.get("/items/1")).json()["version"] == 2


async def test_a_replica_whose_lookup_missed_takes_what_another_just_stored() -> None:
    # Replica A's lookup misses; replica B then computes, stores and releases the lock; A then
    # takes the lock: it finds B's published answer instead of computing again.
    prefix = f"coherence-twice-{os.getpid()}:"
    looked = asyncio.Event()
    go_on = asyncio.Event()

    class Paused(RedisStore):
        paused = False

        async def get(self, key: str) -> bytes | None:
            value = await super().get(key)
            if not self.paused and not key.startswith(("flight:", "lock:")):
                self.paused = True  # A's lookup missed: B goes first
                looked.set()
                await go_on.wait()
            return value

    computed: list[str] = []
    origin: dict[str, Any] = {"version": 1}
    stores = [Paused(URL, prefix=prefix, timeout=5.0), RedisStore(URL, prefix=prefix, timeout=5.0)]
    try:
        async with (
            client_of(replica(stores[0], origin, computed, "A")) as a,
            client_of(replica(stores[1], origin, computed, "B")) as b,
        ):
            on_a = asyncio.create_task(a.get("/items/1"))
            await looked.wait()
            from_b = await b.get("/items/1")
            go_on.set()
            from_a = await on_a
        assert computed == ["B"]
        assert from_a.json() == from_b.json()
        assert from_a.headers["cache-status"] == "fastapi-serdes; fwd=miss; detail=coalesced"
    finally:
        await stores[1].invalidate(["path:/items/1"])
        for each in stores:
            await each.aclose()


async def test_an_invalidation_is_not_lost_while_the_writers_circuit_is_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Replica A's circuit is open (a call timed out a moment ago, e.g. its loop was busy);
    # Redis is fine for replica B. A PUT through A must still drop B's entry.
    prefix = f"coherence-open-{os.getpid()}:"
    computed: list[str] = []
    origin: dict[str, Any] = {"version": 1}
    a_store, b_store = (RedisStore(URL, prefix=prefix, timeout=5.0) for _ in "ab")
    try:
        async with (
            client_of(replica(a_store, origin, computed, "A")) as a,
            client_of(replica(b_store, origin, computed, "B")) as b,
        ):
            assert (await b.get("/items/1")).json()["version"] == 1
            await a.get("/nothing")  # A reads its route table
            a_store._circuit.open_until = time.monotonic() + 5  # as after a timed-out call on A
            assert (await a.put("/items/1")).json()["version"] == 2
            after = await b.get("/items/1")
            assert after.json()["version"] == 2
            assert "stored" in after.headers["cache-status"]
    finally:
        await b_store.invalidate(["path:/items/1"])
        for each in (a_store, b_store):
            await each.aclose()
