"""Stale answers by rule (RFC 5861): ``stale-while-revalidate`` and ``stale-if-error``."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import httpx
import pytest
from fastapi import APIRouter, FastAPI, HTTPException

from fastapi_serdes import MemoryStore, ResponseCache, SerdesMiddleware, SerdesRoute, cached
from fastapi_serdes.cache import response_cache as response_cache_module

pytestmark = pytest.mark.anyio


class Clock:
    """The response cache's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(response_cache_module, "wall_clock", fake)
    return fake


def build(**windows: float) -> tuple[FastAPI, ResponseCache, dict[str, Any]]:
    """An app whose cached endpoint answers its version, or fails as told."""
    state: dict[str, Any] = {"version": 1, "calls": 0, "fail": None, "gate": None}
    cache = ResponseCache(MemoryStore())
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=cache)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/things/{thing_id}")
    @cached(10, **windows)
    async def get_thing(thing_id: int) -> dict[str, int]:
        state["calls"] += 1
        if state["gate"] is not None:
            await state["gate"].wait()
        if state["fail"] == "raise":
            raise RuntimeError("the database is gone")
        if state["fail"] is not None:
            raise HTTPException(status_code=state["fail"], detail="unavailable")
        return {"id": thing_id, "version": state["version"]}

    app.include_router(router)
    return app, cache, state


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_stale_while_revalidate_serves_at_once_and_refreshes_once(clock: Clock) -> None:
    app, cache, state = build(stale_while_revalidate=60)
    async with client(app) as c:
        first = await c.get("/things/1")
        assert first.json() == {"id": 1, "version": 1}
        assert first.headers["cache-control"] == "public, max-age=10, stale-while-revalidate=60"
        state["version"] = 2
        clock.now += 15  # stale, within the window
        # The refresh waits on the gate: the stale answers come back before it ran.
        state["gate"] = asyncio.Event()
        with anyio.fail_after(30):  # broken, the endpoint would wait on the gate for ever
            stale = [await c.get("/things/1") for _ in range(3)]
        for response in stale:
            assert response.status_code == 200
            assert response.json() == {"id": 1, "version": 1}
            assert response.headers["cache-status"] == (
                "fastapi-serdes; fwd=stale; detail=stale-while-revalidate"
            )
            assert response.headers["age"] == "15"
        await asyncio.sleep(0)
        assert state["calls"] == 2  # one refresh for three stale answers
        state["gate"].set()
        await cache.refreshes_done()
        state["gate"] = None
        fresh = await c.get("/things/1")
        assert fresh.headers["cache-status"] == "fastapi-serdes; hit"
        assert fresh.json() == {"id": 1, "version": 2}
        assert fresh.headers["age"] == "0"
        assert state["calls"] == 2


async def test_past_the_revalidation_window_the_endpoint_answers(clock: Clock) -> None:
    app, _, state = build(stale_while_revalidate=60)
    async with client(app) as c:
        await c.get("/things/1")
        state["version"] = 2
        clock.now += 71
        late = await c.get("/things/1")
        assert late.json() == {"id": 1, "version": 2}
        assert "stored" in late.headers["cache-status"]
        assert state["calls"] == 2


@pytest.mark.parametrize(("fail", "status"), [("raise", 500), (503, 503), (500, 500)])
async def test_stale_if_error_answers_with_the_stale_entry(
    clock: Clock, fail: Any, status: int
) -> None:
    app, _, state = build(stale_if_error=300)
    async with client(app) as c:
        first = await c.get("/things/1", headers={"accept-encoding": "gzip"})
        clock.now += 30  # stale: the endpoint is called, and fails
        state["fail"] = fail
        stale = await c.get("/things/1", headers={"accept-encoding": "gzip"})
        assert stale.status_code == 200
        assert stale.json() == first.json()
        assert stale.headers["cache-status"] == (
            f"fastapi-serdes; fwd=stale; fwd-status={status}; detail=stale-if-error"
        )
        assert stale.headers["age"] == "30"
        assert stale.headers["etag"] == first.headers["etag"]
        clock.now += 300  # past the window: the failure is the answer
        failed = await c.get("/things/1", headers={"accept-encoding": "gzip"})
        assert failed.status_code == status
        assert state["calls"] == 3


async def test_stale_if_error_leaves_successes_and_client_errors_alone(clock: Clock) -> None:
    app, _, state = build(stale_if_error=300)
    async with client(app) as c:
        await c.get("/things/1")
        clock.now += 30
        state["fail"] = 404
        assert (await c.get("/things/1")).status_code == 404  # not a server failure
        state["fail"] = None
        state["version"] = 2
        fresh = await c.get("/things/1")
        assert fresh.json() == {"id": 1, "version": 2}
        assert "stored" in fresh.headers["cache-status"]


def test_stale_windows_are_checked_and_announced() -> None:
    with pytest.raises(ValueError, match="stale_if_error"):
        cached(10, stale_if_error=-1)
    with pytest.raises(ValueError, match="stale_while_revalidate"):
        cached(10, stale_while_revalidate=True)

    def endpoint() -> None: ...

    policy = cached(10, stale_while_revalidate=5, stale_if_error=600)(endpoint).__serdes_cache__  # type: ignore[attr-defined]
    assert policy.kept == 610
    assert policy.cache_control == (
        "public, max-age=10, stale-while-revalidate=5, stale-if-error=600"
    )
