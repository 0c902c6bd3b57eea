"""Views: compiled at startup, selected per request, documented in OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import httpx
import msgpack
import pytest
from fastapi import APIRouter, Depends, FastAPI
from pydantic import BaseModel, Field, computed_field

from fastapi_serdes import ALL, Selection, SerdesMiddleware, SerdesRoute, Views, selection
from fastapi_serdes.views import BoundViews


class Owner(BaseModel):
    id: int
    name: str
    bio: str | None = None


class Video(BaseModel):
    id: int
    title: str
    description: str | None = None
    duration: float
    owner: Owner
    tags: list[str] = []
    related: list[Owner] = []


class VideoPage(BaseModel):
    items: list[Video]
    next_cursor: str | None = None


class VideoCard(BaseModel):
    """An explicit view model: a projection of Video with a nested projection of Owner."""

    id: int
    title: str
    owner: OwnerName


class OwnerName(BaseModel):
    name: str


VideoCard.model_rebuild()


class Cat(BaseModel):
    kind: Literal["cat"] = "cat"
    id: int
    name: str
    lives: int = 9


class Dog(BaseModel):
    kind: Literal["dog"] = "dog"
    id: int
    name: str
    good: bool = True


Pet = Annotated[Cat | Dog, Field(discriminator="kind")]

VIDEO = Video(
    id=1,
    title="t",
    duration=1.5,
    owner=Owner(id=2, name="o", bio="b"),
    tags=["a"],
    related=[Owner(id=3, name="r")],
)
video_views = Views(
    Video,
    minimal=["id", "title"],
    standard=["id", "title", "duration", "owner.name"],
    card=VideoCard,
    detailed=ALL,
    compact=["minimal"],
)
pet_views = Views(Pet, minimal=["kind", "id"], standard=["kind", "id", "name"], detailed=ALL)


def build_app(**settings: Any) -> tuple[FastAPI, list[Selection]]:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, **settings)
    router = APIRouter(route_class=SerdesRoute)
    seen: list[Selection] = []

    @router.get("/videos/{video_id}")
    @video_views
    async def get_video(video_id: int, sel: Annotated[Selection, Depends(selection)]) -> Video:
        seen.append(sel)
        return VIDEO

    @router.get("/videos")
    @video_views
    async def list_videos() -> VideoPage:
        return VideoPage(items=[VIDEO, VIDEO], next_cursor="c")

    @router.get("/plain-list")
    @video_views
    async def plain_list() -> list[Video]:
        return [VIDEO]

    @router.get("/pets")
    @pet_views
    async def pets() -> list[Pet]:
        return [Cat(id=1, name="c"), Dog(id=2, name="d")]

    @router.get("/no-views")
    async def no_views(sel: Annotated[Selection, Depends(selection)]) -> Owner:
        seen.append(sel)
        return Owner(id=1, name="x")

    app.include_router(router, prefix="/api")
    return app, seen


@pytest.fixture
async def client() -> Any:
    app, _ = build_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("query", "expected", "applied"),
    [
        ("", {"id": 1, "title": "t", "duration": 1.5, "owner": {"name": "o"}}, "standard"),
        ("?view=minimal", {"id": 1, "title": "t"}, "minimal"),
        ("?view=card", {"id": 1, "title": "t", "owner": {"name": "o"}}, "card"),
        ("?view=detailed", VIDEO.model_dump(mode="json"), "detailed"),
        ("?fields=id,owner.name", {"id": 1, "owner": {"name": "o"}}, "fields"),
        ("?fields=related.name", {"related": [{"name": "r"}]}, "fields"),
        ("?fields=owner,owner.name", {"owner": {"id": 2, "name": "o", "bio": "b"}}, "fields"),
        ("?view=standard&fields=owner.name", {"owner": {"name": "o"}}, "standard"),
        ("?view=detailed&fields=tags", {"tags": ["a"]}, "detailed"),
    ],
)
async def test_selection(
    client: httpx.AsyncClient, query: str, expected: dict[str, Any], applied: str
) -> None:
    res = await client.get(f"/api/videos/1{query}")
    assert res.status_code == 200, res.text
    assert res.json() == expected
    assert res.headers["serdes-view"] == applied
    assert "Prefer" in res.headers["vary"]
    res = await client.get(f"/api/videos/1{query}", headers={"accept": "application/msgpack"})
    assert msgpack.unpackb(res.content) == expected


async def test_compact_drops_none_only_in_its_views(client: httpx.AsyncClient) -> None:
    app, _ = build_app()
    compact = Views(Video, minimal=["id", "description"], detailed=ALL, default="minimal",
                    compact=["minimal"])  # fmt: skip
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/c")
    @compact
    async def c() -> Video:
        return VIDEO

    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c2:
        assert (await c2.get("/c")).json() == {"id": 1}
        assert (await c2.get("/c?view=detailed")).json()["description"] is None


async def test_views_apply_to_items_not_the_envelope(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/videos?view=minimal")
    assert res.json() == {"items": [{"id": 1, "title": "t"}] * 2, "next_cursor": "c"}
    res = await client.get("/api/plain-list?fields=title")
    assert res.json() == [{"title": "t"}]


async def test_discriminated_union(client: httpx.AsyncClient) -> None:
    res = await client.get("/api/pets?view=minimal")
    assert res.json() == [{"kind": "cat", "id": 1}, {"kind": "dog", "id": 2}]
    res = await client.get("/api/pets?view=detailed")
    assert res.json()[1] == {"kind": "dog", "id": 2, "name": "d", "good": True}


@pytest.mark.parametrize(
    ("headers", "view", "applied"),
    [
        ({"prefer": "return=minimal"}, "minimal", "return=minimal"),
        ({"prefer": "respond-async, return=minimal; foo"}, "minimal", "return=minimal"),
        ({"prefer": "return=representation"}, "standard", None),
        ({"prefer": "return=minimalist"}, "standard", None),
    ],
)
async def test_prefer_return_minimal(
    client: httpx.AsyncClient, headers: dict[str, str], view: str, applied: str | None
) -> None:
    res = await client.get("/api/videos/1", headers=headers)
    assert res.headers["serdes-view"] == view
    assert res.headers.get("preference-applied") == applied


@pytest.mark.parametrize(
    ("query", "view"), [("?view=detailed", "detailed"), ("?fields=id", "fields")]
)
async def test_explicit_selection_beats_prefer(
    client: httpx.AsyncClient, query: str, view: str
) -> None:
    res = await client.get("/api/videos/1" + query, headers={"prefer": "return=minimal"})
    assert res.headers["serdes-view"] == view
    assert "preference-applied" not in res.headers


BAD_SELECTIONS = [
    ("?view=minimall", "did you mean 'minimal'"),
    ("?view=", "unknown view ''"),
    ("?fields=titel", "did you mean 'title'"),
    ("?fields=owner.nam", "did you mean 'owner.name'"),
    ("?fields=title.x", "has no nested fields"),
    ("?fields=,,", "names no field"),
    ("?fields=" + ",".join(["id"] * 51), "at most 50"),
    ("?fields=owner.name.a.b.c", "deeper than 4"),
    ("?view=minimal&fields=duration", "not in view 'minimal'"),
]


@pytest.mark.parametrize(("query", "needle"), BAD_SELECTIONS)
async def test_bad_selection_is_a_400_in_fastapis_shape(
    client: httpx.AsyncClient, query: str, needle: str
) -> None:
    res = await client.get(f"/api/videos/1{query}")
    assert res.status_code == 400
    assert res.headers["content-type"] == "application/json"
    body = res.json()
    assert list(body) == ["detail"]
    assert needle in body["detail"]


async def test_bad_selection_reaches_a_msgpack_client_in_msgpack(
    client: httpx.AsyncClient,
) -> None:
    res = await client.get("/api/videos/1?view=minimall", headers={"accept": "application/msgpack"})
    assert res.status_code == 400
    assert res.headers["content-type"] == "application/msgpack"
    assert "did you mean 'minimal'" in msgpack.unpackb(res.content)["detail"]


async def test_bad_selection_without_middleware_is_fastapis_shape() -> None:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/v")
    @video_views
    async def v() -> Video:
        return VIDEO

    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.get("/v?fields=titel")
    assert res.status_code == 400
    assert res.headers["content-type"] == "application/json"
    assert "did you mean 'title'" in res.json()["detail"]


@pytest.mark.parametrize(("query", "needle"), BAD_SELECTIONS)
async def test_bad_selection_is_a_400_problem(query: str, needle: str) -> None:
    app, _ = build_app(problem_details=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.get(f"/api/videos/1{query}")
    assert res.status_code == 400
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["type"].endswith("/invalid-selection")
    assert needle in problem["detail"]
    assert "minimal" in problem["views"]
    assert "title" in problem["fields"]


async def test_selection_dependency(client: httpx.AsyncClient) -> None:
    app, seen = build_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await c.get("/api/videos/1?view=minimal")
        await c.get("/api/videos/1?fields=owner.name,tags")
        await c.get("/api/videos/1?view=detailed")
        await c.get("/api/no-views")
    assert seen[0] == Selection("minimal", frozenset({"id", "title"}), frozenset({"id", "title"}))
    assert seen[1].fields == frozenset({"owner", "tags"})
    assert seen[1].view is None
    assert seen[2] == Selection("detailed", None, None)
    assert seen[3] == Selection()


async def test_openapi_documents_each_view(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/videos"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["view"]["schema"]["enum"] == ["card", "detailed", "minimal", "standard"]
    assert params["view"]["schema"]["default"] == "standard"
    assert "owner" in params["fields"]["description"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    refs = {s["$ref"].rsplit("/", 1)[1] for s in schema["anyOf"]}
    assert refs == {"VideoPageMinimal", "VideoPageStandard", "VideoPageCard", "VideoPage"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["VideoMinimal"]["properties"]) == {"id", "title"}
    assert set(schemas["OwnerStandard"]["properties"]) == {"name"}
    assert set(schemas["VideoCard"]["properties"]) == {"id", "title", "owner"}
    assert "application/msgpack" in op["responses"]["200"]["content"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"minimal": ["id", "titel"], "default": "minimal"}, "did you mean 'title'"),
        ({"minimal": ["owner.nam"], "default": "minimal"}, "did you mean 'owner.name'"),
        ({"minimal": "id", "default": "minimal"}, "list of field paths"),
        ({"minimal": ["id"], "default": "standard"}, "unknown default view 'standard'"),
        ({"minimal": ["id"], "default": "minimal", "compact": ["tiny"]}, "compact view"),
        ({"minimal": ["id"], "default": "minimal", "max_fields": 0}, "max_fields"),
        ({"default": "minimal"}, "at least one view"),
    ],
)
def test_views_are_checked_at_startup(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Views(Video, **kwargs)


def test_explicit_view_model_must_be_a_projection() -> None:
    class Wrong(BaseModel):
        id: int
        rating: float

    with pytest.raises(ValueError, match="unknown field 'rating'"):
        Views(Video, minimal=Wrong, default="minimal")


def test_views_on_a_route_that_does_not_return_the_model() -> None:
    router = APIRouter(route_class=SerdesRoute)
    with pytest.raises(ValueError, match="does not contain it"):

        @router.get("/x")
        @video_views
        async def x() -> Owner:
            return Owner(id=1, name="n")


def test_views_need_a_response_model() -> None:
    router = APIRouter(route_class=SerdesRoute)
    with pytest.raises(ValueError, match="need a response model"):

        @router.get("/x")
        @video_views
        async def x():  # type: ignore[no-untyped-def]
            return {}


def test_compiled_once_and_fields_cached() -> None:
    bound = BoundViews(video_views, VideoPage)
    first = bound.select(None, "id,title")
    assert bound.select(None, "id,title")[0] is first[0]  # a lookup, not a rebuild
    assert first[0] == {"items": {"__all__": {"id": True, "title": True}}, "next_cursor": True}
    minimal = bound.select("minimal", None)
    assert minimal[0] is bound.select("minimal", None)[0]
    for i in range(600):  # bounded: distinct field strings do not grow memory forever
        bound.select(None, "id," * (i % 40) + "title")
    assert len(bound._fields) <= 256


class Person(BaseModel):
    id: int
    first: str
    last: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def full(self) -> str:
        return f"{self.first} {self.last}"


person_views = Views(Person, minimal=["id", "full"], detailed=ALL, default="detailed")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"id": 1, "first": "a", "last": "b", "full": "a b"}),
        ("?view=minimal", {"id": 1, "full": "a b"}),
        ("?fields=full", {"full": "a b"}),
    ],
)
async def test_views_and_fields_can_name_computed_fields(query: str, expected: Any) -> None:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/person")
    @person_views
    async def person() -> Person:
        return Person(id=1, first="a", last="b")

    app.include_router(router)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for accept in ("application/json", "application/msgpack"):
            res = await client.get("/person" + query, headers={"accept": accept})
            body = res.json() if accept == "application/json" else msgpack.unpackb(res.content)
            assert body == expected
    schema = app.openapi()["components"]["schemas"]
    assert "full" in schema["PersonMinimal"]["properties"]
