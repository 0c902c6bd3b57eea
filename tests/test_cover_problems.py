"""Problem details (opt-in) at their edges: validation-shaped errors of another status, error
bodies sent in pieces, failures after the response started, apps that answer errors themselves,
apps that are not Starlette apps, and connections that are not HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse

from fastapi_serdes import SerdesMiddleware
from fastapi_serdes._types import Receive, Scope, Send
from fastapi_serdes.problems import PROBLEM_MEDIA_TYPE, problem_for

pytestmark = pytest.mark.anyio

ERRORS = [{"loc": ["body", "x"], "msg": "bad x", "type": "value_error"}]


def client(app: Any, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def build() -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, problem_details=True)

    @app.get("/validation-shaped-400")
    async def validation_shaped() -> JSONResponse:
        return JSONResponse({"detail": ERRORS}, status_code=400)

    @app.get("/error-in-pieces")
    async def in_pieces() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"detail": '
            yield b'"not today"}'

        return StreamingResponse(chunks(), status_code=409, media_type="application/json")

    @app.get("/fails-midway")
    async def fails_midway() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"partial": '
            raise RuntimeError("the database went away")

        return StreamingResponse(chunks(), media_type="application/json")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.close()

    return app


def test_validation_errors_under_another_status_keep_that_status() -> None:
    body = b'{"detail": [{"loc": ["body", "x"], "msg": "bad x", "type": "value_error"}]}'
    problem = problem_for(400, body, None)
    assert problem is not None
    doc = problem.to_dict()
    assert doc["status"] == 400
    assert doc["title"] == "Bad Request"
    assert doc["type"] == "about:blank"
    assert doc["errors"] == [{"detail": "bad x", "pointer": "/body/x", "code": "value_error"}]


async def test_an_apps_validation_shaped_400_becomes_a_400_problem() -> None:
    async with client(build()) as c:
        response = await c.get("/validation-shaped-400")
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["errors"][0]["pointer"] == "/body/x"


async def test_an_error_body_sent_in_pieces_is_read_whole() -> None:
    async with client(build()) as c:
        response = await c.get("/error-in-pieces")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "not today",
    }


async def test_a_failure_after_the_response_started_sends_no_second_answer() -> None:
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/fails-midway",
        "raw_path": b"/fails-midway",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
    }
    with pytest.raises(RuntimeError, match="database went away"):
        await build()(scope, receive, send)
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [200]  # no 500 problem after the 200 started
    assert b"".join(m.get("body", b"") for m in sent if "body" in m) == b'{"partial": '


async def test_an_app_with_its_own_500_handler_answers_for_itself() -> None:
    app = build()

    @app.exception_handler(Exception)
    async def own_handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"own": type(exc).__name__}, status_code=500)

    @app.get("/boom")
    async def boom() -> None:
        raise KeyError("x")

    async with client(app, raise_app_exceptions=False) as c:
        response = await c.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"own": "KeyError"}


async def test_a_raw_asgi_app_that_fails_gets_a_500_problem_that_shows_nothing() -> None:
    async def raw(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("secret internals")

    async with client(SerdesMiddleware(raw, problem_details=True), raise_app_exceptions=False) as c:
        response = await c.get("/")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert "secret" not in response.text
    assert response.json()["status"] == 500


async def test_non_http_connections_pass_through() -> None:
    messages: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "path": "/ws",
        "raw_path": b"/ws",
        "root_path": "",
        "query_string": b"",
        "headers": [],
        "scheme": "ws",
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "subprotocols": [],
    }
    await build()(scope, receive, send)
    assert [m["type"] for m in messages] == ["websocket.accept", "websocket.close"]
