"""The response cache end to end: hits skip the app, keys never mix users or variants."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel

from fastapi_serdes import (
    ALL,
    MemoryStore,
    SerdesMiddleware,
    SerdesRoute,
    Views,
    cached,
    invalidate,
)
from fastapi_serdes.cache.redis_store import RedisStore

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: int
    name: str
    blurb: str = "x" * 2000  # above the compression threshold


item_views = Views(Item, minimal=["id"], detailed=ALL, default="detailed")


def user_of(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") or None


async def overlap() -> None:
    """Long enough for concurrent requests to overlap, counted in event-loop turns, not in
    seconds: on a loaded machine 10 ms can pass before the other requests get a turn (issue 15).
    A request reaches the single flight without waiting on anything (no I/O before the route)."""
    for _ in range(50):
        await asyncio.sleep(0)


def build(
    store: Any = True, *, hold: Callable[[], Awaitable[None]] = overlap
) -> tuple[FastAPI, dict[str, int]]:
    """The app; ``hold`` is what ``/items/{id}`` waits for while it computes."""
    calls: dict[str, int] = {}
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=store, answer_head=True)
    router = APIRouter(route_class=SerdesRoute)

    def count(name: str) -> int:
        calls[name] = calls.get(name, 0) + 1
        return calls[name]

    @router.get("/items/{item_id}")
    @cached(60, tags=lambda r: [f"item:{r.path_params['item_id']}"])
    @item_views
    async def get_item(item_id: int) -> Item:
        count("item")
        await hold()
        return Item(id=item_id, name=f"v{calls['item']}")

    @router.get("/stable")
    async def stable() -> Item:
        return Item(id=0, name="same every time")

    @router.put("/items/{item_id}")
    async def put_item(item_id: int) -> Item:
        return Item(id=item_id, name="new")

    @router.post("/items/{item_id}/touch")
    async def touch(item_id: int, request: Request) -> dict[str, int]:
        return {"deleted": await invalidate(request, tags=[f"item:{item_id}"])}

    @router.get("/me")
    @cached(60, key=user_of)
    async def me(request: Request) -> dict[str, str]:
        count("me")
        return {"user": user_of(request) or "anonymous"}

    @router.get("/shared")
    @cached(60)
    async def shared(request: Request) -> dict[str, Any]:
        count("shared")
        return {"n": calls["shared"]}

    @router.get("/cookie")
    @cached(60)
    async def cookie(response: Response) -> dict[str, int]:
        response.set_cookie("session", "secret")
        return {"n": count("cookie")}

    @router.get("/private")
    @cached(60)
    async def private(response: Response) -> dict[str, int]:
        response.headers["cache-control"] = "private"
        return {"n": count("private")}

    @router.get("/lang")
    @cached(60, vary=["accept-language"])
    async def lang(request: Request) -> dict[str, str]:
        count("lang")
        return {"lang": request.headers.get("accept-language", "")}

    @router.get("/missing")
    @cached(60)
    async def missing() -> dict[str, int]:
        count("missing")
        from fastapi_serdes import ProblemError

        raise ProblemError(404)

    app.include_router(router)
    return app, calls


@pytest.fixture
async def setup() -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, int]]]:
    app, calls = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, calls


async def test_hit_skips_the_endpoint(setup: tuple[httpx.AsyncClient, dict[str, int]]) -> None:
    client, calls = setup
    first = await client.get("/items/1")
    assert first.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    second = await client.get("/items/1")
    assert second.headers["cache-status"] == "fastapi-serdes; hit"
    assert second.json() == first.json()
    assert second.headers["etag"] == first.headers["etag"]
    assert int(second.headers["age"]) >= 0
    assert second.headers["cache-control"] == "public, max-age=60"
    assert calls["item"] == 1


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({}, {"accept": "application/msgpack"}),
        ({}, {"accept-encoding": "identity"}),
        ({"accept-encoding": "gzip"}, {"accept-encoding": "br"}),
    ],
)
async def test_variants_have_their_own_entries(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
    first: dict[str, str],
    second: dict[str, str],
) -> None:
    client, _ = setup
    a = await client.get("/items/2", headers=first)
    b = await client.get("/items/2", headers=second)
    assert b.headers["cache-status"].endswith("stored")
    assert a.headers.get("content-type") and b.headers.get("content-type")  # noqa: PT018
    again = await client.get("/items/2", headers=second)
    assert again.headers["cache-status"] == "fastapi-serdes; hit"
    assert again.headers.get("content-encoding") == b.headers.get("content-encoding")
    assert again.content == b.content
    if second.get("accept") == "application/msgpack":
        assert msgpack.unpackb(again.content)["id"] == 2


async def test_views_and_query_are_in_the_key(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
) -> None:
    client, _ = setup
    full = await client.get("/items/3")
    minimal = await client.get("/items/3?view=minimal")
    assert minimal.json() == {"id": 3}
    assert (await client.get("/items/3?view=minimal")).json() == {"id": 3}
    assert (await client.get("/items/3")).json() == full.json()


async def test_prefer_picks_its_own_entry(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
) -> None:
    client, _ = setup
    assert set((await client.get("/items/12")).json()) == {"id", "name", "blurb"}
    res = await client.get("/items/12", headers={"prefer": "return=minimal"})
    assert res.json() == {"id": 12}
    assert res.headers["preference-applied"] == "return=minimal"
    again = await client.get("/items/12", headers={"prefer": "return=minimal"})
    assert again.headers["cache-status"] == "fastapi-serdes; hit"
    assert again.json() == {"id": 12}
    assert [t.strip() for t in again.headers["vary"].split(",")].count("Prefer") == 1


async def test_credentialed_requests_never_touch_a_shared_entry(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
) -> None:
    client, calls = setup
    await client.get("/shared")
    await client.get("/shared")
    assert calls["shared"] == 1
    res = await client.get("/shared", headers={"authorization": "Bearer alice"})
    assert res.json() == {"n": 2}  # not served alice the anonymous entry
    assert "cache-status" not in res.headers or "hit" not in res.headers["cache-status"]
    res = await client.get("/shared", headers={"cookie": "session=bob"})
    assert res.json() == {"n": 3}
    assert (await client.get("/shared")).json() == {"n": 1}  # and alice was not stored


async def test_per_principal_entries(setup: tuple[httpx.AsyncClient, dict[str, int]]) -> None:
    client, calls = setup
    alice = {"authorization": "Bearer alice"}
    bob = {"authorization": "Bearer bob"}
    assert (await client.get("/me", headers=alice)).json() == {"user": "alice"}
    assert (await client.get("/me", headers=bob)).json() == {"user": "bob"}
    hit = await client.get("/me", headers=alice)
    assert hit.json() == {"user": "alice"}
    assert hit.headers["cache-status"] == "fastapi-serdes; hit"
    assert hit.headers["cache-control"] == "private, max-age=60"
    assert (await client.get("/me", headers=bob)).json() == {"user": "bob"}
    assert calls["me"] == 2


@pytest.mark.parametrize("path", ["/cookie", "/private", "/missing"])
async def test_unstorable_responses(
    setup: tuple[httpx.AsyncClient, dict[str, int]], path: str
) -> None:
    client, calls = setup
    await client.get(path)
    res = await client.get(path)
    assert "hit" not in res.headers.get("cache-status", "")
    assert calls[path.strip("/")] == 2


async def test_declared_vary_headers(setup: tuple[httpx.AsyncClient, dict[str, int]]) -> None:
    client, calls = setup
    fr = await client.get("/lang", headers={"accept-language": "fr"})
    de = await client.get("/lang", headers={"accept-language": "de"})
    assert fr.json() == {"lang": "fr"}
    assert de.json() == {"lang": "de"}
    assert (await client.get("/lang", headers={"accept-language": "fr"})).json() == {"lang": "fr"}
    assert "accept-language" in fr.headers["vary"].lower()
    assert calls["lang"] == 2


async def test_unsafe_methods_invalidate_the_path(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
) -> None:
    client, calls = setup
    await client.get("/items/4")
    await client.put("/items/4")
    res = await client.get("/items/4")
    assert res.headers["cache-status"].endswith("stored")
    assert calls["item"] == 2


async def test_tag_invalidation(setup: tuple[httpx.AsyncClient, dict[str, int]]) -> None:
    client, calls = setup
    await client.get("/items/5", headers={"accept-encoding": "identity"})
    await client.get("/items/5?view=minimal", headers={"accept-encoding": "identity"})
    res = await client.post("/items/5/touch")
    assert res.json() == {"deleted": 2}
    await client.get("/items/5")
    assert calls["item"] == 3


async def test_request_cache_control(setup: tuple[httpx.AsyncClient, dict[str, int]]) -> None:
    client, calls = setup
    await client.get("/items/6")
    res = await client.get("/items/6", headers={"cache-control": "no-cache"})
    assert calls["item"] == 2  # revalidated at the origin
    assert res.headers["cache-status"].endswith("stored")
    await client.get("/items/7", headers={"cache-control": "no-store"})
    res = await client.get("/items/7")
    assert res.headers["cache-status"].endswith("stored")  # the no-store answer was not kept


async def test_304_and_head_from_the_cache(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
) -> None:
    client, calls = setup
    first = await client.get("/items/8")
    res = await client.get("/items/8", headers={"if-none-match": first.headers["etag"]})
    assert res.status_code == 304
    assert res.content == b""
    assert res.headers["etag"] == first.headers["etag"]
    head = await client.head("/items/8")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["cache-status"] == "fastapi-serdes; hit"
    assert calls["item"] == 1


async def test_concurrent_cold_requests_compute_once() -> None:
    app, calls = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        responses = await asyncio.gather(*(c.get("/items/9") for _ in range(200)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert calls["item"] == 1


class FailingStore(MemoryStore):
    async def get(self, key: str) -> bytes | None:
        raise ConnectionError("down")

    async def set(self, key: str, value: bytes, *, ttl: float, tags: Any = ()) -> None:
        raise ConnectionError("down")


async def test_a_failing_store_serves_uncached(caplog: pytest.LogCaptureFixture) -> None:
    app, calls = build(FailingStore())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for _ in range(3):
            assert (await c.get("/items/10")).status_code == 200
    assert calls["item"] == 3


def test_cache_setting_is_validated() -> None:
    with pytest.raises(TypeError, match="cache must be"):
        SerdesMiddleware(FastAPI(), cache="redis://")  # type: ignore[arg-type]


@asynccontextmanager
async def two_replicas(
    path: str,
    *,
    hold: Callable[[], Awaitable[None]] = overlap,
    store_class: Callable[..., RedisStore] = RedisStore,
) -> AsyncIterator[Any]:
    """Two apps sharing one Redis (a fresh key prefix), with a client and call counts each."""
    prefix = f"fastapi-serdes-test-{os.getpid()}-{id(object())}:"
    # A generous timeout: these tests are about sharing, not about a slow Redis (40 concurrent
    # cold calls on a loaded CI machine can pass the 50 ms default and open the circuit).
    stores = [store_class("redis://127.0.0.1:6379/0", prefix=prefix, timeout=5.0) for _ in range(2)]
    try:
        (app1, calls1), (app2, calls2) = (build(store, hold=hold) for store in stores)
        t1, t2 = httpx.ASGITransport(app=app1), httpx.ASGITransport(app=app2)
        async with (
            httpx.AsyncClient(transport=t1, base_url="http://t") as c1,
            httpx.AsyncClient(transport=t2, base_url="http://t") as c2,
        ):
            yield (c1, calls1), (c2, calls2)
    finally:
        for store in stores:
            await store.invalidate([f"path:{path}"])
            await store.aclose()


@pytest.mark.redis
async def test_replicas_share_entries_through_redis() -> None:
    async with two_replicas("/items/11") as ((c1, calls1), (c2, calls2)):
        first = await c1.get("/items/11")
        # Replica 2 never answered this path: it serves the shared entry from its first request.
        shared = await c2.get("/items/11")
        assert shared.headers["cache-status"] == "fastapi-serdes; hit"
        assert shared.content == first.content
        await c1.put("/items/11")  # invalidates in Redis, for both replicas
        again = await c1.get("/items/11")
        hit = await c2.get("/items/11")
        assert hit.headers["cache-status"] == "fastapi-serdes; hit"
        assert hit.json() == again.json() != first.json()
        assert calls1["item"] == 2
        assert calls2.get("item", 0) == 0


async def test_head_first_never_stores_an_empty_body() -> None:
    app, _ = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        head = await c.head("/items/20")
        assert head.status_code == 200
        assert head.content == b""
        get = await c.get("/items/20")
        assert get.json()["id"] == 20
        again = await c.get("/items/20")
        assert again.headers["cache-status"] == "fastapi-serdes; hit"
        assert again.content == get.content


async def test_key_function_returning_none_is_not_reported_stored(
    setup: tuple[httpx.AsyncClient, dict[str, int]],
) -> None:
    client, calls = setup
    res = await client.get("/me")  # no Authorization: user_of returns None
    assert res.headers.get("cache-status", "fastapi-serdes; fwd=miss") == "fastapi-serdes; fwd=miss"
    await client.get("/me")
    assert calls["me"] == 2


@pytest.mark.parametrize("coding", ["gzip", "br"])
async def test_304_for_the_tag_of_a_compressed_variant(coding: str) -> None:
    app, _ = build(store=None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        first = await c.get("/stable", headers={"accept-encoding": coding})
        tag = first.headers["etag"]
        assert tag.endswith(f'-{coding}"')
        res = await c.get("/stable", headers={"accept-encoding": coding, "if-none-match": tag})
        assert res.status_code == 304
        assert res.headers["etag"] == tag
        identity = (await c.get("/stable", headers={"accept-encoding": "identity"})).headers
        assert identity["etag"] == tag.replace(f"-{coding}", "")
        res = await c.get("/stable", headers={"accept-encoding": coding,
                                              "if-none-match": identity["etag"]})  # fmt: skip
        assert res.status_code == 304
        assert res.headers["etag"] == identity["etag"]  # the client's own tag


@pytest.mark.parametrize("coding", ["gzip", "br"])
async def test_a_stored_variant_answers_304_with_the_clients_own_tag(coding: str) -> None:
    # As the route does: the 304 names the stored response the client validates (RFC 9111
    # §4.3.4), the identity one here, not the compressed variant the cache holds.
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/many")
    @cached(60)
    async def many() -> list[Item]:
        return [Item(id=i, name=f"item number {i}") for i in range(100)]

    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        identity = (await c.get("/many", headers={"accept-encoding": "identity"})).headers
        variant = (await c.get("/many", headers={"accept-encoding": coding})).headers
        assert variant["etag"] == identity["etag"][:-1] + f'-{coding}"'
        for tag in (identity["etag"], variant["etag"], f"W/{identity['etag']}"):
            res = await c.get("/many", headers={"accept-encoding": coding, "if-none-match": tag})
            assert res.status_code == 304
            assert res.headers["cache-status"] == "fastapi-serdes; hit"
            # A weak tag is not echoed: the 304 names the stored variant's strong one.
            assert res.headers["etag"] == (variant["etag"] if tag.startswith("W/") else tag)


class Flight:
    """What the replicas of one test did with the cluster lock and the published answer."""

    def __init__(self) -> None:
        self.contended = asyncio.Event()  # a replica found the lock taken
        self.published = asyncio.Event()  # the leader published its answer


def watched(flight: Flight) -> Callable[..., RedisStore]:
    """A RedisStore class reporting to ``flight``, whose polls for the published answer are
    delayed until it is published (latency injected, instead of racing a 20 ms poll)."""

    class Watched(RedisStore):
        holding = False  # this replica holds the lock: its own look is not delayed

        async def acquire(self, key: str, ttl: float) -> bool:
            got = await super().acquire(key, ttl)
            if not got:
                flight.contended.set()
            self.holding = got
            return got

        async def set(
            self, key: str, value: bytes, *, ttl: float, tags: Collection[str] = ()
        ) -> bool:
            stored = await super().set(key, value, ttl=ttl, tags=tags)
            if key.startswith("flight:"):
                flight.published.set()
            return stored

        async def get(self, key: str) -> bytes | None:
            if key.startswith("flight:") and not self.holding:
                await asyncio.wait_for(flight.published.wait(), 10)
            return await super().get(key)

    return Watched


@pytest.mark.redis
async def test_concurrent_cold_requests_compute_once_per_cluster() -> None:
    # Deterministic (issue 15): the leader computes only once the other replica found the lock
    # taken, and that replica's poll for the answer comes after its publication. Without that,
    # on a loaded machine the leader could finish before the other replica asks, or publish and
    # release between two of its polls: both replicas would compute, correctly but twice.
    flight = Flight()

    async def hold() -> None:
        await overlap()
        await asyncio.wait_for(flight.contended.wait(), 10)

    async with two_replicas("/items/30", hold=hold, store_class=watched(flight)) as (
        (c1, calls1),
        (c2, calls2),
    ):
        requests = [c.get("/items/30") for c in (c1, c2) for _ in range(20)]
        responses = await asyncio.gather(*requests)
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["name"] for r in responses}) == 1
    assert calls1.get("item", 0) + calls2.get("item", 0) == 1


async def test_an_app_without_cached_routes_captures_nothing() -> None:
    # An app none of whose routes is decorated with @cached neither captures GETs nor
    # invalidates after unsafe methods (the store is never touched), whatever other apps of the
    # process cache; an app with one, mounted below it or not, captures and invalidates.
    touched: list[str] = []

    class WatchedStore(MemoryStore):
        async def get(self, key: str) -> bytes | None:
            touched.append("get")
            return await super().get(key)

        async def set(self, key: str, value: bytes, *, ttl: float, tags: Any = ()) -> None:
            touched.append("set")
            await super().set(key, value, ttl=ttl, tags=tags)

        async def invalidate(self, tags: Any) -> int:
            touched.append("invalidate")
            return await super().invalidate(tags)

    cached_app, _ = build()  # another app of this process, with @cached routes
    assert cached_app is not None
    plain = FastAPI()
    plain.add_middleware(SerdesMiddleware, cache=WatchedStore())
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> Item:
        return Item(id=item_id, name="x")

    @router.put("/items/{item_id}")
    async def put_item(item_id: int) -> Item:
        return Item(id=item_id, name="new")

    plain.include_router(router)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=plain), base_url="http://t"
    ) as c:
        for _ in range(2):
            response = await c.get("/items/1")
            assert response.status_code == 200
            assert "cache-status" not in response.headers
        assert (await c.put("/items/1")).status_code == 200
    assert touched == []
    # Found below a mount, and with the middleware wrapping the app directly.
    for mounted in (True, False):
        app, _ = build(None)
        if mounted:
            outer = FastAPI()
            outer.add_middleware(SerdesMiddleware, cache=WatchedStore())
            outer.mount("/v1", app)
            served: Any = outer
        else:
            served = SerdesMiddleware(app, cache=WatchedStore())
        prefix = "/v1" if mounted else ""
        touched.clear()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=served), base_url="http://t"
        ) as c:
            await c.get(f"{prefix}/items/1")
            await c.put(f"{prefix}/items/1")
        # The first GET is looked up (the route table says the route caches), then stored.
        assert touched[0] == "get", mounted
        assert [t for t in touched if t != "get"] == ["set", "invalidate"], mounted


async def test_a_cached_route_added_later_is_cached_from_its_second_answer() -> None:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/first")
    async def first() -> Item:
        return Item(id=1, name="x")

    app.include_router(router)
    calls = [0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/first")).status_code == 200  # the middleware looked: none caches
        later = APIRouter(route_class=SerdesRoute)

        @later.get("/later")
        @cached(60)
        async def later_route() -> Item:
            calls[0] += 1
            return Item(id=2, name=f"v{calls[0]}")

        app.include_router(later)
        statuses = [(await c.get("/later")).headers.get("cache-status") for _ in range(3)]
    assert calls[0] == 2  # the first answer taught the cache; the second was stored
    assert statuses[0] is None
    assert "hit" in (statuses[2] or "")
