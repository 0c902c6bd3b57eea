"""MemoryStore: bounded in bytes under a flood, LRU, TTL on an injected clock, tags, locks."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from fastapi_serdes._types import Store
from fastapi_serdes.cache.memory_store import ENTRY_OVERHEAD, MemoryStore


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry_size(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


def test_implements_the_store_protocol() -> None:
    assert isinstance(MemoryStore(), Store)
    assert MemoryStore().name == "memory"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_bytes": 0}, "max_bytes must be a positive int (bytes), got 0"),
        ({"max_bytes": 1.5}, "max_bytes must be a positive int (bytes), got 1.5"),
        ({"max_bytes": True}, "max_bytes must be a positive int (bytes), got True"),
        ({"max_item_bytes": -1}, "max_item_bytes must be a positive int (bytes), got -1"),
        (
            {"max_bytes": 100, "max_item_bytes": 200},
            "max_item_bytes must not exceed max_bytes (100), got 200",
        ),
    ],
)
def test_settings_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        MemoryStore(**kwargs)


def test_timer_must_be_callable() -> None:
    with pytest.raises(TypeError, match="timer must be a callable"):
        MemoryStore(timer=5)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_get_set_delete() -> None:
    store = MemoryStore()
    assert await store.get("k") is None
    await store.set("k", b"\x00\xffvalue", ttl=10)
    assert await store.get("k") == b"\x00\xffvalue"
    await store.set("k", b"new", ttl=10)
    assert await store.get("k") == b"new"
    await store.delete("k")
    await store.delete("k")  # absent: nothing happens
    assert await store.get("k") is None
    assert len(store) == 0
    assert store.size == 0


@pytest.mark.anyio
@pytest.mark.parametrize("ttl", [0, -1.0])
async def test_ttl_must_be_positive(ttl: float) -> None:
    store = MemoryStore()
    with pytest.raises(ValueError, match=f"ttl must be a positive number of seconds, got {ttl}"):
        await store.set("k", b"v", ttl=ttl)
    with pytest.raises(ValueError, match="ttl must be a positive"):
        await store.acquire("k", ttl)


@pytest.mark.anyio
async def test_ttl_expiry_on_the_injected_clock() -> None:
    clock = Clock()
    store = MemoryStore(timer=clock)
    await store.set("short", b"1", ttl=5)
    await store.set("long", b"2", ttl=60)
    clock.now += 4.999
    assert await store.get("short") == b"1"
    clock.now += 0.001
    assert await store.get("short") is None
    assert await store.get("long") == b"2"
    assert len(store) == 1  # the expired entry was dropped when read, not merely hidden


@pytest.mark.anyio
async def test_per_item_cap() -> None:
    store = MemoryStore(max_item_bytes=100)
    await store.set("k", b"x" * 100, ttl=10)
    assert await store.get("k") == b"x" * 100
    await store.set("k", b"x" * 101, ttl=10)
    # Not stored, and the older value is gone too: a reader must not get a stale body.
    assert await store.get("k") is None
    assert store.size == 0


@pytest.mark.anyio
async def test_lru_eviction_order() -> None:
    value = b"v" * 100
    store = MemoryStore(max_bytes=3 * entry_size("a", value))
    for key in "abc":
        await store.set(key, value, ttl=10)
    assert await store.get("a") == value  # a is now the most recently used
    await store.set("d", value, ttl=10)
    assert await store.get("b") is None  # the least recently used went
    assert [await store.get(k) for k in "acd"] == [value] * 3
    assert store.size == store.max_bytes


@pytest.mark.anyio
async def test_flood_of_unique_keys_never_exceeds_the_byte_bound() -> None:
    # 200,000 writes, the bound checked after each (about 3 s); the full 1,000,000 takes ~9 s.
    store = MemoryStore(max_bytes=1024 * 1024, max_item_bytes=64 * 1024)
    values = [b"v" * n for n in range(0, 400, 7)]
    for i in range(200_000):
        tags = (f"path:/items/{i}", f"user:{i % 100}") if i % 3 == 0 else ()
        await store.set(f"{i:032x}", values[i % len(values)], ttl=60, tags=tags)
        assert store.size <= store.max_bytes
    assert len(store) > 500  # it still caches
    # The tag index points only at live keys, so it shrank with the evictions.
    index = store._cache.tags
    assert all(keys and all(key in store._cache for key in keys) for keys in index.values())
    assert len(index) <= 2 * len(store)


@pytest.mark.anyio
async def test_memory_really_held_stays_under_the_bound() -> None:
    # The bound is only as good as ENTRY_OVERHEAD / TAG_OVERHEAD: measure what Python allocates.
    max_bytes = 2 * 1024 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = MemoryStore(max_bytes=max_bytes)
        for i in range(15_000):
            tags = [f"path:/items/{i}/{j}" for j in range(i % 4)]  # 0 to 3 unique tags
            await store.set(f"{i:032x}", b"x" * (i % 50), ttl=60, tags=tags)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(store) > 1000
    assert store.size <= max_bytes
    assert held <= max_bytes, f"{held} bytes held for a {max_bytes} bound"


@pytest.mark.anyio
async def test_invalidate_by_tags() -> None:
    store = MemoryStore()
    await store.set("a", b"1", ttl=10, tags=["user:1", "path:/a"])
    await store.set("b", b"2", ttl=10, tags=["user:1"])
    await store.set("c", b"3", ttl=10, tags=["user:2"])
    await store.set("d", b"4", ttl=10)
    assert await store.invalidate(["user:1"]) == 2
    assert [await store.get(k) for k in "abcd"] == [None, None, b"3", b"4"]
    assert await store.invalidate(["path:/a", "nobody"]) == 0
    assert await store.invalidate(["user:2", "user:2"]) == 1
    assert await store.invalidate([]) == 0
    assert store._cache.tags == {}


@pytest.mark.anyio
async def test_invalidate_counts_only_live_entries_and_cleans_expired_ones() -> None:
    clock = Clock()
    store = MemoryStore(timer=clock)
    await store.set("old", b"1", ttl=1, tags=["t"])
    await store.set("new", b"2", ttl=10, tags=["t"])
    clock.now += 2
    assert await store.invalidate(["t"]) == 1
    assert len(store) == 0
    assert store._cache.tags == {}


@pytest.mark.anyio
async def test_overwrite_replaces_the_tags() -> None:
    store = MemoryStore()
    await store.set("k", b"1", ttl=10, tags=["old"])
    await store.set("k", b"2", ttl=10, tags=["new"])
    assert store._cache.tags == {"new": {"k"}}
    assert await store.invalidate(["old"]) == 0
    assert await store.get("k") == b"2"


@pytest.mark.anyio
async def test_tag_index_follows_evictions_and_expiry() -> None:
    clock = Clock()
    value = b"v" * 10
    store = MemoryStore(max_bytes=50_000, timer=clock)
    for i in range(1000):
        await store.set(f"k{i}", value, ttl=5, tags=[f"t{i}", "shared"])
    assert set(store._cache.tags["shared"]) == set(store._cache)
    assert len(store._cache.tags) == len(store) + 1
    clock.now += 10
    for i in range(1000):  # every read finds an expired entry and drops it with its tags
        assert await store.get(f"k{i}") is None
    assert store._cache.tags == {}
    assert store.size == 0


@pytest.mark.anyio
async def test_locks() -> None:
    clock = Clock()
    store = MemoryStore(timer=clock)
    assert await store.acquire("k", 2) is True
    assert await store.acquire("k", 2) is False
    assert await store.acquire("other", 2) is True  # locks are per key
    await store.release("k")
    assert await store.acquire("k", 2) is True
    clock.now += 2  # an expired lock can be taken again (its holder may have died)
    assert await store.acquire("k", 2) is True
    await store.release("never-taken")  # nothing happens


@pytest.mark.anyio
async def test_unreleased_expired_locks_are_swept() -> None:
    clock = Clock()
    store = MemoryStore(timer=clock)
    for round_ in range(20):
        for i in range(1000):
            assert await store.acquire(f"{round_}:{i}", 1) is True
        clock.now += 2  # every lock of this round expires without a release
    assert len(store._locks) <= 2 * 1024


@pytest.mark.anyio
async def test_aclose_drops_everything() -> None:
    store = MemoryStore()
    await store.set("k", b"v", ttl=10, tags=["t"])
    await store.acquire("lock", 10)
    await store.aclose()
    assert len(store) == 0
    assert store._cache.tags == {}
    assert await store.acquire("lock", 10) is True
