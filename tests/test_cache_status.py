"""Cache-Status says what happened to the answer: stored, or not (too large, store down)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes.cache.redis_store import RedisStore

pytestmark = pytest.mark.anyio


def build(store: Any) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items")
    @cached(60)
    async def items(n: int = 10) -> list[int]:
        return list(range(n))

    app.include_router(router)
    app.add_middleware(SerdesMiddleware, cache=store, compression=False)
    return app


async def get(app: FastAPI, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(url)


async def test_a_stored_answer_says_stored_and_is_then_a_hit() -> None:
    app = build(MemoryStore())
    first = await get(app, "/items")
    assert first.headers["cache-status"].endswith("fwd=miss; stored")
    second = await get(app, "/items")
    assert second.headers["cache-status"].endswith("hit")
    assert second.content == first.content


async def test_an_answer_too_large_for_the_store_says_not_stored() -> None:
    app = build(MemoryStore(max_item_bytes=200))
    first = await get(app, "/items?n=500")
    assert first.status_code == 200
    assert first.json() == list(range(500))
    assert first.headers["cache-status"].endswith("fwd=miss; detail=not-stored")
    again = await get(app, "/items?n=500")
    assert "hit" not in again.headers["cache-status"]


async def test_a_store_that_is_down_says_not_stored_and_the_answer_still_comes() -> None:
    # Nothing listens on port 1: every Redis call fails at once (refused), the answer does not.
    store = RedisStore("redis://127.0.0.1:1/0", timeout=0.5)
    try:
        response = await get(build(store), "/items")
    finally:
        await store.aclose()
    assert response.status_code == 200
    assert response.json() == list(range(10))
    assert response.headers["cache-status"].endswith("fwd=miss; detail=not-stored")
