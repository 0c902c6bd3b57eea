"""RedisStore on a Redis Cluster this module starts: three masters on loopback ports, made one
cluster by ``redis-cli --cluster create``, torn down at the end. Values, tag sets and locks land
in different hash slots (on different nodes): set, get, tags, invalidation across slots, the
locks and the published answers of the single flight, and two app replicas sharing the cluster.

Never skipped: without ``redis-server`` and ``redis-cli`` the tests fail and say what to install.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from redis.asyncio.cluster import RedisCluster
from starlette.responses import Response

from benchmarks.redis_servers import cluster
from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached, invalidate
from fastapi_serdes.cache.redis_store import RedisStore
from fastapi_serdes.cache.response_cache import ResponseCache
from fastapi_serdes.cache.single_flight import Produced, once_per_cluster, shareable

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

#: These tests are about where keys go, not about a slow machine (see test_redis_store.py).
GENEROUS = 5.0


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    """The ports of the cluster's three masters (one cluster for the whole module)."""
    with cluster(tmp_path_factory.mktemp("cluster")) as ports:
        yield ports


@pytest.fixture
async def raw(nodes: list[int]) -> AsyncIterator[RedisCluster]:
    """A plain cluster client, to look behind the store's back."""
    client = RedisCluster(host="127.0.0.1", port=nodes[0])
    await client.initialize()  # learns which node serves which slot
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A prefix of the test's own (the cluster is fresh, so nothing needs deleting)."""
    return f"app-{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def store(nodes: list[int], prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(f"redis://127.0.0.1:{nodes[1]}/0", cluster=True, prefix=prefix,
                       timeout=GENEROUS)  # fmt: skip
    assert store.cluster
    yield store
    await store.aclose()


def owners(raw: RedisCluster, keys: list[str]) -> set[str]:
    """The nodes holding ``keys``."""
    return {raw.get_node_from_key(key).name for key in keys}


async def test_set_get_delete_across_nodes(
    store: RedisStore, raw: RedisCluster, prefix: str
) -> None:
    keys = [f"key-{i}" for i in range(30)]
    for i, key in enumerate(keys):
        assert await store.set(key, b"v%d" % i, ttl=30) is True
    assert len(owners(raw, [f"{prefix}k:{{{key}}}" for key in keys])) == 3
    assert [await store.get(key) for key in keys] == [b"v%d" % i for i in range(30)]
    assert 29_000 < await raw.pttl(f"{prefix}k:{{key-0}}") <= 30_000
    await store.delete("key-0")
    assert await store.get("key-0") is None
    assert await store.ping() is True
    assert store.available


async def test_invalidate_across_slots(store: RedisStore, raw: RedisCluster, prefix: str) -> None:
    # Each tag set sits in one slot; its members, in the slots of their own keys, on every node.
    for i in range(30):
        await store.set(f"e{i}", b"x", ttl=30, tags=["all", f"mod3:{i % 3}"])
    assert len(owners(raw, [f"{prefix}k:e{i}" for i in range(30)])) == 3
    assert await raw.zcard(f"{prefix}t:all") == 30
    assert 29_000 < await raw.pttl(f"{prefix}t:all") <= 30_000

    assert await store.invalidate(["mod3:0", "mod3:1"]) == 20
    assert [i for i in range(30) if await store.get(f"e{i}") is not None] == list(range(2, 30, 3))
    assert await raw.exists(f"{prefix}t:mod3:0", f"{prefix}t:mod3:1") == 0
    assert await store.invalidate(["all", "nobody"]) == 10  # the rest, once each
    assert await store.invalidate(["all"]) == 0
    assert await store.invalidate([]) == 0
    leftovers = {key async for key in raw.scan_iter(match=f"{prefix}*")}
    marks = {f"{prefix}i:{tag}".encode() for tag in ["mod3:0", "mod3:1", "all", "nobody"]}
    # Its members are gone and it expires; the clock and the invalidation marks stay (an hour).
    assert leftovers == {f"{prefix}t:mod3:2".encode(), f"{prefix}clock".encode(), *marks}


async def test_a_value_computed_before_an_invalidation_is_refused(
    store: RedisStore, raw: RedisCluster, prefix: str
) -> None:
    # The clock, the marks and the value live in different slots: the write checks the marks
    # after storing (an invalidation marks before it deletes), and takes its value back.
    before = await store.clock()
    assert before is not None
    assert await store.invalidate(["item:1"]) == 0
    assert await store.set("k", b"stale", ttl=30, tags=["item:1", "x"], since=before) is False
    assert await raw.exists(f"{prefix}k:{{k}}") == 0
    assert await store.set("j", b"fine", ttl=30, tags=["item:2"], since=before) is True
    after = await store.clock()
    assert after is not None
    assert after > before
    assert await store.set("k", b"new", ttl=30, tags=["item:1"], since=after) is True
    assert await store.get("k") == b"new"
    assert await store.set("k", b"slow", ttl=30, tags=["item:1"], since=before) is False
    assert await store.get("k") == b"new"  # the newer value stays


async def test_tag_sets_drop_expired_members(
    store: RedisStore, raw: RedisCluster, prefix: str
) -> None:
    await store.set("gone", b"1", ttl=0.05, tags=["hot"])
    await asyncio.sleep(0.1)  # past the first member's expiry (in Redis's clock too)
    await store.set("live", b"2", ttl=30, tags=["hot"])
    assert await raw.zrange(f"{prefix}t:hot", 0, -1) == [f"{prefix}k:{{live}}".encode()]


async def test_a_value_is_stored_after_its_tags(
    store: RedisStore, raw: RedisCluster, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # When the tag sets cannot be written, the value is not stored either: invalidation could
    # not find it.
    async def refuses(*args: object, **kwargs: object) -> object:
        raise ConnectionError("tag node down")

    monkeypatch.setattr(store._redis, "_tag", refuses)
    assert await store.set("k", b"v", ttl=30, tags=["t"]) is False
    assert await raw.exists(f"{prefix}k:{{k}}") == 0


async def test_locks(nodes: list[int], prefix: str) -> None:
    url = f"redis://127.0.0.1:{nodes[2]}/0"
    one, two = (RedisStore(url, cluster=True, prefix=prefix, timeout=GENEROUS) for _ in "12")
    try:
        locks = [f"job-{i}" for i in range(10)]
        assert await asyncio.gather(*(one.acquire(lock, 5) for lock in locks)) == [True] * 10
        assert await asyncio.gather(*(two.acquire(lock, 5) for lock in locks)) == [False] * 10
        await two.release("job-0")  # not two's: nothing happens
        assert await two.acquire("job-0", 5) is False
        for lock in locks:
            await one.release(lock)
        assert await asyncio.gather(*(two.acquire(lock, 5) for lock in locks)) == [True] * 10
    finally:
        await one.aclose()
        await two.aclose()


async def test_single_flight_across_replicas(nodes: list[int], prefix: str) -> None:
    # The leader holds the lock until the follower found it taken (no race against a clock);
    # the follower then gets the published answer, and an invalidation of the entry's tag drops
    # that answer too.
    url = f"redis://127.0.0.1:{nodes[0]}/0"
    leader, follower = (RedisStore(url, cluster=True, prefix=prefix, timeout=GENEROUS)
                        for _ in "12")  # fmt: skip
    contended = asyncio.Event()
    real_acquire = follower.acquire

    async def acquire(key: str, ttl: float) -> bool:
        got = await real_acquire(key, ttl)
        if not got:
            contended.set()
        return got

    follower.acquire = acquire  # type: ignore[method-assign]
    computed: list[str] = []
    leading = asyncio.Event()

    async def work(name: str) -> Response:
        computed.append(name)
        leading.set()
        if name == "leader":
            await asyncio.wait_for(contended.wait(), 10)
        return Response(b"answer", media_type="application/json")

    try:
        leader_cache, follower_cache = ResponseCache(leader), ResponseCache(follower)
        since = await leader.clock()
        first = asyncio.create_task(
            once_per_cluster(leader_cache, "req", work("leader"), shareable, ["path:/x"], since)
        )
        await asyncio.wait_for(leading.wait(), 10)
        second = await once_per_cluster(
            follower_cache, "req", work("follower"), shareable, ["path:/x"], None
        )
        assert computed == ["leader"]
        assert isinstance(second, Produced)
        assert second.content == b"answer"
        assert isinstance(await first, Response)
        assert await follower.get("flight:req") is not None
        assert await follower.invalidate(["path:/x"]) == 1
        assert await leader.get("flight:req") is None
    finally:
        await leader.aclose()
        await follower.aclose()


async def test_two_replicas_share_the_cluster(nodes: list[int], prefix: str) -> None:
    calls = {"n": 0}

    def app_on(port: int) -> FastAPI:
        store = RedisStore(f"redis://127.0.0.1:{port}/0", cluster=True, prefix=prefix,
                           timeout=GENEROUS)  # fmt: skip
        app = FastAPI()
        app.state.store = store
        app.add_middleware(SerdesMiddleware, cache=store)
        router = APIRouter(route_class=SerdesRoute)

        @router.get("/items/{item_id}")
        @cached(60, tags=lambda request: ["items"])
        async def get_item(item_id: int) -> dict[str, int]:
            calls["n"] += 1
            return {"id": item_id, "version": calls["n"]}

        @router.post("/items")
        async def add_item(request: Request) -> dict[str, int]:
            return {"deleted": await invalidate(request, tags=["items"])}

        app.include_router(router)
        return app

    apps = [app_on(nodes[0]), app_on(nodes[2])]
    one, two = (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
        for app in apps
    )
    try:
        paths = [f"/items/{i}" for i in range(12)]  # entries on every node
        for path in paths:
            await one.get(path)
            await two.get(path)  # replica two may learn the path first (a miss of its own)
        served = [await two.get(path) for path in paths]
        assert {r.headers["cache-status"] for r in served} == {"fastapi-serdes; hit"}
        version = calls["n"]
        assert (await one.post("/items")).json()["deleted"] >= len(paths)
        again = await two.get(paths[0])  # gone for every replica
        assert again.headers["cache-status"].endswith("fwd=miss; stored")
        assert again.json()["version"] == version + 1
    finally:
        await one.aclose()
        await two.aclose()
        for app in apps:
            await app.state.store.aclose()
