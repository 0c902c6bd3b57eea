"""RedisStore's in-process tier: hits without a round trip, coherent across replicas by lease.

Every replica here is a real app on a real Redis (127.0.0.1:6379, or a server the test starts and
stops); what is counted is the commands that reach Redis, never how long anything took.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from benchmarks.redis_servers import answers, free_ports, redis_server
from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes.cache.near_tier import NearTier
from fastapi_serdes.cache.redis_store import RedisStore

pytestmark = pytest.mark.anyio

URL = "redis://127.0.0.1:6379/0"


class Sent:
    """Counts what a store sends to Redis: commands and pipelines (spied, not replaced)."""

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        client = store._client
        command, pipeline = client.execute_command, client.pipeline

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await command(*args, **kwargs)

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return pipeline(*args, **kwargs)

        monkeypatch.setattr(client, "execute_command", counting)
        monkeypatch.setattr(client, "pipeline", counted_pipeline)


def replica(store: RedisStore, origin: dict[str, Any], **windows: float) -> FastAPI:
    """One replica of a service whose items live in ``origin``."""
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=store)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items/{item_id}")
    @cached(60, **windows)
    async def get_item(item_id: int) -> dict[str, int]:
        origin["computed"] += 1
        if origin.get("fail"):
            raise RuntimeError("the database is gone")
        return {"id": item_id, "version": origin["version"]}

    @router.put("/items/{item_id}")
    async def put_item(item_id: int) -> dict[str, int]:
        origin["version"] += 1
        return {"id": item_id, "version": origin["version"]}

    app.include_router(router)
    return app


def client_of(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = f"near-{os.getpid()}-{random.getrandbits(32)}:"
    yield name
    cleaner = RedisStore(URL, prefix=name)
    keys = [key async for key in cleaner._client.scan_iter(match=f"{name}*")]
    if keys:
        await cleaner._client.delete(*keys)
    await cleaner.aclose()


async def test_a_warm_tier_answers_without_a_round_trip(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisStore(URL, prefix=prefix, near_bytes=1 << 20, near_lease=60)
    origin = {"version": 1, "computed": 0}
    try:
        async with client_of(replica(store, origin)) as client:
            first = await client.get("/items/1")
            assert "stored" in first.headers["cache-status"]
            sent = Sent(store, monkeypatch)
            for _ in range(20):
                hit = await client.get("/items/1")
                assert hit.headers["cache-status"] == "fastapi-serdes; hit"
                assert hit.content == first.content
            assert sent.count == 0
            assert origin["computed"] == 1
    finally:
        await store.aclose()


async def test_a_cold_tier_reads_the_value_and_the_clock_in_one_round_trip(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = RedisStore(URL, prefix=prefix)
    reader = RedisStore(URL, prefix=prefix, near_bytes=1 << 20, near_lease=60)
    try:
        await writer.set("k", b"value", ttl=30)
        sent = Sent(reader, monkeypatch)
        assert await reader.get("k") == b"value"
        assert sent.count == 1  # one pipeline: the clock, the value and its TTL
        assert await reader.clock() == reader.near.clock  # type: ignore[union-attr]
        assert await reader.get("k") == b"value"
        assert sent.count == 1  # the tier answered, and the clock reading is reused
        assert await reader.get("absent") is None
        assert sent.count == 2
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_an_invalidation_returns_when_no_replica_serves_the_old_bytes(prefix: str) -> None:
    origin = {"version": 1, "computed": 0}
    stores = [RedisStore(URL, prefix=prefix, near_bytes=1 << 20, near_lease=0.05) for _ in "abc"]
    rng = random.Random(7)
    try:
        clients = [client_of(replica(store, origin)) for store in stores]
        for client in clients:
            assert (await client.get("/items/1")).json()["version"] == 1
        for _ in range(30):
            # Reads on every replica keep their tiers warm; then a write through one of them.
            for client in clients:
                got = await client.get("/items/1")
                assert got.json()["version"] == origin["version"]
            writer = rng.choice(clients)
            assert (await writer.put("/items/1")).status_code == 200
            # The write's invalidation has returned: every replica answers the new version,
            # those whose tier held the old one included.
            for client in rng.sample(clients, len(clients)):
                got = await client.get("/items/1")
                assert got.json()["version"] == origin["version"]
        for client in clients:
            await client.aclose()
    finally:
        for store in stores:
            await store.aclose()


async def test_while_redis_is_down_the_tier_copy_is_only_a_stale_if_error_fallback() -> None:
    (port,) = free_ports(1)
    with redis_server("--port", str(port), ready=lambda: answers(port)) as server:
        store = RedisStore(
            f"redis://127.0.0.1:{port}/0", timeout=0.5, near_bytes=1 << 20, near_lease=0.01
        )
        origin = {"version": 1, "computed": 0}
        try:
            async with client_of(replica(store, origin, stale_if_error=300)) as client:
                first = await client.get("/items/1")
                assert "stored" in first.headers["cache-status"]
                server.send_signal(signal.SIGKILL)
                server.wait()
                await asyncio.sleep(0.05)  # past the lease: the tier cannot vouch for its copy
                origin["version"] = 2
                fresh = await client.get("/items/1")  # Redis down: the endpoint answers
                assert fresh.json()["version"] == 2
                assert not store.available
                origin["fail"] = True
                stale = await client.get("/items/1")  # and when it fails, the tier's copy does
                assert stale.status_code == 200
                assert stale.content == first.content
                assert stale.headers["cache-status"] == (
                    "fastapi-serdes; fwd=stale; fwd-status=500; detail=stale-if-error"
                )
                assert origin["computed"] == 3
        finally:
            await store.aclose()


async def test_the_tier_keeps_only_values_of_the_newest_clock_it_saw() -> None:
    tier = NearTier(1 << 20, lease=60)
    now = asyncio.get_running_loop().time()
    tier.saw(4, now)

    async def never() -> int | None:
        raise AssertionError("the lease holds: no clock read")

    async def absent(key: str) -> tuple[int | None, bytes | None, float]:
        return tier.clock, None, 0.0  # the shared store has nothing either

    await tier.put("k", b"old", ttl=30, clock=4)
    assert await tier.get("k", never, absent) == b"old"
    await tier.put("k", b"older", ttl=30, clock=3)  # read under an older clock: dropped
    assert await tier.get("k", never, absent) is None
    await tier.put("k", b"v4", ttl=30, clock=4)
    tier.saw(3, now + 1)  # a late answer to an older read changes nothing
    assert await tier.get("k", never, absent) == b"v4"
    tier.saw(5, now + 1)  # the clock moved: everything read before goes
    assert await tier.unverified("k") is None  # not even kept as a fallback
    tier.empty(9)  # this replica invalidated: nothing served until the clock is read again
    assert tier.clock == 9
    assert not tier.leased()
    await tier.put("k", b"v9", ttl=30, clock=9)
    reads: list[int] = []

    async def read_clock() -> int | None:
        reads.append(9)
        await asyncio.sleep(0)
        return 9

    got = await asyncio.gather(*(tier.get("k", read_clock, absent) for _ in range(10)))
    assert got == [b"v9"] * 10
    assert reads == [9]  # one read renewed the lease for every request waiting on it


def test_the_tier_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="near_lease"):
        NearTier(1 << 20, lease=0)
    with pytest.raises(ValueError, match="max_bytes"):
        RedisStore(URL, near_bytes=0)
