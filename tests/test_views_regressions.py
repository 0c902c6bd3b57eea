"""Regression tests for views bugs found while building the example app's views."""

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from fastapi_serdes import ALL, SerdesMiddleware, SerdesRoute, Views


class Video(BaseModel):
    id: int
    title: str
    duration: float


video_views = Views(Video, minimal=["id"], standard=["id", "title"], detailed=ALL)
VIDEO = Video(id=1, title="t", duration=2.5)


def build_app(route_class: type[SerdesRoute] = SerdesRoute) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    router = APIRouter(route_class=route_class)

    @router.get("/videos/1")
    @video_views
    async def get_video() -> Video:
        return VIDEO

    app.include_router(router)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


@pytest.mark.anyio
async def test_fields_outside_the_named_default_view_stay_rejected(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/videos/1?view=standard&fields=duration")).status_code == 400
    assert (await client.get("/videos/1?fields=duration")).status_code == 200
    # Same request as the first one: must still be refused.
    assert (await client.get("/videos/1?view=standard&fields=duration")).status_code == 400


@pytest.mark.anyio
async def test_serdes_view_does_not_depend_on_earlier_requests(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/videos/1?view=standard&fields=id")).headers[
        "serdes-view"
    ] == "standard"
    assert (await client.get("/videos/1?fields=id")).headers["serdes-view"] == "fields"


def test_openapi_lists_the_invalid_selection_problem() -> None:
    app = build_app(SerdesRoute.with_settings(problem_details=True))
    operation = app.openapi()["paths"]["/videos/1"]["get"]
    assert "application/problem+json" in operation["responses"]["400"]["content"]


def test_openapi_lists_no_problem_document_by_default() -> None:
    # Without problem_details, a bad selection is FastAPI's {"detail": "..."} in JSON.
    operation = build_app().openapi()["paths"]["/videos/1"]["get"]
    assert "application/problem+json" not in operation["responses"].get("400", {}).get(
        "content", {}
    )


@pytest.mark.anyio
async def test_unknown_name_without_a_suggestion_reads_as_a_sentence(
    client: httpx.AsyncClient,
) -> None:
    res = await client.get("/videos/1?view=full")
    assert res.status_code == 400
    detail = res.json()["detail"]  # FastAPI's shape: the message is the detail
    assert "unknown view 'full'" in detail
    assert "'full' Allowed" not in detail
