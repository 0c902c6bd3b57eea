"""use_serdes_routes(): one line makes every route of an existing app a SerdesRoute."""

from __future__ import annotations

import logging
import re

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fastapi_serdes import SerdesMiddleware, SerdesRoute, _compat, use_serdes_routes


def router_with(path: str) -> APIRouter:
    router = APIRouter()

    @router.get(path)
    async def endpoint() -> dict[str, str]:
        return {"path": path}

    return router


pytestmark = pytest.mark.anyio


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_every_route_answers_msgpack_before_and_after() -> None:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    app.include_router(router_with("/before"))
    nested = router_with("/nested")
    outer = router_with("/outer")
    outer.include_router(nested)

    @app.get("/own-before")
    async def own_before() -> dict[str, int]:
        return {"a": 1}

    assert use_serdes_routes(app) == 2
    app.include_router(outer, prefix="/p")

    @app.get("/own-after")
    async def own_after() -> dict[str, int]:
        return {"a": 2}

    inner = FastAPI()
    inner.router.routes.append(Route("/x", lambda request: PlainTextResponse("sub")))
    app.mount("/sub", inner)
    async with client_for(app) as client:
        for path in ("/before", "/own-before", "/p/outer", "/p/nested", "/own-after"):
            response = await client.get(path, headers={"accept": "application/msgpack"})
            assert response.headers["content-type"] == "application/msgpack", path
            assert isinstance(msgpack.unpackb(response.content), dict)
            # JSON clients: FastAPI's bytes.
            assert (await client.get(path)).headers["content-type"] == "application/json"
        assert (await client.get("/sub/x")).text == "sub"
    assert all(isinstance(r, SerdesRoute) for r in app.router.routes if isinstance(r, APIRoute))


async def test_a_custom_route_class_is_left_with_a_warning() -> None:
    class Timed(APIRoute):
        pass

    router = APIRouter(route_class=Timed)
    router.get("/timed")(lambda: 1)
    app = FastAPI()
    app.include_router(router)
    with pytest.warns(RuntimeWarning, match="'/timed' has its own route class Timed"):
        use_serdes_routes(app)
    async with client_for(app) as client:
        response = await client.get("/timed", headers={"accept": "application/msgpack"})
    assert response.json() == 1


@pytest.mark.skipif(
    _compat._effective_route_context_var is None,
    reason="FastAPI < 0.160 copies included routes into the parent: the router is gone by then",
)
async def test_a_parent_route_class_that_does_not_reach_included_routes_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    parent = APIRouter(route_class=SerdesRoute)
    parent.include_router(router_with("/child"))
    app.include_router(parent)
    async with client_for(app) as client:
        with caplog.at_level(logging.WARNING, logger="fastapi_serdes"):
            await client.get("/child")
        (record,) = [r for r in caplog.records if "does not reach" in r.getMessage()]
        assert re.search(r"does not reach 1 route\(s\).*'/child'", record.getMessage())
        response = await client.get("/child", headers={"accept": "application/msgpack"})
    # Still served: the middleware transcodes the plain route's JSON.
    assert msgpack.unpackb(response.content) == {"path": "/child"}


async def test_no_warning_once_every_route_is_a_serdes_route() -> None:
    import warnings

    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    parent = APIRouter(route_class=SerdesRoute)
    parent.include_router(router_with("/child"))
    app.include_router(parent)
    use_serdes_routes(app)
    async with client_for(app) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert (await client.get("/child")).status_code == 200
