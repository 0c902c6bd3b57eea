"""SerdesResponse and the response encoding at their edges: bodiless statuses, a declared model
the content does not fit, telemetry of an explicit response, and FastAPI's serialisation parts
called outside a request (they then behave as FastAPI's own)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import ResponseValidationError
from fastapi.responses import JSONResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel, TypeAdapter

from fastapi_serdes import JSONCodec, SerdesMiddleware, SerdesResponse, SerdesRoute, Telemetry
from fastapi_serdes.cache.fragments import Fragments
from fastapi_serdes.response_encoding import (
    NegotiatingField,
    encode_validated,
    negotiating_class,
)

pytestmark = pytest.mark.anyio


class Item(BaseModel):
    id: int
    name: str


@pytest.fixture
def spans() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, provider
    provider.shutdown()


def build(telemetry: Telemetry | bool = False) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, telemetry=telemetry, compression=False)
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/gone")
    async def gone() -> SerdesResponse:
        return SerdesResponse({"ignored": True}, status_code=204, headers={"X-Done": "1"})

    @router.get("/typed")
    async def typed() -> SerdesResponse:
        return SerdesResponse({"id": "7", "name": "seven"}, model=Item)

    @router.get("/misfit")
    async def misfit() -> SerdesResponse:
        return SerdesResponse({"id": "not a number"}, model=Item)

    app.include_router(router)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize("accept", ["application/json", "application/msgpack"])
async def test_a_bodiless_status_sends_no_body_and_no_length(accept: str) -> None:
    async with client(build()) as c:
        response = await c.get("/gone", headers={"accept": accept})
    assert response.status_code == 204
    assert response.content == b""
    assert "content-length" not in response.headers
    assert response.headers["x-done"] == "1"


async def test_content_is_validated_into_the_declared_model() -> None:
    async with client(build()) as c:
        response = await c.get("/typed")
    assert response.json() == {"id": 7, "name": "seven"}


async def test_content_that_does_not_fit_the_declared_model_is_a_response_validation_error() -> (
    None
):
    async with client(build()) as c:
        with pytest.raises(ResponseValidationError) as caught:
            await c.get("/misfit")
    locations = {tuple(error["loc"]) for error in caught.value.errors()}
    assert locations == {("id",), ("name",)}


async def test_an_explicit_response_is_measured_with_its_model_name(
    spans: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    exporter, provider = spans
    app = build(Telemetry(tracer_provider=provider, metrics=False))
    async with client(app) as c:
        response = await c.get("/typed", headers={"accept": "application/msgpack"})
    assert response.status_code == 200
    (encode,) = [s for s in exporter.get_finished_spans() if s.name == "serdes.encode"]
    attributes = dict(encode.attributes or {})
    assert attributes["serdes.model"] == "Item"
    assert attributes["serdes.bytes_out"] == len(response.content)
    assert attributes["http.route"] == "/typed"


def test_render_is_never_the_encoding() -> None:
    # Encoding happens when the response is sent, in the negotiated codec.
    response = SerdesResponse({"a": 1})
    assert response.render({"a": 1}) == b""
    assert response.body == b""


class RecordingField:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.name = "response"

    def serialize_json(self, value: Any, **options: Any) -> bytes:
        self.calls.append(("serialize_json", options))
        return orjson.dumps(value)

    def serialize(self, value: Any, **options: Any) -> Any:
        self.calls.append(("serialize", options))
        return value

    def validate(self, value: Any, *args: Any, **kwargs: Any) -> Any:
        return value, None


def test_outside_a_request_the_field_is_fastapis_own() -> None:
    original = RecordingField()
    field = NegotiatingField(original)
    assert field.serialize_json({"a": 1}, by_alias=True) == b'{"a":1}'
    assert field.serialize({"a": 1}, exclude_none=True) == {"a": 1}
    assert original.calls == [
        ("serialize_json", {"by_alias": True}),
        ("serialize", {"exclude_none": True}),
    ]
    assert field.name == "response"  # everything else is the original's


def test_outside_a_request_the_response_class_renders_as_its_own() -> None:
    negotiating = negotiating_class(JSONResponse)
    assert negotiating.__name__ == "JSONResponse"
    content = {"a": [1, 2], "b": None}
    assert negotiating(content).body == JSONResponse(content).body


def test_fragments_that_cannot_join_leave_the_list_to_the_codec() -> None:
    items = [Item(id=i, name=f"n{i}") for i in range(3)]
    adapter = TypeAdapter(list[Item])
    fragments = Fragments(lambda item: item.id, Item, max_bytes=10_000)
    per_index = {"include": {0: {"id"}, 2: {"name"}}}
    data = encode_validated(JSONCodec(), items, adapter, per_index, fragments)
    assert orjson.loads(data) == [{"id": 0}, {"name": "n2"}]
    assert len(fragments) == 0
