"""The two opt-in switches: ``problem_details=True`` (every error an RFC 9457 document) and
``strict=True`` (406 / 415); and their defaults, which are stock FastAPI's answers."""

from __future__ import annotations

from typing import Any

import httpx
import msgpack
import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from fastapi_serdes import SerdesMiddleware, SerdesRoute
from fastapi_serdes.problems import PROBLEM_BASE_URI

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: int
    name: str


class TeapotError(Exception):
    pass


def build(**middleware: Any) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @app.exception_handler(TeapotError)
    async def teapot(request: Request, exc: TeapotError) -> JSONResponse:
        return JSONResponse({"teapot": True}, status_code=418)

    @router.get("/item")
    async def item() -> Item:
        return Item(id=1, name="x")

    @router.post("/items")
    async def create(item: Item) -> Item:
        return item

    @router.get("/conflict")
    async def conflict() -> None:
        raise HTTPException(status_code=409, detail="taken", headers={"X-Why": "dup"})

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @router.get("/bad-response", response_model=Item)
    async def bad_response() -> Any:
        return {"id": "nope"}

    @router.get("/teapot")
    async def teapot_route() -> None:
        raise TeapotError

    app.include_router(router)
    app.add_middleware(SerdesMiddleware, **middleware)
    return app


async def call(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


PROBLEMS = build(problem_details=True, strict=True)


async def test_validation_errors_are_a_problem_with_pointers() -> None:
    response = await call(PROBLEMS, "POST", "/items", json={"id": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    doc = response.json()
    assert doc["type"] == PROBLEM_BASE_URI + "validation-failed"
    assert doc["status"] == 422
    assert {e["pointer"] for e in doc["errors"]} == {"/body/id", "/body/name"}


async def test_malformed_json_is_the_validation_problem() -> None:
    response = await call(
        PROBLEMS, "POST", "/items", content=b'{"id":', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "json_invalid"


async def test_http_exception_keeps_status_detail_and_headers() -> None:
    response = await call(PROBLEMS, "GET", "/conflict")
    assert response.status_code == 409
    assert response.headers["x-why"] == "dup"
    assert response.json() == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "taken",
    }


@pytest.mark.parametrize(
    ("method", "path", "status"), [("GET", "/nowhere", 404), ("PUT", "/item", 405)]
)
async def test_routing_errors_are_problems(method: str, path: str, status: int) -> None:
    response = await call(PROBLEMS, method, path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


@pytest.mark.parametrize("path", ["/boom", "/bad-response"])
async def test_unhandled_errors_are_a_500_problem_without_internals(path: str) -> None:
    response = await call(PROBLEMS, "GET", path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "secret" not in response.text
    assert response.json()["title"] == "Internal Server Error"


async def test_the_apps_own_handlers_still_answer() -> None:
    response = await call(PROBLEMS, "GET", "/teapot")
    assert (response.status_code, response.json()) == (418, {"teapot": True})


async def test_strict_406_lists_what_is_available() -> None:
    response = await call(PROBLEMS, "GET", "/item", headers={"accept": "text/html"})
    assert response.status_code == 406
    doc = response.json()
    assert doc["type"] == PROBLEM_BASE_URI + "not-acceptable"
    assert "application/msgpack" in doc["available"]
    assert "Accept" in response.headers["vary"]


async def test_strict_415_for_a_body_no_codec_reads() -> None:
    response = await call(
        PROBLEMS, "POST", "/items", content=b"id=1", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 415
    assert response.json()["type"] == PROBLEM_BASE_URI + "unsupported-media-type"


async def test_strict_takes_every_json_suffix_as_json() -> None:
    response = await call(
        PROBLEMS,
        "POST",
        "/items",
        content=b'{"id": 1, "name": "a"}',
        headers={"content-type": "application/vnd.api+json"},
    )
    assert response.status_code == 200


async def test_msgpack_clients_get_problem_json() -> None:
    response = await call(
        PROBLEMS,
        "POST",
        "/items",
        content=msgpack.packb({"id": "x", "name": "a"}),
        headers={"content-type": "application/msgpack", "accept": "application/msgpack"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"] == "/body/id"


async def test_defaults_answer_as_stock_fastapi() -> None:
    app = build()
    assert (await call(app, "GET", "/item", headers={"accept": "text/html"})).status_code == 200
    response = await call(
        app, "POST", "/items", content=b"id=1", headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "model_attributes_type"
    response = await call(app, "GET", "/conflict")
    assert response.json() == {"detail": "taken"}


async def test_default_msgpack_errors_are_fastapis_shape_in_msgpack() -> None:
    response = await call(
        build(),
        "GET",
        "/conflict",
        headers={"accept": "application/msgpack"},
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(response.content) == {"detail": "taken"}


async def test_a_problem_error_raised_in_a_plain_route_keeps_its_document() -> None:
    from fastapi_serdes import ProblemError

    app = FastAPI()

    @app.get("/conflict")
    async def conflict() -> None:
        raise ProblemError(409, type="https://example.com/probs/dup", title="Taken", owner=7)

    app.add_middleware(SerdesMiddleware, problem_details=True)
    response = await call(app, "GET", "/conflict")
    assert response.status_code == 409
    assert response.json() == {
        "type": "https://example.com/probs/dup",
        "title": "Taken",
        "status": 409,
        "owner": 7,
    }


async def test_openapi_lists_problem_responses_when_the_middleware_switch_is_on() -> None:
    on = build(problem_details=True)
    spec = (await call(on, "GET", "/openapi.json")).json()
    responses = spec["paths"]["/items"]["post"]["responses"]
    assert "application/problem+json" in responses["422"]["content"]
    assert "application/problem+json" in responses["415"]["content"]
    off = (await call(build(), "GET", "/openapi.json")).json()
    default_422 = off["paths"]["/items"]["post"]["responses"]["422"]
    assert list(default_422["content"]) == ["application/json"]  # FastAPI's HTTPValidationError
