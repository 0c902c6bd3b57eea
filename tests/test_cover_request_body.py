"""Request bodies at their edges: a client that goes away mid-body, a body that decodes but does
not validate, an empty MessagePack body, and FastAPI's own per-route body limit."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from fastapi_serdes import SerdesMiddleware, SerdesRoute
from fastapi_serdes.request_body import read_body

pytestmark = pytest.mark.anyio

#: FastAPI 0.162+ takes a per-route request body limit (``max_body_size``).
PER_ROUTE_LIMITS = "max_body_size" in inspect.signature(APIRouter.post).parameters


class Item(BaseModel):
    id: int
    name: str


def build(
    route_class: type[APIRoute], *, middleware: bool = True, problem_details: bool = False
) -> FastAPI:
    app = FastAPI()
    if middleware:
        app.add_middleware(SerdesMiddleware, problem_details=problem_details)
    router = APIRouter(route_class=route_class)

    @router.post("/items")
    async def create(item: Item) -> Item:
        return item

    if PER_ROUTE_LIMITS:

        @router.post("/limited", max_body_size=20)
        async def limited(item: Item) -> Item:
            return item

    app.include_router(router)
    return app


async def post(app: FastAPI, url: str, content: bytes, content_type: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(url, content=content, headers={"content-type": content_type})


async def test_a_client_that_disconnects_ends_the_body() -> None:
    messages = [
        {"type": "http.request", "body": b"abc", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    assert await read_body(receive, 100, None) == b"abc"


@pytest.mark.parametrize("route_class", [SerdesRoute, APIRoute], ids=["serdes-route", "plain"])
async def test_a_body_that_does_not_validate_is_a_422_located_under_body(
    route_class: type[APIRoute],
) -> None:
    app = build(route_class, problem_details=True)
    response = await post(app, "/items", msgpack.packb({"id": "seven"}), "application/msgpack")
    assert response.status_code == 422
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/body/id", "/body/name"}
    assert "seven" not in response.text  # the input is not echoed


@pytest.mark.parametrize("middleware", [True, False], ids=["middleware", "route-only"])
async def test_an_empty_msgpack_body_is_a_missing_body_as_in_fastapi(middleware: bool) -> None:
    serdes = await post(
        build(SerdesRoute, middleware=middleware), "/items", b"", "application/msgpack"
    )
    stock = await post(build(APIRoute, middleware=False), "/items", b"", "application/json")
    assert serdes.status_code == stock.status_code == 422
    assert serdes.json()["detail"][0]["type"] == stock.json()["detail"][0]["type"] == "missing"


@pytest.mark.skipif(not PER_ROUTE_LIMITS, reason="this FastAPI has no per-route body limit")
async def test_fastapis_per_route_body_limit_answers_as_on_stock_fastapi() -> None:
    body = b'{"id": 1, "name": "' + b"x" * 50 + b'"}'
    serdes = await post(build(SerdesRoute), "/limited", body, "application/json")
    stock = await post(build(APIRoute, middleware=False), "/limited", body, "application/json")
    assert serdes.status_code == stock.status_code == 413
    assert serdes.content == stock.content
    assert serdes.headers["content-type"] == stock.headers["content-type"]
    small = await post(build(SerdesRoute), "/limited", b'{"id":1,"name":"a"}', "application/json")
    assert small.status_code == 200
    assert small.json() == {"id": 1, "name": "a"}
