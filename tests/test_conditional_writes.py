"""Conditional writes (``If-Match`` → 412) and invalidation by route and path parameters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Body, FastAPI, Request

from fastapi_serdes import MemoryStore, SerdesMiddleware, SerdesRoute, cached, invalidate

pytestmark = pytest.mark.anyio


def build(*, problem_details: bool = False) -> tuple[FastAPI, dict[str, Any]]:
    """Videos whose titles change by PUT (If-Match checked), and by POST /rename, which
    invalidates with invalidate(route=...)."""
    db: dict[str, Any] = {"titles": {7: "one", 8: "eight"}, "gets": 0, "puts": 0}
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, cache=MemoryStore(), problem_details=problem_details)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/videos/{video_id}")
    @cached(60)
    async def get_video(video_id: int) -> dict[str, Any]:
        db["gets"] += 1
        return {"id": video_id, "title": db["titles"][video_id]}

    @router.put("/videos/{video_id}")
    async def put_video(video_id: int, title: str = Body(embed=True)) -> dict[str, Any]:
        db["puts"] += 1
        db["titles"][video_id] = title
        return {"id": video_id, "title": title}

    @router.post("/rename/{video_id}")
    async def rename(video_id: int, title: str, request: Request) -> dict[str, int]:
        db["titles"][video_id] = title  # not a write to the video's path: invalidate it by route
        dropped = await invalidate(request, route=get_video, video_id=video_id)
        return {"dropped": dropped}

    @router.post("/rename-wrong")
    async def rename_wrong(request: Request) -> dict[str, int]:
        return {"dropped": await invalidate(request, route=rename_wrong)}

    app.include_router(router)
    return app, db


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_if_match_lets_the_current_tag_write_and_refuses_an_old_one() -> None:
    app, db = build()
    async with client(app) as c:
        read = await c.get("/videos/7", headers={"accept-encoding": "gzip"})
        etag = read.headers["etag"]
        # The gzip variant's tag names the same content: it matches too.
        ok = await c.put("/videos/7", json={"title": "two"}, headers={"if-match": etag})
        assert ok.status_code == 200
        assert db["puts"] == 1
        # The PUT changed the video: the tag the client holds is old now.
        late = await c.put("/videos/7", json={"title": "three"}, headers={"if-match": etag})
        assert late.status_code == 412
        assert late.json() == {
            "detail": "If-Match names none of the current representation's entity tags: it "
            "changed since you read it; GET it again."
        }
        assert db["puts"] == 1
        assert db["titles"][7] == "two"
        fresh = await c.get("/videos/7")
        assert fresh.json()["title"] == "two"
        assert (
            await c.put(
                "/videos/7", json={"title": "four"}, headers={"if-match": fresh.headers["etag"]}
            )
        ).status_code == 200


async def test_if_match_compares_strongly_and_knows_star() -> None:
    app, db = build(problem_details=True)
    async with client(app) as c:
        etag = (await c.get("/videos/7")).headers["etag"]
        weak = await c.put("/videos/7", json={"title": "x"}, headers={"if-match": f"W/{etag}"})
        assert weak.status_code == 412
        assert weak.headers["content-type"] == "application/problem+json"
        assert weak.json()["type"] == "https://fastapi-serdes.dev/problems/precondition-failed"
        listed = await c.put(
            "/videos/7", json={"title": "x"}, headers={"if-match": f'"other", {etag}'}
        )
        assert listed.status_code == 200
        # Nothing stored for video 8 yet: the current representation is made by a GET.
        assert (
            await c.put("/videos/8", json={"title": "y"}, headers={"if-match": "*"})
        ).status_code == 200
        assert db["gets"] == 2
        # No such video: "*" does not match a representation that does not exist.
        missing = await c.put("/videos/9", json={"title": "z"}, headers={"if-match": "*"})
        assert missing.status_code == 412
        # Without If-Match, writes are the endpoint's business.
        assert (await c.put("/videos/7", json={"title": "w"})).status_code == 200


async def test_invalidate_by_route_and_path_parameters() -> None:
    app, db = build()
    async with client(app) as c:
        await c.get("/videos/7")
        await c.get("/videos/7?view=any")  # another query of the same path
        await c.get("/videos/8")
        renamed = await c.post("/rename/7?title=renamed")
        # Two answers, each stored twice: uncompressed (small) for a client that prefers gzip,
        # under identity and under gzip.
        assert renamed.json() == {"dropped": 4}
        again = await c.get("/videos/7")
        assert again.json()["title"] == "renamed"
        assert "stored" in again.headers["cache-status"]
        assert (await c.get("/videos/8")).headers["cache-status"] == "fastapi-serdes; hit"
        # An endpoint that is not a @cached route is a programming error, said clearly.
        wrong = await c.post("/rename-wrong")
        assert wrong.status_code == 500
        assert db["gets"] == 4  # 7, 7?view=any, 8, and 7 again after the rename
