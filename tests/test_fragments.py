"""Fragment caching: list responses re-encode only the items whose version changed."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, TypeAdapter, field_serializer

from fastapi_serdes import ALL, SerdesMiddleware, SerdesRoute, Views, cached_fragments
from fastapi_serdes.cache.fragments import Fragments, _msgpack_array_header

pytestmark = pytest.mark.anyio
ENCODED: list[int] = []


class Video(BaseModel):
    id: int
    title: str
    updated_at: datetime
    score: float = 1.5

    @field_serializer("title")
    def _count(self, title: str) -> str:
        ENCODED.append(self.id)  # how many items were really serialised
        return title


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build(videos: list[Video]) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=None, cache=None)
    router = APIRouter(route_class=SerdesRoute)
    views = Views(Video, minimal=["id", "title"], detailed=ALL, default="detailed")

    @router.get("/videos")
    @cached_fragments(lambda v: (v.id, v.updated_at))
    @views
    async def list_videos() -> list[Video]:
        return list(videos)

    app.include_router(router)
    return app


async def test_only_changed_items_are_encoded_again() -> None:
    # Fragments serve the library's own codecs (MessagePack); JSON is FastAPI's serialisation.
    videos = [Video(id=i, title=f"t{i}", updated_at=T0) for i in range(3)]
    app = build(videos)
    adapter = TypeAdapter(list[Video])
    msgpack_accept = {"accept": "application/msgpack"}
    ENCODED.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        first = await c.get("/videos", headers=msgpack_accept)
        assert first.headers["content-type"] == "application/msgpack"
        # Same value as encoding the list whole.
        assert msgpack.unpackb(first.content) == adapter.dump_python(videos, mode="json")
        ENCODED.clear()
        second = await c.get("/videos", headers=msgpack_accept)
        assert second.content == first.content
        assert ENCODED == []  # nothing serialised again
        videos[1] = Video(id=1, title="changed", updated_at=datetime(2026, 2, 1, tzinfo=UTC))
        third = await c.get("/videos", headers=msgpack_accept)
        assert ENCODED == [1]
        assert msgpack.unpackb(third.content)[1]["title"] == "changed"
        assert third.headers["etag"] != first.headers["etag"]


async def test_json_clients_get_fastapis_bytes() -> None:
    videos = [Video(id=i, title=f"t{i}", updated_at=T0) for i in range(3)]
    app = build(videos)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.get("/videos")
    assert res.headers["content-type"] == "application/json"
    assert res.content == TypeAdapter(list[Video]).dump_json(videos)


async def test_each_codec_and_view_has_its_own_fragments() -> None:
    videos = [Video(id=i, title=f"t{i}", updated_at=T0) for i in range(20)]
    app = build(videos)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        as_json = (await c.get("/videos")).json()
        packed = await c.get("/videos", headers={"accept": "application/msgpack"})
        assert msgpack.unpackb(packed.content) == as_json
        assert packed.content[:1] == b"\xdc"  # array 16 header for 20 items
        minimal = (await c.get("/videos?view=minimal")).json()
        assert minimal == [{"id": v["id"], "title": v["title"]} for v in as_json]
        again = (await c.get("/videos?view=minimal", headers={"accept": "application/json"})).json()
        assert again == minimal


def test_the_store_is_bounded_in_bytes() -> None:
    from fastapi_serdes import JSONCodec

    fragments = Fragments(lambda v: v.id, Video, max_bytes=2000)
    items = [Video(id=i, title="x" * 50, updated_at=T0) for i in range(100)]
    fragments.encode(items, JSONCodec(), {})
    assert fragments.size <= 2000
    assert 0 < len(fragments) < 100


def test_non_finite_items_are_still_refused() -> None:
    from fastapi_serdes import EncodeError, JSONCodec

    fragments = Fragments(lambda v: v.id, Video, max_bytes=10_000)
    bad = [Video(id=1, title="a", updated_at=T0, score=float("nan"))]
    with pytest.raises(EncodeError, match="/score"):
        fragments.encode(bad, JSONCodec(), {})


@pytest.mark.parametrize(("n", "header"), [(0, b"\x90"), (15, b"\x9f"), (16, b"\xdc\x00\x10"),
                                            (70000, b"\xdd\x00\x01\x11\x70")])  # fmt: skip
def test_msgpack_array_headers(n: int, header: bytes) -> None:
    assert _msgpack_array_header(n) == header
    assert msgpack.unpackb(header + b"\xc0" * n) == [None] * n


def test_declaration_errors() -> None:
    router = APIRouter(route_class=SerdesRoute)
    with pytest.raises(TypeError, match="needs a list response"):

        @router.get("/one")
        @cached_fragments(lambda v: v.id)
        async def one() -> Video: ...  # type: ignore[empty-body]

    for bad in ({"version": 3}, {"version": lambda v: v, "max_bytes": 0}):
        with pytest.raises(ValueError, match=r"version|max_bytes"):
            cached_fragments(**bad)  # type: ignore[arg-type]
