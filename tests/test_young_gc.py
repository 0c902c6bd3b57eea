"""young_gc: collect the young generation before a large decode, none during it."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx
import msgpack
import orjson
import pytest

from fastapi_serdes import young_gc
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
    assert young_gc.pause(400 * BYTES_PER_OBJECT)
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
