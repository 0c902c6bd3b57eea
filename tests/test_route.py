"""SerdesRoute: negotiated responses, decoded bodies, errors in FastAPI's shape by default and as
RFC 9457 problem details with ``SerdesMiddleware(problem_details=True)``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException

from fastapi_serdes import SerdesMiddleware, SerdesResponse, SerdesSettings
from tests.conftest import Item, build_app

pytestmark = pytest.mark.anyio

MSGPACK_TYPES = ["application/msgpack", "application/vnd.msgpack", "application/x-msgpack"]
PROBLEMS = "https://fastapi-serdes.dev/problems/"


@asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def stock_app() -> FastAPI:
    """Stock FastAPI with the same body endpoint as ``build_app``: the drop-in reference."""
    app = FastAPI()

    @app.post("/api/items", status_code=201)
    async def create_item(item: Item) -> Item:
        return item

    return app


def assert_fastapi_detail(res: httpx.Response, status: int) -> Any:
    """FastAPI's error shape: ``{"detail": ...}`` in application/json (or, for a MessagePack
    client behind the middleware, the same document in MessagePack); returns the detail."""
    assert res.status_code == status, res.text
    if res.headers["content-type"] == "application/msgpack":
        body = msgpack.unpackb(res.content)
    else:
        assert res.headers["content-type"] == "application/json"
        body = res.json()
    assert list(body) == ["detail"]
    return body["detail"]


def assert_problem(res: httpx.Response, status: int, type_: str) -> dict[str, Any]:
    """An RFC 9457 document of ``type_`` (a slug of the library's, or a full URI)."""
    assert res.status_code == status, res.text
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["type"] == (type_ if ":" in type_ else PROBLEMS + type_)
    assert problem["status"] == status
    assert isinstance(problem["title"], str)
    return problem


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


# --- Accept that matches nothing: JSON by default, 406 when strict ----------------------------

UNMATCHED_ACCEPT = ["text/html", "application/json;q=0, application/msgpack;q=0"]


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize("accept", UNMATCHED_ACCEPT)
async def test_unmatched_accept_gets_json_by_default(middleware: bool, accept: str) -> None:
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.get("/api/items/1", headers={"accept": accept})
        expected = await c.get("/api/items/1")
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/json"
    assert res.content == expected.content
    assert "Accept" in res.headers["vary"].split(", ")


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        *((accept, 406) for accept in UNMATCHED_ACCEPT),
        ("text/html, */*;q=0.1", 200),
        ("application/json;q=0, */*", 200),
    ],
)
async def test_not_acceptable_when_strict(accept: str, status: int) -> None:
    async with client_for(build_app(strict=True)) as c:
        res = await c.get("/api/items/1", headers={"accept": accept})
    assert res.status_code == status
    assert res.headers["vary"] == "Accept, Accept-Encoding"
    if status == 406:
        detail = assert_fastapi_detail(res, 406)
        assert isinstance(detail, str)
        assert "Accept" in detail


@pytest.mark.parametrize("accept", UNMATCHED_ACCEPT)
async def test_not_acceptable_problem(accept: str) -> None:
    async with client_for(build_app(strict=True, problem_details=True)) as c:
        res = await c.get("/api/items/1", headers={"accept": accept})
    problem = assert_problem(res, 406, "not-acceptable")
    assert "Accept" in res.headers["vary"]
    assert "application/msgpack" in problem["available"]


async def test_specific_refusal_beats_wildcard(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/items/1", headers={"accept": "application/json;q=0, */*"})
    assert res.headers["content-type"] == "application/msgpack"


async def test_strict_comes_from_the_keyword_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FASTAPI_SERDES_STRICT", raising=False)
    html = {"accept": "text/html"}
    for app in (build_app(), build_app(strict=False), build_app(middleware=False)):
        async with client_for(app) as c:
            res = await c.get("/api/items/1", headers=html)
        assert res.status_code == 200
        assert res.headers["content-type"] == "application/json"
    monkeypatch.setenv("FASTAPI_SERDES_STRICT", "on")
    for app, status in ((build_app(), 406), (build_app(strict=False), 200)):
        async with client_for(app) as c:
            assert (await c.get("/api/items/1", headers=html)).status_code == status


# --- request bodies ----------------------------------------------------------------------------


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
    async with client_for(app) as c:
        res = await c.post("/api/items", content=body, headers={"content-type": content_type})
    assert res.status_code == 201, res.text
    assert res.json()["name"] == "n"


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize(
    "content_type", ["application/problem+json", "application/vnd.api+json; charset=utf-8"]
)
async def test_every_json_type_is_json_even_when_strict(
    middleware: bool, content_type: str
) -> None:
    async with client_for(build_app(middleware=middleware, strict=True)) as c:
        res = await c.post(
            "/api/items",
            content=orjson.dumps({"id": 5, "name": "n"}),
            headers={"content-type": content_type},
        )
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


UNSUPPORTED = [("text/plain", b"hello"), ("not a media type", b"{}")]


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize(("content_type", "body"), UNSUPPORTED)
async def test_unsupported_content_type_is_left_to_fastapi_by_default(
    middleware: bool, content_type: str, body: bytes
) -> None:
    headers = {"content-type": content_type}
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.post("/api/items", content=body, headers=headers)
    async with client_for(stock_app()) as c:
        stock = await c.post("/api/items", content=body, headers=headers)
    assert stock.status_code == 422
    assert (res.status_code, res.content) == (stock.status_code, stock.content)
    assert res.headers["content-type"] == "application/json"


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize(("content_type", "body"), UNSUPPORTED)
async def test_unsupported_content_type_is_415_when_strict(
    middleware: bool, content_type: str, body: bytes
) -> None:
    async with client_for(build_app(middleware=middleware, strict=True)) as c:
        res = await c.post("/api/items", content=body, headers={"content-type": content_type})
    detail = assert_fastapi_detail(res, 415)
    assert content_type in detail
    assert "application/msgpack" in res.headers["accept"]
    assert "accept-encoding" not in res.headers


@pytest.mark.parametrize(("content_type", "body"), UNSUPPORTED)
async def test_unsupported_content_type_problem(content_type: str, body: bytes) -> None:
    async with client_for(build_app(strict=True, problem_details=True)) as c:
        res = await c.post("/api/items", content=body, headers={"content-type": content_type})
    problem = assert_problem(res, 415, "unsupported-media-type")
    assert content_type in problem["detail"]
    assert "application/msgpack" in problem["supported"]
    assert "application/msgpack" in res.headers["accept"]
    assert "accept-encoding" not in res.headers


async def test_a_body_without_content_type_is_fastapis_even_when_strict() -> None:
    # Only a Content-Type no codec reads is refused; without one, FastAPI decides.
    async with client_for(build_app(strict=True)) as c:
        res = await c.post("/api/items", content=b'{"id": 1}')
    async with client_for(stock_app()) as c:
        stock = await c.post("/api/items", content=b'{"id": 1}')
    assert (res.status_code, res.content) == (stock.status_code, stock.content)


MALFORMED_JSON = [
    b'{"id": 1,',
    b'{"id": 1, "name": "x"} trailing',
    b'{"id": 1, "name": "\xff"}',
    b'{"id": 1, "name": "x", "price": NaN}',
    b'{"id": 1, "name": "x", "price": 1e999}',
    b'{"id": 18446744073709551616, "name": "x"}',
    b"[" * 2000 + b"]" * 2000,
    b'{"id": "x"}',
]


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize("body", MALFORMED_JSON)
async def test_json_bodies_are_read_as_fastapi_reads_them(middleware: bool, body: bytes) -> None:
    # No size limit, no value policy of the library's: FastAPI's answer, byte for byte.
    headers = {"content-type": "application/json"}
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.post("/api/items", content=body, headers=headers)
    async with client_for(stock_app()) as c:
        stock = await c.post("/api/items", content=body, headers=headers)
    assert (res.status_code, res.content) == (stock.status_code, stock.content)
    assert res.headers["content-type"] == stock.headers["content-type"]


MALFORMED_MSGPACK = [
    (b"\xc1", "not MessagePack"),
    (msgpack.packb({"id": 1, "name": "x"})[:-1], "truncated"),
    (msgpack.packb({"id": 1}) + b"\x00", "trailing bytes"),
    (b"\x81\xa4name\xa2\xff\xfe", "not valid UTF-8"),
    (msgpack.packb({"price": float("nan")}), "/price: NaN"),
    (b"\x91" * 2000 + b"\xc0", "nested deeper"),
]


@pytest.mark.parametrize("middleware", [True, False])
@pytest.mark.parametrize(("body", "needle"), MALFORMED_MSGPACK)
async def test_malformed_msgpack_is_fastapis_422(
    middleware: bool, body: bytes, needle: str
) -> None:
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.post(
            "/api/items", content=body, headers={"content-type": "application/msgpack"}
        )
    (error,) = assert_fastapi_detail(res, 422)
    assert error.pop("msg").startswith("Body decode error: Invalid MessagePack")
    assert error == {"type": "value_error", "loc": ["body"], "input": {}}
    assert needle in res.json()["detail"][0]["msg"]
    assert "\\xff" not in res.text
    assert "\ufffd" not in res.text


async def test_msgpack_bodies_are_validated_by_fastapi(client: httpx.AsyncClient) -> None:
    value = {"id": "x"}
    as_json = await client.post("/api/items", json=value)
    as_msgpack = await client.post(
        "/api/items", content=msgpack.packb(value), headers={"content-type": "application/msgpack"}
    )
    detail = assert_fastapi_detail(as_msgpack, 422)
    assert [e["loc"] for e in detail] == [["body", "id"], ["body", "name"]]
    assert as_msgpack.content == as_json.content


@pytest.mark.parametrize(
    ("content_type", "body", "status", "type_"),
    [
        ("application/json", b'{"id": 1,', 422, "validation-failed"),
        ("application/json", b'{"id": 1, "name": "\xff"}', 400, "about:blank"),
        ("application/json", b"[" * 2000 + b"]" * 2000, 400, "about:blank"),
        *(("application/msgpack", body, 422, "validation-failed") for body, _ in MALFORMED_MSGPACK),
        ("application/json", b'{"id": "x"}', 422, "validation-failed"),
        ("application/msgpack", msgpack.packb({"id": "x"}), 422, "validation-failed"),
    ],
)
async def test_bad_bodies_are_problems(
    content_type: str, body: bytes, status: int, type_: str
) -> None:
    async with client_for(build_app(problem_details=True)) as c:
        res = await c.post("/api/items", content=body, headers={"content-type": content_type})
    problem = assert_problem(res, status, type_)
    assert "\\xff" not in res.text
    assert "\ufffd" not in res.text
    if status == 422:
        assert problem["errors"][0]["pointer"].startswith("/body")
        assert "input" not in problem["errors"][0]


async def test_msgpack_body_over_the_limit_is_413() -> None:
    app = build_app(max_body_size=100)
    value = {"id": 1, "name": "x" * 200}
    packed = msgpack.packb(value)
    msgpack_headers = {"content-type": "application/msgpack"}
    async with client_for(app) as c:
        # The limit is the library's, for what it decodes: JSON bodies are FastAPI's.
        res = await c.post("/api/items", json=value)
        assert res.status_code == 201

        res = await c.post("/api/items", content=packed, headers=msgpack_headers)
        assert "100 bytes" in assert_fastapi_detail(res, 413)

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while reading
            for _ in range(10):
                yield packed[:50]

        res = await c.post("/api/items", content=chunks(), headers=msgpack_headers)
        assert_fastapi_detail(res, 413)


async def test_body_over_the_limit_problem() -> None:
    app = build_app(max_body_size=100, problem_details=True)
    packed = msgpack.packb({"id": 1, "name": "x" * 200})
    async with client_for(app) as c:
        res = await c.post(
            "/api/items", content=packed, headers={"content-type": "application/msgpack"}
        )
    problem = assert_problem(res, 413, "body-too-large")
    assert "100 bytes" in problem["detail"]


@pytest.mark.parametrize("middleware", [True, False])
async def test_missing_body_is_fastapis_422(middleware: bool) -> None:
    headers = {"content-type": "application/json"}
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.post("/api/items", headers=headers)
    async with client_for(stock_app()) as c:
        stock = await c.post("/api/items", headers=headers)
    (error,) = assert_fastapi_detail(res, 422)
    assert (error["type"], error["loc"]) == ("missing", ["body"])
    assert res.content == stock.content


async def test_missing_body_problem() -> None:
    async with client_for(build_app(problem_details=True)) as c:
        res = await c.post("/api/items", headers={"content-type": "application/json"})
    problem = assert_problem(res, 422, "validation-failed")
    assert problem["errors"][0]["pointer"] == "/body"


@pytest.mark.parametrize("middleware", [True, False])
async def test_query_validation_is_fastapis_422(middleware: bool) -> None:
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.get("/api/items?limit=abc")
    (error,) = assert_fastapi_detail(res, 422)
    assert (error["type"], error["loc"], error["input"]) == (
        "int_parsing",
        ["query", "limit"],
        "abc",
    )


async def test_query_validation_is_a_problem() -> None:
    async with client_for(build_app(problem_details=True)) as c:
        res = await c.get("/api/items?limit=abc")
    problem = assert_problem(res, 422, "validation-failed")
    assert problem["errors"][0]["pointer"] == "/query/limit"


# --- responses FastAPI validated but a codec cannot write ---------------------------------------


async def test_json_writes_what_fastapi_writes(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/items/13", headers={"accept": "application/json"})
    assert res.status_code == 200
    assert res.json()["price"] is None  # NaN, as FastAPI writes it
    res = await client.get("/api/big", headers={"accept": "application/json"})
    # JSON writes integers past 64 bits exactly (I-JSON readers lose precision past 2**53).
    assert res.content == b'{"big":18446744073709551616}'


@pytest.mark.parametrize("middleware", [True, False])
async def test_unrepresentable_msgpack_values_are_a_500_naming_field_and_codec(
    middleware: bool, caplog: pytest.LogCaptureFixture
) -> None:
    accept = {"accept": "application/msgpack"}
    async with client_for(build_app(middleware=middleware)) as c:
        with caplog.at_level(logging.ERROR, logger="fastapi_serdes"):
            res = await c.get("/api/items/13", headers=accept)
        detail = assert_fastapi_detail(res, 500)
        assert "/price" in detail
        assert "application/msgpack" in detail
        assert "/price" in caplog.text
        res = await c.get("/api/big", headers=accept)  # MessagePack has no integers past 64 bits
        assert "/big" in assert_fastapi_detail(res, 500)


async def test_unrepresentable_values_problem(caplog: pytest.LogCaptureFixture) -> None:
    accept = {"accept": "application/msgpack"}
    async with client_for(build_app(problem_details=True)) as c:
        with caplog.at_level(logging.ERROR, logger="fastapi_serdes"):
            res = await c.get("/api/items/13", headers=accept)
        problem = assert_problem(res, 500, "encode-failed")
        assert "/price" in problem["detail"]
        assert "application/msgpack" in problem["detail"]
        assert "/price" in caplog.text
        res = await c.get("/api/big", headers=accept)
        assert "/big" in assert_problem(res, 500, "encode-failed")["detail"]


# --- errors an endpoint raises, and the app's own handlers --------------------------------------


@pytest.mark.parametrize("middleware", [True, False])
async def test_endpoint_problem_error_is_fastapis_shape(middleware: bool) -> None:
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.get("/api/items/404")
    assert assert_fastapi_detail(res, 404) == "No item 404"


async def test_endpoint_problem_error(client: httpx.AsyncClient) -> None:
    async with client_for(build_app(problem_details=True)) as c:
        res = await c.get("/api/items/404")
    assert res.status_code == 404
    assert res.headers["content-type"] == "application/problem+json"
    assert res.json() == {"type": "about:blank", "title": "Not Found", "status": 404,
                          "detail": "No item 404"}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/items/404", 404), ("/api/items?limit=abc", 422)],
)
async def test_errors_reach_msgpack_clients_in_msgpack(path: str, status: int) -> None:
    # By default a MessagePack client gets FastAPI's error document in MessagePack (the
    # middleware transcodes it); with problem details on, problem+json whatever it accepts.
    async with client_for(build_app()) as c:
        res = await c.get(path, headers={"accept": "application/msgpack"})
    assert res.headers["content-type"] == "application/msgpack"
    assert_fastapi_detail(res, status)
    async with client_for(build_app(problem_details=True)) as c:
        res = await c.get(path, headers={"accept": "application/msgpack"})
    assert res.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("problem_details", [False, True])
async def test_the_apps_exception_handlers_render_the_librarys_errors(
    problem_details: bool,
) -> None:
    app = build_app(strict=True, problem_details=problem_details)
    seen: list[tuple[str, int]] = []

    @app.exception_handler(HTTPException)
    async def handler(request: Request, exc: HTTPException) -> PlainTextResponse:
        seen.append((type(exc).__name__, exc.status_code))
        return PlainTextResponse(f"handled: {exc.detail}", status_code=exc.status_code)

    async with client_for(app) as c:
        res = await c.get("/api/items/1", headers={"accept": "text/html"})
        assert (res.status_code, res.headers["content-type"]) == (406, "text/plain; charset=utf-8")
        assert res.text.startswith("handled: None of the media types")
        res = await c.post("/api/items", content=b"x", headers={"content-type": "text/plain"})
        assert res.status_code == 415
        assert res.text.startswith("handled: Content-Type 'text/plain'")
        res = await c.get("/api/items/404")
        assert (res.status_code, res.text) == (404, "handled: No item 404")
    assert seen == [("ProblemError", 406), ("ProblemError", 415), ("ProblemError", 404)]


# --- what the endpoint answers itself -----------------------------------------------------------


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
    app = FastAPI()

    @app.get("/r")
    async def r() -> SerdesResponse:
        return SerdesResponse([1, 2])

    @app.get("/strict")
    async def strict() -> SerdesResponse:
        return SerdesResponse([1, 2], settings=SerdesSettings.from_kwargs(strict=True))

    async with client_for(app) as c:
        res = await c.get("/r", headers={"accept": "application/msgpack"})
        assert msgpack.unpackb(res.content) == [1, 2]
        res = await c.get("/r", headers={"accept": "image/png"})
        assert (res.status_code, res.headers["content-type"]) == (200, "application/json")
        assert res.json() == [1, 2]
        res = await c.get("/strict", headers={"accept": "image/png"})
        assert "Accept" in assert_fastapi_detail(res, 406)


async def test_serdes_response_not_acceptable_problem() -> None:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, strict=True, problem_details=True)

    @app.get("/r")
    async def r() -> SerdesResponse:
        return SerdesResponse([1, 2])

    async with client_for(app) as c:
        res = await c.get("/r", headers={"accept": "image/png"})
    problem = assert_problem(res, 406, "not-acceptable")
    assert "application/msgpack" in problem["available"]


@pytest.mark.parametrize("middleware", [True, False])
async def test_returned_response_passes_through(middleware: bool) -> None:
    async with client_for(build_app(middleware=middleware)) as c:
        res = await c.get("/api/raw", headers={"accept": "application/msgpack"})
    assert res.content == b"raw"
    assert res.headers["content-type"] == "text/plain; charset=utf-8"
    assert "etag" not in res.headers
    assert "Accept" not in res.headers.get("vary", "").split(", ")


async def test_route_without_middleware_negotiates_itself() -> None:
    async with client_for(build_app(middleware=False)) as c:
        res = await c.get("/api/items/1", headers={"accept": "application/vnd.msgpack"})
        assert res.headers["content-type"] == "application/vnd.msgpack"
        assert res.headers["vary"] == "Accept"
        res = await c.get("/api/items/1", headers={"accept": "text/csv"})
        assert (res.status_code, res.headers["content-type"]) == (200, "application/json")
        assert res.headers["vary"] == "Accept"
    async with client_for(build_app(middleware=False, strict=True)) as c:
        res = await c.get("/api/items/1", headers={"accept": "text/csv"})
        assert "Accept" in assert_fastapi_detail(res, 406)
        assert res.headers["vary"] == "Accept"
