"""SerdesMiddleware at its edges: many distinct Accept values (a bounded memo), failures on the
fast path, and apps that fail while reading a compressed body."""

from __future__ import annotations

import gzip
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes._types import Receive, Scope, Send
from fastapi_serdes.middleware import _ACCEPT_MEMO_SIZE

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: int


def build() -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=False, cache=False)

    @app.get("/item")
    async def item() -> Item:
        return Item(id=1)

    @app.post("/item")
    async def create(item: Item) -> Item:
        return item

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("the app's own bug")

    return app


def client(app: Any, **kwargs: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, **kwargs)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_many_distinct_accept_values_are_each_answered_right() -> None:
    async with client(build()) as c:
        for i in range(_ACCEPT_MEMO_SIZE + 20):
            wants_msgpack = i % 2 == 0
            first = "application/msgpack" if wants_msgpack else "application/json"
            accept = f"{first}, text/x-{i};q=0.1"
            response = await c.get("/item", headers={"accept": accept})
            assert response.headers["content-type"] == first, accept
            body = msgpack.unpackb(response.content) if wants_msgpack else response.json()
            assert body == {"id": 1}


async def test_an_app_exception_on_the_fast_path_still_propagates() -> None:
    async with client(build()) as c:
        assert (await c.get("/item")).status_code == 200  # fills the memos: fast path next
        with pytest.raises(RuntimeError, match="the app's own bug"):
            await c.get("/boom")
        assert (await c.get("/item")).json() == {"id": 1}


async def test_a_body_fastapi_cannot_echo_is_a_422_on_the_fast_path() -> None:
    async with client(build(), raise_app_exceptions=False) as c:
        assert (await c.get("/item")).status_code == 200
        # A lone surrogate: FastAPI's handler fails to echo it back (a 500 for bad input).
        response = await c.post(
            "/item", content=b'{"id": "\\ud800"}', headers={"content-type": "application/json"}
        )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "id"]


def raw_app(*, fail_after_read: bool) -> Any:
    """An ASGI app with no exception handling of its own, reading the whole body."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if not message.get("more_body", False):
                break
        if fail_after_read:
            raise RuntimeError("failed after reading")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


# With and without a compressed answer (the client accepts gzip, or only identity).
ANSWER_CODINGS = pytest.mark.parametrize("accept_encoding", ["gzip", "identity"])


@ANSWER_CODINGS
async def test_a_compressed_body_problem_the_app_lets_escape_is_answered(
    accept_encoding: str,
) -> None:
    middleware = SerdesMiddleware(raw_app(fail_after_read=False))
    headers = {"content-encoding": "gzip", "accept-encoding": accept_encoding}
    async with client(middleware) as c:
        response = await c.post("/", content=b"not gzip at all", headers=headers)
    assert response.status_code == 400
    assert "detail" in response.json()


@ANSWER_CODINGS
async def test_an_app_failure_after_a_compressed_body_is_not_hidden(accept_encoding: str) -> None:
    middleware = SerdesMiddleware(raw_app(fail_after_read=True))
    headers = {"content-encoding": "gzip", "accept-encoding": accept_encoding}
    async with client(middleware) as c:
        with pytest.raises(RuntimeError, match="failed after reading"):
            await c.post("/", content=gzip.compress(b"{}"), headers=headers)


async def test_a_cached_route_added_after_the_first_request_still_answers() -> None:
    # The route table was read at the first request: the new route is served by the fast
    # path, which still lets the cache layer know the request is over.
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=False)
    async with client(app) as c:
        assert (await c.get("/openapi.json")).status_code == 200
        router = APIRouter(route_class=SerdesRoute)

        @router.get("/late")
        @cached(60)
        async def late() -> list[int]:
            return [1, 2]

        app.include_router(router)
        for _ in range(2):
            response = await c.get("/late")
            assert response.status_code == 200
            assert response.json() == [1, 2]
