"""Repeated header lines and query parameters are normal input (RFC 9110 §5.3): several lines
of a list header are one list, and a cache key distinguishes what the app distinguishes."""

from __future__ import annotations

import asyncio
import gzip

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel

from fastapi_serdes import ALL, SerdesMiddleware, SerdesRoute, Views, cached

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: int
    name: str


views = Views(Item, minimal=["id"], detailed=ALL, default="detailed")


def build() -> tuple[FastAPI, list[str]]:
    calls: list[str] = []
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/items")
    @cached(60)
    async def items(limit: int = 10) -> list[int]:
        calls.append(f"items:{limit}")
        return list(range(limit))

    @router.get("/item")
    @cached(60)
    @views
    async def item() -> Item:
        calls.append("item")
        return Item(id=1, name="n")

    @router.get("/session")
    @cached(60)
    async def session(response: Response) -> dict[str, int]:
        calls.append("session")
        number = len(calls)
        await asyncio.sleep(0.01)  # concurrent requests overlap
        response.set_cookie("sid", f"s{number}")
        return {"ok": 1}

    @router.post("/echo")
    async def echo(item: Item) -> Item:
        return item

    app.include_router(router)
    return app, calls


async def get(
    client: httpx.AsyncClient, url: str, headers: list[tuple[str, str]] | None = None
) -> httpx.Response:
    return await client.get(url, headers=httpx.Headers(headers or []))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/items?limit=1&limit=5", "/items?limit=5&limit=1"),
        ("/item?view=detailed&view=minimal", "/item?view=minimal&view=detailed"),
    ],
)
async def test_repeated_query_values_in_another_order_are_another_entry(
    first: str, second: str
) -> None:
    app, _ = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        a = await c.get(first)
        b = await c.get(second)
        assert b.headers["cache-status"].endswith("stored")
        # What the origin answers for the second URL, uncached.
        fresh_app, _ = build()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=fresh_app), base_url="http://t"
        ) as fresh:
            assert b.content == (await fresh.get(second)).content
        assert a.content != b.content


async def test_reordered_distinct_parameters_share_an_entry() -> None:
    app, calls = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.get("/items?limit=2&x=1")
        await c.get("/items?x=1&limit=2")
    assert calls == ["items:2"]


async def test_if_none_match_over_two_lines_is_one_list() -> None:
    app, _ = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        etag = (await c.get("/item")).headers["etag"]
        for lines in ([("if-none-match", '"other"'), ("if-none-match", etag)],
                      [("if-none-match", etag), ("if-none-match", '"other"')]):  # fmt: skip
            response = await c.get("/item", headers=httpx.Headers(lines))
            assert response.status_code == 304, lines


async def test_two_content_encoding_lines_are_one_list() -> None:
    app, _ = build()
    body = gzip.compress(b'{"id": 1, "name": "n"}')
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        headers = httpx.Headers(
            [
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("content-encoding", "br"),
            ]
        )
        response = await c.post("/echo", content=body, headers=headers)
    # Two codings are not supported: refused, never handed to the route still encoded.
    assert response.status_code == 415


async def test_single_flight_never_shares_a_cookie() -> None:
    app, calls = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        responses = await asyncio.gather(*(c.get("/session") for _ in range(5)))
    cookies = {r.headers["set-cookie"] for r in responses}
    assert len(cookies) == 5
    assert len(calls) == 5


async def test_two_content_type_lines_are_read_as_fastapi_reads_them() -> None:
    import msgpack

    app, _ = build()
    headers = httpx.Headers(
        [("content-type", "application/msgpack"), ("content-type", "application/json")]
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.post(
            "/echo", content=msgpack.packb({"id": 1, "name": "n"}), headers=headers
        )
    # The first line counts (Starlette's request.headers.get), for the middleware and the route.
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "n"}
