"""Views at their edges: fields declared through ``Annotated`` and ``X | None``, envelopes that
hold the resource twice, two views of the same shape, many distinct ``?fields=`` values, and a
``Views`` of something that is not a model."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field

from fastapi_serdes import ALL, SerdesMiddleware, SerdesRoute, Views
from fastapi_serdes.views import _FIELDS_CACHE_SIZE, BoundViews

pytestmark = pytest.mark.anyio


class Owner(BaseModel):
    id: int
    name: str


class Admin(BaseModel):
    id: int
    name: str
    level: int = 1


class Video(BaseModel):
    id: int
    title: str
    owner: Annotated[Owner, Field(description="who uploaded it")]
    backup: Owner | None = None
    crew: list[Annotated[Owner, Field(description="one of the crew")]] = []
    deputy: Annotated[Owner, "a plain annotation"] | None = None
    reviewer: Owner | Admin | None = None


class Shelf(BaseModel):
    videos: list[Annotated[Video, Field(description="one video")]]


class Wall(BaseModel):
    """An envelope holding the same inner envelope twice."""

    left: Shelf
    right: Shelf
    label: str = "wall"


VIDEO = Video(
    id=1,
    title="t",
    owner=Owner(id=2, name="ann"),
    backup=Owner(id=3, name="bob"),
    crew=[Owner(id=4, name="cy")],
    deputy=Owner(id=5, name="di"),
    reviewer=Admin(id=6, name="eve", level=3),
)
VIEWS = Views(Video, minimal=["id", "owner.name", "backup.name"], detailed=ALL, default="detailed")


def build() -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=False, cache=False)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/video")
    @VIEWS
    async def video() -> Video:
        return VIDEO

    @router.get("/wall")
    @VIEWS
    async def wall() -> Wall:
        return Wall(left=Shelf(videos=[VIDEO]), right=Shelf(videos=[]))

    app.include_router(router)
    return app


async def get(app: FastAPI, url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(url)


async def test_nested_fields_through_annotated_and_optional_are_selected() -> None:
    response = await get(build(), "/video?view=minimal")
    assert response.json() == {"id": 1, "owner": {"name": "ann"}, "backup": {"name": "bob"}}
    fields = await get(build(), "/video?fields=owner.id,backup.id")
    assert fields.json() == {"owner": {"id": 2}, "backup": {"id": 3}}


async def test_nested_fields_in_lists_of_annotated_optional_annotated_and_unions() -> None:
    fields = await get(build(), "/video?fields=crew.name,deputy.name,reviewer.name")
    assert fields.json() == {
        "crew": [{"name": "cy"}],
        "deputy": {"name": "di"},
        "reviewer": {"name": "eve"},
    }


async def test_a_view_reaches_into_every_copy_of_an_envelope() -> None:
    response = await get(build(), "/wall?view=minimal")
    minimal = {"id": 1, "owner": {"name": "ann"}, "backup": {"name": "bob"}}
    assert response.json() == {
        "left": {"videos": [minimal]},
        "right": {"videos": []},
        "label": "wall",
    }


async def test_openapi_documents_the_view_models_with_their_annotations() -> None:
    schemas = (await get(build(), "/openapi.json")).json()["components"]["schemas"]
    minimal = schemas["VideoMinimal"]["properties"]
    assert set(minimal) == {"id", "owner", "backup"}
    assert minimal["owner"]["description"] == "who uploaded it"
    assert set(schemas["OwnerMinimal"]["properties"]) == {"name"}
    # The wall's two shelves are one derived model, documented once.
    assert (
        schemas["WallMinimal"]["properties"]["left"]
        == schemas["WallMinimal"]["properties"]["right"]
    )


def test_views_of_the_same_shape_document_one_variant() -> None:
    views = Views(Video, full=ALL, detailed=ALL, default="full")
    assert BoundViews(views, Video).doc_type is Video


def test_many_distinct_field_selections_are_each_answered_right() -> None:
    bound = BoundViews(VIEWS, Video)
    for i in range(_FIELDS_CACHE_SIZE + 10):
        name = ["id", "title", "owner.name"][i % 3]
        raw = name + "," * (i // 3 + 1)  # the same selection, spelled differently each time
        include, selection = bound.select(None, raw)
        assert selection.paths == frozenset({name})
        assert VIDEO.model_dump(include=include) == (
            {"owner": {"name": "ann"}} if name == "owner.name" else {name: getattr(VIDEO, name)}
        )
    assert len(bound._fields) <= _FIELDS_CACHE_SIZE


@pytest.mark.parametrize("model", [int, dict[str, Any], "Video"])
def test_views_of_something_that_is_not_a_model_are_refused(model: Any) -> None:
    with pytest.raises(TypeError, match="not a pydantic model or a union of models"):
        Views(model, minimal=["id"], default="minimal")
