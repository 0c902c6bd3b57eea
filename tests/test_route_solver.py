"""SerdesRoute runs FastAPI's own request handler: the body (JSON or MessagePack) is validated
once by FastAPI's dependency solver, and dependencies, the Response parameter, background tasks
and the Request all reach the endpoint as with stock FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import msgpack
import pytest
from fastapi import APIRouter, BackgroundTasks, Body, Depends, FastAPI, Request, Response
from pydantic import AfterValidator, BaseModel

from fastapi_serdes import SerdesMiddleware, SerdesRoute

pytestmark = pytest.mark.anyio


class Calls:
    def __init__(self) -> None:
        self.validations = 0
        self.dependency = 0
        self.background: list[str] = []


class Note(BaseModel):
    text: str


CALLS = Calls()


def _mark(items: list[int]) -> list[int]:
    CALLS.validations += 1
    return [*items, 0]


# Module level: the endpoints' string annotations are resolved in this module's namespace.
Marked = Annotated[list[int], AfterValidator(_mark), Body()]


def _counted() -> str:
    CALLS.dependency += 1
    return "dep"


def _router() -> APIRouter:
    router = APIRouter(route_class=SerdesRoute)

    @router.post("/bare")
    async def bare(items: Marked) -> list[int]:
        return items

    @router.post("/bare-sync")
    def bare_sync(items: Marked) -> list[int]:
        return items

    @router.post("/path/{n}")
    async def with_path(n: int, items: Marked) -> list[int]:
        return [n, *items]

    @router.post("/query")
    async def with_query(items: Marked, scale: int = 1) -> list[int]:
        return [i * scale for i in items]

    @router.post("/dependency")
    async def with_dependency(items: Marked, dep: Annotated[str, Depends(_counted)]) -> dict:
        return {"items": items, "dep": dep}

    @router.post("/response", status_code=201)
    async def with_response(items: Marked, response: Response) -> list[int]:
        response.status_code = 202
        response.headers["x-seen"] = str(len(items))
        return items

    @router.post("/background")
    async def with_background(note: Note, tasks: BackgroundTasks) -> Note:
        tasks.add_task(CALLS.background.append, note.text)
        return note

    @router.post("/request")
    async def with_request(note: Note, request: Request) -> dict:
        return {"text": note.text, "path": request.url.path}

    @router.get("/nothing")
    async def nothing() -> Note:
        return Note(text="plain")

    @router.post("/optional")
    async def optional(note: Note | None = None) -> dict:
        return {"note": note}

    return router


def _app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware)
    app.include_router(_router())
    return app


@pytest.fixture
def calls() -> Calls:
    CALLS.__init__()  # type: ignore[misc]
    return CALLS


@pytest.fixture
async def client(calls: Calls) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/bare", [1, 2, 0]),
        ("/bare-sync", [1, 2, 0]),
        ("/path/7", [7, 1, 2, 0]),
        ("/query?scale=3", [3, 6, 0]),
    ],
)
@pytest.mark.parametrize("codec", ["json", "msgpack"])
async def test_the_body_is_validated_once(
    client: httpx.AsyncClient, calls: Calls, path: str, expected: list[int], codec: str
) -> None:
    media_type = f"application/{codec}"
    body = msgpack.packb([1, 2]) if codec == "msgpack" else b"[1, 2]"
    res = await client.post(
        path, content=body, headers={"content-type": media_type, "accept": "application/json"}
    )
    assert res.status_code == 200, res.text
    assert res.json() == expected
    assert calls.validations == 1


async def test_dependencies_still_run(client: httpx.AsyncClient, calls: Calls) -> None:
    res = await client.post("/dependency", json=[5])
    assert res.json() == {"items": [5, 0], "dep": "dep"}
    assert (calls.validations, calls.dependency) == (1, 1)


async def test_the_response_parameter_still_sets_status_and_headers(
    client: httpx.AsyncClient,
) -> None:
    res = await client.post("/response", json=[1])
    assert res.status_code == 202
    assert res.headers["x-seen"] == "2"
    assert res.json() == [1, 0]


async def test_background_tasks_and_request_still_reach_the_endpoint(
    client: httpx.AsyncClient, calls: Calls
) -> None:
    res = await client.post("/background", json={"text": "later"})
    assert res.json() == {"text": "later"}
    assert calls.background == ["later"]
    res = await client.post("/request", json={"text": "hi"})
    assert res.json() == {"text": "hi", "path": "/request"}


async def test_a_missing_body_is_still_the_solvers_422(client: httpx.AsyncClient) -> None:
    res = await client.post("/bare", headers={"content-type": "application/json"})
    assert res.status_code == 422
    assert res.headers["content-type"] == "application/json"
    assert res.json() == {
        "detail": [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    }


async def test_a_missing_body_is_the_validation_problem_with_problem_details() -> None:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, problem_details=True)
    app.include_router(_router())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        res = await c.post("/bare", headers={"content-type": "application/json"})
    assert res.status_code == 422
    assert res.headers["content-type"] == "application/problem+json"
    problem = res.json()
    assert problem["type"] == "https://fastapi-serdes.dev/problems/validation-failed"
    assert problem["errors"] == [
        {"detail": "Field required", "pointer": "/body", "code": "missing"}
    ]


async def test_an_optional_body_may_be_left_out(client: httpx.AsyncClient) -> None:
    assert (await client.post("/optional")).json() == {"note": None}
    res = await client.post("/optional", json={"text": "x"})
    assert res.json() == {"note": {"text": "x"}}


async def test_a_query_string_on_a_bare_endpoint_is_ignored_as_fastapi_does(
    client: httpx.AsyncClient,
) -> None:
    res = await client.get("/nothing?unknown=1")
    assert res.json() == {"text": "plain"}
