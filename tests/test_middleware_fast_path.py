"""SerdesMiddleware's fast path (a bodiless request answered in JSON with identity) answers
exactly as the general path does, and is taken only when nothing else can apply."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from opentelemetry import metrics, trace

from fastapi_serdes import (
    MemoryStore,
    SerdesMiddleware,
    SerdesRoute,
    Telemetry,
    cached,
    invalidate,
    no_compression,
)
from fastapi_serdes.state import state_of
from tests.asgi_driver import Sent, call

pytestmark = pytest.mark.anyio


def build(**settings: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, **settings)

    def get(path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return app.api_route(path, methods=["GET", "HEAD"], **kwargs)

    @get("/json")
    def json_200() -> dict[str, int]:
        return {"a": 1}

    @get("/missing")
    def json_404() -> JSONResponse:
        return JSONResponse({"detail": "no"}, status_code=404)

    @get("/partial")
    def json_206() -> JSONResponse:
        return JSONResponse({"a": 1}, status_code=206)

    @get("/header")
    def json_with_header(response: Response) -> dict[str, int]:
        response.headers["x-extra"] = "1"
        return {"a": 1}

    @get("/own-vary")
    def json_with_vary() -> JSONResponse:
        return JSONResponse({"a": 1}, headers={"vary": "Accept-Language"})

    @get("/charset")
    def json_charset() -> Response:
        return Response(b'{"a":1}', media_type="application/json; charset=utf-8")

    @get("/html")
    def html() -> Response:
        return Response("<p>hi</p>", media_type="text/html")

    @get("/text")
    def text() -> PlainTextResponse:
        return PlainTextResponse("hi")

    @get("/empty", status_code=204)
    def empty() -> None:
        return None

    @get("/secret", dependencies=[Depends(no_compression)])
    def secret() -> dict[str, int]:
        return {"a": 1}

    @get("/stream")
    def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"a":'
            yield b"1}"

        return StreamingResponse(chunks(), media_type="application/json")

    @app.post("/plain-post")
    def plain_post(body: dict[str, int]) -> dict[str, int]:
        return body

    router = APIRouter(route_class=SerdesRoute)

    @router.post("/serdes-post")
    def serdes_post(body: dict[str, int]) -> dict[str, int]:
        return body

    @router.api_route("/serdes", methods=["GET", "HEAD"])
    def serdes() -> dict[str, int]:
        return {"a": 1}

    app.include_router(router)
    return app


PATHS = [
    "/json",
    "/missing",
    "/partial",
    "/header",
    "/own-vary",
    "/charset",
    "/html",
    "/text",
    "/empty",
    "/secret",
    "/stream",
    "/serdes",
]


def count_general_path(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the requests SerdesMiddleware hands to its general path."""
    calls = [0]
    general = SerdesMiddleware._serve

    def counting(self: SerdesMiddleware, *args: Any) -> Awaitable[None]:
        calls[0] += 1
        return general(self, *args)

    monkeypatch.setattr(SerdesMiddleware, "_serve", counting)
    return calls


def answer(sent: Sent) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return sent.status, sent.headers, sent.body


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"compression": None},
        {"cache": None},
        {"strict": True},  # text/html: the route's 406
        {"strict": True, "problem_details": True},  # ... and every error a problem document
    ],
)
@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "text/html"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_the_fast_path_answers_as_the_general_path(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], accept: str | None, method: str
) -> None:
    general = count_general_path(monkeypatch)
    headers = [("accept", accept)] if accept is not None else []
    for path in PATHS:
        app = build(**settings)
        before = general[0]
        first = await call(app, path, method=method, headers=headers)
        assert general[0] == before + 1  # a new Accept value: learned on the general path
        for _ in range(3):
            again = await call(app, path, method=method, headers=headers)
            assert answer(again) == answer(first), path
        assert general[0] == before + 1, path  # ... and then answered on the fast path
    # The usual JSON answer carries both Vary headers (one without compression).
    sent = await call(app, "/json", method=method, headers=headers)
    expected = (
        b"Accept" if settings.get("compression", True) is None else b"Accept, Accept-Encoding"
    )
    assert sent.headers[-1] == (b"vary", expected)
    secret = await call(app, "/secret", method=method, headers=headers)
    assert secret.header("vary") == "Accept"  # never compressed: no Vary: Accept-Encoding


@pytest.mark.parametrize(
    ("settings", "status", "content_type"),
    [
        ({}, 200, "application/json"),  # stock FastAPI: JSON whatever the Accept
        ({"strict": True}, 406, "application/json"),
        ({"strict": True, "problem_details": True}, 406, "application/problem+json"),
    ],
)
async def test_an_unmatched_accept_on_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, Any], status: int, content_type: str
) -> None:
    general = count_general_path(monkeypatch)
    app = build(**settings)
    answers = [await call(app, "/serdes", headers=[("accept", "text/html")]) for _ in "abc"]
    assert general[0] == 1
    assert answer(answers[2]) == answer(answers[0])
    sent = answers[0]
    assert (sent.status, sent.header("content-type")) == (status, content_type)
    assert sent.header("vary") == "Accept, Accept-Encoding"
    doc = orjson.loads(sent.body)
    if status == 200:
        assert doc == {"a": 1}
    elif content_type == "application/json":
        assert list(doc) == ["detail"]
    else:
        assert doc["type"] == "https://fastapi-serdes.dev/problems/not-acceptable"
        assert "application/msgpack" in doc["available"]
    # A plain route's endpoint has run: its JSON, whatever the settings.
    plain = await call(app, "/json", headers=[("accept", "text/html")])
    assert (plain.status, plain.body) == (200, b'{"a":1}')


@pytest.mark.parametrize(
    "headers",
    [
        [("accept", "application/msgpack")],  # transcoded
        [("accept-encoding", "gzip")],  # compressed
        [("accept", "application/json"), ("accept", "application/msgpack")],  # two lines
        [("content-type", "application/msgpack")],  # a body to transcode
        [("content-encoding", "gzip")],
    ],
)
async def test_what_the_fast_path_does_not_take(
    monkeypatch: pytest.MonkeyPatch, headers: list[tuple[str, str]]
) -> None:
    general = count_general_path(monkeypatch)
    app = build()
    for _ in range(3):
        await call(app, "/json", headers=headers)
    assert general[0] == 3


async def test_identity_only_accept_encoding_takes_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    general = count_general_path(monkeypatch)
    app = build()
    answers = [await call(app, "/json", headers=[("accept-encoding", "identity")]) for _ in "abc"]
    assert general[0] == 1
    assert answers[0].header("vary") == "Accept, Accept-Encoding"
    assert answer(answers[2]) == answer(answers[0])


async def test_no_fast_path_in_an_app_with_cached_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    general = count_general_path(monkeypatch)
    app = build()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/cached")
    @cached(60)
    def cached_route() -> dict[str, int]:
        return {"a": 1}

    app.include_router(router)
    for _ in range(3):
        await call(app, "/json")
    assert general[0] == 3  # the cache may have something to serve, store or invalidate
    # Another app of the process, without such routes, keeps its fast path.
    other = build()
    for _ in range(3):
        await call(other, "/json")
    assert general[0] == 4


async def test_the_recorder_is_asked_for_again_every_64_general_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = [0]
    seen: list[object] = []
    telemetry = Telemetry(
        tracer_provider=trace.NoOpTracerProvider(), meter_provider=metrics.NoOpMeterProvider()
    )
    listening = object()

    def active(self: Telemetry) -> Any:
        asked[0] += 1
        return listening if asked[0] > 1 else None

    monkeypatch.setattr(Telemetry, "active", active)

    async def inner(scope: dict[str, Any], receive: Any, send: Callable[..., Any]) -> None:
        seen.append(state_of(scope).recorder)  # type: ignore[union-attr]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    middleware = SerdesMiddleware(inner, telemetry=telemetry, cache=None)
    # The fast path records nothing and asks nothing (after the first request, which is general).
    for _ in range(10):
        await call(middleware, "/")
    assert asked[0] == 1
    assert seen == [None] * 10
    seen.clear()
    gzip = [("accept-encoding", "gzip")]  # the general path
    for _ in range(129):
        await call(middleware, "/", headers=gzip)
    assert asked[0] == 3  # general requests 1 (above), 64 and 128
    assert seen[:63] == [None] * 63
    assert seen[63:] == [listening] * 66


@pytest.mark.parametrize("path", ["/plain-post", "/serdes-post"])
async def test_json_bodies_take_the_fast_path(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    general = count_general_path(monkeypatch)
    app = build()
    headers = [("content-type", "application/json")]
    answers = [
        await call(app, path, method="POST", headers=headers, body=[b'{"a": ', b"2}"])
        for _ in range(3)
    ]
    assert general[0] == 1
    assert answers[0].status == 200
    assert answers[0].body == b'{"a":2}'
    assert answers[0].header("vary") == "Accept, Accept-Encoding"
    assert answer(answers[2]) == answer(answers[0])
    fresh = await call(build(), path, method="POST", headers=headers, body=[b'{"a": 2}'])
    assert answer(fresh) == answer(answers[0])


async def test_invalidate_reaches_the_store_from_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An app without @cached routes may still invalidate what others stored in a shared store.
    general = count_general_path(monkeypatch)
    store = MemoryStore()
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=store)

    @app.delete("/items/{item_id}")
    async def delete_item(item_id: int, request: Request) -> dict[str, int]:
        return {"deleted": await invalidate(request, tags=[f"item:{item_id}"])}

    for item_id in (1, 2, 3):
        await store.set(f"k{item_id}", b"v", ttl=60, tags=[f"item:{item_id}"])
    answers = [await call(app, f"/items/{i}", method="DELETE") for i in (1, 2, 2)]
    assert [a.body for a in answers] == [b'{"deleted":1}', b'{"deleted":1}', b'{"deleted":0}']
    assert general[0] == 1  # the first request only
    assert await store.get("k3") == b"v"
