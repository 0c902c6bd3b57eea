"""The response cache's building blocks at their edges: the Cache-Control a route declares,
entries that lie about their length, partial content, and a single flight whose leader is slow."""

from __future__ import annotations

import asyncio

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes.cache import ENTRY_FORMAT, Entry, SingleFlight, storable_response

pytestmark = pytest.mark.anyio


def build(cache_control: str | None) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items")
    @cached(60, cache_control=cache_control)
    async def items() -> list[int]:
        return [1, 2, 3]

    app.include_router(router)
    app.add_middleware(SerdesMiddleware, cache=MemoryStore(), compression=False)
    return app


@pytest.mark.parametrize("cache_control", [None, "public, max-age=5, must-revalidate"])
async def test_a_declared_cache_control_is_sent_as_it_is(cache_control: str | None) -> None:
    app = build(cache_control)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/items")
        second = await client.get("/items")
    for response in (first, second):
        assert response.json() == [1, 2, 3]
        assert response.headers.get("cache-control") == cache_control
    assert second.headers["cache-status"].endswith("hit")


def test_an_entry_shorter_than_its_metadata_says_is_a_miss() -> None:
    meta = msgpack.packb([200, [], '"e"', 0.0, 60.0, []], use_bin_type=True)
    # The length field claims more metadata bytes than there are.
    data = ENTRY_FORMAT + (len(meta) + 50).to_bytes(4, "big") + meta
    assert Entry.loads(data) is None


def test_an_entry_whose_headers_are_not_bytes_is_a_miss() -> None:
    meta = msgpack.packb([200, [["content-type", "text/plain"]], '"e"', 0.0, 60.0, []])
    data = ENTRY_FORMAT + len(meta).to_bytes(4, "big") + meta + b"body"
    assert Entry.loads(data) is None
    good = Entry(200, [(b"content-type", b"text/plain")], b"body", '"e"', 0.0, 60.0)
    assert Entry.loads(good.dumps()) == good


def test_partial_content_is_never_stored() -> None:
    # A 200 carrying Content-Range describes a part of a representation, not all of it.
    assert not storable_response(200, [(b"content-range", b"bytes 0-9/100")])
    assert storable_response(200, [(b"content-type", b"application/json")])


async def test_a_follower_waits_no_longer_than_its_timeout_then_computes() -> None:
    flights = SingleFlight(timeout=0.05)
    release = asyncio.Event()
    computed: list[str] = []

    async def slow() -> str:
        computed.append("leader")
        await release.wait()
        return "leader's"

    async def fast() -> str:
        computed.append("follower")
        return "follower's"

    leader = asyncio.create_task(flights.run("k", slow))
    await asyncio.sleep(0)
    assert len(flights) == 1
    assert await flights.run("k", fast) == "follower's"
    release.set()
    assert await leader == "leader's"
    assert computed == ["leader", "follower"]
    assert len(flights) == 0


async def test_a_follower_computes_when_the_leader_shares_nothing() -> None:
    flights = SingleFlight(timeout=5)
    started = asyncio.Event()
    release = asyncio.Event()

    async def leader_work() -> str:
        started.set()
        await release.wait()
        return "private"

    async def follower_work() -> str:
        return "own"

    leader = asyncio.create_task(flights.run("k", leader_work, share=lambda result: None))
    await started.wait()
    follower = asyncio.create_task(flights.run("k", follower_work))
    await asyncio.sleep(0)
    release.set()
    assert await leader == "private"
    assert await follower == "own"
