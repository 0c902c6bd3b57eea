"""A value computed before an invalidation and written after it is never stored.

The race: a GET misses and reads the origin; a write changes the origin and invalidates; the GET
then stores what it read. Without the invalidation clock, every replica would serve the old
value until its TTL, after the write had returned (no read-your-writes).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, Store, cached
from fastapi_serdes.cache.memory_store import MAX_MARKS
from fastapi_serdes.cache.redis_store import RedisStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    prefix = f"coherence-{os.getpid()}-{id(request)}:"
    redis = RedisStore("redis://127.0.0.1:6379/0", prefix=prefix, timeout=5.0)
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


async def test_a_read_that_overlaps_a_write_does_not_leave_the_old_value_cached(
    store: Any,
) -> None:
    app, origin = build(store)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/items/5")  # reads the route table; stores version 1
        assert (await client.put("/items/5")).status_code == 200  # version 2, invalidated
        origin["gate"] = asyncio.Event()
        origin["read"] = asyncio.Event()
        slow = asyncio.create_task(client.get("/items/5"))  # a miss: reads version 2, waits
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
