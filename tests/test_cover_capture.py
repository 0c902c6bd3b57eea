"""Storing a cached route's answer at its edge: an answer that reaches the cache in pieces (a
middleware inside streams it) and grows past what the store keeps is streamed on, whole, and
says why it was not stored; a small one is stored from its pieces."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes._types import ASGIApp, Message, Receive, Scope, Send

pytestmark = pytest.mark.anyio


class Rechunk:
    """A pure ASGI middleware that sends every body in 100-byte pieces."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def pieces(message: Message) -> None:
            if message["type"] != "http.response.body" or message.get("more_body", False):
                await send(message)
                return
            body = message.get("body", b"")
            for start in range(0, len(body), 100):
                last = start + 100 >= len(body)
                piece = body[start : start + 100]
                await send({"type": "http.response.body", "body": piece, "more_body": not last})

        await self.app(scope, receive, pieces)


def build(store: MemoryStore) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/numbers")
    @cached(60)
    async def numbers(n: int) -> list[int]:
        return list(range(n))

    app.include_router(router)
    app.add_middleware(Rechunk)  # inside SerdesMiddleware (added last: outermost)
    app.add_middleware(SerdesMiddleware, cache=store, compression=False)
    return app


async def get(app: FastAPI, n: int) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(f"/numbers?n={n}")


async def test_an_answer_in_pieces_larger_than_the_store_keeps_is_streamed_whole() -> None:
    app = build(MemoryStore(max_item_bytes=1000))
    for _ in range(2):
        response = await get(app, 400)
        assert response.status_code == 200
        assert response.json() == list(range(400))
        assert response.headers["cache-status"].endswith("fwd=miss; detail=too-large")


async def test_a_small_answer_in_pieces_is_stored_and_then_a_hit() -> None:
    app = build(MemoryStore(max_item_bytes=1000))
    first = await get(app, 50)  # 190 bytes: two pieces
    assert first.headers["cache-status"].endswith("fwd=miss; stored")
    second = await get(app, 50)
    assert second.headers["cache-status"].endswith("hit")
    assert second.json() == first.json() == list(range(50))
