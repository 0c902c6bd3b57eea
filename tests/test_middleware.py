"""SerdesMiddleware in front of plain routes: transcoding, pass-through, Vary."""

from __future__ import annotations

import httpx
import msgpack
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from fastapi_serdes import SerdesMiddleware, negotiated_of
from fastapi_serdes.problems import PROBLEM_BASE_URI
from fastapi_serdes.settings import Negotiated
from tests.conftest import build_app

pytestmark = pytest.mark.anyio


async def test_plain_route_json_gets_vary(client: httpx.AsyncClient) -> None:
    res = await client.get("/plain")
    assert res.headers["content-type"] == "application/json"
    assert res.headers["vary"] == "Accept, Accept-Encoding"


@pytest.mark.parametrize("accept", ["application/msgpack", "application/x-msgpack"])
async def test_plain_route_transcoded_for_msgpack_clients(
    client: httpx.AsyncClient, accept: str
) -> None:
    res = await client.get("/plain", headers={"accept": accept})
    assert res.status_code == 200
    assert res.headers["content-type"] == accept
    assert res.headers["vary"] == "Accept, Accept-Encoding"
    assert int(res.headers["content-length"]) == len(res.content)
    assert msgpack.unpackb(res.content) == (await client.get("/plain")).json()


async def test_plain_route_receives_msgpack_body_as_json(client: httpx.AsyncClient) -> None:
    body = msgpack.packb({"id": 3, "name": "from msgpack"})
    res = await client.post("/plain", content=body, headers={"content-type": "application/msgpack"})
    assert res.status_code == 200
    assert res.json()["name"] == "from msgpack"


async def test_body_content_types_are_told_apart_every_time(client: httpx.AsyncClient) -> None:
    # The middleware remembers which codec a Content-Type value names; each value keeps its own
    # answer, a JSON one included, however many times and in whatever order they come.
    body = msgpack.packb({"id": 3, "name": "from msgpack"})
    kinds = ["application/msgpack", "application/json", "Application/MsgPack; charset=x", "text/x"]
    for content_type in kinds * 3:
        content = (
            body if "msgpack" in content_type.lower() else b'{"id": 3, "name": "from msgpack"}'
        )
        res = await client.post("/plain", content=content, headers={"content-type": content_type})
        if content_type == "text/x":
            assert res.status_code == 422  # a plain route: FastAPI's own answer, untouched
        else:
            assert res.status_code == 200, content_type
            assert res.json()["name"] == "from msgpack"


BAD_MSGPACK_BODIES = pytest.mark.parametrize(
    ("body", "status", "slug", "words"),
    [
        (b"\xc1", 400, "malformed-body", "Invalid MessagePack"),
        (msgpack.packb({"id": 3, "name": b"\x00\xff"}), 400, "malformed-body", "as JSON"),
        (msgpack.packb({"id": 3, "name": "x" * 2_000_000}), 413, "body-too-large", "1048576"),
    ],
)


@BAD_MSGPACK_BODIES
async def test_plain_route_bad_msgpack_body_is_an_error(
    client: httpx.AsyncClient, body: bytes, status: int, slug: str, words: str
) -> None:
    # By default, FastAPI's shape: {"detail": "<message>"} in application/json.
    res = await client.post("/plain", content=body, headers={"content-type": "application/msgpack"})
    assert res.status_code == status
    assert res.headers["content-type"] == "application/json"
    assert list(res.json()) == ["detail"]
    assert words in res.json()["detail"]


@BAD_MSGPACK_BODIES
async def test_plain_route_bad_msgpack_body_is_a_problem(
    body: bytes, status: int, slug: str, words: str
) -> None:
    transport = httpx.ASGITransport(app=build_app(problem_details=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        res = await client.post(
            "/plain", content=body, headers={"content-type": "application/msgpack"}
        )
    assert res.status_code == status
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["type"] == PROBLEM_BASE_URI + slug
    assert problem["status"] == status
    assert words in problem["detail"]


async def test_streaming_passes_through_untouched(client: httpx.AsyncClient) -> None:
    res = await client.get("/stream", headers={"accept": "application/msgpack"})
    assert res.status_code == 200
    assert res.content == b'{"n": 1}\n{"n": 2}\n'
    assert res.headers["content-type"] == "application/json"


@pytest.mark.parametrize("path", ["/no-content", "/redirect"])
@pytest.mark.parametrize("accept", ["application/json", "application/msgpack", "text/html"])
async def test_bodiless_responses_pass(client: httpx.AsyncClient, path: str, accept: str) -> None:
    res = await client.get(path, headers={"accept": accept}, follow_redirects=False)
    assert res.status_code in (204, 307)
    assert res.content == b""


async def test_non_json_and_docs_untouched(client: httpx.AsyncClient) -> None:
    res = await client.get("/docs", headers={"accept": "text/html"})
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    # Not negotiated by format (no Accept in Vary), but HTML could have been compressed.
    assert res.headers["vary"] == "Accept-Encoding"


@pytest.mark.parametrize("strict", [False, True])
async def test_plain_route_not_acceptable_gets_default(strict: bool) -> None:
    # The endpoint already ran: a plain route answers its JSON rather than a 406, even when
    # strict=True (a SerdesRoute of the same app refuses: a 406 in FastAPI's shape).
    transport = httpx.ASGITransport(app=build_app(strict=strict))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        res = await client.get("/plain", headers={"accept": "image/png"})
        assert res.status_code == 200
        assert res.headers["content-type"] == "application/json"
        assert res.json()["name"] == "plain"
        routed = await client.get("/api/items/1", headers={"accept": "image/png"})
    assert routed.status_code == (406 if strict else 200)
    assert routed.headers["content-type"] == "application/json"
    if strict:
        assert list(routed.json()) == ["detail"]
    else:
        assert routed.json()["name"] == "widget"


async def test_head_is_not_transcoded(client: httpx.AsyncClient) -> None:
    res = await client.head("/docs", headers={"accept": "application/msgpack"})
    assert res.status_code == 200


async def test_negotiated_value_in_scope() -> None:
    seen: list[Negotiated] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        seen.append(negotiated_of(scope))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = SerdesMiddleware(app)
    transport = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        await c.get(
            "/", headers=[("accept", "application/json;q=0.5"), ("accept", "application/msgpack")]
        )
        await c.get("/")
    assert seen[0].media_type == "application/msgpack"
    assert seen[1].media_type == "application/json"


async def test_lifespan_and_websocket_pass_through() -> None:
    calls: list[str] = []

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        calls.append(scope["type"])

    mw = SerdesMiddleware(app)
    await mw({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    await mw({"type": "websocket", "headers": []}, None, None)  # type: ignore[arg-type]
    assert calls == ["lifespan", "websocket"]


def test_settings_errors_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="max_body_size"):
        SerdesMiddleware(lambda s, r, se: None, max_body_size=0)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="strict"):
        SerdesMiddleware(lambda s, r, se: None, strict="maybe")  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="problem_details"):
        SerdesMiddleware(lambda s, r, se: None, problem_details="yes")  # type: ignore[arg-type,return-value]


def test_environment_fills_unset_settings_and_arguments_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTAPI_SERDES_MAX_BODY_SIZE", "123")
    monkeypatch.setenv("FASTAPI_SERDES_STRICT", "on")
    mw = SerdesMiddleware(lambda s, r, se: None)  # type: ignore[arg-type,return-value]
    assert (mw.settings.max_body_size, mw.settings.strict) == (123, True)
    mw = SerdesMiddleware(lambda s, r, se: None, max_body_size=999, strict=False)  # type: ignore[arg-type,return-value]
    assert (mw.settings.max_body_size, mw.settings.strict) == (999, False)
    monkeypatch.setenv("FASTAPI_SERDES_STRICT", "off")
    assert SerdesMiddleware(lambda s, r, se: None).settings.strict is False  # type: ignore[arg-type,return-value]
    assert SerdesMiddleware(lambda s, r, se: None, strict=True).settings.strict is True  # type: ignore[arg-type,return-value]


class BodyItem(BaseModel):
    id: int
    name: str


UNECHOABLE_BODIES = pytest.mark.parametrize(
    ("content_type", "body", "pointer"),
    [
        ("text/x", b"\xff\xfe", "/body"),
        (None, b"\xff", "/body"),
        ("application/octet-stream", b"\x80abc", "/body"),
        ("application/json", b'{"id": "\\ud800", "name": "x"}', "/body/id"),
    ],
)


def unechoable_app(**settings: object) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, **settings)  # type: ignore[arg-type]

    @app.post("/items")
    async def create(item: BodyItem) -> BodyItem:
        return item

    @app.get("/broken")
    async def broken() -> None:
        b"\xff".decode()  # a bug of the app's own: still a 500

    return app


@UNECHOABLE_BODIES
async def test_plain_route_bad_body_that_fastapi_cannot_echo_is_a_422(
    content_type: str | None, body: bytes, pointer: str
) -> None:
    # FastAPI's default handler echoes the input of a RequestValidationError and fails on a
    # binary body or a lone surrogate (a 500 for bad input); the middleware answers the 422,
    # by default in FastAPI's shape (the located errors, without the input it cannot render).
    headers = {"content-type": content_type} if content_type else {}
    transport = httpx.ASGITransport(app=unechoable_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(2):  # the general path, then the fast one
            res = await client.post("/items", content=body, headers=headers)
            assert res.status_code == 422
            assert res.headers["content-type"] == "application/json"
            (error,) = res.json()["detail"]
            assert error.keys() == {"type", "loc", "msg"}
            assert "/" + "/".join(map(str, error["loc"])) == pointer
            assert b"\xff" not in res.content
        assert (await client.get("/broken")).status_code == 500


@UNECHOABLE_BODIES
async def test_plain_route_bad_body_that_fastapi_cannot_echo_is_a_422_problem(
    content_type: str | None, body: bytes, pointer: str
) -> None:
    # The same with problem_details=True: the validation-failed problem, errors located.
    app = unechoable_app(problem_details=True)
    headers = {"content-type": content_type} if content_type else {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(2):  # the general path, then the fast one
            res = await client.post("/items", content=body, headers=headers)
            assert res.status_code == 422
            assert res.headers["content-type"] == "application/problem+json"
            problem = res.json()
            assert problem["type"].endswith("/validation-failed")
            assert problem["errors"][0]["pointer"] == pointer
            assert b"\xff" not in res.content
        assert (await client.get("/broken")).status_code == 500
