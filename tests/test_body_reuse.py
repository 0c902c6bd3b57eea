"""Opt-in reuse of validated request bodies (frozen models only, bounded)."""

from __future__ import annotations

from typing import Any

import httpx
import msgpack
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict

from fastapi_serdes import SerdesMiddleware, SerdesRoute, reuse_validated_bodies
from fastapi_serdes.cache import REUSE_MAX_BODY_BYTES, ValidatedBodies

pytestmark = pytest.mark.anyio


class Order(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    note: str = ""


class Mutable(BaseModel):
    id: int


def build() -> tuple[FastAPI, list[Order]]:
    seen: list[Order] = []
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    router = APIRouter(route_class=SerdesRoute)

    @router.post("/orders")
    @reuse_validated_bodies(max_entries=2)
    async def create(order: Order) -> dict[str, int]:
        seen.append(order)
        return {"id": order.id}

    app.include_router(router)
    return app, seen


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def post(client: httpx.AsyncClient, body: bytes, ctype: str = "application/json") -> Any:
    res = await client.post("/orders", content=body, headers={"content-type": ctype})
    assert res.status_code == 200, res.text
    return res.json()


async def test_identical_bodies_reuse_the_validated_value() -> None:
    app, seen = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = orjson.dumps({"id": 1, "note": "x"})
        await post(c, body)
        await post(c, body)
        assert seen[0] is seen[1]  # not validated again
        await post(c, orjson.dumps({"id": 1, "note": "y"}))
        assert seen[2] is not seen[0]
        packed = msgpack.packb({"id": 1, "note": "x"})
        await post(c, packed, "application/msgpack")
        assert seen[3] is not seen[0]  # another content type: another entry


async def test_the_reuse_cache_is_bounded() -> None:
    bodies = ValidatedBodies(2)
    for i in range(5):
        key = ValidatedBodies.key("application/json", str(i).encode())
        assert key is not None
        bodies.put(key, i)
    assert len(bodies) == 2
    assert ValidatedBodies.key("application/json", b"x" * (REUSE_MAX_BODY_BYTES + 1)) is None


async def test_invalid_bodies_are_never_cached() -> None:
    app, seen = build()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for _ in range(2):
            res = await c.post(
                "/orders", content=b'{"id": "x"}', headers={"content-type": "application/json"}
            )
            assert res.status_code == 422
    assert seen == []


def test_only_frozen_models() -> None:
    router = APIRouter(route_class=SerdesRoute)
    with pytest.raises(TypeError, match="frozen pydantic model"):

        @router.post("/m")
        @reuse_validated_bodies()
        async def m(item: Mutable) -> None: ...


@pytest.mark.parametrize("bad", [0, -1, True, "8"])
def test_max_entries_is_validated(bad: Any) -> None:
    with pytest.raises(ValueError, match="max_entries"):
        reuse_validated_bodies(bad)
