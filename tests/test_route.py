"""SerdesRoute: negotiated responses, decoded bodies, problem details."""

from __future__ import annotations

import logging

import httpx
import msgpack
import orjson
import pytest

from fastapi_serdes import SerdesResponse
from tests.conftest import build_app

pytestmark = pytest.mark.anyio

MSGPACK_TYPES = ["application/msgpack", "application/vnd.msgpack", "application/x-msgpack"]


async def test_json_is_the_default(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/items/1")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/json"
    assert res.headers["vary"] == "Accept, Accept-Encoding"
    assert res.json() == {
        "id": 1,
        "name": "widget",
        "price": 2.5,
        "created": "2024-01-02T03:04:05Z",
        "tags": [],
    }


@pytest.mark.parametrize("media_type", MSGPACK_TYPES)
async def test_msgpack_answers_with_the_alias_the_client_matched(
    client: httpx.AsyncClient, media_type: str
) -> None:
    res = await client.get("/api/items/1", headers={"accept": media_type})
    assert res.status_code == 200
    assert res.headers["content-type"] == media_type
    assert res.headers["vary"] == "Accept, Accept-Encoding"
    json_res = await client.get("/api/items/1")
    assert msgpack.unpackb(res.content) == json_res.json()


async def test_lists_and_dict_returns_are_validated_and_encoded(
    client: httpx.AsyncClient,
) -> None:
    res = await client.get("/api/items?limit=2", headers={"accept": "application/msgpack"})
    assert [i["id"] for i in msgpack.unpackb(res.content)] == [0, 1]
    res = await client.get("/api/dicts")
    assert res.json()[0]["price"] == 1.5  # defaults filled in by validation


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("text/html", 406),
        ("application/json;q=0, application/msgpack;q=0", 406),
        ("text/html, */*;q=0.1", 200),
        ("application/json;q=0, */*", 200),
    ],
)
async def test_not_acceptable(client: httpx.AsyncClient, accept: str, status: int) -> None:
    res = await client.get("/api/items/1", headers={"accept": accept})
    assert res.status_code == status
    assert res.headers["vary"] == "Accept, Accept-Encoding"
    if status == 406:
        problem = res.json()
        assert res.headers["content-type"] == "application/problem+json"
        assert problem["type"].endswith("/not-acceptable")
        assert problem["status"] == 406
        assert "application/msgpack" in problem["available"]


async def test_specific_refusal_beats_wildcard(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/items/1", headers={"accept": "application/json;q=0, */*"})
    assert res.headers["content-type"] == "application/msgpack"


async def test_default_instead_of_406_when_configured() -> None:
    app = build_app(on_not_acceptable="default")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.get("/api/items/1", headers={"accept": "text/html"})
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/json"


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", orjson.dumps({"id": 5, "name": "n"})),
        ("application/json; charset=utf-8", orjson.dumps({"id": 5, "name": "n"})),
        ("application/msgpack", msgpack.packb({"id": 5, "name": "n"})),
        ("application/x-msgpack", msgpack.packb({"id": 5, "name": "n"})),
    ],
)
async def test_request_bodies_decode_by_content_type(
    middleware: bool, content_type: str, body: bytes
) -> None:
    app = build_app(middleware=middleware)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.post("/api/items", content=body, headers={"content-type": content_type})
    assert res.status_code == 201, res.text
    assert res.json()["name"] == "n"


async def test_msgpack_binary_and_timestamp_values_reach_validation(
    client: httpx.AsyncClient,
) -> None:
    from datetime import UTC, datetime

    when = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    body = msgpack.packb({"id": 1, "name": "t", "created": when}, datetime=True)
    res = await client.post(
        "/api/items", content=body, headers={"content-type": "application/msgpack"}
    )
    assert res.status_code == 201
    assert res.json()["created"] == "2030-05-06T07:08:09Z"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "slug"),
    [
        ("text/plain", b"hello", 415, "unsupported-media-type"),
        (None, b'{"id": 1}', 415, "unsupported-media-type"),
        ("not a media type", b"{}", 415, "unsupported-media-type"),
        ("application/json", b'{"id": 1,', 400, "malformed-body"),
        ("application/json", b'{"id": 1, "name": "x"} trailing', 400, "malformed-body"),
        ("application/json", b'{"id": 1, "name": "\xff"}', 400, "malformed-body"),
        ("application/json", b'{"id": 1, "name": "x", "price": NaN}', 400, "malformed-body"),
        ("application/json", b'{"id": 1, "name": "x", "price": 1e999}', 400, "malformed-body"),
        ("application/json", b'{"id": 18446744073709551616, "name": "x"}', 400, "malformed-body"),
        ("application/json", b"[" * 2000 + b"]" * 2000, 400, "malformed-body"),
        ("application/msgpack", b"\xc1", 400, "malformed-body"),
        ("application/msgpack", msgpack.packb({"id": 1, "name": "x"})[:-1], 400, "malformed-body"),
        ("application/msgpack", msgpack.packb({"id": 1}) + b"\x00", 400, "malformed-body"),
        ("application/msgpack", b"\x81\xa4name\xa2\xff\xfe", 400, "malformed-body"),
        ("application/msgpack", msgpack.packb({"price": float("nan")}), 400, "malformed-body"),
        ("application/msgpack", b"\x91" * 2000 + b"\xc0", 400, "malformed-body"),
        ("application/json", b'{"id": "x"}', 422, "validation-failed"),
        ("application/msgpack", msgpack.packb({"id": "x"}), 422, "validation-failed"),
    ],
)
async def test_bad_bodies_are_problems(
    client: httpx.AsyncClient, content_type: str | None, body: bytes, status: int, slug: str
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    res = await client.post("/api/items", content=body, headers=headers)
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["type"] == f"https://fastapi-serdes.dev/problems/{slug}"
    assert problem["status"] == status
    assert "\\xff" not in res.text
    assert "\ufffd" not in res.text
    if status == 415:
        assert "application/msgpack" in res.headers["accept"]
        assert "accept-encoding" not in res.headers
    if status == 422:
        assert problem["errors"][0]["pointer"].startswith("/body")


async def test_body_over_the_limit_is_413() -> None:
    app = build_app(max_body_size=100)
    body = orjson.dumps({"id": 1, "name": "x" * 200})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.post("/api/items", content=body, headers={"content-type": "application/json"})
        assert res.status_code == 413
        assert res.json()["type"].endswith("/body-too-large")

        async def chunks():  # no Content-Length: counted while reading
            for _ in range(10):
                yield b"x" * 50

        res = await c.post(
            "/api/items", content=chunks(), headers={"content-type": "application/json"}
        )
        assert res.status_code == 413


async def test_missing_body_is_422(client: httpx.AsyncClient) -> None:
    res = await client.post("/api/items", headers={"content-type": "application/json"})
    assert res.status_code == 422
    assert res.json()["errors"][0]["pointer"] == "/body"


async def test_query_validation_is_a_problem(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/items?limit=abc")
    assert res.status_code == 422
    assert res.json()["errors"][0]["pointer"] == "/query/limit"


@pytest.mark.parametrize("accept", ["application/json", "application/msgpack"])
async def test_unrepresentable_values_are_a_500_naming_field_and_codec(
    client: httpx.AsyncClient, accept: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="fastapi_serdes"):
        res = await client.get("/api/items/13", headers={"accept": accept})
    assert res.status_code == 500
    problem = res.json()
    assert problem["type"].endswith("/encode-failed")
    assert "/price" in problem["detail"]
    assert accept in problem["detail"]
    assert "/price" in caplog.text
    res = await client.get("/api/big", headers={"accept": accept})
    if accept == "application/msgpack":  # MessagePack has no integers past 64 bits
        assert res.status_code == 500
        assert "/big" in res.json()["detail"]
    else:  # JSON writes them exactly (documented: I-JSON readers lose precision past 2**53)
        assert res.content == b'{"big":18446744073709551616}'


async def test_endpoint_problem_error(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/items/404")
    assert res.status_code == 404
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                          "detail": "No item 404"}  # fmt: skip


async def test_bodiless_status(client: httpx.AsyncClient) -> None:
    res = await client.delete("/api/items/3", headers={"accept": "application/msgpack"})
    assert res.status_code == 204
    assert res.content == b""


@pytest.mark.parametrize("accept", ["application/json", "application/msgpack"])
async def test_explicit_serdes_response(client: httpx.AsyncClient, accept: str) -> None:
    res = await client.get("/api/explicit", headers={"accept": accept})
    assert res.status_code == 202
    assert res.headers["content-type"] == accept
    assert res.headers["x-extra"] == "1"
    assert int(res.headers["content-length"]) == len(res.content)
    decoded = res.json() if accept == "application/json" else msgpack.unpackb(res.content)
    assert decoded == {"ok": True}


async def test_serdes_response_without_middleware() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/r")
    async def r() -> SerdesResponse:
        return SerdesResponse([1, 2])

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.get("/r", headers={"accept": "application/msgpack"})
        assert msgpack.unpackb(res.content) == [1, 2]
        res = await c.get("/r", headers={"accept": "image/png"})
        assert res.status_code == 406


async def test_returned_response_passes_through(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/raw", headers={"accept": "application/msgpack"})
    assert res.content == b"raw"


async def test_route_without_middleware_negotiates_itself() -> None:
    app = build_app(middleware=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.get("/api/items/1", headers={"accept": "application/vnd.msgpack"})
        assert res.headers["content-type"] == "application/vnd.msgpack"
        res = await c.get("/api/items/1", headers={"accept": "text/csv"})
        assert res.status_code == 406
