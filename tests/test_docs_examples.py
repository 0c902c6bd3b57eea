"""The scripts in docs/examples/ run, and do what the pages that include them say."""

import doctest
import math
import re
import runpy
import textwrap
from pathlib import Path
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, TypeAdapter
from starlette.middleware import Middleware

from fastapi_serdes import (
    Codec,
    EncodeError,
    JSONCodec,
    MsgPackCodec,
    SerdesMiddleware,
    SerdesRoute,
    SerdesSettings,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
MSGPACK = "application/msgpack"
PROBLEM_JSON = "application/problem+json"
PROBLEMS = "https://fastapi-serdes.dev/problems/"


def load(name: str) -> dict[str, Any]:
    """Run ``docs/examples/<name>.py`` as a module and return its globals."""
    return runpy.run_path(str(EXAMPLES / f"{name}.py"))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def switched_on(app: FastAPI, **switches: Any) -> FastAPI:
    """The example app with its ``SerdesMiddleware`` rebuilt with ``switches`` added to its own
    keyword arguments (``strict=True``, ``problem_details=True``), as the pages show."""
    classes: list[object] = [m.cls for m in app.user_middleware]
    index = classes.index(SerdesMiddleware)
    kwargs = {**app.user_middleware[index].kwargs, **switches}
    app.user_middleware[index] = Middleware(SerdesMiddleware, **kwargs)
    return app


OPT_IN = {"strict": True, "problem_details": True}


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
    assert r.headers["vary"] == "Accept, Accept-Encoding"
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
async def test_quickstart_nothing_acceptable_answers_json(quickstart: FastAPI) -> None:
    # Stock FastAPI ignores Accept; so does the default (strict=False).
    async with client(quickstart) as c:
        r = await c.get("/items/1", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["vary"] == "Accept, Accept-Encoding"
    assert r.content == b'{"name":"Widget","price":9.5,"tags":["tools"],"id":1}'


@pytest.mark.anyio
async def test_quickstart_strict_406(quickstart: FastAPI) -> None:
    async with client(switched_on(quickstart, **OPT_IN)) as c:
        r = await c.get("/items/1", headers={"Accept": "text/html"})
    assert r.status_code == 406
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["vary"] == "Accept, Accept-Encoding"
    assert r.json() == {
        "type": PROBLEMS + "not-acceptable",
        "title": "Not Acceptable",
        "status": 406,
        "detail": "None of the media types in Accept can be produced; accept one of "
        "application/json, application/msgpack, application/vnd.msgpack, application/x-msgpack.",
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
async def test_quickstart_unknown_content_type_is_fastapis(quickstart: FastAPI) -> None:
    # No codec reads text/csv: the body is FastAPI's, which does not parse it as JSON.
    async with client(quickstart) as c:
        r = await c.post("/items", content=b"name,price", headers={"Content-Type": "text/csv"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "detail": [
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": "name,price",
            }
        ]
    }


@pytest.mark.anyio
async def test_quickstart_strict_415_names_the_supported_types(quickstart: FastAPI) -> None:
    async with client(switched_on(quickstart, **OPT_IN)) as c:
        r = await c.post("/items", content=b"name,price", headers={"Content-Type": "text/csv"})
    assert r.status_code == 415
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.headers["accept"] == (
        "application/json, application/msgpack, application/vnd.msgpack, application/x-msgpack"
    )
    assert r.json()["type"] == PROBLEMS + "unsupported-media-type"
    assert r.json()["detail"] == (
        "Content-Type 'text/csv' is not supported; send one of application/json, "
        "application/msgpack, application/vnd.msgpack, application/x-msgpack."
    )


@pytest.mark.anyio
async def test_quickstart_422_is_fastapis(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.post("/items", json={"name": "Gadget"})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    assert r.content == (
        b'{"detail":[{"type":"missing","loc":["body","price"],"msg":"Field required",'
        b'"input":{"name":"Gadget"}}]}'
    )


@pytest.mark.anyio
async def test_quickstart_malformed_msgpack_is_a_fastapi_422(quickstart: FastAPI) -> None:
    async with client(quickstart) as c:
        r = await c.post("/items", content=b"\xc1", headers={"Content-Type": MSGPACK})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "detail": [
            {
                "type": "value_error",
                "loc": ["body"],
                "msg": "Body decode error: Invalid MessagePack: the bytes are not MessagePack "
                "(a reserved format byte)",
                "input": {},
            }
        ]
    }


@pytest.mark.anyio
async def test_quickstart_problem_details_422_locates_the_field(quickstart: FastAPI) -> None:
    async with client(switched_on(quickstart, problem_details=True)) as c:
        r = await c.post("/items", json={"name": "Gadget"})
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json() == {
        "type": PROBLEMS + "validation-failed",
        "title": "Request Validation Failed",
        "status": 422,
        "detail": "1 validation error in the request.",
        "errors": [{"detail": "Field required", "pointer": "/body/price", "code": "missing"}],
    }


@pytest.mark.anyio
async def test_quickstart_problem_error(quickstart: FastAPI) -> None:
    # By default a ProblemError is an HTTPException in FastAPI's shape.
    async with client(quickstart) as c:
        r = await c.get("/items/7")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.content == b'{"detail":"No item with id 7."}'


@pytest.mark.anyio
async def test_quickstart_problem_error_with_problem_details(quickstart: FastAPI) -> None:
    # Problem documents are application/problem+json whatever Accept says.
    async with client(switched_on(quickstart, problem_details=True)) as c:
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
    assert packed.headers["vary"] == "Accept, Accept-Encoding"
    assert msgpack.unpackb(packed.content) == {"status": "ok"}
    # Plain routes are never refused with 406 (not even with strict=True): they answer JSON.
    assert refused.status_code == 200
    assert refused.headers["content-type"] == "application/json"
    assert refused.headers["vary"] == "Accept, Accept-Encoding"


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
    assert chosen.headers["vary"] == "Accept, Accept-Encoding"
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
    app = switched_on(custom["create_app"](), **OPT_IN)
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


def test_custom_codec_applies_the_value_policy(custom: dict[str, Any]) -> None:
    codec = custom["PrettyJSONCodec"]()

    class Reading(BaseModel):
        sensor: str
        score: float | None

    adapter = TypeAdapter(Reading)
    # A None is a real null: the gate fires, the walk finds nothing.
    assert codec.encode(Reading(sensor="t1", score=None), adapter) == (
        b'{\n  "sensor": "t1",\n  "score": null\n}'
    )
    assert not codec.may_hide_non_finite(codec.encode(Reading(sensor="t1", score=1.5), adapter))
    with pytest.raises(EncodeError) as info:
        codec.encode(Reading(sensor="t1", score=math.nan), adapter)
    assert str(info.value) == f"{custom['PRETTY_JSON']}: /score: nan is not a finite number"
    with pytest.raises(EncodeError, match=r"/a/1/b~1c: -inf is not a finite number"):
        codec.encode({"a": [1, {"b/c": -math.inf}]})


@pytest.mark.anyio
async def test_custom_codec_refusal_is_an_encode_failed_problem(custom: dict[str, Any]) -> None:
    pretty = custom["PRETTY_JSON"]
    router = APIRouter(route_class=SerdesRoute)

    @router.get("/score")
    async def score() -> dict[str, float]:
        return {"score": math.nan}

    app = FastAPI()
    app.add_middleware(
        SerdesMiddleware, codecs=[JSONCodec(), custom["PrettyJSONCodec"]()], problem_details=True
    )
    app.include_router(router)
    async with client(app) as c:
        r = await c.get("/score", headers={"Accept": pretty})
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"] == PROBLEMS + "encode-failed"
    assert r.json()["detail"] == (
        f"The response could not be encoded: {pretty}: /score: nan is not a finite number"
    )


# Pages with >>> examples: each fenced block that holds one runs as a doctest.

PAGES = EXAMPLES.parent
FENCED = re.compile(r"^( *)```python\n(.*?)^ *```$", flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize(
    ("page", "example"),
    [("how-to/codecs-outside-http.md", None), ("how-to/custom-codec.md", "custom_codec")],
)
def test_page_doctests(page: str, example: str | None) -> None:
    globs: dict[str, Any] = {"JSONCodec": JSONCodec, "MsgPackCodec": MsgPackCodec}
    if example is not None:
        globs.update(load(example))
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    parser = doctest.DocTestParser()
    for number, match in enumerate(FENCED.finditer((PAGES / page).read_text())):
        text = textwrap.dedent(match.group(2))
        if ">>>" in text:
            test = parser.get_doctest(text, dict(globs), f"{page}[{number}]", page, 0)
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


# The value policy and problem pages: the encode-failed detail they show.


@pytest.mark.anyio
async def test_encode_failed_detail_matches_the_pages() -> None:
    class Item(BaseModel):
        name: str
        price: float

    router = APIRouter(route_class=SerdesRoute)

    @router.get("/item")
    async def item() -> Item:
        return Item(name="x", price=math.nan)

    app = FastAPI()
    app.add_middleware(SerdesMiddleware, problem_details=True)
    app.include_router(router)
    async with client(app) as c:
        as_json = await c.get("/item")
        r = await c.get("/item", headers={"Accept": MSGPACK})
    # JSON clients get FastAPI's own bytes (pydantic writes NaN as null); MessagePack refuses it.
    assert as_json.status_code == 200
    assert as_json.content == b'{"name":"x","price":null}'
    detail = (
        "The response could not be encoded: application/msgpack: /price: NaN is not a finite number"
    )
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM_JSON
    assert r.json()["type"] == PROBLEMS + "encode-failed"
    assert r.json()["detail"] == detail
    for page in ("explanation/value-policy.md", "reference/problems.md"):
        assert f'"detail": "{detail}"' in (PAGES / page).read_text()


# Settings page: the errors it quotes.


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"FASTAPI_SERDES_MAX_BODY_SIZE": "4MiB"},
            "FASTAPI_SERDES_MAX_BODY_SIZE must be a positive integer, got '4MiB'",
        ),
        (
            {"FASTAPI_SERDES_MAX_BODY_SIZE": "0"},
            "environment variable FASTAPI_SERDES_MAX_BODY_SIZE='0': max_body_size must be a "
            "positive int (bytes), got 0",
        ),
        (
            {"FASTAPI_SERDES_STRICT": "406"},
            "environment variable FASTAPI_SERDES_STRICT='406': use on or off",
        ),
    ],
)
def test_settings_page_environment_errors(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as info:
        SerdesSettings.from_kwargs(environ=environ)
    assert str(info.value) == message
    assert f"`ValueError: {message}`" in (PAGES / "how-to/settings.md").read_text()


def test_settings_page_codec_class_error() -> None:
    with pytest.raises(TypeError) as info:
        SerdesSettings.from_kwargs(codecs=[JSONCodec], environ={})  # type: ignore[list-item]
    assert f"`TypeError: {info.value}`" in (PAGES / "how-to/settings.md").read_text()


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
        # strict=False: JSON instead of 406.
        fallback = await c.post("/readings", json=readings, headers={"Accept": "text/html"})
    assert packed.status_code == 202
    assert packed.headers["content-type"] == MSGPACK
    assert msgpack.unpackb(packed.content) == {"accepted": 2}
    assert fallback.status_code == 202
    assert fallback.headers["content-type"] == "application/json"
    assert fallback.json() == {"accepted": 2}


@pytest.mark.anyio
async def test_without_middleware_limits_the_msgpack_body(without_middleware: FastAPI) -> None:
    readings = [{"sensor": "t" * 100, "value": 1.0}] * 1000
    packed, as_json = msgpack.packb(readings), orjson.dumps(readings)
    assert len(packed) > 64 * 1024
    assert len(as_json) > 64 * 1024
    async with client(without_middleware) as c:
        r = await c.post("/readings", content=packed, headers={"Content-Type": MSGPACK})
        # JSON bodies are FastAPI's to read: max_body_size does not apply to them.
        read = await c.post(
            "/readings", content=as_json, headers={"Content-Type": "application/json"}
        )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "detail": "The request body is larger than the 65536 bytes this server reads."
    }
    assert read.status_code == 202
    assert read.json() == {"accepted": 1000}


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


# caching.py


@pytest.fixture
def caching() -> FastAPI:
    app: FastAPI = load("caching")["create_app"](True)
    return app


@pytest.mark.anyio
async def test_caching_hit_after_miss(caching: FastAPI) -> None:
    calls = caching.state.calls
    async with client(caching) as c:
        miss = await c.get("/articles/1")
        hit = await c.get("/articles/1")
        packed = await c.get("/articles/1", headers={"Accept": MSGPACK})
        not_modified = await c.get("/articles/1", headers={"If-None-Match": miss.headers["etag"]})
        revalidated = await c.get("/articles/1", headers={"Cache-Control": "no-cache"})
    assert miss.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert "age" not in miss.headers
    assert hit.headers["cache-status"] == "fastapi-serdes; hit"
    assert hit.headers["age"] == "0"
    assert hit.headers["cache-control"] == "public, max-age=60"
    assert hit.headers["etag"] == miss.headers["etag"]
    assert hit.content == miss.content == b'{"title":"Hello","body":"First post.","id":1}'
    # Another media type is another entry; a 304 and a no-cache request as the page says.
    assert packed.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["cache-status"] == "fastapi-serdes; hit"
    assert revalidated.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert calls["get"] == 3  # the miss, MessagePack, the no-cache request


@pytest.mark.anyio
async def test_caching_invalidation(caching: FastAPI) -> None:
    calls = caching.state.calls
    async with client(caching) as c:
        await c.get("/articles")
        await c.get("/articles/1")
        assert (await c.get("/articles")).headers["cache-status"] == "fastapi-serdes; hit"
        put = await c.put("/articles/1", json={"title": "Hello again", "body": "Edited."})
        item = await c.get("/articles/1")
        listing = await c.get("/articles")
    assert put.status_code == 200
    # The PUT dropped its own path; invalidate(request, tags=["articles"]) dropped the list.
    assert item.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert item.json()["title"] == "Hello again"
    assert listing.headers["cache-status"] == "fastapi-serdes; fwd=miss; stored"
    assert listing.json()[0]["title"] == "Hello again"
    assert calls == {"get": 2, "list": 2, "drafts": 0}


@pytest.mark.anyio
async def test_caching_never_stores_errors_or_credentialed_requests(caching: FastAPI) -> None:
    calls = caching.state.calls
    async with client(caching) as c:
        for _ in range(2):
            missing = await c.get("/articles/9")
        await c.get("/articles/1")
        credentialed = await c.get("/articles/1", headers={"Authorization": "Bearer ann"})
    assert missing.status_code == 404
    assert "cache-status" not in missing.headers
    assert "cache-status" not in credentialed.headers  # not served the shared entry
    assert "cache-control" not in credentialed.headers
    assert calls["get"] == 4


@pytest.mark.anyio
async def test_caching_per_principal_entries(caching: FastAPI) -> None:
    calls = caching.state.calls
    ann, bob = {"Authorization": "Bearer ann"}, {"Authorization": "Bearer bob"}
    async with client(caching) as c:
        first = await c.get("/articles/drafts/mine", headers=ann)
        other = await c.get("/articles/drafts/mine", headers=bob)
        again = await c.get("/articles/drafts/mine", headers=ann)
    assert first.json() == again.json() == {"author": "ann"}
    assert other.json() == {"author": "bob"}
    assert again.headers["cache-status"] == "fastapi-serdes; hit"
    assert again.headers["cache-control"] == "private, max-age=30"
    assert calls["drafts"] == 2


def test_caching_example_reads_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = load("caching")
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert namespace["response_store"]() is True
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    store = namespace["response_store"]()
    assert type(store).__name__ == "RedisStore"
    assert store.timeout == 0.05
