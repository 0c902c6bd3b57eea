"""young_gc: collect the young generation before a large decode, none during it."""

from __future__ import annotations

import asyncio
import datetime
import gc
from collections.abc import Iterator

import httpx
import msgpack
import orjson
import pytest
from pydantic import BaseModel, TypeAdapter

from fastapi_serdes import young_gc
from fastapi_serdes.codecs import JSONCodec, MsgPackCodec
from fastapi_serdes.request_body import decode_body
from fastapi_serdes.young_gc import BYTES_PER_OBJECT, MIN_SIZE
from tests.conftest import build_app


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations CPython starts collecting while the test runs."""
    seen: list[int] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    was_enabled = gc.isenabled()
    threshold = gc.get_threshold()
    gc.callbacks.append(callback)
    try:
        yield seen
    finally:
        gc.callbacks.remove(callback)
        gc.set_threshold(*threshold)
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


class _Node:
    """A container object the collector tracks and counts (no free list reuses them)."""


def _fill_young(count: int) -> list[_Node]:
    gc.collect(0)
    keep = [_Node() for _ in range(count)]
    assert gc.get_count()[0] >= count
    return keep


def test_collects_first_when_the_decode_would_reach_the_threshold(
    collections: list[int],
) -> None:
    gc.set_threshold(700)
    gc.disable()
    keep = _fill_young(400)
    gc.enable()
    before = len(collections)
    assert young_gc.pause(max(MIN_SIZE, 400 * BYTES_PER_OBJECT))
    assert collections[before:] == [0]
    assert gc.get_count()[0] < 50
    assert not gc.isenabled()
    young_gc.resume()
    assert gc.isenabled()
    assert len(keep) == 400


def test_no_collection_during_the_decode(collections: list[int]) -> None:
    gc.set_threshold(700)
    gc.enable()
    assert young_gc.pause(MIN_SIZE)
    before = len(collections)
    try:
        built = [_Node() for _ in range(3000)]  # four thresholds' worth
    finally:
        young_gc.resume()
    assert collections[before:] == []
    assert len(built) == 3000


def test_no_collection_first_when_the_decode_fits(collections: list[int]) -> None:
    gc.set_threshold(700)
    gc.disable()
    keep = _fill_young(100)
    gc.enable()
    before = len(collections)
    assert young_gc.pause(MIN_SIZE)
    young_gc.resume()
    assert collections[before:] == []
    assert keep


def test_small_bodies_are_left_alone(collections: list[int]) -> None:
    gc.enable()
    assert not young_gc.pause(MIN_SIZE - 1)
    assert gc.isenabled()


@pytest.mark.parametrize("off", ["threshold-0", "disabled"])
def test_never_touches_a_collector_the_application_turned_off(
    collections: list[int], off: str
) -> None:
    gc.disable()
    keep = _fill_young(400)
    if off == "threshold-0":
        gc.set_threshold(0)
        gc.enable()
    before = len(collections)
    assert not young_gc.pause(10_000_000)
    assert collections[before:] == []
    assert gc.isenabled() is (off == "threshold-0")
    assert keep


@pytest.mark.anyio
async def test_collection_is_back_on_after_every_kind_of_body() -> None:
    # Good, malformed, invalid and oversized bodies, concurrently, through SerdesRoute and the
    # middleware's transcoding for a plain route: collection is on again after each of them.
    assert gc.isenabled()
    big_name = "x" * 6000  # past young_gc.MIN_SIZE, so the decode pauses collection
    item = {"id": 1, "name": big_name}
    bodies = [
        ("/api/items", "application/json", orjson.dumps(item), 201),
        ("/api/items", "application/msgpack", msgpack.packb(item), 201),
        ("/api/items", "application/json", orjson.dumps(item)[:-1], 400),
        ("/api/items", "application/json", orjson.dumps({"id": "x", "name": big_name}), 422),
        ("/api/items", "application/msgpack", msgpack.packb(item) + b"\x00", 400),
        ("/api/items", "application/json", b'{"id": 1, "name": "' + b"y" * 2_000_000 + b'"}', 413),
        ("/plain", "application/msgpack", msgpack.packb(item), 200),
    ]
    transport = httpx.ASGITransport(app=build_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

        async def post(path: str, content_type: str, body: bytes) -> int:
            res = await client.post(path, content=body, headers={"content-type": content_type})
            return res.status_code

        statuses = await asyncio.gather(*(post(p, t, b) for p, t, b, _ in bodies * 3))
    assert statuses == [status for *_, status in bodies] * 3
    assert gc.isenabled()


def test_checkpoint_collects_when_the_validation_ahead_would_reach_the_threshold(
    collections: list[int],
) -> None:
    gc.set_threshold(700)
    gc.enable()
    assert young_gc.pause(MIN_SIZE)
    try:
        plain = [_Node() for _ in range(300)]  # what a decoder reads before validating
        before = len(collections)
        young_gc.checkpoint(500 * BYTES_PER_OBJECT)
        assert collections[before:] == [0]
        assert gc.get_count()[0] < 50
    finally:
        young_gc.resume()
    assert gc.isenabled()
    assert len(plain) == 300


def test_checkpoint_leaves_a_validation_that_fits(collections: list[int]) -> None:
    gc.set_threshold(700)
    gc.enable()
    assert young_gc.pause(MIN_SIZE)
    try:
        plain = [_Node() for _ in range(100)]
        before = len(collections)
        young_gc.checkpoint(400 * BYTES_PER_OBJECT)
        assert collections[before:] == []
    finally:
        young_gc.resume()
    assert plain


def test_checkpoint_does_nothing_outside_a_pause(collections: list[int]) -> None:
    gc.set_threshold(700)
    gc.disable()  # the application's choice: never collect behind its back
    keep = _fill_young(600)
    before = len(collections)
    young_gc.checkpoint(10_000_000)
    assert collections[before:] == []
    assert not gc.isenabled()
    assert keep


class _Address(BaseModel):
    city: str
    country: str


class _User(BaseModel):
    id: int
    name: str
    created_at: datetime.datetime
    tags: list[str]
    address: _Address


def _users_body(count: int) -> list[dict[str, object]]:
    return [
        {
            "id": i,
            "name": f"user{i}",
            "created_at": "2024-05-01T12:00:00Z",
            "tags": [],
            "address": {"city": "Lyon", "country": "FR"},
        }
        for i in range(count)
    ]


@pytest.mark.parametrize("codec", [JSONCodec(), MsgPackCodec()], ids=["json", "msgpack"])
def test_a_decoded_body_leaves_the_young_generation_under_its_threshold(
    collections: list[int], codec: JSONCodec | MsgPackCodec
) -> None:
    # Models with a nested model each: the count the decode leaves behind must not
    # trigger a collection that walks them all as soon as allocation resumes (MessagePack's
    # plain dicts and lists, freed into CPython's free lists, used to leave it over 700).
    gc.set_threshold(700)
    gc.enable()
    adapter = TypeAdapter(list[_User])
    users = _users_body(100)  # what survives counts just under the threshold
    data = orjson.dumps(users) if isinstance(codec, JSONCodec) else msgpack.packb(users)
    assert len(data) >= MIN_SIZE
    decode_body(codec, data, adapter)  # warm the codec's memos
    before = len(collections)
    value = decode_body(codec, data, adapter)
    assert gc.get_count()[0] < gc.get_threshold()[0]
    assert all(generation == 0 for generation in collections[before:])
    assert len(value) == 100
