"""Drop-in: a client that asks for nothing new gets what stock FastAPI sends.

One app factory builds the same endpoints three times: stock FastAPI, every route a
``SerdesRoute``, and ``SerdesRoute`` behind ``SerdesMiddleware``. Each request is sent to all
three; status, body and ``Content-Type`` must be equal (the library may only add headers). A
fast, representative subset of FastAPI's own suite (``compat/`` runs all of it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from enum import Enum
from pathlib import PurePosixPath
from typing import Annotated, Any

import httpx
import msgpack
import pytest
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Body,
    Depends,
    FastAPI,
    File,
    Form,
    HTTPException,
    Request,
    Response,
    UploadFile,
)
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    ORJSONResponse,
    PlainTextResponse,
    StreamingResponse,
)
from pydantic import BaseModel, computed_field
from starlette.routing import Route

from fastapi_serdes import SerdesMiddleware, SerdesRoute, cached

pytestmark = [
    pytest.mark.anyio,
    # ORJSONResponse is deprecated by FastAPI, and still used by existing apps.
    pytest.mark.filterwarnings("ignore:ORJSONResponse is deprecated"),
]


class Color(Enum):
    RED = "red"


class Item(BaseModel):
    id: int
    name: str
    price: Decimal = Decimal("1.10")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        return f"{self.name}#{self.id}"


class MyUUID(uuid.UUID):
    pass


class TeapotError(Exception):
    pass


class VndJSON(JSONResponse):
    media_type = "application/vnd.example+json"

    def render(self, content: Any) -> bytes:
        return b"[" + super().render(content) + b"]"


EVENTS: list[str] = []


def build(route_class: type | None, middleware: bool) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=route_class) if route_class else APIRouter()

    @app.exception_handler(TeapotError)
    async def teapot(request: Request, exc: TeapotError) -> JSONResponse:
        return JSONResponse({"teapot": True}, status_code=418)

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        EVENTS.append("validation-handler")
        return JSONResponse({"custom": len(exc.errors())}, status_code=422)

    @router.get("/plain")
    async def plain():  # type: ignore[no-untyped-def]  # no response model: jsonable_encoder
        return {
            "decimal": Decimal("1.1"),
            "delta": dt.timedelta(minutes=5),
            "when": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "path": PurePosixPath("/a/b"),
            "uuid": MyUUID("12345678-1234-5678-1234-567812345678"),
            "color": Color.RED,
            "set": {1},
        }

    @router.get("/nan")
    async def nan() -> dict[str, float]:
        return {"nan": float("nan")}  # stock FastAPI: a 500 (JSONResponse refuses NaN)

    @router.get("/item")
    async def item() -> Item:
        return Item(id=1, name="x")

    @router.get("/item-dict", response_model=Item)
    async def item_dict() -> Any:
        return {"id": 2, "name": "y", "price": "2.5"}

    @router.get("/bad-response", response_model=Item)
    async def bad_response() -> Any:
        return {"id": "not an int"}

    @router.get("/http-error")
    async def http_error() -> None:
        raise HTTPException(status_code=409, detail="taken", headers={"X-Why": "dup"})

    @router.get("/teapot")
    async def raise_teapot() -> None:
        raise TeapotError

    @router.post("/items")
    async def create(item: Item) -> Item:
        return item

    @router.patch("/merge")
    async def merge(
        patch: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
    ) -> Any:
        return patch

    @router.post("/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @router.post("/form")
    async def form(name: Annotated[str, Form()], upload: Annotated[UploadFile, File()]) -> Any:
        return {"name": name, "file": (await upload.read()).decode()}

    @router.get("/html", response_class=HTMLResponse)
    async def html() -> str:
        return "<p>hi</p>"

    @router.get("/text", response_class=PlainTextResponse)
    async def text() -> str:
        return "hi"

    @router.get("/orjson", response_class=ORJSONResponse)
    async def orjson_route() -> Any:
        return {"a": 1}

    @router.get("/vnd", response_class=VndJSON)
    async def vnd() -> Any:
        return {"a": 1}

    @router.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"a"
            yield b"b"

        return StreamingResponse(chunks(), media_type="text/plain")

    @router.get("/own-response")
    async def own() -> Response:
        return Response(b"raw", media_type="application/octet-stream")

    @router.get("/sub-response", status_code=201)
    async def sub(response: Response, tasks: BackgroundTasks) -> Item:
        response.headers["X-Sub"] = "1"
        response.status_code = 202
        tasks.add_task(EVENTS.append, "background")
        return Item(id=3, name="z")

    def dependency() -> Iterator[str]:
        EVENTS.append("enter")
        yield "dep"
        EVENTS.append("exit")

    @router.get("/yield")
    def with_yield(value: Annotated[str, Depends(dependency)]) -> dict[str, str]:
        return {"value": value}

    @router.get("/query")
    async def query(limit: int = 10) -> dict[str, int]:
        return {"limit": limit}

    app.include_router(router)
    if middleware:
        app.add_middleware(SerdesMiddleware)
    return app


MODES: dict[str, Callable[[], FastAPI]] = {
    "route": lambda: build(SerdesRoute, False),
    "route+middleware": lambda: build(SerdesRoute, True),
    "middleware": lambda: build(None, True),
}

REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "/plain", {}),
    ("GET", "/nan", {}),
    ("GET", "/item", {}),
    ("GET", "/item-dict", {}),
    ("GET", "/bad-response", {}),
    ("GET", "/http-error", {}),
    ("GET", "/teapot", {}),
    ("GET", "/missing", {}),
    ("DELETE", "/item", {}),
    ("POST", "/items", {"json": {"id": 1, "name": "a", "price": "3.3"}}),
    ("POST", "/items", {"json": {"id": "x"}}),
    ("POST", "/items", {"content": b'{"id": 1,', "headers": {"content-type": "application/json"}}),
    ("POST", "/items", {"content": b'{"id": 1, "name": "a"}'}),
    (
        "POST",
        "/items",
        {"content": b'{"id": 1, "name": "a"}', "headers": {"content-type": "text/plain"}},
    ),
    (
        "POST",
        "/items",
        {
            "content": b'{"id": 1, "name": "a"}',
            "headers": {"content-type": "application/vnd.api+json"},
        },
    ),
    (
        "POST",
        "/items",
        {"content": b"x" * 2_000_000, "headers": {"content-type": "application/json"}},
    ),
    (
        "PATCH",
        "/merge",
        {"content": b'{"a": null}', "headers": {"content-type": "application/merge-patch+json"}},
    ),
    ("POST", "/raw", {"content": b"\x00\x01"}),
    ("POST", "/form", {"data": {"name": "n"}, "files": {"upload": ("f.txt", b"hello")}}),
    ("GET", "/html", {}),
    ("GET", "/text", {}),
    ("GET", "/orjson", {}),
    ("GET", "/vnd", {}),
    ("GET", "/stream", {}),
    ("GET", "/own-response", {}),
    ("GET", "/sub-response", {}),
    ("GET", "/yield", {}),
    ("GET", "/query", {"params": [("limit", "1"), ("limit", "5")]}),
    ("GET", "/query", {"params": {"limit": "many"}}),
    ("GET", "/item", {"headers": {"accept": "text/html"}}),
    ("GET", "/item", {"headers": {"accept": "application/json;q=0"}}),
    # HEAD on a route that declares only GET: FastAPI's 405 unless answer_head is switched on.
    ("HEAD", "/item", {}),
    ("HEAD", "/text", {}),
]


async def _send(app: FastAPI, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, **kwargs)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    REQUESTS,
    ids=[f"{m} {p} {i}" for i, (m, p, _) in enumerate(REQUESTS)],
)
async def test_same_answer_as_stock_fastapi(
    mode: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    EVENTS.clear()
    stock = await _send(build(None, False), method, path, kwargs)
    stock_events = list(EVENTS)
    EVENTS.clear()
    ours = await _send(MODES[mode](), method, path, kwargs)
    assert ours.status_code == stock.status_code
    assert ours.content == stock.content
    assert ours.headers.get("content-type") == stock.headers.get("content-type")
    assert stock_events == EVENTS  # handlers, dependencies and background tasks ran alike
    for name, value in stock.headers.items():
        if name not in ("content-length", "vary", "etag"):
            assert ours.headers.get(name) == value, name


async def test_jsonable_encoder_output_for_endpoints_without_a_model() -> None:
    response = await _send(MODES["route+middleware"](), "GET", "/plain", {})
    body = response.json()
    assert body["decimal"] == 1.1
    assert body["delta"] == 300.0
    assert body["when"] == "2024-01-02T03:04:05+02:00"
    assert body["path"] == "/a/b"
    assert body == jsonable_encoder(body)


async def test_msgpack_is_asked_for_and_answered() -> None:
    app = MODES["route+middleware"]()
    response = await _send(app, "GET", "/item", {"headers": {"accept": "application/msgpack"}})
    assert response.headers["content-type"] == "application/msgpack"
    assert msgpack.unpackb(response.content) == {
        "id": 1,
        "name": "x",
        "price": "1.10",
        "label": "x#1",
    }
    assert "Accept" in response.headers["vary"]


async def test_msgpack_body_goes_through_fastapis_validation_and_handlers() -> None:
    EVENTS.clear()
    app = MODES["route"]()
    good = await _send(
        app,
        "POST",
        "/items",
        {
            "content": msgpack.packb({"id": 4, "name": "m"}),
            "headers": {"content-type": "application/msgpack"},
        },
    )
    assert good.status_code == 200
    assert good.json()["label"] == "m#4"
    bad = await _send(
        app,
        "POST",
        "/items",
        {"content": msgpack.packb({"id": "x"}), "headers": {"content-type": "application/msgpack"}},
    )
    assert (bad.status_code, bad.json()) == (422, {"custom": 2})
    assert EVENTS == ["validation-handler"]


async def test_get_request_handler_wrappers_see_serdes_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import fastapi.routing

    calls: list[str] = []
    original = fastapi.routing.get_request_handler

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        handler = original(*args, **kwargs)

        async def app(request: Request) -> Any:
            calls.append(request.url.path)
            return await handler(request)

        return app

    monkeypatch.setattr(fastapi.routing, "get_request_handler", wrapper)
    await _send(MODES["route"](), "GET", "/item", {"headers": {"accept": "application/msgpack"}})
    assert calls == ["/item"]


async def test_an_explicit_head_route_is_kept() -> None:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/thing")
    async def get() -> dict[str, int]:
        return {"a": 1}

    @router.head("/thing")  # declared after the GET route: still the one HEAD gets
    async def head() -> Response:
        return Response(headers={"X-Head": "own"})

    app.include_router(router)
    response = await _send(app, "HEAD", "/thing", {})
    assert response.headers["x-head"] == "own"


async def test_mounted_apps_are_untouched() -> None:
    inner = FastAPI()
    inner.router.routes.append(Route("/x", lambda request: PlainTextResponse("sub")))
    app = build(SerdesRoute, True)
    app.mount("/sub", inner)
    response = await _send(app, "GET", "/sub/x", {})
    assert (response.status_code, response.text) == (200, "sub")


@pytest.mark.parametrize(
    "body", [b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff", b"\xdc\xff\xff", b"\x91\x01\x02"]
)
async def test_hostile_msgpack_headers_are_a_422_not_a_crash(body: bytes) -> None:
    # A 5-byte array32 / map32 header declaring 4 billion items crashed ormsgpack 1.5-1.12
    # when spliced into a larger buffer; the decoder now only ever sees the client's bytes.
    response = await _send(
        MODES["route+middleware"](),
        "POST",
        "/items",
        {"content": body, "headers": {"content-type": "application/msgpack"}},
    )
    assert response.status_code == 422
    assert response.json() == {"custom": 1}  # the app's own RequestValidationError handler


def openapi_app(route_class: type | None) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=route_class) if route_class else APIRouter()
    router.post("/form")(_form_endpoint)
    router.patch("/merge")(_merge_endpoint)
    router.post("/items")(_create_endpoint)
    router.get("/item")(_item_endpoint)
    app.include_router(router)
    return app


async def _form_endpoint(
    name: Annotated[str, Form()], upload: Annotated[UploadFile, File()]
) -> str:
    return name


async def _merge_endpoint(
    patch: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
) -> dict[str, Any]:
    return patch


async def _create_endpoint(item: Item) -> Item:
    return item


async def _item_endpoint() -> Item:
    return Item(id=1, name="x")


def test_openapi_adds_media_types_only_where_a_codec_applies() -> None:
    spec = openapi_app(SerdesRoute).openapi()
    paths = spec["paths"]
    form_body = paths["/form"]["post"]["requestBody"]["content"]
    assert list(form_body) == ["multipart/form-data"]
    merge_body = paths["/merge"]["patch"]["requestBody"]["content"]
    assert "application/msgpack" not in merge_body  # a declared media type of its own
    assert "application/msgpack" in paths["/items"]["post"]["requestBody"]["content"]
    assert "application/msgpack" in paths["/item"]["get"]["responses"]["200"]["content"]
    # FastAPI's own 422 is kept as it is.
    stock = openapi_app(None).openapi()["paths"]
    assert (
        paths["/items"]["post"]["responses"]["422"] == stock["/items"]["post"]["responses"]["422"]
    )


def test_a_204_route_documents_no_content() -> None:
    app = FastAPI()
    router = APIRouter(route_class=SerdesRoute)

    @router.delete("/thing", status_code=204)
    async def delete() -> None:
        return None

    app.include_router(router)
    assert "content" not in app.openapi()["paths"]["/thing"]["delete"]["responses"]["204"]


def test_deprecated_response_classes_do_not_warn_when_routes_are_built() -> None:
    import warnings

    router = APIRouter(route_class=SerdesRoute)
    with warnings.catch_warnings():
        warnings.simplefilter("error")

        @router.get("/o", response_class=ORJSONResponse)
        async def o() -> dict[str, int]:
            return {"a": 1}


def _head_app(middleware: dict[str, Any] | None, route_class: type[SerdesRoute]) -> FastAPI:
    app = FastAPI()
    router = APIRouter(route_class=route_class)

    @router.get("/thing")
    @cached(60)
    async def thing() -> dict[str, int]:
        return {"a": 1}

    app.include_router(router)
    if middleware is not None:
        app.add_middleware(SerdesMiddleware, **middleware)
    return app


@pytest.mark.parametrize(
    ("middleware", "route_class"),
    [
        ({"answer_head": True}, SerdesRoute),
        (None, SerdesRoute.with_settings(answer_head=True)),
    ],
    ids=["middleware", "route settings"],
)
async def test_answer_head_makes_get_routes_answer_head(
    middleware: dict[str, Any] | None, route_class: type[SerdesRoute]
) -> None:
    app = _head_app(middleware, route_class)
    get = await _send(app, "GET", "/thing", {})
    head = await _send(app, "HEAD", "/thing", {})
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("middleware", [{}, None], ids=["middleware", "route alone"])
async def test_without_answer_head_a_get_route_leaves_head_to_fastapi(
    middleware: dict[str, Any] | None,
) -> None:
    # Even a @cached route holding a stored GET: the cache does not answer HEAD either.
    app = _head_app(middleware, SerdesRoute)
    assert (await _send(app, "GET", "/thing", {})).status_code == 200
    head = await _send(app, "HEAD", "/thing", {})
    assert head.status_code == 405
    assert head.headers["allow"] == "GET"
