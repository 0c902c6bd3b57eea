"""Transcoding for plain routes at its edges: empty bodies both ways, responses that must pass
as they are (partial content, a coding the library does not read, bytes that are not what their
coding says), values MessagePack cannot carry, HEAD, and reads after the body."""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from typing import Any

import httpx
import msgpack
import pytest
from fastapi import FastAPI, Response
from pydantic import BaseModel

from fastapi_serdes import MsgPackCodec, SerdesMiddleware, SerdesSettings
from fastapi_serdes.transcoding import BodyTranscoder

pytestmark = pytest.mark.anyio
MSGPACK = {"accept": "application/msgpack"}
DOC = {"a": [1, 2, 3]}


class Item(BaseModel):
    id: int
    name: str


def json_response(body: bytes, status: int = 200, **headers: str) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def build() -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=False, cache=False)

    @app.post("/items")
    async def create(item: Item) -> Item:
        return item

    @app.get("/empty")
    async def empty() -> Response:
        return json_response(b"")

    @app.get("/range")
    async def partial() -> Response:
        return json_response(b'{"a": 1}', 416, **{"content-range": "bytes */100"})

    @app.get("/deflated")
    async def deflated() -> Response:
        return json_response(
            zlib.compress(json.dumps(DOC).encode()), **{"content-encoding": "deflate"}
        )

    @app.get("/gzipped")
    async def gzipped() -> Response:
        return json_response(
            gzip.compress(json.dumps(DOC).encode()), **{"content-encoding": "gzip"}
        )

    @app.get("/not-gzip")
    async def not_gzip() -> Response:
        return json_response(b'{"a": 1}', **{"content-encoding": "gzip"})

    @app.get("/huge")
    async def huge() -> Response:
        return json_response(b'{"n": 123456789012345678901234567890}')

    @app.head("/head")
    async def head() -> Response:
        return json_response(b"", **{"x-head": "1"})

    return app


async def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=build())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, url, **kwargs)


async def test_an_empty_msgpack_body_reaches_the_route_as_an_empty_json_body() -> None:
    response = await call(
        "POST", "/items", content=b"", headers={"content-type": "application/msgpack"}
    )
    stock = await call("POST", "/items", content=b"", headers={"content-type": "application/json"})
    assert response.status_code == stock.status_code == 422
    assert response.json() == stock.json()


async def test_an_empty_json_answer_is_an_empty_msgpack_answer() -> None:
    response = await call("GET", "/empty", headers=MSGPACK)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/msgpack"
    assert response.headers["content-length"] == "0"
    assert response.content == b""


async def test_partial_content_is_never_transcoded() -> None:
    response = await call("GET", "/range", headers=MSGPACK)
    assert response.status_code == 416
    assert response.headers["content-type"] == "application/json"
    assert response.content == b'{"a": 1}'
    assert "Accept" in response.headers["vary"]


async def test_a_coding_the_library_does_not_read_passes_untouched() -> None:
    response = await call("GET", "/deflated", headers=MSGPACK)
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-encoding"] == "deflate"
    assert json.loads(response.content) == DOC  # httpx decoded the deflate


async def test_json_the_app_gzipped_itself_is_seen_through() -> None:
    response = await call("GET", "/gzipped", headers=MSGPACK)
    assert response.headers["content-type"] == "application/msgpack"
    assert "content-encoding" not in response.headers
    assert msgpack.unpackb(response.content) == DOC


async def test_bytes_that_are_not_their_coding_pass_as_they_are(
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport = httpx.ASGITransport(app=build())
    with caplog.at_level(logging.WARNING, logger="fastapi_serdes"):
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://test") as client,
            client.stream("GET", "/not-gzip", headers=MSGPACK) as response,
        ):
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-encoding"] == "gzip"
    assert raw == b'{"a": 1}'
    assert any("cannot decode the app's gzip body" in r.getMessage() for r in caplog.records)


async def test_a_value_msgpack_cannot_carry_is_a_500_problem_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="fastapi_serdes"):
        response = await call("GET", "/huge", headers=MSGPACK)
    assert response.status_code == 500
    assert "encoded" in response.json()["detail"]
    assert "123456789012345678901234567890" not in response.text
    assert any("cannot transcode" in r.getMessage() for r in caplog.records)


async def test_head_with_a_msgpack_body_keeps_the_json_headers() -> None:
    response = await call(
        "HEAD",
        "/head",
        content=msgpack.packb({}),
        headers={**MSGPACK, "content-type": "application/msgpack"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-head"] == "1"


async def test_after_the_body_the_raw_receive_answers() -> None:
    inbox: list[dict[str, Any]] = [
        {"type": "http.request", "body": msgpack.packb({"id": 1}), "more_body": False},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0)

    transcoder = BodyTranscoder(
        receive,
        "application/msgpack",
        None,
        MsgPackCodec(),
        SerdesSettings.from_kwargs().max_body_size,
    )
    first = await transcoder.receive()
    assert json.loads(first["body"]) == {"id": 1}
    assert await transcoder.receive() == {"type": "http.disconnect"}


async def test_msgpack_body_too_large_as_json_never_reaches_the_route() -> None:
    """A small MessagePack body that stands for more JSON than max_body_size: 413, and the
    route is not handed the oversized JSON (it sees no body, so FastAPI refuses it first)."""
    calls: list[Any] = []
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=False, cache=False, max_body_size=1000)

    @app.post("/lists")
    async def lists(body: list[list[int]]) -> int:
        calls.append(body)
        return len(body)

    body = msgpack.packb([[]] * 600)  # 603 bytes; 1,801 bytes of JSON
    assert len(body) <= 1000
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/lists", content=body, headers={"content-type": "application/msgpack"}
        )
    assert response.status_code == 413
    assert "as JSON for this route" in response.json()["detail"]
    assert calls == []
