"""Shared fixtures: a small app on SerdesRoute, with and without the middleware."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from fastapi_serdes import ProblemError, SerdesMiddleware, SerdesResponse, SerdesRoute


class Item(BaseModel):
    id: int
    name: str
    price: float = 1.5
    created: datetime = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    tags: list[str] = []


def build_app(*, middleware: bool = True, **settings: Any) -> FastAPI:
    """One app exercising every path: SerdesRoute routes, plain routes, streaming, bodiless."""
    app = FastAPI()
    if middleware:
        app.add_middleware(SerdesMiddleware, **settings)
        router = APIRouter(route_class=SerdesRoute)
    else:
        router = APIRouter(route_class=SerdesRoute.with_settings(**settings))

    @router.get("/items/{item_id}")
    async def get_item(item_id: int) -> Item:
        if item_id == 404:
            raise ProblemError(404, detail=f"No item {item_id}")
        return Item(id=item_id, name="widget", price=math.nan if item_id == 13 else 2.5)

    @router.get("/items")
    def list_items(limit: int = 3) -> list[Item]:
        return [Item(id=i, name=f"item {i}") for i in range(limit)]

    @router.get("/dicts")
    async def dicts() -> list[Item]:
        return [{"id": 1, "name": "from a dict"}]  # type: ignore[list-item]

    @router.get("/untyped")
    async def untyped() -> Any:
        return {"big": 2**64} if False else {"a": [1, 2.5, "x"]}

    @router.get("/big")
    async def big() -> dict[str, int]:
        return {"big": 2**64}

    @router.post("/items", status_code=201)
    async def create_item(item: Item) -> Item:
        return item

    @router.delete("/items/{item_id}", status_code=204)
    async def delete_item(item_id: int) -> None:
        return None

    @router.get("/explicit")
    async def explicit() -> SerdesResponse:
        return SerdesResponse({"ok": True}, status_code=202, headers={"X-Extra": "1"})

    @router.get("/raw")
    async def raw() -> Response:
        return Response(b"raw", media_type="text/plain")

    app.include_router(router, prefix="/api")

    @app.get("/plain")
    async def plain() -> Item:
        return Item(id=7, name="plain")

    @app.post("/plain")
    async def plain_post(item: Item) -> Item:
        return item

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"n": 1}\n'
            yield b'{"n": 2}\n'

        return StreamingResponse(chunks(), media_type="application/json")

    @app.get("/no-content", status_code=204)
    async def no_content() -> None:
        return None

    @app.get("/redirect")
    async def redirect() -> Response:
        return Response(status_code=307, headers={"location": "/plain"})

    return app


@pytest.fixture
def anyio_backend() -> str:
    """Every async test of the suite runs on asyncio (one fixture for all test files)."""
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
