"""Each private name of FastAPI / Starlette used in ``_compat.py``: a test that fails when the
dependency changes it."""

from __future__ import annotations

from typing import Any

import fastapi
import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter, FastAPI
from starlette.requests import Request

from fastapi_serdes import SerdesRoute, _compat

pytestmark = pytest.mark.anyio

_FASTAPI = tuple(int(part) for part in fastapi.__version__.split(".")[:2])


def test_fastapi_still_has_the_effective_route_context() -> None:
    # FastAPI >= 0.160 builds included routes as contexts; before, the route itself is right.
    expected = getattr(fastapi.routing, "_effective_route_context_var", None)
    if _FASTAPI >= (0, 160):
        assert expected is not None
    assert _compat._effective_route_context_var is expected


async def test_included_routes_are_built_from_their_context() -> None:
    seen: list[Any] = []

    class Spy(SerdesRoute):
        def get_route_handler(self) -> Any:
            seen.append(_compat.effective_route(self))
            return super().get_route_handler()

    router = APIRouter(route_class=Spy)
    router.get("/x")(lambda: 1)
    app = FastAPI()
    app.include_router(router, prefix="/p")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/p/x")).json() == 1  # contexts may be built lazily
    assert any(getattr(r, "path", None) == "/p/x" for r in seen)


def test_swapped_restores_attributes_even_on_error() -> None:
    class Target:
        a = 1

    target = Target()

    def fail() -> None:
        with _compat.swapped(target, a=2):
            assert target.a == 2
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail()
    assert target.a == 1


async def test_preset_body_is_what_request_json_and_headers_give() -> None:
    async def receive() -> dict[str, Any]:  # pragma: no cover - the body is cached
        raise AssertionError("the body must not be read again")

    scope = {
        "type": "http",
        "method": "POST",
        "headers": [(b"content-type", b"application/msgpack")],
    }
    request = Request(scope, receive)
    _compat.preset_body(request, b"\x81\xa1a\x01", {"a": 1})
    assert await request.body() == b"\x81\xa1a\x01"
    assert await request.json() == {"a": 1}
    assert request.headers["content-type"] == "application/json"
    assert scope["headers"] == [(b"content-type", b"application/msgpack")]
