"""Response compression: settings, the content-type policy, negotiation and every pass-through rule.

Real compressors and decompressors throughout; responses are read as raw ASGI messages so the
bytes on the wire (and their Content-Length) are what is checked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from fastapi import APIRouter, Depends, FastAPI, Response
from fastapi.responses import StreamingResponse

from fastapi_serdes import Compression, SerdesMiddleware, SerdesRoute, no_compression
from fastapi_serdes._types import Message, Receive, Scope, Send
from fastapi_serdes.cache.conditional import variant_etag
from fastapi_serdes.compression import (
    DEFAULT_MEDIA_TYPES,
    has_no_transform,
    installed_codings,
    is_compressible,
)
from fastapi_serdes.compression.encoders import Encoder, gzip_encoder
from fastapi_serdes.compression.layer import Choice, CompressionLayer
from fastapi_serdes.compression.responses import CompressingSend
from fastapi_serdes.settings import Negotiated, SerdesSettings
from fastapi_serdes.state import SCOPE_KEY, RequestState
from tests.asgi_driver import call, decode

pytestmark = pytest.mark.anyio

BIG = orjson.dumps([{"id": i, "name": f"user {i}", "tags": ["a", "b"]} for i in range(200)])
SMALL = b'{"ok": true}'


def build(compression: Any = True, **kwargs: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, compression=compression, **kwargs)

    @app.api_route("/body", methods=["GET", "HEAD"])
    async def body(size: int = len(BIG), ct: str = "application/json") -> Response:
        return Response((BIG * (size // len(BIG) + 1))[:size], media_type=ct)

    @app.api_route("/headers", methods=["GET", "HEAD"])
    async def headers(name: str, value: str, status: int = 200) -> Response:
        return Response(
            BIG, status_code=status, media_type="application/json", headers={name: value}
        )

    @app.get("/status/{code}")
    async def status(code: int) -> Response:
        return Response(status_code=code, headers={"etag": '"x"'})

    @app.get("/stream")
    async def stream(ct: str = "application/x-ndjson") -> StreamingResponse:
        async def lines() -> AsyncIterator[bytes]:
            for i in range(3):
                yield orjson.dumps({"n": i}) + b"\n"

        return StreamingResponse(lines(), media_type=ct)

    @app.get("/secret", dependencies=[Depends(no_compression)])
    async def secret() -> Response:
        return Response(BIG, media_type="application/json")

    router = APIRouter(route_class=SerdesRoute, dependencies=[Depends(no_compression)])

    @router.get("/routed")
    async def routed() -> list[int]:
        return list(range(2000))

    app.include_router(router, prefix="/quiet")

    @app.get("/model")
    async def model() -> list[dict[str, int]]:
        return [{"id": i} for i in range(500)]

    return app


APP = build()


# --- settings --------------------------------------------------------------------------------


def test_defaults_offer_installed_codings() -> None:
    settings = Compression()
    assert settings.codings == installed_codings() == ("zstd", "br", "gzip")
    assert settings.levels == {"zstd": 3, "br": 4, "gzip": 6}
    assert settings.minimum_size == 1024
    assert settings.media_types == DEFAULT_MEDIA_TYPES


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"codings": ("deflate",)}, ValueError, "'deflate' is not supported"),
        ({"codings": ()}, ValueError, "at least one"),
        ({"codings": ("gzip", "gzip")}, ValueError, "each coding once"),
        ({"codings": "gzip"}, TypeError, "tuple of names"),
        ({"levels": {"br": 12}}, ValueError, "br level must be an int from 0 to 11, got 12"),
        ({"levels": {"lz4": 1}}, ValueError, "unknown coding 'lz4'"),
        ({"levels": {"gzip": True}}, ValueError, "gzip level"),
        ({"minimum_size": -1}, ValueError, "minimum_size must be an int >= 0"),
        ({"thread_minimum_size": "1"}, ValueError, "thread_minimum_size"),
        ({"media_types": ("json",)}, ValueError, "'json' is not 'type/subtype'"),
        ({"media_types": "text/*"}, TypeError, "media_types must be a tuple"),
    ],
)
def test_invalid_settings_name_the_parameter(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        Compression(**kwargs)


def test_settings_are_keyword_only_and_immutable() -> None:
    with pytest.raises(TypeError):
        Compression(("gzip",))  # type: ignore[misc]
    settings = Compression(levels={"br": 5})
    with pytest.raises(TypeError):
        settings.levels["br"] = 9  # type: ignore[index]
    with pytest.raises(AttributeError):
        settings.minimum_size = 1  # type: ignore[misc]


def test_missing_library_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "brotli", None)
    with pytest.raises(ImportError, match=r"pip install fastapi-serdes\[brotli\]"):
        Compression(codings=("br", "gzip"))
    assert Compression().codings == ("zstd", "gzip")  # the default skips what is missing


@pytest.mark.parametrize(
    ("value", "environ", "expected"),
    [
        (True, {}, Compression()),
        (None, {}, None),
        (False, {}, None),
        # compression=True (the middleware's default) leaves the switch to the environment.
        (True, {"FASTAPI_SERDES_COMPRESSION": "off"}, None),
        (True, {"FASTAPI_SERDES_COMPRESSION": "on"}, Compression()),
        (True, {"FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE": "10"}, Compression(minimum_size=10)),
        (True, {"FASTAPI_SERDES_COMPRESSION_CODINGS": "gzip"}, Compression(codings=("gzip",))),
        (
            Compression(levels={"zstd": 5}),
            {"FASTAPI_SERDES_COMPRESSION_LEVELS": "br=9"},
            Compression(levels={"zstd": 5, "br": 9}),
        ),
        # What the code passed wins over the environment, which only fills in the rest.
        (None, {"FASTAPI_SERDES_COMPRESSION": "on"}, None),
        (False, {"FASTAPI_SERDES_COMPRESSION": "on"}, None),
        (Compression(), {"FASTAPI_SERDES_COMPRESSION": "off"}, Compression()),
        (
            Compression(minimum_size=10),
            {
                "FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE": "99",
                "FASTAPI_SERDES_COMPRESSION_THREAD_MINIMUM_SIZE": "7",
            },
            Compression(minimum_size=10, thread_minimum_size=7),
        ),
        (
            Compression(codings=("br",), levels={"br": 5}),
            {
                "FASTAPI_SERDES_COMPRESSION_CODINGS": "gzip",
                "FASTAPI_SERDES_COMPRESSION_LEVELS": "br=9,gzip=1",
            },
            Compression(codings=("br",), levels={"br": 5, "gzip": 1}),
        ),
        # Given equal to a default is still given.
        (
            Compression(minimum_size=1024),
            {"FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE": "10"},
            Compression(),
        ),
    ],
)
def test_from_environ(value: Any, environ: dict[str, str], expected: Compression | None) -> None:
    assert Compression.from_environ(value, environ) == expected


def test_explicit_settings_win_over_the_environment_in_the_middleware(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE", "10")
    monkeypatch.setenv("FASTAPI_SERDES_COMPRESSION_CODINGS", "gzip")
    explicit = SerdesMiddleware(APP, compression=Compression(minimum_size=2048))
    assert explicit.compression is not None
    assert explicit.compression.minimum_size == 2048
    assert explicit.compression.codings == ("gzip",)  # left out by the code: the environment's
    defaults = SerdesMiddleware(APP)
    assert defaults.compression == Compression(minimum_size=10, codings=("gzip",))
    monkeypatch.setenv("FASTAPI_SERDES_COMPRESSION", "off")
    assert SerdesMiddleware(APP).compression is None
    kept = SerdesMiddleware(APP, compression=Compression(minimum_size=2048)).compression
    assert kept == Compression(minimum_size=2048, codings=("gzip",))


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"FASTAPI_SERDES_COMPRESSION": "maybe"}, "FASTAPI_SERDES_COMPRESSION='maybe'"),
        ({"FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE": "1k"}, "MINIMUM_SIZE='1k'"),
        ({"FASTAPI_SERDES_COMPRESSION_LEVELS": "br"}, "coding=level pairs"),
        ({"FASTAPI_SERDES_COMPRESSION_LEVELS": "br=99"}, "br level"),
        ({"FASTAPI_SERDES_COMPRESSION_LEVELS": "br=x"}, "coding=level pairs"),
    ],
)
def test_bad_environment_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Compression.from_environ(True, environ)


@pytest.mark.parametrize(
    ("value", "environ"),
    [
        (None, {"FASTAPI_SERDES_COMPRESSION": "maybe"}),
        (Compression(), {"FASTAPI_SERDES_COMPRESSION": "maybe"}),
        (None, {"FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE": "1k"}),
        (Compression(minimum_size=5), {"FASTAPI_SERDES_COMPRESSION_MINIMUM_SIZE": "1k"}),
    ],
)
def test_variables_of_what_the_code_passed_are_not_read(
    value: Compression | None, environ: dict[str, str]
) -> None:
    assert Compression.from_environ(value, environ) == value


def test_middleware_refuses_a_bad_compression_value() -> None:
    with pytest.raises(TypeError, match="compression must be a Compression"):
        SerdesMiddleware(APP, compression="gzip")  # type: ignore[arg-type]


# --- pure functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("APPLICATION/JSON", True),
        ("application/problem+json", True),
        ("application/vnd.api+json", True),
        ("application/msgpack", True),
        ("application/x-msgpack", True),
        ("application/vnd.msgpack", True),
        ("application/x-ndjson", True),
        ("text/csv", True),
        ("text/html; charset=utf-8", True),
        ("text/event-stream", True),
        ("image/svg+xml", True),
        ("image/png", False),
        ("application/zip", False),
        ("application/gzip", False),
        ("application/octet-stream", False),
        ("video/mp4", False),
        ("font/woff2", False),
        ("", False),
        (None, False),
        ("not a type", False),
    ],
)
def test_content_type_policy(content_type: str | None, expected: bool) -> None:
    assert is_compressible(content_type, DEFAULT_MEDIA_TYPES) is expected


def test_policy_never_compresses_compressed_media_even_when_asked() -> None:
    assert not is_compressible("image/png", ("image/*",))
    assert not is_compressible("audio/ogg", ("audio/*",))
    assert is_compressible("image/bmp", ("image/*",))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("no-transform", True),
        ("public, No-Transform", True),
        ("max-age=60, no-transform", True),
        ("no-store", False),
        ('private="no-transform"', False),
        ("", False),
    ],
)
def test_no_transform(value: str, expected: bool) -> None:
    assert has_no_transform(value) is expected


@pytest.mark.parametrize(
    ("etag", "expected"),
    [(b'"abc"', b'"abc-br"'), (b'W/"abc"', b'W/"abc"'), (b"abc", b"abc"), (b'""', b'"-br"')],
)
def test_variant_etag(etag: bytes, expected: bytes) -> None:
    assert variant_etag(etag, "br") == expected


# --- negotiation through the middleware ------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_encoding", "coding"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("GZIP", "gzip"),
        ("x-gzip", "gzip"),
        ("gzip, br", "br"),
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1, br;q=0.5", "gzip"),
        ("zstd;q=0.9, br", "br"),
        ("br;q=0, gzip", "gzip"),
        ("*", "zstd"),
        ("*;q=0.5, gzip", "gzip"),
        ("*, zstd;q=0", "br"),
        ("identity", None),
        ("gzip;q=0, identity", None),
        ("deflate", None),
        ("gzip;q=0.5, identity", None),
        ("*;q=0, identity", None),
        ("gzip;q=2", None),
    ],
)
async def test_coding_follows_q_values(accept_encoding: str | None, coding: str | None) -> None:
    headers = [("accept-encoding", accept_encoding)] if accept_encoding is not None else []
    sent = await call(APP, "/body", headers=headers)
    assert sent.status == 200
    assert sent.header("content-encoding") == coding
    assert sent.header("vary") == "Accept, Accept-Encoding"
    assert int(sent.header("content-length") or -1) == len(sent.body)
    assert sent.decoded() == BIG


APP_PROBLEMS = build(problem_details=True)


@pytest.mark.parametrize("accept_encoding", ["identity;q=0", "*;q=0", "deflate, identity;q=0"])
async def test_nothing_acceptable_is_406(accept_encoding: str) -> None:
    # By default, FastAPI's shape: {"detail": "..."} in application/json.
    sent = await call(APP, "/body", headers=[("accept-encoding", accept_encoding)])
    assert sent.status == 406
    assert sent.header("content-type") == "application/json"
    assert sent.header("content-encoding") is None
    assert sent.header("vary") == "Accept-Encoding"
    default = orjson.loads(sent.body)
    assert list(default) == ["detail"]
    assert "refuses identity" in default["detail"]


@pytest.mark.parametrize("accept_encoding", ["identity;q=0", "*;q=0", "deflate, identity;q=0"])
async def test_nothing_acceptable_is_406_problem_details(accept_encoding: str) -> None:
    sent = await call(APP_PROBLEMS, "/body", headers=[("accept-encoding", accept_encoding)])
    assert sent.status == 406
    assert sent.header("content-type") == "application/problem+json"
    assert sent.header("content-encoding") is None
    assert sent.header("vary") == "Accept-Encoding"
    problem = orjson.loads(sent.body)
    assert problem["type"] == "https://fastapi-serdes.dev/problems/not-acceptable-encoding"
    assert problem["title"] == "No Acceptable Content Coding"
    assert problem["status"] == 406
    assert "refuses identity" in problem["detail"]
    assert problem["available"] == ["zstd", "br", "gzip"]


async def test_identity_refused_compresses_small_bodies() -> None:
    sent = await call(APP, "/body?size=10", headers=[("accept-encoding", "gzip, identity;q=0")])
    assert sent.header("content-encoding") == "gzip"
    assert sent.decoded() == BIG[:10]


async def test_server_order_is_configurable() -> None:
    app = build(Compression(codings=("gzip", "br")))
    sent = await call(app, "/body", headers=[("accept-encoding", "br, gzip, zstd")])
    assert sent.header("content-encoding") == "gzip"
    assert sent.decoded() == BIG


async def test_compression_off() -> None:
    app = build(None)
    sent = await call(app, "/body", headers=[("accept-encoding", "gzip")])
    assert sent.header("content-encoding") is None
    assert sent.header("vary") == "Accept"
    refused = await call(app, "/body", headers=[("accept-encoding", "identity;q=0")])
    assert refused.status == 200


@pytest.mark.parametrize(
    ("path", "vary"),
    [
        ("/body?size=5000", "Accept, Accept-Encoding"),
        ("/body?size=5000&ct=text/plain", "Accept-Encoding"),
        ("/body?ct=image/png", None),
        ("/headers?name=cache-control&value=public, no-transform", "Accept"),
        ("/secret", "Accept"),
    ],
)
@pytest.mark.parametrize("accept_encoding", [None, "identity"], ids=["absent", "identity"])
async def test_identity_only_requests_get_the_same_vary(
    path: str, vary: str | None, accept_encoding: str | None
) -> None:
    headers = [("accept-encoding", accept_encoding)] if accept_encoding is not None else []
    sent = await call(APP, path, headers=headers)
    assert sent.status == 200
    assert sent.header("content-encoding") is None
    assert sent.header("vary") == vary


# --- what is never touched -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "vary"),
    [
        # Under the threshold: not compressed, but it could have been (identity;q=0).
        ("/body?size=1023", "Accept, Accept-Encoding"),
        ("/body?size=5000&ct=text/plain", "Accept-Encoding"),
        # The rest are never compressed: no Accept-Encoding in Vary (JSON still varies by Accept).
        ("/body?ct=image/png", None),
        ("/body?ct=application/octet-stream", None),
        ("/headers?name=content-encoding&value=gzip", "Accept"),
        ("/headers?name=content-range&value=bytes 0-9/100&status=206", "Accept"),
        ("/headers?name=cache-control&value=public, no-transform", "Accept"),
        ("/secret", "Accept"),
        ("/quiet/routed", "Accept"),
    ],
)
async def test_passes_through_untouched(path: str, vary: str | None) -> None:
    sent = await call(APP, path, headers=[("accept-encoding", "gzip, br, zstd")])
    assert sent.header("content-encoding") in (None, "gzip", "zstd")  # the app's, text/plain
    assert sent.header("vary") == vary
    assert int(sent.header("content-length") or -1) == len(sent.body)
    if "content-encoding" not in path and "text/plain" not in path:
        assert sent.header("content-encoding") is None


async def test_threshold_is_inclusive() -> None:
    sent = await call(APP, "/body?size=1024", headers=[("accept-encoding", "gzip")])
    assert sent.header("content-encoding") == "gzip"


@pytest.mark.parametrize(("code", "vary"), [(204, None), (304, "Accept-Encoding")])
async def test_bodiless_statuses(code: int, vary: str | None) -> None:
    sent = await call(APP, f"/status/{code}", headers=[("accept-encoding", "gzip")])
    assert sent.status == code
    assert sent.header("content-encoding") is None
    assert sent.header("etag") == '"x"'
    assert sent.header("vary") == vary
    assert sent.body == b""


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
async def test_strong_etag_made_distinct(coding: str) -> None:
    path = '/headers?name=etag&value="v1"'
    sent = await call(APP, path, headers=[("accept-encoding", coding)])
    assert sent.header("etag") == f'"v1-{coding}"'
    plain = await call(APP, path)
    assert plain.header("etag") == '"v1"'
    weak = await call(APP, '/headers?name=etag&value=W/"v1"', headers=[("accept-encoding", coding)])
    assert weak.header("etag") == 'W/"v1"'


async def test_head_gets_the_headers_of_get() -> None:
    headers = [("accept-encoding", "br")]
    get = await call(APP, '/headers?name=etag&value="h"', headers=headers)
    head = await call(APP, '/headers?name=etag&value="h"', method="HEAD", headers=headers)
    assert head.body in (b"", BIG)  # the server drops it; never compressed for nothing
    for name in ("content-encoding", "vary", "etag", "content-type"):
        assert head.header(name) == get.header(name), name
    # The compressed length is unknown without compressing; HEAD may leave it out.
    assert head.header("content-length") is None
    small = await call(APP, "/body?size=10", method="HEAD", headers=headers)
    assert small.header("content-encoding") is None
    assert small.header("content-length") == "10"


async def test_serdes_route_response_and_problems_are_compressed() -> None:
    sent = await call(APP, "/model", headers=[("accept-encoding", "zstd")])
    assert sent.header("content-encoding") == "zstd"
    assert sent.header("vary") == "Accept, Accept-Encoding"
    assert orjson.loads(sent.decoded())[499] == {"id": 499}


async def test_msgpack_transcoded_then_compressed() -> None:
    headers = [("accept", "application/msgpack"), ("accept-encoding", "br")]
    sent = await call(APP, "/model", headers=headers)
    assert sent.header("content-type") == "application/msgpack"
    assert sent.header("content-encoding") == "br"
    assert int(sent.header("content-length") or -1) == len(sent.body)


# --- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("media_type", ["application/x-ndjson", "text/event-stream"])
async def test_stream_is_flushed_per_chunk(coding: str, media_type: str) -> None:
    release = asyncio.Event()
    seen: list[bytes] = []

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", media_type.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: first\n\n", "more_body": True})
        # The client must be able to read the first event before the app sends anything more.
        await asyncio.wait_for(release.wait(), 5)
        await send({"type": "http.response.body", "body": b"data: second\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    decoder = _streaming_decoder(coding)

    async def on_message(message: Message) -> None:
        if message["type"] == "http.response.body" and not release.is_set():
            seen.append(decoder(message["body"]))
            release.set()

    app = SerdesMiddleware(endless)
    sent = await call(app, "/", headers=[("accept-encoding", coding)], on_message=on_message)
    assert seen == [b"data: first\n\n"]
    assert sent.header("content-encoding") == coding
    assert sent.header("content-length") is None
    assert sent.header("vary") == "Accept-Encoding"
    assert decode(coding, sent.body) == b"data: first\n\ndata: second\n\n"


def _streaming_decoder(coding: str) -> Any:
    import zlib

    import brotli
    import zstandard

    if coding == "gzip":
        return zlib.decompressobj(31).decompress
    if coding == "br":
        return brotli.Decompressor().process
    return zstandard.ZstdDecompressor().decompressobj().decompress


async def test_streaming_response_round_trip() -> None:
    sent = await call(APP, "/stream", headers=[("accept-encoding", "gzip")])
    assert sent.header("content-encoding") == "gzip"
    assert sent.decoded() == b'{"n":0}\n{"n":1}\n{"n":2}\n'
    assert len(sent.messages) == 4  # three chunks and the end, none held back or merged


async def test_streamed_file_under_threshold_by_content_length() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"6")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"abc", "more_body": True})
        await send({"type": "http.response.body", "body": b"def"})

    sent = await call(SerdesMiddleware(app), "/", headers=[("accept-encoding", "gzip")])
    assert sent.header("content-encoding") is None
    assert sent.body == b"abcdef"


async def test_pathsend_passes_through() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), (b"content-length", b"5000")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.pathsend", "path": "/tmp/file.txt"})

    sent = await call(SerdesMiddleware(app), "/", headers=[("accept-encoding", "gzip")])
    assert sent.header("content-encoding") is None
    assert sent.header("content-length") == "5000"
    assert sent.messages == [{"type": "http.response.pathsend", "path": "/tmp/file.txt"}]


async def test_incompressible_body_is_sent_as_is() -> None:
    import os

    noise = os.urandom(4096)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": noise})

    sent = await call(SerdesMiddleware(app), "/", headers=[("accept-encoding", "gzip")])
    assert sent.header("content-encoding") is None
    assert sent.body == noise


async def test_large_body_does_not_stall_the_event_loop() -> None:
    import random

    import brotli

    rng = random.Random(0)
    words = [f"{rng.random():.6f}" for _ in range(2000)]
    big = orjson.dumps([{"w": rng.choice(words), "n": rng.random()} for _ in range(14_000)])
    assert len(big) > 500_000
    started = time.perf_counter()
    brotli.compress(big, quality=11)
    compress_time = time.perf_counter() - started

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = big if scope["path"] == "/big" else SMALL
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    middleware = SerdesMiddleware(app, compression=Compression(levels={"br": 11}))
    headers = [("accept-encoding", "br")]
    big_request = asyncio.create_task(call(middleware, "/big", headers=headers))
    await asyncio.sleep(0)  # the big response is now being compressed
    latencies = []
    while not big_request.done():
        started = time.perf_counter()
        small = await call(middleware, "/small", headers=headers)
        latencies.append(time.perf_counter() - started)
        assert small.body == SMALL
        await asyncio.sleep(0.001)
    sent = await big_request
    assert sent.header("content-encoding") == "br"
    assert sent.decoded() == big
    # Small requests kept being served while brotli-11 worked on the big body in a thread.
    assert len(latencies) > 3
    assert max(latencies) < compress_time / 4, (max(latencies), compress_time)


@pytest.mark.parametrize("status", [200, 201, 204, 206, 304, 404])
@pytest.mark.parametrize(
    "content_type",
    [
        b"application/json",
        b"application/problem+json",
        b"application/msgpack",
        b"text/html; charset=utf-8",
        b"image/png",
        b"application/vnd.api+json",
    ],
)
@pytest.mark.parametrize("no_compression_scope", [False, True])
@pytest.mark.parametrize(
    "vary", [None, b"Accept", b"Accept, Prefer", b"*", b"accept-encoding", b"Origin"]
)
def test_vary_marking_of_the_usual_header_shapes_does_not_depend_on_their_order(
    status: int, content_type: bytes, no_compression_scope: bool, vary: bytes | None
) -> None:
    # Content-Length, Content-Type (Starlette's order), then for SerdesRoute's 200 Vary and
    # ETag, or the same headers in another order: both are marked alike, twice in a row.
    layer = CompressionLayer(Compression())
    state = RequestState(Negotiated(None, None, SerdesSettings()), no_compression=True)
    scope: dict[str, Any] = {SCOPE_KEY: state} if no_compression_scope else {}
    usual = [(b"content-length", b"9"), (b"content-type", content_type)]
    if vary is not None:
        usual += [(b"vary", vary), (b"etag", b'"e"')]
    for _ in range(2):
        short = {"status": status, "headers": list(usual)}
        general = {"status": status, "headers": list(reversed(usual))}
        assert layer.mark_vary(short, scope) == layer.mark_vary(general, scope)
        assert dict(short["headers"]) == dict(general["headers"])
        assert len(short["headers"]) == len(general["headers"])


def test_layer_memos_are_bounded_and_reused() -> None:
    layer = CompressionLayer(Compression())
    first = layer.choose(b"gzip")
    assert first is not None
    assert layer.choose(b"gzip") is first
    for i in range(300):
        layer.choose(f"gzip;q=0.{i:03d}".encode())
    assert 0 < len(layer.choices) <= 256
    assert layer.compressible(b"application/json; charset=utf-8")
    assert not layer.compressible(b"image/png")


class _Spans:
    """A recorder that writes down the spans it is asked for."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def start(self, name: str, attributes: Any) -> str:
        self.events.append(("start", name))
        return name

    def fail(self, span: str, exc: BaseException) -> None:
        self.events.append(("fail", span, type(exc).__name__))


async def test_an_encoder_that_raises_fails_its_span() -> None:
    def broken(data: bytes) -> bytes:
        raise RuntimeError("no memory")

    encoder = Encoder("gzip", 6, broken, gzip_encoder(6).stream)
    spans = _Spans()
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "headers": []}
    layer = CompressionLayer(Compression())
    compressing = CompressingSend(send, scope, Choice.of(encoder, True), layer, spans)  # type: ignore[arg-type]
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/plain")],
    }
    await compressing.send(start)
    with pytest.raises(RuntimeError, match="no memory"):
        await compressing.send({"type": "http.response.body", "body": BIG})
    assert sent == []  # nothing sent: the app's error handling answers
    assert spans.events == [
        ("start", "serdes.compress"),
        ("fail", "serdes.compress", "RuntimeError"),
    ]
    compressing.close()  # the span is closed already: nothing more
    assert len(spans.events) == 2
