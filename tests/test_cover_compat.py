"""The fallbacks of ``_compat.py``: what the library does on FastAPI releases without the private
names it uses (simulated by hiding them), so the lowest supported release keeps working."""

from __future__ import annotations

import inspect
import sys

import httpx
import msgpack
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from fastapi_serdes import SerdesRoute, _compat, use_serdes_routes

pytestmark = pytest.mark.anyio


def test_without_the_effective_route_context_a_route_is_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_compat, "_effective_route_context_var", None)
    route = APIRoute("/x", lambda: 1)
    assert _compat.effective_route(route) is route


@pytest.mark.skipif(
    "max_body_size" not in inspect.signature(FastAPI.post).parameters,
    reason="this FastAPI has no per-route body limit",
)
async def test_without_per_route_body_limits_a_converted_route_is_its_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = FastAPI()

    @app.post("/echo", max_body_size=5)
    async def echo(value: dict[str, str]) -> dict[str, str]:
        return value

    # As on a FastAPI release without fastapi._body_limit: the import fails.
    monkeypatch.setitem(sys.modules, "fastapi._body_limit", None)
    assert use_serdes_routes(app) == 1
    (route,) = [r for r in app.routes if isinstance(r, SerdesRoute)]
    assert route.max_body_size == 5
    body = {"text": "longer than five bytes"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/echo",
            content=msgpack.packb(body),
            headers={"content-type": "application/msgpack", "accept": "application/msgpack"},
        )
    # No limit to apply (as on that release), and the route is a SerdesRoute: MessagePack in
    # and out.
    assert response.status_code == 200
    assert msgpack.unpackb(response.content) == body
