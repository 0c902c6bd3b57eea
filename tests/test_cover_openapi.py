"""OpenAPI for a route whose only codec is JSON: nothing added to FastAPI's own document."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from fastapi_serdes import JSONCodec, SerdesRoute

pytestmark = pytest.mark.anyio


async def test_a_json_only_route_documents_json_only() -> None:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute.with_settings(codecs=[JSONCodec()]))

    @router.post("/echo")
    async def echo(value: dict[str, int]) -> dict[str, int]:
        return value

    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        operation = (await c.get("/openapi.json")).json()["paths"]["/echo"]["post"]
    assert list(operation["requestBody"]["content"]) == ["application/json"]
    assert list(operation["responses"]["200"]["content"]) == ["application/json"]
