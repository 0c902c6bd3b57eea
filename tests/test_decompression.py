"""Compressed request bodies: decoded before decoding, the limit on the decoded size, bombs, 415."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib
from typing import Any

import brotli
import msgpack
import orjson
import pytest
import zstandard
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from fastapi_serdes import Compression, SerdesMiddleware, SerdesRoute
from fastapi_serdes.compression.decoders import new_decoder
from fastapi_serdes.compression.request_bodies import CHUNK_SIZE, DecompressedBody, request_coding
from fastapi_serdes.compression.settings import coding_available
from fastapi_serdes.problems import PROBLEM_BASE_URI, PROBLEM_TYPES, ProblemError
from tests.asgi_driver import Sent, call

pytestmark = pytest.mark.anyio

LIMIT = 1024 * 1024
BOMB_SIZE = 256 * 1024 * 1024


class Item(BaseModel):
    id: int
    name: str


def build(**kwargs: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SerdesMiddleware, max_body_size=LIMIT, **kwargs)
    router = APIRouter(route_class=SerdesRoute)

    @router.post("/items")
    async def create(items: list[Item]) -> dict[str, int]:
        return {"count": len(items)}

    app.include_router(router, prefix="/serdes")

    @app.post("/plain")
    async def plain(items: list[Item]) -> dict[str, int]:
        return {"count": len(items)}

    @app.post("/raw")
    async def raw(request: Request) -> dict[str, Any]:
        body = await request.body()
        return {"size": len(body), "headers": sorted(request.headers.keys())}

    return app


APP = build()
# The same app with RFC 9457 problem documents switched on.
APP_PROBLEMS = build(problem_details=True)
APPS = {False: APP, True: APP_PROBLEMS}
problem_details_modes = pytest.mark.parametrize(
    "problem_details", [False, True], ids=["default", "problem_details"]
)


def error_of(sent: Sent, status: int, slug: str, *, problem_details: bool) -> dict[str, Any]:
    """Check an error the middleware answered: FastAPI's ``{"detail": "..."}`` by default, the
    library's problem document with ``problem_details=True``; return the parsed body."""
    assert sent.status == status, (sent.status, sent.body[:200])
    doc = orjson.loads(sent.body)
    assert isinstance(doc, dict)
    assert isinstance(doc["detail"], str)
    assert doc["detail"]
    if problem_details:
        assert sent.header("content-type") == "application/problem+json"
        assert doc["type"] == PROBLEM_BASE_URI + slug
        assert (doc["status"], doc["title"]) == PROBLEM_TYPES[slug]
    else:
        assert sent.header("content-type") == "application/json"
        assert list(doc) == ["detail"]
    return doc


ITEMS = [{"id": i, "name": f"item number {i}"} for i in range(3000)]
JSON = orjson.dumps(ITEMS)
MSGPACK = msgpack.packb(ITEMS)


def compress(coding: str, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "br":
        return bytes(brotli.compress(data))
    return bytes(zstandard.ZstdCompressor().compress(data))


def chunked(data: bytes, size: int = 1000) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)] or [b""]


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd", "x-gzip"])
@pytest.mark.parametrize("path", ["/serdes/items", "/plain"])
@pytest.mark.parametrize("media_type", ["application/json", "application/msgpack"])
async def test_compressed_bodies_reach_every_route(coding: str, path: str, media_type: str) -> None:
    data = JSON if media_type == "application/json" else MSGPACK
    wire = compress("gzip" if coding == "x-gzip" else coding, data)
    headers = [
        ("content-type", media_type),
        ("content-encoding", coding.upper()),
        ("content-length", str(len(wire))),
    ]
    sent = await call(APP, path, method="POST", headers=headers, body=chunked(wire))
    assert sent.status == 200, sent.body
    assert orjson.loads(sent.body) == {"count": len(ITEMS)}


async def test_route_sees_no_encoding_headers() -> None:
    wire = compress("br", JSON)
    headers = [("content-encoding", "br"), ("content-length", str(len(wire)))]
    sent = await call(APP, "/raw", method="POST", headers=headers, body=[wire])
    assert orjson.loads(sent.body) == {"size": len(JSON), "headers": []}


async def test_identity_content_encoding_is_accepted() -> None:
    headers = [("content-type", "application/json"), ("content-encoding", "identity")]
    sent = await call(APP, "/plain", method="POST", headers=headers, body=[JSON])
    assert sent.status == 200


@problem_details_modes
@pytest.mark.parametrize("coding", ["deflate", "compress", "gzip, br", "lz4"])
async def test_unknown_coding_is_415(coding: str, problem_details: bool) -> None:
    headers = [("content-type", "application/json"), ("content-encoding", coding)]
    sent = await call(APPS[problem_details], "/plain", method="POST", headers=headers, body=[JSON])
    doc = error_of(sent, 415, "unsupported-content-encoding", problem_details=problem_details)
    assert sent.header("accept-encoding") == "zstd, br, gzip"
    assert sent.header("accept") is None
    assert f"Content-Encoding {coding!r} is not supported" in doc["detail"]
    if problem_details:
        assert doc["supported"] == ["zstd", "br", "gzip"]


@problem_details_modes
async def test_coding_not_offered_is_415(problem_details: bool) -> None:
    app = build(compression=Compression(codings=("gzip",)), problem_details=problem_details)
    headers = [("content-type", "application/json"), ("content-encoding", "br")]
    sent = await call(app, "/plain", method="POST", headers=headers, body=[compress("br", JSON)])
    doc = error_of(sent, 415, "unsupported-content-encoding", problem_details=problem_details)
    assert sent.header("accept-encoding") == "gzip"
    if problem_details:
        assert doc["supported"] == ["gzip"]


async def test_compression_off_leaves_bodies_alone() -> None:
    app = build(compression=None)
    headers = [("content-type", "application/json"), ("content-encoding", "gzip")]
    sent = await call(app, "/raw", method="POST", headers=headers, body=[b"xyz"])
    assert orjson.loads(sent.body)["size"] == 3


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("path", ["/serdes/items", "/plain", "/raw"])
@pytest.mark.parametrize("how", ["truncated", "corrupt", "trailing"])
@problem_details_modes
async def test_bad_compressed_body_is_400(
    coding: str, path: str, how: str, problem_details: bool
) -> None:
    wire = compress(coding, JSON)
    if how == "truncated":
        wire = wire[: len(wire) // 2]
    elif how == "corrupt":
        wire = wire[:10] + bytes(b ^ 0x5A for b in wire[10:40]) + wire[40:]
    else:
        wire += b"garbage!"
    headers = [("content-type", "application/json"), ("content-encoding", coding)]
    sent = await call(
        APPS[problem_details], path, method="POST", headers=headers, body=chunked(wire)
    )
    doc = error_of(sent, 400, "malformed-body", problem_details=problem_details)
    assert f"not valid {coding}" in doc["detail"]


@pytest.fixture(scope="module")
def bombs() -> dict[str, bytes]:
    """Bodies of a few hundred bytes to a few hundred KB that expand to 256 MiB of zeros."""
    zeros = bytes(1 << 20)
    # gzip: several members are one valid gzip body; deflate cannot beat about 1000:1.
    member = zlib.compress(zeros, 9, wbits=31)
    br = brotli.Compressor(quality=3, lgwin=24)
    br_bomb = b"".join([br.process(zeros) for _ in range(256)] + [br.finish()])
    zstd = zstandard.ZstdCompressor(level=1).compressobj()
    zstd_bomb = b"".join([zstd.compress(zeros) for _ in range(256)] + [zstd.flush()])
    return {"gzip": member * 256, "br": br_bomb, "zstd": zstd_bomb}


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
@pytest.mark.parametrize("path", ["/serdes/items", "/plain", "/raw"])
@problem_details_modes
async def test_bomb_is_413_with_memory_bounded(
    bombs: dict[str, bytes], coding: str, path: str, problem_details: bool
) -> None:
    bomb = bombs[coding]
    assert len(bomb) < LIMIT
    headers = [("content-type", "application/json"), ("content-encoding", coding)]
    tracemalloc.start()
    try:
        sent = await call(
            APPS[problem_details], path, method="POST", headers=headers, body=chunked(bomb, 65536)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    doc = error_of(sent, 413, "body-too-large", problem_details=problem_details)
    assert f"{LIMIT} bytes" in doc["detail"]
    # The bomb itself is in memory already; what decoding adds stays under twice the limit.
    assert peak < 2 * LIMIT, peak


@problem_details_modes
async def test_declared_compressed_length_over_the_limit_is_413_at_once(
    problem_details: bool,
) -> None:
    headers = [("content-encoding", "gzip"), ("content-length", str(LIMIT + 1))]
    sent = await call(APPS[problem_details], "/raw", method="POST", headers=headers, body=[b""])
    error_of(sent, 413, "body-too-large", problem_details=problem_details)


async def test_endless_empty_blocks_are_cut_by_the_raw_limit() -> None:
    # A valid gzip stream of empty stored blocks decodes to nothing, forever.
    head = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # a gzip header, then deflate
    empty_block = b"\x00\x00\x00\xff\xff"  # stored, not final, length 0
    decoder = zlib.decompressobj(31)
    assert decoder.decompress(head + empty_block * 100) == b""
    assert not decoder.eof
    blocks = [empty_block * 13_000] * 20  # 1.3 MB that decode to nothing
    headers = [("content-encoding", "gzip")]
    sent = await call(APP, "/raw", method="POST", headers=headers, body=[head, *blocks])
    error_of(sent, 413, "body-too-large", problem_details=False)


# --- the decoders on their own ---------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_decoders_bound_each_read(coding: str, bombs: dict[str, bytes]) -> None:
    decoder = new_decoder(coding)
    decoder.feed(bombs[coding][:4096])
    for _ in range(20):
        out = decoder.read(CHUNK_SIZE)
        assert 0 < len(out) <= CHUNK_SIZE + 64 * 1024  # brotli may overshoot by a block


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_decoders_round_trip_byte_by_byte(coding: str) -> None:
    data = JSON[:5000]
    decoder = new_decoder(coding)
    out = []
    for byte in compress(coding, data):
        decoder.feed(bytes([byte]))
        while chunk := decoder.read(100):
            out.append(chunk)
    assert b"".join(out) == data
    assert decoder.finished()


def test_gzip_members_are_concatenated() -> None:
    decoder = new_decoder("gzip")
    decoder.feed(gzip.compress(b"abc") + gzip.compress(b"def"))
    assert b"".join(iter(lambda: decoder.read(2), b"")) == b"abcdef"
    assert decoder.finished()


def test_zstd_frames_follow_skippable_frames_and_checksums() -> None:
    compressor = zstandard.ZstdCompressor(write_checksum=True, write_content_size=False)
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"xyz"
    first, empty = compressor.compress(b"hello" * 1000), compressor.compress(b"")
    data = skippable + first + empty
    decoder = new_decoder("zstd")
    out = []
    for i, byte in enumerate(data):
        assert decoder.finished() == (i in (0, len(skippable), len(data) - len(empty)))
        decoder.feed(bytes([byte]))
        out.extend(iter(lambda: decoder.read(CHUNK_SIZE), b""))
    assert b"".join(out) == b"hello" * 1000
    assert decoder.finished()
    whole = new_decoder("zstd")
    whole.feed(data)
    assert b"".join(iter(lambda: whole.read(CHUNK_SIZE), b"")) == b"hello" * 1000
    assert whole.finished()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"gzip", "gzip"),
        (b"X-GZIP", "gzip"),
        (b" br ", "br"),
        (b"identity", "identity"),
        (b"", "identity"),
        (b"identity, zstd", "zstd"),
        (b"gzip, br", None),
        (b"lz4", "lz4"),
    ],
)
def test_request_coding(value: bytes, expected: str | None) -> None:
    assert request_coding(value) == expected


def receiving(*messages: dict[str, Any]) -> Any:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


async def test_after_the_body_and_on_disconnect_messages_pass_through() -> None:
    end = {"type": "http.request", "body": b"", "more_body": False}
    disconnect = {"type": "http.disconnect"}
    wire = {"type": "http.request", "body": gzip.compress(b"abc"), "more_body": False}
    body = DecompressedBody(receiving(wire, disconnect), "gzip", LIMIT, None)
    assert await body.receive() == {"type": "http.request", "body": b"abc", "more_body": True}
    assert await body.receive() == end
    assert body.done
    assert await body.receive() == disconnect  # after the end: the server's own messages
    # A client gone before the end of its body: the disconnect is handed on as it is.
    half = {"type": "http.request", "body": gzip.compress(JSON)[:100], "more_body": True}
    cut = DecompressedBody(receiving(half, disconnect), "gzip", LIMIT, None)
    assert (await cut.receive())["more_body"] is True
    assert await cut.receive() == disconnect
    assert not cut.done


async def test_a_problem_is_raised_again_on_the_next_read() -> None:
    wire = {"type": "http.request", "body": b"not gzip at all", "more_body": False}
    body = DecompressedBody(receiving(wire), "gzip", LIMIT, None)
    with pytest.raises(ProblemError) as first:
        await body.receive()
    with pytest.raises(ProblemError) as again:
        await body.receive()
    assert again.value is first.value is body.problem


def test_coding_available_without_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    assert coding_available("br")
    monkeypatch.setitem(sys.modules, "brotli", None)
    assert not coding_available("br")
    assert coding_available("gzip")
