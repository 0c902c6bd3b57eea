"""The scripts in docs/examples/ run, and do what the pages that include them say."""

import re
import runpy
from pathlib import Path
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import TypeAdapter

from fastapi_serdes import Codec, JSONCodec, MsgPackCodec, SerdesMiddleware, SerdesRoute

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
MSGPACK = "application/msgpack"
PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://fastapi-serdes.dev/problems/"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def load(name: str) -> dict[str, Any]:
    """Run ``docs/examples/<name>.py`` as a module and return its globals."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_runs(path: Path) -> None:
    namespace = runpy.run_path(str(path))
    assert namespace["__doc__"], f"{path.name} needs a docstring saying what it shows"


def test_every_example_is_included_in_a_page() -> None:
    # The block form of pymdownx.snippets: "--8<--", the file name, "--8<--", one per line.
    pages = "".join(p.read_text() for p in EXAMPLES.parent.rglob("*.md"))
    included = set(re.findall(r"^ *--8<--\n *(\S+)\n *--8<--$", pages, flags=re.MULTILINE))
    for path in EXAMPLES.glob("*.py"):
        assert path.name in included, f"{path.name} is not included in any page"


# quickstart.py


@pytest.fixture
def quickstart() -> FastAPI:
    app: FastAPI = load("quickstart")["create_app"]()
    return app


@pytest.mark.anyio
async def test_quickstart_answers_json_by_default(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.get("/items/1")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["vary"] == "Accept"
    assert r.content == b'{"name":"Widget","price":9.5,"tags":["tools"],"id":1}'


@pytest.mark.anyio
async def test_quickstart_answers_msgpack_on_request(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.get("/items/1", headers={"Accept": MSGPACK})
    assert r.headers["content-type"] == MSGPACK
    assert len(r.content) == 44
    assert msgpack.unpackb(r.content) == {
        "name": "Widget",
        "price": 9.5,
        "tags": ["tools"],
        "id": 1,
    }


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/json;q=0.5, application/msgpack", MSGPACK),
        ("application/msgpack;q=0.5, application/json", "application/json"),
        ("application/json;q=0, */*", MSGPACK),
        ("*/*", "application/json"),
        ("application/x-msgpack", "application/x-msgpack"),
    ],
)
async def test_quickstart_q_values(quickstart: FastAPI, accept: str, expected: str) -> None:
    async with client(quickstart) as c:
        r = await c.get("/items/1", headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"] == expected


@pytest.mark.anyio
async def test_quickstart_406(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.get("/items/1", headers={"Accept": "text/html"})
    assert r.status_code == 406
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["vary"] == "Accept"
    assert r.json() == {
        "type": PROBLEMS + "not-acceptable",
        "title": "Not Acceptable",
        "status": 406,
        "detail": "None of the media types in Accept can be produced; use one of 'available'.",
        "available": [
            "application/json",
            "application/msgpack",
            "application/vnd.msgpack",
            "application/x-msgpack",
        ],
    }


@pytest.mark.anyio
async def test_quickstart_reads_a_msgpack_body(quickstart: FastAPI) -> None:
    body = msgpack.packb({"name": "Gadget", "price": 4.25})
    async with client(quickstart) as c:
        r = await c.post("/items", content=body, headers={"Content-Type": MSGPACK})
        again = await c.get("/items/2", headers={"Accept": MSGPACK})
    assert r.status_code == 201
    assert r.headers["content-type"] == "application/json"
    assert r.content == b'{"name":"Gadget","price":4.25,"tags":[],"id":2}'
    assert msgpack.unpackb(again.content)["name"] == "Gadget"


@pytest.mark.anyio
async def test_quickstart_415_names_the_supported_types(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.post("/items", content=b"name,price", headers={"Content-Type": "text/csv"})
    assert r.status_code == 415
    assert r.headers["accept"] == (
        "application/json, application/msgpack, application/vnd.msgpack, application/x-msgpack"
    )
    assert r.json()["type"] == PROBLEMS + "unsupported-media-type"
    assert r.json()["detail"] == (
        "Content-Type 'text/csv' is not supported; send one of 'supported'."
    )


@pytest.mark.anyio
async def test_quickstart_422_locates_the_field(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.post("/items", json={"name": "Gadget"})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["errors"] == [
        {"detail": "Field required", "pointer": "/body/price", "code": "missing"}
    ]


@pytest.mark.anyio
async def test_quickstart_problem_error(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.get("/items/7", headers={"Accept": MSGPACK})
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.content == (
        b'{"type":"about:blank","title":"Not Found","status":404,"detail":"No item with id 7."}'
    )


@pytest.mark.anyio
async def test_quickstart_plain_route_is_transcoded(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        packed = await c.get("/health", headers={"Accept": MSGPACK})
        refused = await c.get("/health", headers={"Accept": "text/html"})
    assert packed.headers["content-type"] == MSGPACK
    assert packed.headers["vary"] == "Accept"
    assert msgpack.unpackb(packed.content) == {"status": "ok"}
    # Plain routes are never refused with 406: they answer their JSON.
    assert refused.status_code == 200
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["vary"] == "Accept"


# custom_codec.py


@pytest.fixture
def custom() -> dict[str, Any]:
    return load("custom_codec")


@pytest.mark.anyio
async def test_custom_codec_is_negotiated_by_its_media_type(custom: dict[str, Any]) -> None:
    pretty = custom["PRETTY_JSON"]
    async with client(custom["create_app"]()) as c:
        chosen = await c.get("/notes/1", headers={"Accept": pretty})
        default = await c.get("/notes/1")
    assert chosen.headers["content-type"] == pretty
    assert chosen.headers["vary"] == "Accept"
    assert chosen.text == '{\n  "id": 1,\n  "text": "Buy milk"\n}'
    assert default.headers["content-type"] == "application/json"
    assert default.content == b'{"id":1,"text":"Buy milk"}'


@pytest.mark.anyio
async def test_custom_codec_reads_request_bodies(custom: dict[str, Any]) -> None:
    pretty = custom["PRETTY_JSON"]
    note = {"id": 2, "text": "Call Ann"}
    body = orjson.dumps(note, option=orjson.OPT_INDENT_2)
    async with client(custom["create_app"]()) as c:
        r = await c.post("/notes", content=body, headers={"Content-Type": pretty, "Accept": pretty})
    assert r.status_code == 201
    assert r.headers["content-type"] == pretty
    assert orjson.loads(r.content) == note


@pytest.mark.anyio
async def test_custom_codec_is_listed_in_problems_and_openapi(custom: dict[str, Any]) -> None:
    pretty = custom["PRETTY_JSON"]
    app = custom["create_app"]()
    async with client(app) as c:
        refused = await c.get("/notes/1", headers={"Accept": "text/html"})
        unsupported = await c.post(
            "/notes", content=b"id=1", headers={"Content-Type": "text/plain"}
        )
        openapi = (await c.get("/openapi.json")).json()
    assert pretty in refused.json()["available"]
    assert pretty in unsupported.json()["supported"]
    assert pretty in unsupported.headers["accept"]
    assert MSGPACK in openapi["paths"]["/notes"]["post"]["requestBody"]["content"]


def test_custom_codec_in_openapi_through_route_settings(custom: dict[str, Any]) -> None:
    # What the page says: OpenAPI lists the codecs of the route class's own settings.
    codecs = [JSONCodec(), MsgPackCodec(), custom["PrettyJSONCodec"]()]
    router = APIRouter(route_class=SerdesRoute.with_settings(codecs=codecs))

    @router.get("/notes/{note_id}")
    async def get_note(note_id: int) -> Any:
        return custom["Note"](id=note_id, text="x")

    app = FastAPI()
    app.add_middleware(SerdesMiddleware, codecs=codecs)
    app.include_router(router)
    content = app.openapi()["paths"]["/notes/{note_id}"]["get"]["responses"]["200"]["content"]
    assert custom["PRETTY_JSON"] in content


def test_custom_codec_round_trips_and_follows_the_json_limits(custom: dict[str, Any]) -> None:
    codec = custom["PrettyJSONCodec"]()
    note_type = custom["Note"]
    assert isinstance(codec, Codec)
    note = note_type(id=3, text="Réunion ☕")
    adapter = TypeAdapter(note_type)
    data = codec.encode(note, adapter)
    assert codec.decode(data, adapter) == note
    assert JSONCodec().decode(data) == {"id": 3, "text": "Réunion ☕"}
    with pytest.raises(ValueError, match="Invalid JSON number"):
        codec.decode(b'{"id": 18446744073709551616, "text": "x"}')
    with pytest.raises(ValueError, match="Invalid JSON"):
        codec.decode(b'{"id": NaN}')


# outside_http.py


def test_outside_http_round_trips_a_job(capsys: pytest.CaptureFixture[str]) -> None:
    load("outside_http")["main"]()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("id=UUID('6f1c2a7e-1d2b-4c39-9a57-0c7f3b1e9d10') kind='thumbnail'")
    assert "'created_at': '2024-05-01T12:00:00Z'" in lines[1]
    assert "'payload': b'\\x89PNG\\r\\n'" in lines[1]
    assert lines[2] == (
        "DecodeError: Invalid MessagePack: the bytes are not MessagePack (a reserved format byte)"
    )
    assert lines[3] == "ValidationError: 4 errors"


def test_outside_http_bytes_match_what_a_route_sends() -> None:
    namespace = load("outside_http")
    job_type, adapter = namespace["Job"], namespace["JOB"]
    job = job_type(
        id="6f1c2a7e-1d2b-4c39-9a57-0c7f3b1e9d10",
        kind="k",
        created_at="2024-05-01T12:00:00Z",
        payload=b"\x00",
    )
    data = namespace["MsgPackCodec"]().encode(job, adapter)
    assert msgpack.unpackb(data) == {
        "id": "6f1c2a7e-1d2b-4c39-9a57-0c7f3b1e9d10",
        "kind": "k",
        "created_at": "2024-05-01T12:00:00Z",
        "payload": b"\x00",
        "attempts": 0,
    }


# without_middleware.py


@pytest.fixture
def without_middleware() -> FastAPI:
    app: FastAPI = load("without_middleware")["create_app"]()
    return app


@pytest.mark.anyio
async def test_without_middleware_negotiates_alone(without_middleware: FastAPI) -> None:
    readings = [{"sensor": "t1", "value": 21.5}, {"sensor": "t2", "value": 19.0}]
    async with client(without_middleware) as c:
        packed = await c.post(
            "/readings",
            content=msgpack.packb(readings),
            headers={"Content-Type": MSGPACK, "Accept": MSGPACK},
        )
        # on_not_acceptable="default": JSON instead of 406.
        fallback = await c.post("/readings", json=readings, headers={"Accept": "text/html"})
    assert packed.status_code == 202
    assert packed.headers["content-type"] == MSGPACK
    assert msgpack.unpackb(packed.content) == {"accepted": 2}
    assert fallback.status_code == 202
    assert fallback.headers["content-type"] == "application/json"
    assert fallback.json() == {"accepted": 2}


@pytest.mark.anyio
async def test_without_middleware_limits_the_body(without_middleware: FastAPI) -> None:
    body = orjson.dumps([{"sensor": "t" * 100, "value": 1.0}] * 1000)
    assert len(body) > 64 * 1024
    async with client(without_middleware) as c:
        r = await c.post("/readings", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["type"] == PROBLEMS + "body-too-large"
    assert (
        r.json()["detail"] == "The request body is larger than the 65536 bytes this server reads."
    )


# problem_handler.py


@pytest.mark.anyio
async def test_problem_handler_renders_problem_error_in_plain_routes() -> None:
    app = load("problem_handler")["app"]
    async with client(app) as c:
        r = await c.get("/orders/42", headers={"Accept": MSGPACK})
    assert r.status_code == 404
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json() == {
        "type": "https://example.com/problems/no-such-order",
        "title": "No such order",
        "status": 404,
        "detail": "There is no order 42.",
        "instance": "/orders/42",
        "order_id": 42,
    }
