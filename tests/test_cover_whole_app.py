"""Whole-app conversion at its edges: a router included twice, and an app that is not a FastAPI
app behind ``problem_details=True``."""

from __future__ import annotations

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from fastapi_serdes import SerdesMiddleware, _compat, use_serdes_routes

pytestmark = pytest.mark.anyio


def client(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_a_router_included_twice_is_converted_once() -> None:
    shared = APIRouter()

    @shared.get("/ping")
    async def ping() -> dict[str, int]:
        return {"pong": 1}

    app = FastAPI()
    app.include_router(shared, prefix="/a")
    app.include_router(shared, prefix="/b")
    # One route, however often it is included; FastAPI < 0.160 copies an included route into
    # the parent, once per inclusion.
    copies = 1 if _compat._effective_route_context_var is not None else 2
    assert use_serdes_routes(app) == copies
    async with client(app) as c:
        for prefix in ("/a", "/b"):
            response = await c.get(f"{prefix}/ping", headers={"accept": "application/msgpack"})
            assert response.headers["content-type"] == "application/msgpack"
            assert msgpack.unpackb(response.content) == {"pong": 1}


async def test_a_starlette_app_behind_problem_details_is_served_as_it_is() -> None:
    async def home(request: Request) -> JSONResponse:
        return JSONResponse({"home": True})

    app = SerdesMiddleware(Starlette(routes=[Route("/", home)]), problem_details=True)
    async with client(app) as c:
        response = await c.get("/", headers={"accept": "application/msgpack"})
        missing = await c.get("/nowhere")
    assert msgpack.unpackb(response.content) == {"home": True}
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/plain")  # Starlette's own 404
